//! `LlamaAttention` (and Qwen2's): grouped-query attention with RoPE, a causal + padding mask
//! and the KV cache, computed by libtorch's `scaled_dot_product_attention`.
//!
//! Grouped-query attention without copying the cache: transformers repeats each key/value
//! head `n_rep` times (`repeat_kv`); query head `h` reads kv head `h / n_rep`. Here the
//! `n_rep` query heads of a group are instead stacked along the sequence axis,
//! `(B, n_kv * n_rep, T, D) -> (B, n_kv, n_rep * T, D)`, which is the same attention and
//! leaves keys and values as they are in the cache. The mask is laid out for those
//! `n_rep * T` query rows (see [`AttentionMask`]).

use super::{config::LlamaConfig, kv_cache::KvCache, linear::Linear, rotary::apply_rotary};
use tch::{Device, Kind, Tensor, nn};

/// Which keys each query row may attend to; built once per forward call, shared by the layers.
#[derive(Debug)]
pub enum AttentionMask {
    /// Every query sees every key: one new token per row and no padding.
    None,
    /// Square causal attention: no cached keys, no padding, no grouped query rows.
    Causal,
    /// `(B or 1, 1, rows, S)` bool, `true` = attend; rows are the (grouped) query rows.
    Explicit(Tensor),
}

impl AttentionMask {
    /// The mask for `seq` new tokens after `past` cached ones. `key_padding` is `(B, past +
    /// seq)`, true for real tokens (None: no padding). `n_rep` is the number of query heads
    /// per key/value head.
    ///
    /// A padded query row is allowed to see itself, so that no row is fully masked (which
    /// would make NaNs that then leak through the values of padded keys); its output is
    /// never used.
    pub fn new(key_padding: Option<&Tensor>, past: i64, seq: i64, n_rep: i64, device: Device) -> Self {
        match key_padding {
            None if seq == 1 => return AttentionMask::None,
            None if past == 0 && n_rep == 1 => return AttentionMask::Causal,
            _ => {}
        }
        let total = past + seq;
        let query_pos = Tensor::arange_start(past, total, (Kind::Int64, device)).unsqueeze(1);
        let key_pos = Tensor::arange(total, (Kind::Int64, device)).unsqueeze(0);
        let causal = key_pos.le_tensor(&query_pos); // (seq, total)
        let allowed = match key_padding {
            None => causal.view([1, 1, seq, total]),
            Some(valid) => {
                let b = valid.size()[0];
                let valid = valid.view([b, 1, 1, total]);
                let own = key_pos.eq_tensor(&query_pos);
                causal.logical_and(&valid.logical_or(&own))
            }
        };
        if n_rep > 1 && seq > 1 {
            AttentionMask::Explicit(allowed.repeat([1, 1, n_rep, 1]))
        } else {
            AttentionMask::Explicit(allowed)
        }
    }
}

#[derive(Debug)]
pub struct LlamaAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    num_heads: i64,
    num_kv_heads: i64,
    head_dim: i64,
    layer_idx: usize,
}

impl LlamaAttention {
    pub fn new(path: nn::Path, config: &LlamaConfig, layer_idx: usize) -> Self {
        let (hidden, heads, kv_heads, head_dim) = (
            config.hidden_size,
            config.num_attention_heads,
            config.num_key_value_heads,
            config.head_dim,
        );
        LlamaAttention {
            q_proj: Linear::new(&path / "q_proj", hidden, heads * head_dim, config.qkv_bias),
            k_proj: Linear::new(&path / "k_proj", hidden, kv_heads * head_dim, config.qkv_bias),
            v_proj: Linear::new(&path / "v_proj", hidden, kv_heads * head_dim, config.qkv_bias),
            o_proj: Linear::new(&path / "o_proj", heads * head_dim, hidden, config.o_bias),
            num_heads: heads as i64,
            num_kv_heads: kv_heads as i64,
            head_dim: head_dim as i64,
            layer_idx,
        }
    }

    /// `xs` is `(B, T, hidden)`; `cos`/`sin` are `(B, T, head_dim)`. With a cache, the new
    /// keys and values are written at the cache's current length and attention runs over
    /// everything cached so far.
    pub fn forward(
        &self,
        xs: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: &AttentionMask,
        cache: Option<&mut KvCache>,
    ) -> Tensor {
        let (b, t, _) = xs.size3().expect("hidden states are (batch, seq, hidden)");
        let (nh, nkv, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = self.q_proj.forward(xs).view([b, t, nh, d]).transpose(1, 2);
        let k = self.k_proj.forward(xs).view([b, t, nkv, d]).transpose(1, 2);
        let v = self.v_proj.forward(xs).view([b, t, nkv, d]).transpose(1, 2);
        let q = apply_rotary(&q, cos, sin);
        let k = apply_rotary(&k, cos, sin);
        let (k, v) = match cache {
            Some(cache) => cache.update(self.layer_idx, &k, &v),
            None => (k, v),
        };

        let n_rep = nh / nkv;
        let q = if n_rep > 1 {
            q.reshape([b, nkv, n_rep * t, d])
        } else {
            q
        };
        let (attn_mask, is_causal) = match mask {
            AttentionMask::None => (None, false),
            AttentionMask::Causal => (None, true),
            AttentionMask::Explicit(m) => (Some(m), false),
        };
        let y = Tensor::scaled_dot_product_attention(&q, &k, &v, attn_mask, 0.0, is_causal, None, false);
        let y = if n_rep > 1 { y.reshape([b, nh, t, d]) } else { y };
        let y = y.transpose(1, 2).reshape([b, t, nh * d]);
        self.o_proj.forward(&y)
    }
}

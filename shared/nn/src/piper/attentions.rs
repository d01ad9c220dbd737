//! VITS `attentions.py`: the text encoder's transformer with relative-position
//! multi-head attention (window ±`window_size`, embeddings shared by the heads), a
//! convolutional FFN, and a channel-wise LayerNorm named `gamma`/`beta`.

use tch::{Kind, Tensor, nn, nn::Module};

/// VITS `modules.LayerNorm`: layer norm over the channel dim of (B, C, T).
#[derive(Debug)]
pub struct ChannelNorm {
    gamma: Tensor,
    beta: Tensor,
    channels: i64,
}

impl ChannelNorm {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        ChannelNorm {
            gamma: p.var("gamma", &[channels], nn::Init::Const(1.0)),
            beta: p.var("beta", &[channels], nn::Init::Const(0.0)),
            channels,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.transpose(1, -1)
            .layer_norm([self.channels], Some(&self.gamma), Some(&self.beta), 1e-5, false)
            .transpose(1, -1)
    }
}

pub fn conv1d(p: nn::Path, i: i64, o: i64, k: i64, config: nn::ConvConfig) -> nn::Conv1D {
    nn::conv1d(p, i, o, k, config)
}

/// `MultiHeadAttention` with `window_size` relative positions and `heads_share=True`.
#[derive(Debug)]
pub struct MultiHeadAttention {
    conv_q: nn::Conv1D,
    conv_k: nn::Conv1D,
    conv_v: nn::Conv1D,
    conv_o: nn::Conv1D,
    emb_rel_k: Tensor,
    emb_rel_v: Tensor,
    n_heads: i64,
    k_channels: i64,
    window_size: i64,
}

impl MultiHeadAttention {
    pub fn new(p: nn::Path, channels: i64, n_heads: i64, window_size: i64) -> Self {
        let k_channels = channels / n_heads;
        let c = Default::default();
        MultiHeadAttention {
            conv_q: conv1d(&p / "conv_q", channels, channels, 1, c),
            conv_k: conv1d(&p / "conv_k", channels, channels, 1, c),
            conv_v: conv1d(&p / "conv_v", channels, channels, 1, c),
            conv_o: conv1d(&p / "conv_o", channels, channels, 1, c),
            emb_rel_k: p.var(
                "emb_rel_k",
                &[1, 2 * window_size + 1, k_channels],
                nn::Init::Const(0.0),
            ),
            emb_rel_v: p.var(
                "emb_rel_v",
                &[1, 2 * window_size + 1, k_channels],
                nn::Init::Const(0.0),
            ),
            n_heads,
            k_channels,
            window_size,
        }
    }

    /// Self-attention of `x` (B, C, T) under `mask` (B, 1, T, T).
    pub fn forward(&self, x: &Tensor, mask: &Tensor) -> Tensor {
        let q = self.conv_q.forward(x);
        let k = self.conv_k.forward(x);
        let v = self.conv_v.forward(x);
        let (b, d, t) = q.size3().expect("(B, C, T)");
        let heads = |x: Tensor| x.view([b, self.n_heads, self.k_channels, t]).transpose(2, 3);
        let (q, k, v) = (heads(q), heads(k), heads(v));
        let q = q / (self.k_channels as f64).sqrt();
        let mut scores = q.matmul(&k.transpose(-2, -1));
        let key_rel = self.relative_embeddings(&self.emb_rel_k, t);
        let rel_logits = q.matmul(&key_rel.unsqueeze(0).transpose(-2, -1));
        scores += relative_to_absolute(&rel_logits);
        let scores = scores.masked_fill(&mask.eq(0.0), -1e4);
        let p_attn = scores.softmax(-1, Kind::Float);
        let mut output = p_attn.matmul(&v);
        let value_rel = self.relative_embeddings(&self.emb_rel_v, t);
        output += absolute_to_relative(&p_attn).matmul(&value_rel.unsqueeze(0));
        let output = output.transpose(2, 3).contiguous().view([b, d, t]);
        self.conv_o.forward(&output)
    }

    /// `_get_relative_embeddings`: the 2T-1 embeddings of offsets -(T-1)..T-1, zero
    /// outside the window.
    fn relative_embeddings(&self, embeddings: &Tensor, length: i64) -> Tensor {
        let pad = (length - (self.window_size + 1)).max(0);
        let start = ((self.window_size + 1) - length).max(0);
        let end = start + 2 * length - 1;
        let padded = if pad > 0 {
            embeddings.constant_pad_nd([0, 0, pad, pad, 0, 0])
        } else {
            embeddings.shallow_clone()
        };
        padded.slice(1, start, end, 1)
    }
}

/// (B, H, L, 2L-1) relative logits -> (B, H, L, L) absolute (`_relative_position_to_absolute_position`).
fn relative_to_absolute(x: &Tensor) -> Tensor {
    let (b, h, l, _) = x.size4().expect("(B, H, L, 2L-1)");
    let x = x.constant_pad_nd([0, 1]);
    let flat = x.view([b, h, l * 2 * l]).constant_pad_nd([0, l - 1]);
    flat.view([b, h, l + 1, 2 * l - 1])
        .slice(2, 0, l, 1)
        .slice(3, l - 1, 2 * l - 1, 1)
}

/// (B, H, L, L) absolute weights -> (B, H, L, 2L-1) relative (`_absolute_position_to_relative_position`).
fn absolute_to_relative(x: &Tensor) -> Tensor {
    let (b, h, l, _) = x.size4().expect("(B, H, L, L)");
    let x = x.constant_pad_nd([0, l - 1]);
    let flat = x.view([b, h, l * l + l * (l - 1)]).constant_pad_nd([l, 0]);
    flat.view([b, h, l, 2 * l]).slice(3, 1, 2 * l, 1)
}

/// `FFN`: conv -> ReLU -> conv, "same" padding, masked.
#[derive(Debug)]
pub struct Ffn {
    conv_1: nn::Conv1D,
    conv_2: nn::Conv1D,
    kernel_size: i64,
}

impl Ffn {
    pub fn new(p: nn::Path, channels: i64, filter_channels: i64, kernel_size: i64) -> Self {
        let c = Default::default();
        Ffn {
            conv_1: conv1d(&p / "conv_1", channels, filter_channels, kernel_size, c),
            conv_2: conv1d(&p / "conv_2", filter_channels, channels, kernel_size, c),
            kernel_size,
        }
    }

    fn same_pad(&self, x: &Tensor) -> Tensor {
        x.constant_pad_nd([(self.kernel_size - 1) / 2, self.kernel_size / 2])
    }

    pub fn forward(&self, x: &Tensor, mask: &Tensor) -> Tensor {
        let x = self.conv_1.forward(&self.same_pad(&(x * mask))).relu();
        self.conv_2.forward(&self.same_pad(&(x * mask))) * mask
    }
}

/// `attentions.Encoder`.
#[derive(Debug)]
pub struct Encoder {
    attn_layers: Vec<MultiHeadAttention>,
    norm_layers_1: Vec<ChannelNorm>,
    ffn_layers: Vec<Ffn>,
    norm_layers_2: Vec<ChannelNorm>,
}

impl Encoder {
    pub fn new(
        p: nn::Path,
        hidden: i64,
        filter: i64,
        n_heads: i64,
        n_layers: i64,
        kernel_size: i64,
        window_size: i64,
    ) -> Self {
        let mut encoder = Encoder {
            attn_layers: Vec::new(),
            norm_layers_1: Vec::new(),
            ffn_layers: Vec::new(),
            norm_layers_2: Vec::new(),
        };
        for i in 0..n_layers {
            encoder.attn_layers.push(MultiHeadAttention::new(
                &p / "attn_layers" / i,
                hidden,
                n_heads,
                window_size,
            ));
            encoder
                .norm_layers_1
                .push(ChannelNorm::new(&p / "norm_layers_1" / i, hidden));
            encoder
                .ffn_layers
                .push(Ffn::new(&p / "ffn_layers" / i, hidden, filter, kernel_size));
            encoder
                .norm_layers_2
                .push(ChannelNorm::new(&p / "norm_layers_2" / i, hidden));
        }
        encoder
    }

    pub fn forward(&self, x: &Tensor, mask: &Tensor) -> Tensor {
        let attn_mask = mask.unsqueeze(2) * mask.unsqueeze(-1);
        let mut x = x * mask;
        for i in 0..self.attn_layers.len() {
            let y = self.attn_layers[i].forward(&x, &attn_mask);
            x = self.norm_layers_1[i].forward(&(x + y));
            let y = self.ffn_layers[i].forward(&x, mask);
            x = self.norm_layers_2[i].forward(&(x + y));
        }
        x * mask
    }
}

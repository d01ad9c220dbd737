//! transformers' `BertModel` (absolute positions, post-norm layers, exact GELU by default).
//!
//! The module tree, and so the VarStore paths, are transformers':
//!
//! ```text
//! embeddings.{word_embeddings,position_embeddings,token_type_embeddings,LayerNorm}
//! encoder.layer.N.attention.self.{query,key,value}
//! encoder.layer.N.attention.output.{dense,LayerNorm}
//! encoder.layer.N.intermediate.dense
//! encoder.layer.N.output.{dense,LayerNorm}
//! pooler.dense                                  (when the checkpoint has it)
//! ```
//!
//! Inference only: dropout is the identity, no autograd graph is kept (the weights are
//! frozen and the forward pass runs under `no_grad`).

use std::path::Path;

use tch::{Device, Kind, Tensor, nn, nn::Module};

use super::{BertConfig, BertError, BertLayout, HiddenAct};
use crate::{
    DType, DeviceSpec,
    layers::{embedding, layer_norm, linear},
    weights::load_strict,
};

#[derive(Debug)]
struct Embeddings {
    word_embeddings: nn::Embedding,
    position_embeddings: nn::Embedding,
    token_type_embeddings: nn::Embedding,
    layer_norm: nn::LayerNorm,
}

impl Embeddings {
    fn new(p: nn::Path, c: &BertConfig, layout: &BertLayout) -> Self {
        // Buffers some checkpoints carry (transformers 4.x saved them): declared so that
        // strict loading accounts for them, never read.
        if layout.position_ids {
            let _ = p.add(
                "position_ids",
                Tensor::zeros([1, c.max_position_embeddings], (Kind::Int64, p.device())),
                false,
            );
        }
        if layout.token_type_ids {
            let _ = p.add(
                "token_type_ids",
                Tensor::zeros([1, c.max_position_embeddings], (Kind::Int64, p.device())),
                false,
            );
        }
        Embeddings {
            word_embeddings: embedding(&p / "word_embeddings", c.vocab_size, c.hidden_size),
            position_embeddings: embedding(
                &p / "position_embeddings",
                c.max_position_embeddings,
                c.hidden_size,
            ),
            token_type_embeddings: embedding(&p / "token_type_embeddings", c.type_vocab_size, c.hidden_size),
            layer_norm: layer_norm(&p / "LayerNorm", c.hidden_size, c.layer_norm_eps),
        }
    }

    fn forward(&self, input_ids: &Tensor, token_type_ids: &Tensor) -> Tensor {
        let seq_len = input_ids.size()[1];
        let positions = Tensor::arange(seq_len, (Kind::Int64, input_ids.device())).unsqueeze(0);
        let xs = self.word_embeddings.forward(input_ids)
            + self.token_type_embeddings.forward(token_type_ids)
            + self.position_embeddings.forward(&positions);
        self.layer_norm.forward(&xs)
    }
}

#[derive(Debug)]
struct SelfAttention {
    query: nn::Linear,
    key: nn::Linear,
    value: nn::Linear,
    num_heads: i64,
    head_dim: i64,
}

impl SelfAttention {
    fn new(p: nn::Path, c: &BertConfig) -> Self {
        let h = c.hidden_size;
        SelfAttention {
            query: linear(&p / "query", h, h),
            key: linear(&p / "key", h, h),
            value: linear(&p / "value", h, h),
            num_heads: c.num_attention_heads,
            head_dim: c.head_dim(),
        }
    }

    /// `xs`: (B, T, H); `mask`: boolean (B, 1, 1, T), true where a key may be attended.
    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Tensor {
        let (b, t, h) = xs.size3().expect("hidden states are (B, T, H)");
        let heads = |x: Tensor| x.view([b, t, self.num_heads, self.head_dim]).transpose(1, 2);
        let q = heads(self.query.forward(xs));
        let k = heads(self.key.forward(xs));
        let v = heads(self.value.forward(xs));
        Tensor::scaled_dot_product_attention(&q, &k, &v, Some(mask), 0.0, false, None, false)
            .transpose(1, 2)
            .reshape([b, t, h])
    }
}

/// A dense projection followed by the residual LayerNorm (`attention.output` and `output`).
#[derive(Debug)]
struct DenseResidualNorm {
    dense: nn::Linear,
    layer_norm: nn::LayerNorm,
}

impl DenseResidualNorm {
    fn new(p: nn::Path, in_dim: i64, c: &BertConfig) -> Self {
        DenseResidualNorm {
            dense: linear(&p / "dense", in_dim, c.hidden_size),
            layer_norm: layer_norm(&p / "LayerNorm", c.hidden_size, c.layer_norm_eps),
        }
    }

    fn forward(&self, xs: &Tensor, residual: &Tensor) -> Tensor {
        self.layer_norm.forward(&(self.dense.forward(xs) + residual))
    }
}

#[derive(Debug)]
struct Layer {
    attention_self: SelfAttention,
    attention_output: DenseResidualNorm,
    intermediate_dense: nn::Linear,
    output: DenseResidualNorm,
    act: HiddenAct,
}

impl Layer {
    fn new(p: nn::Path, c: &BertConfig) -> Self {
        let attention = &p / "attention";
        Layer {
            attention_self: SelfAttention::new(&attention / "self", c),
            attention_output: DenseResidualNorm::new(&attention / "output", c.hidden_size, c),
            intermediate_dense: linear(&p / "intermediate" / "dense", c.hidden_size, c.intermediate_size),
            output: DenseResidualNorm::new(&p / "output", c.intermediate_size, c),
            act: c.hidden_act,
        }
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Tensor {
        let attended = self.attention_self.forward(xs, mask);
        let xs = self.attention_output.forward(&attended, xs);
        let inner = self.act.apply(&self.intermediate_dense.forward(&xs));
        self.output.forward(&inner, &xs)
    }
}

/// What [`BertModel::forward`] returns.
#[derive(Debug)]
pub struct BertModelOutput {
    /// (B, T, hidden), the last layer's output.
    pub last_hidden_state: Tensor,
    /// (B, hidden): `tanh(pooler.dense(h[:, 0]))`, when the checkpoint has a pooler.
    pub pooler_output: Option<Tensor>,
}

/// transformers' `BertModel`; see the module docs for its VarStore paths.
#[derive(Debug)]
pub struct BertModel {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pooler: Option<nn::Linear>,
    config: BertConfig,
    device: Device,
}

impl BertModel {
    /// Declares the model's variables under `p` (which must already include the layout's
    /// prefix, if any); `layout` says which optional parts to declare.
    pub fn new(p: &nn::Path, config: &BertConfig, layout: &BertLayout) -> Self {
        let encoder = p / "encoder" / "layer";
        BertModel {
            embeddings: Embeddings::new(p / "embeddings", config, layout),
            layers: (0..config.num_hidden_layers)
                .map(|i| Layer::new(&encoder / i, config))
                .collect(),
            pooler: layout
                .pooler
                .then(|| linear(p / "pooler" / "dense", config.hidden_size, config.hidden_size)),
            config: config.clone(),
            device: p.device(),
        }
    }

    /// Builds the model for the checkpoint in `files` (one file or the shards) and loads it
    /// strictly: the layout ([`BertLayout::from_files`]) decides the optional parts, and any
    /// other missing or unexpected tensor is an error. Weights are held in `dtype` on `device`.
    pub fn load(
        config: &BertConfig,
        files: &[impl AsRef<Path>],
        device: DeviceSpec,
        dtype: DType,
    ) -> Result<Self, BertError> {
        let layout = BertLayout::from_files(files)?;
        let mut vs = nn::VarStore::new(device.to_device().map_err(BertError::Device)?);
        let root = match &layout.prefix {
            Some(prefix) => vs.root() / prefix.as_str(),
            None => vs.root(),
        };
        let model = BertModel::new(&root, config, &layout);
        match dtype {
            DType::F32 => {}
            DType::F16 => vs.half(),
            DType::Bf16 => vs.bfloat16(),
        }
        load_strict(&mut vs, files)?;
        vs.freeze();
        Ok(model)
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Encodes a padded batch.
    ///
    /// - `input_ids`: (B, T) integer token ids, `1 <= T <= max_position_embeddings`;
    /// - `attention_mask`: (B, T), non-zero for real tokens and 0 for padding (default: all
    ///   real). Padding keys are masked out of attention; the outputs at padded positions are
    ///   computed but meaningless;
    /// - `token_type_ids`: (B, T) segment ids (default: all 0).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        token_type_ids: Option<&Tensor>,
    ) -> Result<BertModelOutput, BertError> {
        let (b, t) = self.check_ids(input_ids, "input_ids", self.config.vocab_size)?;
        let input_ids = input_ids.to_kind(Kind::Int64).to_device(self.device);
        let token_type_ids = match token_type_ids {
            Some(tt) => {
                self.check_same_shape(tt, "token_type_ids", (b, t))?;
                self.check_ids(tt, "token_type_ids", self.config.type_vocab_size)?;
                tt.to_kind(Kind::Int64).to_device(self.device)
            }
            None => input_ids.zeros_like(),
        };
        let mask = match attention_mask {
            Some(m) => {
                self.check_same_shape(m, "attention_mask", (b, t))?;
                m.to_device(self.device).ne(0)
            }
            None => Tensor::ones([b, t], (Kind::Bool, self.device)),
        }
        .view([b, 1, 1, t]);

        Ok(tch::no_grad(|| {
            let mut xs = self.embeddings.forward(&input_ids, &token_type_ids);
            for layer in &self.layers {
                xs = layer.forward(&xs, &mask);
            }
            let pooler_output = self
                .pooler
                .as_ref()
                .map(|dense| dense.forward(&xs.select(1, 0)).tanh());
            BertModelOutput {
                last_hidden_state: xs,
                pooler_output,
            }
        }))
    }

    /// Checks a (B, T) id tensor: shape, length limit, ids in `0..limit`.
    fn check_ids(&self, ids: &Tensor, name: &str, limit: i64) -> Result<(i64, i64), BertError> {
        let size = ids.size();
        let [b, t] = size[..] else {
            return Err(BertError::Input(format!(
                "`{name}` must be (batch, seq_len), got shape {size:?}"
            )));
        };
        let max_len = self.config.max_position_embeddings;
        if b < 1 || t < 1 || t > max_len {
            return Err(BertError::Input(format!(
                "`{name}` shape {size:?}: batch must be >= 1 and seq_len in 1..={max_len}"
            )));
        }
        if ids.is_floating_point() {
            return Err(BertError::Input(format!(
                "`{name}` must hold integers, got {:?}",
                ids.kind()
            )));
        }
        let (lo, hi) = (ids.min().int64_value(&[]), ids.max().int64_value(&[]));
        if lo < 0 || hi >= limit {
            return Err(BertError::Input(format!(
                "`{name}` must be in 0..{limit}, got values in {lo}..={hi}"
            )));
        }
        Ok((b, t))
    }

    fn check_same_shape(&self, x: &Tensor, name: &str, (b, t): (i64, i64)) -> Result<(), BertError> {
        if x.size() != [b, t] {
            return Err(BertError::Input(format!(
                "`{name}` must have the shape of `input_ids`, [{b}, {t}], got {:?}",
                x.size()
            )));
        }
        Ok(())
    }
}

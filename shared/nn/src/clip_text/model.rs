//! transformers' `CLIPTextModel`: token + position embeddings, pre-norm encoder layers with a
//! causal mask, final LayerNorm, pooled output at the EOS token.
//!
//! VarStore paths (under `text_model.` when the checkpoint has that prefix):
//!
//! ```text
//! embeddings.{token_embedding,position_embedding}
//! encoder.layers.N.self_attn.{q_proj,k_proj,v_proj,out_proj}
//! encoder.layers.N.{layer_norm1,layer_norm2}
//! encoder.layers.N.mlp.{fc1,fc2}
//! final_layer_norm
//! ```
//!
//! Inference only: the weights are frozen and the forward pass runs under `no_grad`.

use std::path::Path;

use tch::{Device, Kind, Tensor, nn, nn::Module};

use super::{ClipActivation, ClipTextConfig, ClipTextError};
use crate::{
    DType, DeviceSpec,
    layers::{embedding, layer_norm, linear},
    weights::{load_strict, safetensors_names},
};

/// The optional parts of a CLIP text checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClipLayout {
    /// `Some("text_model")` for the published layout; `None` for transformers 5's own.
    pub prefix: Option<String>,
    /// The checkpoint carries `embeddings.position_ids` (older exports). Declared so that
    /// loading stays strict, never read: positions are `0..seq_len`.
    pub position_ids: bool,
}

impl ClipLayout {
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let names: Vec<&str> = names.into_iter().collect();
        let prefix = names
            .iter()
            .any(|n| n.starts_with("text_model."))
            .then(|| "text_model".to_string());
        let p = prefix.as_deref().map(|p| format!("{p}.")).unwrap_or_default();
        let position_ids = names.contains(&format!("{p}embeddings.position_ids").as_str());
        ClipLayout { prefix, position_ids }
    }

    /// The layout of the checkpoint in these safetensors files (headers only are read).
    pub fn from_files(files: &[impl AsRef<Path>]) -> Result<Self, ClipTextError> {
        let mut names = Vec::new();
        for file in files {
            names.extend(
                safetensors_names(file.as_ref())
                    .map_err(|(path, message)| ClipTextError::Safetensors { path, message })?,
            );
        }
        Ok(Self::from_names(names.iter().map(String::as_str)))
    }
}

#[derive(Debug)]
struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    out_proj: nn::Linear,
    num_heads: i64,
    head_dim: i64,
}

impl Attention {
    fn new(p: nn::Path, c: &ClipTextConfig) -> Self {
        let h = c.hidden_size;
        Attention {
            q_proj: linear(&p / "q_proj", h, h),
            k_proj: linear(&p / "k_proj", h, h),
            v_proj: linear(&p / "v_proj", h, h),
            out_proj: linear(&p / "out_proj", h, h),
            num_heads: c.num_attention_heads,
            head_dim: c.head_dim(),
        }
    }

    /// `mask`: `None` for causal attention alone, else boolean (B, 1, T, T), true where a
    /// query may attend a key (causal and padding combined).
    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let (b, t, h) = xs.size3().expect("hidden states are (B, T, H)");
        let heads = |x: Tensor| x.view([b, t, self.num_heads, self.head_dim]).transpose(1, 2);
        let q = heads(self.q_proj.forward(xs));
        let k = heads(self.k_proj.forward(xs));
        let v = heads(self.v_proj.forward(xs));
        let scale = (self.head_dim as f64).powf(-0.5);
        let attended =
            Tensor::scaled_dot_product_attention(&q, &k, &v, mask, 0.0, mask.is_none(), scale, false);
        self.out_proj
            .forward(&attended.transpose(1, 2).reshape([b, t, h]))
    }
}

#[derive(Debug)]
struct EncoderLayer {
    self_attn: Attention,
    layer_norm1: nn::LayerNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    layer_norm2: nn::LayerNorm,
    act: ClipActivation,
}

impl EncoderLayer {
    fn new(p: nn::Path, c: &ClipTextConfig) -> Self {
        let mlp = &p / "mlp";
        EncoderLayer {
            self_attn: Attention::new(&p / "self_attn", c),
            layer_norm1: layer_norm(&p / "layer_norm1", c.hidden_size, c.layer_norm_eps),
            fc1: linear(&mlp / "fc1", c.hidden_size, c.intermediate_size),
            fc2: linear(&mlp / "fc2", c.intermediate_size, c.hidden_size),
            layer_norm2: layer_norm(&p / "layer_norm2", c.hidden_size, c.layer_norm_eps),
            act: c.hidden_act,
        }
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Tensor {
        let xs = xs + self.self_attn.forward(&self.layer_norm1.forward(xs), mask);
        let inner = self.act.apply(&self.fc1.forward(&self.layer_norm2.forward(&xs)));
        &xs + self.fc2.forward(&inner)
    }
}

/// What [`ClipTextModel::forward`] returns.
#[derive(Debug)]
pub struct ClipTextOutput {
    /// (B, T, hidden): the last layer's output after `final_layer_norm`.
    pub last_hidden_state: Tensor,
    /// (B, hidden): `last_hidden_state` at each row's EOS token (see
    /// [`ClipTextConfig::eos_token_id`] for the rule).
    pub pooler_output: Tensor,
    /// When asked for: transformers' `hidden_states`, the embeddings then each layer's output
    /// (`num_hidden_layers + 1` tensors, none through `final_layer_norm`). Empty otherwise.
    pub hidden_states: Vec<Tensor>,
}

impl ClipTextOutput {
    /// `hidden_states[-(clip_skip + 1)]`: the output `clip_skip` layers before the last, as
    /// diffusers' `clip_skip` takes it (diffusers then applies
    /// [`ClipTextModel::final_layer_norm`]). `None` when the hidden states were not asked for
    /// or `clip_skip` reaches past the embeddings.
    pub fn skipped_hidden_state(&self, clip_skip: usize) -> Option<&Tensor> {
        self.hidden_states
            .len()
            .checked_sub(clip_skip + 1)
            .map(|i| &self.hidden_states[i])
    }

    /// The penultimate layer's output (`clip_skip = 1`).
    pub fn penultimate_hidden_state(&self) -> Option<&Tensor> {
        self.skipped_hidden_state(1)
    }
}

/// transformers' `CLIPTextModel`; see the module docs for its VarStore paths.
#[derive(Debug)]
pub struct ClipTextModel {
    token_embedding: nn::Embedding,
    position_embedding: nn::Embedding,
    layers: Vec<EncoderLayer>,
    final_layer_norm: nn::LayerNorm,
    config: ClipTextConfig,
    device: Device,
}

impl ClipTextModel {
    /// Declares the variables under `p` (which must already include the layout's prefix).
    pub fn new(p: &nn::Path, config: &ClipTextConfig, layout: &ClipLayout) -> Self {
        let c = config;
        let embeddings = p / "embeddings";
        if layout.position_ids {
            let _ = embeddings.add(
                "position_ids",
                Tensor::zeros([1, c.max_position_embeddings], (Kind::Int64, p.device())),
                false,
            );
        }
        let layers = p / "encoder" / "layers";
        ClipTextModel {
            token_embedding: embedding(&embeddings / "token_embedding", c.vocab_size, c.hidden_size),
            position_embedding: embedding(
                &embeddings / "position_embedding",
                c.max_position_embeddings,
                c.hidden_size,
            ),
            layers: (0..c.num_hidden_layers)
                .map(|i| EncoderLayer::new(&layers / i, c))
                .collect(),
            final_layer_norm: layer_norm(p / "final_layer_norm", c.hidden_size, c.layer_norm_eps),
            config: config.clone(),
            device: p.device(),
        }
    }

    /// Builds the model for the checkpoint in `files` and loads it strictly (the layout,
    /// [`ClipLayout::from_files`], decides the prefix and the optional buffer; anything else
    /// missing or unexpected is an error). Weights are held in `dtype` on `device`.
    pub fn load(
        config: &ClipTextConfig,
        files: &[impl AsRef<Path>],
        device: DeviceSpec,
        dtype: DType,
    ) -> Result<Self, ClipTextError> {
        let layout = ClipLayout::from_files(files)?;
        let mut vs = nn::VarStore::new(device.to_device().map_err(ClipTextError::Device)?);
        // variables are made in the target dtype: no f32 copy to cast (half the peak memory)
        vs.set_kind(dtype.kind());
        let root = match &layout.prefix {
            Some(prefix) => vs.root() / prefix.as_str(),
            None => vs.root(),
        };
        let model = ClipTextModel::new(&root, config, &layout);
        load_strict(&mut vs, files)?;
        vs.freeze();
        Ok(model)
    }

    pub fn config(&self) -> &ClipTextConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// Encodes a batch of token ids.
    ///
    /// - `input_ids`: (B, T) integer ids, `1 <= T <= max_position_embeddings`;
    /// - `attention_mask`: (B, T), non-zero for real tokens. Optional: the Stable Diffusion
    ///   pipelines pass none (padding tokens are then attended, causally, like any token);
    /// - `output_hidden_states`: also return every layer's output (for clip skip).
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<ClipTextOutput, ClipTextError> {
        let (b, t) = self.check_ids(input_ids)?;
        let input_ids = input_ids.to_kind(Kind::Int64).to_device(self.device);
        let mask = match attention_mask {
            None => None,
            Some(m) if m.size() != [b, t] => {
                return Err(ClipTextError::Input(format!(
                    "`attention_mask` must have the shape of `input_ids`, [{b}, {t}], got {:?}",
                    m.size()
                )));
            }
            Some(m) => {
                let keys = m.to_device(self.device).ne(0).view([b, 1, 1, t]);
                let causal = Tensor::ones([t, t], (Kind::Bool, self.device)).tril(0);
                Some(keys.logical_and(&causal))
            }
        };

        Ok(tch::no_grad(|| {
            let positions = Tensor::arange(t, (Kind::Int64, self.device)).unsqueeze(0);
            let mut xs =
                self.token_embedding.forward(&input_ids) + self.position_embedding.forward(&positions);
            let mut hidden_states = Vec::new();
            for layer in &self.layers {
                if output_hidden_states {
                    hidden_states.push(xs.shallow_clone());
                }
                xs = layer.forward(&xs, mask.as_ref());
            }
            if output_hidden_states {
                hidden_states.push(xs.shallow_clone());
            }
            let last_hidden_state = self.final_layer_norm.forward(&xs);
            let pooler_output = self.pool(&last_hidden_state, &input_ids);
            ClipTextOutput {
                last_hidden_state,
                pooler_output,
                hidden_states,
            }
        }))
    }

    /// The model's `final_layer_norm`, for hidden states taken before it (clip skip).
    pub fn final_layer_norm(&self, xs: &Tensor) -> Tensor {
        tch::no_grad(|| self.final_layer_norm.forward(xs))
    }

    /// The conditioning a Stable Diffusion pipeline feeds its UNet: `last_hidden_state` for
    /// `clip_skip = 0`, else the output `clip_skip` layers before the last through
    /// `final_layer_norm` (diffusers' `encode_prompt`). No attention mask, as diffusers.
    pub fn prompt_embeds(&self, input_ids: &Tensor, clip_skip: usize) -> Result<Tensor, ClipTextError> {
        let layers = self.layers.len();
        if clip_skip >= layers {
            return Err(ClipTextError::Input(format!(
                "`clip_skip` must be < num_hidden_layers ({layers}), got {clip_skip}"
            )));
        }
        if clip_skip == 0 {
            return Ok(self.forward(input_ids, None, false)?.last_hidden_state);
        }
        let out = self.forward(input_ids, None, true)?;
        let skipped = out
            .skipped_hidden_state(clip_skip)
            .expect("clip_skip < num_hidden_layers");
        Ok(self.final_layer_norm(skipped))
    }

    /// The row of `hidden` at each sequence's EOS token, by transformers' rule.
    fn pool(&self, hidden: &Tensor, input_ids: &Tensor) -> Tensor {
        let index = if self.config.legacy_eos() {
            // Pre-2023 configs: EOS is the highest id of the vocabulary.
            input_ids.argmax(-1, false)
        } else {
            // The first EOS (padding may repeat it); 0 when a row has none.
            input_ids
                .eq(self.config.eos_token_id)
                .to_kind(Kind::Int)
                .argmax(-1, false)
        };
        let h = hidden.size()[2];
        hidden
            .gather(1, &index.view([-1, 1, 1]).expand([-1, 1, h], false), false)
            .squeeze_dim(1)
    }

    fn check_ids(&self, ids: &Tensor) -> Result<(i64, i64), ClipTextError> {
        let size = ids.size();
        let [b, t] = size[..] else {
            return Err(ClipTextError::Input(format!(
                "`input_ids` must be (batch, seq_len), got shape {size:?}"
            )));
        };
        let max_len = self.config.max_position_embeddings;
        if b < 1 || t < 1 || t > max_len {
            return Err(ClipTextError::Input(format!(
                "`input_ids` shape {size:?}: batch must be >= 1 and seq_len in 1..={max_len}"
            )));
        }
        if ids.is_floating_point() {
            return Err(ClipTextError::Input(format!(
                "`input_ids` must hold integers, got {:?}",
                ids.kind()
            )));
        }
        let vocab = self.config.vocab_size;
        let (lo, hi) = (ids.min().int64_value(&[]), ids.max().int64_value(&[]));
        if lo < 0 || hi >= vocab {
            return Err(ClipTextError::Input(format!(
                "`input_ids` must be in 0..{vocab}, got values in {lo}..={hi}"
            )));
        }
        Ok((b, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_published_and_the_transformers5_layouts() {
        let published = ClipLayout::from_names([
            "text_model.embeddings.token_embedding.weight",
            "text_model.embeddings.position_ids",
        ]);
        assert_eq!(published.prefix.as_deref(), Some("text_model"));
        assert!(published.position_ids);
        let plain = ClipLayout::from_names(["embeddings.token_embedding.weight"]);
        assert_eq!(plain, ClipLayout::default());
    }
}

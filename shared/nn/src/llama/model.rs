//! `LlamaModel` and `LlamaForCausalLM`: the decoder stack, the final norm and the lm_head,
//! loaded strictly from HF safetensors (one file or a sharded index).

use super::{
    LlamaError, attention::AttentionMask, config::LlamaConfig, decoder_layer::LlamaDecoderLayer,
    kv_cache::KvCache, linear::Linear, rms_norm::RmsNorm, rotary::RotaryEmbedding,
};
use crate::{DType, DeviceSpec, weights::load_strict};
use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};
use tch::{Device, Kind, Tensor, nn, nn::VarStore};

/// `model.*`: token embeddings, decoder layers, final norm and the rotary embedding.
#[derive(Debug)]
pub struct LlamaModel {
    embed_tokens: Tensor,
    layers: Vec<LlamaDecoderLayer>,
    norm: RmsNorm,
    rotary_emb: RotaryEmbedding,
}

impl LlamaModel {
    pub fn new(path: nn::Path, config: &LlamaConfig) -> Self {
        let embed_tokens = (&path / "embed_tokens")
            .zeros_no_train("weight", &[config.vocab_size as i64, config.hidden_size as i64]);
        let layers = (0..config.num_hidden_layers)
            .map(|i| LlamaDecoderLayer::new(&path / "layers" / i, config, i))
            .collect();
        LlamaModel {
            embed_tokens,
            layers,
            norm: RmsNorm::new(&path / "norm", config.hidden_size, config.rms_norm_eps),
            rotary_emb: RotaryEmbedding::new(config, path.device()),
        }
    }
}

/// The decoder with its language-model head. Tied checkpoints (`tie_word_embeddings`) have no
/// `lm_head.weight`: the head reuses `model.embed_tokens.weight`.
#[derive(Debug)]
pub struct LlamaForCausalLM {
    model: LlamaModel,
    lm_head: Linear,
    config: LlamaConfig,
    device: Device,
    kind: Kind,
    _vs: VarStore,
}

impl LlamaForCausalLM {
    /// Loads `dir/config.json` and the weights beside it (`model.safetensors`, or the shards
    /// listed in `model.safetensors.index.json`).
    pub fn load(dir: impl AsRef<Path>, device: DeviceSpec, dtype: DType) -> Result<Self, LlamaError> {
        let dir = dir.as_ref();
        let config = LlamaConfig::from_file(dir.join("config.json"))?;
        let files = weight_files(dir)?;
        Self::load_files(config, &files, device, dtype)
    }

    /// Loads the given safetensors files (all shards of one checkpoint) for `config`.
    pub fn load_files(
        config: LlamaConfig,
        files: &[impl AsRef<Path>],
        device: DeviceSpec,
        dtype: DType,
    ) -> Result<Self, LlamaError> {
        let device = device.to_device().map_err(LlamaError::Device)?;
        let mut vs = VarStore::new(device);
        let root = vs.root();
        let model = LlamaModel::new(&root / "model", &config);
        let lm_head = if config.tie_word_embeddings {
            Linear::from_weight(model.embed_tokens.shallow_clone())
        } else {
            Linear::new(&root / "lm_head", config.hidden_size, config.vocab_size, false)
        };
        vs.set_kind(dtype.kind());
        load_strict(&mut vs, files)?;
        Ok(LlamaForCausalLM {
            model,
            lm_head,
            config,
            device,
            kind: dtype.kind(),
            _vs: vs,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// An empty KV cache for `batch` rows and `capacity` positions, on the model's device and
    /// in its dtype.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> KvCache {
        KvCache::new(&self.config, batch, capacity, self.device, self.kind)
    }

    /// Logits `(B, T, vocab)` in the model dtype for `input_ids` `(B, T)`.
    ///
    /// - `attention_mask`: `(B, past + T)`, 1 for real tokens and 0 for (left) padding, over
    ///   the cached positions too, as in transformers. None: no padding.
    /// - `position_ids`: `(B, T)`. None: derived from the mask as transformers' `generate`
    ///   does (`cumsum - 1`, padding at 1), or `past..past + T` without a mask.
    /// - `cache`: appended to; its length grows by T.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        position_ids: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor, LlamaError> {
        tch::no_grad(|| {
            let hidden = self.hidden_states(input_ids, attention_mask, position_ids, cache)?;
            Ok(self.lm_head.forward(&self.model.norm.forward(&hidden)))
        })
    }

    /// Like [`LlamaForCausalLM::forward`], but only the last position's logits, `(B, vocab)`:
    /// what generation needs, without the lm_head cost of every prompt position.
    pub fn forward_last(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        position_ids: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor, LlamaError> {
        tch::no_grad(|| {
            let hidden = self.hidden_states(input_ids, attention_mask, position_ids, cache)?;
            let last = hidden.select(1, hidden.size()[1] - 1);
            Ok(self.lm_head.forward(&self.model.norm.forward(&last)))
        })
    }

    /// The decoder's output before the final norm, `(B, T, hidden)`.
    fn hidden_states(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        position_ids: Option<&Tensor>,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor, LlamaError> {
        let (b, t) = match input_ids.size().as_slice() {
            &[b, t] if t > 0 => (b, t),
            other => {
                return Err(LlamaError::input(
                    "input_ids",
                    format!("must be (batch, seq) with seq > 0, got {other:?}"),
                ));
            }
        };
        if !matches!(input_ids.kind(), Kind::Int64 | Kind::Int) {
            return Err(LlamaError::input(
                "input_ids",
                format!("must be int64, got {:?}", input_ids.kind()),
            ));
        }
        self.on_device("input_ids", input_ids)?;
        let past = match cache.as_deref() {
            None => 0,
            Some(c) if c.batch_size() as i64 != b => {
                return Err(LlamaError::input(
                    "cache",
                    format!("holds {} rows, input_ids has {b}", c.batch_size()),
                ));
            }
            Some(c) => c.len() as i64,
        };

        let key_padding = match attention_mask {
            None => None,
            Some(mask) => {
                self.on_device("attention_mask", mask)?;
                if mask.size() != [b, past + t] {
                    return Err(LlamaError::input(
                        "attention_mask",
                        format!(
                            "must be (batch, cached + new) = ({b}, {}), got {:?}",
                            past + t,
                            mask.size()
                        ),
                    ));
                }
                let valid = mask.ne(0);
                // an all-ones mask is no mask: keeps the fast paths of one-token decode steps
                if valid.all().int64_value(&[]) == 1 {
                    None
                } else {
                    Some(valid)
                }
            }
        };
        let positions = match position_ids {
            Some(p) => {
                self.on_device("position_ids", p)?;
                if p.size() != [b, t] {
                    return Err(LlamaError::input(
                        "position_ids",
                        format!("must be (batch, seq) = ({b}, {t}), got {:?}", p.size()),
                    ));
                }
                p.shallow_clone()
            }
            None => match attention_mask {
                Some(mask) => {
                    let mask = mask.to_kind(Kind::Int64);
                    let pos = (mask.cumsum(-1, Kind::Int64) - 1).masked_fill(&mask.eq(0), 1);
                    pos.narrow(1, past, t)
                }
                None => Tensor::arange_start(past, past + t, (Kind::Int64, self.device))
                    .unsqueeze(0)
                    .expand([b, t], false),
            },
        };

        let n_rep = self.config.num_key_value_groups() as i64;
        let mask = AttentionMask::new(key_padding.as_ref(), past, t, n_rep, self.device);
        let (cos, sin) = self.model.rotary_emb.cos_sin(&positions, self.kind);
        let mut hidden = Tensor::f_embedding(&self.model.embed_tokens, input_ids, -1, false, false)?;
        if let Some(c) = cache.as_deref_mut() {
            c.reserve(t);
        }
        for layer in &self.model.layers {
            hidden = layer.forward(&hidden, &cos, &sin, &mask, cache.as_deref_mut());
        }
        if let Some(c) = cache {
            c.advance(t);
        }
        Ok(hidden)
    }

    fn on_device(&self, input: &'static str, t: &Tensor) -> Result<(), LlamaError> {
        if t.device() != self.device {
            return Err(LlamaError::input(
                input,
                format!("is on {:?}, the model on {:?}", t.device(), self.device),
            ));
        }
        Ok(())
    }
}

/// The safetensors files of the checkpoint in `dir`: the shards named by
/// `model.safetensors.index.json` when it exists, else `model.safetensors`.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, LlamaError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|source| LlamaError::Io {
            path: index.clone(),
            source,
        })?;
        #[derive(serde::Deserialize)]
        struct Index {
            weight_map: std::collections::BTreeMap<String, String>,
        }
        let parsed: Index = serde_json::from_str(&text).map_err(|source| LlamaError::Json {
            path: index.clone(),
            source,
        })?;
        let shards: BTreeSet<String> = parsed.weight_map.into_values().collect();
        return Ok(shards.into_iter().map(|s| dir.join(s)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(LlamaError::NoWeights {
        dir: dir.to_path_buf(),
    })
}

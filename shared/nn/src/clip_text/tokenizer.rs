//! The CLIP tokenizer: byte-level BPE from a `tokenizer.json` (the one transformers'
//! `CLIPTokenizer` saves: NFC + whitespace + lowercase normaliser, CLIP's split regex,
//! `</w>` word suffix, `RobertaProcessing` adding `<|startoftext|>` / `<|endoftext|>`).
//!
//! Sequences are truncated and padded to a fixed length, 77 by default, as the Stable
//! Diffusion pipelines call it (`padding="max_length", truncation=True`): truncation keeps
//! the BOS and EOS, so a long prompt ends `... <|endoftext|>`. The pad token comes from the
//! `tokenizer_config.json` beside `tokenizer.json` (`pad_token`: `<|endoftext|>` for SD 1.x,
//! `!` for SD 2.x), else `<|endoftext|>`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tch::Tensor;
use tokenizers::{Encoding, Tokenizer, TruncationParams, TruncationStrategy};

use super::ClipTextError;

/// CLIP's context length: the text encoder has 77 positions.
pub const CLIP_MAX_LENGTH: usize = 77;

const BOS: &str = "<|startoftext|>";
const EOS: &str = "<|endoftext|>";

/// A tokenised batch, each row exactly `max_length` long: (B, max_length) int64 on the CPU.
#[derive(Debug)]
pub struct ClipTokens {
    pub input_ids: Tensor,
    /// 1 for BOS, the text and EOS; 0 for padding.
    pub attention_mask: Tensor,
}

/// CLIP BPE tokenizer with fixed-length padding and truncation.
#[derive(Debug, Clone)]
pub struct ClipTokenizer {
    /// Truncating to `max_length`, no padding (rows are padded here).
    truncating: Tokenizer,
    /// Neither truncating nor padding: for counting.
    counting: Tokenizer,
    max_length: usize,
    bos_id: u32,
    eos_id: u32,
    pad_id: u32,
    path: PathBuf,
}

impl ClipTokenizer {
    /// Loads `tokenizer.json` (and the `tokenizer_config.json` beside it, when present) with
    /// the maximum length [`CLIP_MAX_LENGTH`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ClipTextError> {
        let path = path.as_ref();
        let fail = |message: String| ClipTextError::Tokenizer {
            path: path.to_path_buf(),
            message,
        };
        let mut counting = Tokenizer::from_file(path).map_err(|e| fail(e.to_string()))?;
        counting.with_padding(None);
        counting.with_truncation(None).map_err(|e| fail(e.to_string()))?;

        let special = SpecialTokens::beside(path)?;
        let id = |token: &str, role: &str| {
            counting
                .token_to_id(token)
                .ok_or_else(|| fail(format!("has no {role} token `{token}`")))
        };
        let bos_id = id(&special.bos, "BOS")?;
        let eos_id = id(&special.eos, "EOS")?;
        let pad_id = id(&special.pad, "pad")?;
        let empty = counting.encode("", true).map_err(|e| fail(e.to_string()))?;
        if empty.get_ids() != [bos_id, eos_id] {
            return Err(fail(format!(
                "does not add BOS/EOS around a text (\"\" encodes to {:?}, expected [{bos_id}, {eos_id}]): \
                 not a CLIP tokenizer.json (its post_processor should be RobertaProcessing)",
                empty.get_ids()
            )));
        }
        let mut tokenizer = ClipTokenizer {
            truncating: counting.clone(),
            counting,
            max_length: 0,
            bos_id,
            eos_id,
            pad_id,
            path: path.to_path_buf(),
        };
        tokenizer.set_max_length(CLIP_MAX_LENGTH)?;
        Ok(tokenizer)
    }

    /// The same tokenizer padding and truncating to `max_length` (at least 2: BOS and EOS).
    pub fn with_max_length(mut self, max_length: usize) -> Result<Self, ClipTextError> {
        self.set_max_length(max_length)?;
        Ok(self)
    }

    fn set_max_length(&mut self, max_length: usize) -> Result<(), ClipTextError> {
        if max_length < 2 {
            return Err(ClipTextError::Input(format!(
                "`max_length` must be >= 2 (BOS and EOS), got {max_length}"
            )));
        }
        self.truncating
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| ClipTextError::Tokenizer {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        self.max_length = max_length;
        Ok(())
    }

    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn bos_id(&self) -> u32 {
        self.bos_id
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// The ids of `text`: BOS, the text's tokens, EOS, padding; exactly `max_length` long.
    pub fn encode_ids(&self, text: &str) -> Result<Vec<i64>, ClipTextError> {
        let encoding = self
            .truncating
            .encode(text, true)
            .map_err(|e| ClipTextError::Tokenize(e.to_string()))?;
        Ok(self.padded(&encoding).0)
    }

    /// Tokenises a batch; an empty batch gives (0, max_length) tensors.
    pub fn encode<S: AsRef<str>>(&self, texts: &[S]) -> Result<ClipTokens, ClipTextError> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self
            .truncating
            .encode_batch(inputs, true)
            .map_err(|e| ClipTextError::Tokenize(e.to_string()))?;
        let (mut ids, mut mask) = (Vec::new(), Vec::new());
        for encoding in &encodings {
            let (i, m) = self.padded(encoding);
            ids.extend(i);
            mask.extend(m);
        }
        let shape = [texts.len() as i64, self.max_length as i64];
        Ok(ClipTokens {
            input_ids: Tensor::from_slice(&ids).view(shape),
            attention_mask: Tensor::from_slice(&mask).view(shape),
        })
    }

    /// How many tokens `text` takes, BOS and EOS included, without truncation. A prompt fits
    /// the text encoder when this is at most [`Self::max_length`].
    pub fn count_tokens(&self, text: &str) -> Result<usize, ClipTextError> {
        Ok(self
            .counting
            .encode(text, true)
            .map_err(|e| ClipTextError::Tokenize(e.to_string()))?
            .len())
    }

    /// Whether `text` is encoded without truncation.
    pub fn fits(&self, text: &str) -> Result<bool, ClipTextError> {
        Ok(self.count_tokens(text)? <= self.max_length)
    }

    fn padded(&self, encoding: &Encoding) -> (Vec<i64>, Vec<i64>) {
        let ids = encoding.get_ids();
        let pad = self.max_length - ids.len();
        let mut out: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
        out.extend(std::iter::repeat_n(self.pad_id as i64, pad));
        let mut mask = vec![1i64; ids.len()];
        mask.extend(std::iter::repeat_n(0i64, pad));
        (out, mask)
    }
}

/// BOS/EOS/pad token strings, from `tokenizer_config.json` when it is there.
struct SpecialTokens {
    bos: String,
    eos: String,
    pad: String,
}

impl SpecialTokens {
    fn beside(tokenizer_json: &Path) -> Result<Self, ClipTextError> {
        let mut tokens = SpecialTokens {
            bos: BOS.into(),
            eos: EOS.into(),
            pad: EOS.into(),
        };
        let path = tokenizer_json.with_file_name("tokenizer_config.json");
        if !path.is_file() {
            return Ok(tokens);
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ClipTextError::Io {
            path: path.clone(),
            source,
        })?;
        let json: Value = serde_json::from_str(&text).map_err(|source| ClipTextError::Json {
            path: path.clone(),
            source,
        })?;
        // A token is a string, or (older files) `{"content": "...", ...}`.
        let token = |key: &str| match json.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        if let Some(t) = token("bos_token") {
            tokens.bos = t;
        }
        if let Some(t) = token("eos_token") {
            tokens.eos = t;
        }
        if let Some(t) = token("pad_token") {
            tokens.pad = t;
        }
        Ok(tokens)
    }
}

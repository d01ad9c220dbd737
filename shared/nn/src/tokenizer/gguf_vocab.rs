//! The tokenizer a GGUF file describes, read from its `tokenizer.*` metadata (llama.cpp's
//! key names): vocabulary, merges, token types, special token ids, BOS/EOS flags and the chat
//! template.

use super::TokenizerError;
use crate::gguf::GgufFile;

/// llama.cpp's `llama_token_type` values that matter here.
pub const TOKEN_TYPE_CONTROL: i32 = 3;
pub const TOKEN_TYPE_USER_DEFINED: i32 = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct GgufVocab {
    /// `tokenizer.ggml.model`: `gpt2` for byte-level BPE.
    pub model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer family (`smollm`, `llama-bpe`, `qwen2`...).
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// One `llama_token_type` per token (all NORMAL when the file has none).
    pub token_types: Vec<i32>,
    /// `"left right"` pairs, best first.
    pub merges: Vec<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub unk_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
    pub add_bos_token: bool,
    pub add_eos_token: bool,
    /// `tokenizer.chat_template`.
    pub chat_template: Option<String>,
}

impl GgufVocab {
    pub fn from_gguf(file: &GgufFile) -> Result<Self, TokenizerError> {
        let model = file.require_str("tokenizer.ggml.model")?.to_string();
        let tokens: Vec<String> = file
            .require_strings("tokenizer.ggml.tokens")?
            .into_iter()
            .map(str::to_string)
            .collect();
        let token_types = match file.array("tokenizer.ggml.token_type")? {
            None => vec![1; tokens.len()],
            Some(values) => values
                .iter()
                .map(|v| {
                    v.as_i64().and_then(|t| i32::try_from(t).ok()).ok_or_else(|| {
                        crate::gguf::GgufError::WrongValueType {
                            key: "tokenizer.ggml.token_type".to_string(),
                            expected: "an array of int32",
                            found: format!("an array holding {}", v.type_description()),
                        }
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        if token_types.len() != tokens.len() {
            return Err(TokenizerError::TokenTypeCount {
                expected: tokens.len(),
                found: token_types.len(),
            });
        }
        let merges = match file.get("tokenizer.ggml.merges") {
            None => Vec::new(),
            Some(_) => file
                .require_strings("tokenizer.ggml.merges")?
                .into_iter()
                .map(str::to_string)
                .collect(),
        };
        let token_id = |key: &str| -> Result<Option<u32>, TokenizerError> {
            match file.u64(key)? {
                None => Ok(None),
                Some(id) if id < tokens.len() as u64 => Ok(Some(id as u32)),
                Some(id) => Err(TokenizerError::TokenIdOutOfRange {
                    key: key.to_string(),
                    id,
                    vocab_size: tokens.len(),
                }),
            }
        };
        Ok(Self {
            pre: file.str("tokenizer.ggml.pre")?.map(str::to_string),
            bos_token_id: token_id("tokenizer.ggml.bos_token_id")?,
            eos_token_id: token_id("tokenizer.ggml.eos_token_id")?,
            unk_token_id: token_id("tokenizer.ggml.unknown_token_id")?,
            pad_token_id: token_id("tokenizer.ggml.padding_token_id")?,
            add_bos_token: file.bool("tokenizer.ggml.add_bos_token")?.unwrap_or(false),
            add_eos_token: file.bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false),
            chat_template: file.str("tokenizer.chat_template")?.map(str::to_string),
            model,
            tokens,
            token_types,
            merges,
        })
    }

    /// The token with id `id`, if any.
    pub fn token(&self, id: Option<u32>) -> Option<&str> {
        id.and_then(|id| self.tokens.get(id as usize)).map(String::as_str)
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.token(self.bos_token_id)
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.token(self.eos_token_id)
    }

    pub fn unk_token(&self) -> Option<&str> {
        self.token(self.unk_token_id)
    }

    pub fn pad_token(&self) -> Option<&str> {
        self.token(self.pad_token_id)
    }
}

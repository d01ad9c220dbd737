//! GGUF -> HF checkpoint directory, for Llama-family GGUFs (`general.architecture = llama`:
//! Llama, SmolLM, Mistral-as-llama). The output equals what transformers builds when it loads
//! the GGUF itself (`from_pretrained(dir, gguf_file=...)`):
//!
//! - `model.safetensors`: every tensor dequantised to f32 (optionally stored as f16/bf16),
//!   renamed to the HF Llama layout, `attn_q`/`attn_k` rows un-permuted (see
//!   [`rope_permutation`]); `lm_head.weight` only when the GGUF has `output.weight`;
//! - `config.json` (`LlamaForCausalLM`) and `generation_config.json` from the `llama.*` and
//!   `tokenizer.ggml.*` metadata;
//! - `tokenizer.json` and `tokenizer_config.json` (with the chat template) from the GGUF
//!   vocabulary ([`crate::tokenizer`]).

mod error;
mod llama_hparams;
mod output_dtype;
pub mod rope_permutation;
mod safetensors_writer;
mod tensor_plan;
#[cfg(test)]
mod tests;

pub use error::ConvertError;
pub use llama_hparams::LlamaHparams;
pub use output_dtype::OutputDtype;
pub use safetensors_writer::{PlannedTensor, write_safetensors};
pub use tensor_plan::{HfTensor, plan_tensors};

use crate::{
    gguf::GgufFile,
    tokenizer::{GgufVocab, build_tokenizer, tokenizer_config_json},
};
use std::path::{Path, PathBuf};

/// What a conversion wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversionReport {
    pub out_dir: PathBuf,
    pub tensors: usize,
    pub weights_bytes: u64,
    pub tie_word_embeddings: bool,
    pub dtype: OutputDtype,
    pub files: Vec<&'static str>,
}

/// Converts the GGUF at `gguf_path` into `out_dir` (created if needed).
pub fn convert_gguf_to_hf(
    gguf_path: &Path,
    out_dir: &Path,
    dtype: OutputDtype,
) -> Result<ConversionReport, ConvertError> {
    let file = GgufFile::open(gguf_path)?;
    convert_file(&file, out_dir, dtype)
}

/// As [`convert_gguf_to_hf`], from an opened file. Everything is validated before the first
/// byte is written.
pub fn convert_file(
    file: &GgufFile,
    out_dir: &Path,
    dtype: OutputDtype,
) -> Result<ConversionReport, ConvertError> {
    let hparams = LlamaHparams::from_gguf(file)?;
    let planned = plan_tensors(file, &hparams)?;
    let vocab = GgufVocab::from_gguf(file)?;
    let tokenizer = build_tokenizer(&vocab)?;
    let tie_word_embeddings = !planned.iter().any(|t| t.hf_name == "lm_head.weight");

    std::fs::create_dir_all(out_dir).map_err(|source| ConvertError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let tokenizer_path = out_dir.join("tokenizer.json");
    tokenizer
        .save(&tokenizer_path, false)
        .map_err(|e| ConvertError::Io {
            path: tokenizer_path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    let max_length = Some(hparams.max_position_embeddings as u64);
    write_json(
        &out_dir.join("tokenizer_config.json"),
        &tokenizer_config_json(&vocab, &tokenizer, max_length),
    )?;
    write_json(
        &out_dir.join("config.json"),
        &hparams.config_json(tie_word_embeddings, dtype),
    )?;
    write_json(
        &out_dir.join("generation_config.json"),
        &hparams.generation_config_json(),
    )?;

    let outputs: Vec<PlannedTensor> = planned
        .iter()
        .map(|t| PlannedTensor {
            name: t.hf_name.clone(),
            shape: t.shape.clone(),
        })
        .collect();
    let weights_bytes = write_safetensors(&out_dir.join("model.safetensors"), &outputs, dtype, |i| {
        planned[i].values(file)
    })?;

    Ok(ConversionReport {
        out_dir: out_dir.to_path_buf(),
        tensors: planned.len(),
        weights_bytes,
        tie_word_embeddings,
        dtype,
        files: vec![
            "model.safetensors",
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
        ],
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), ConvertError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|source| ConvertError::Json {
        what: path.display().to_string(),
        source,
    })?;
    text.push('\n');
    std::fs::write(path, text).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

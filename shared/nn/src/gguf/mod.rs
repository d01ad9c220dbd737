//! GGUF: reading llama.cpp's checkpoint format and converting it to HF safetensors.
//!
//! - [`GgufFile`] parses a v2/v3 file (header, metadata of every value type, tensor infos,
//!   `general.alignment`) and memory-maps the tensor data; every offset and length is
//!   bounds-checked when the file is opened, so a truncated or corrupt file is an error,
//!   never a panic;
//! - [`dequantize`] turns F32, F16, BF16, Q4_0, Q4_1 and Q8_0 tensors into f32, bit-identical
//!   to gguf-py's `gguf.quants.dequantize`; other types are an error naming the tensor;
//! - [`to_hf`] writes a Llama-family GGUF as an HF checkpoint directory (`model.safetensors`,
//!   `config.json`, tokenizer files), equal to what transformers loads from the GGUF.
//!
//! Spec: <https://github.com/ggml-org/ggml/blob/master/docs/gguf.md>.

mod byte_reader;
mod dequantize;
mod describe;
mod error;
mod file;
mod ggml_type;
pub mod to_hf;
mod value;

#[cfg(test)]
pub(crate) mod test_builder;
#[cfg(test)]
mod tests;

pub use dequantize::{dequantize, dequantize_into};
pub use describe::describe;
pub use error::GgufError;
pub use file::{DEFAULT_ALIGNMENT, GgufFile, TensorInfo};
pub use ggml_type::GgmlType;
pub use value::{GgufValue, GgufValueType};

//! Everything that can go wrong reading a GGUF file. Messages name the offset, the field or
//! the tensor, so a corrupt download can be told apart from an unsupported model.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("cannot read gguf file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("not a gguf file: expected magic `GGUF` at offset 0, found {found:?}")]
    BadMagic { found: [u8; 4] },
    #[error("gguf version {version} is not supported (supported: 2, 3){hint}")]
    UnsupportedVersion { version: u32, hint: &'static str },
    #[error(
        "gguf file is truncated: {what} needs {needed} byte(s) at offset {offset}, the file has {file_len}"
    )]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        file_len: u64,
    },
    #[error("gguf {what} count {count} cannot fit in a file of {file_len} bytes")]
    CountTooLarge { what: String, count: u64, file_len: u64 },
    #[error("gguf string {what} at offset {offset} is not valid utf-8")]
    InvalidUtf8 { what: String, offset: u64 },
    #[error("gguf metadata `{key}` has unknown value type {value_type}")]
    UnknownValueType { key: String, value_type: u32 },
    #[error("gguf metadata `{key}` at offset {offset} is not a bool: byte {byte} (expected 0 or 1)")]
    BadBool { key: String, offset: u64, byte: u8 },
    #[error("gguf metadata `{key}` nests arrays deeper than {limit} levels")]
    ArrayTooDeep { key: String, limit: usize },
    #[error("gguf metadata key `{key}` appears twice")]
    DuplicateKey { key: String },
    #[error("gguf tensor `{name}` appears twice")]
    DuplicateTensor { name: String },
    #[error("gguf metadata `{key}` is missing")]
    MissingKey { key: String },
    #[error("gguf metadata `{key}` should be {expected}, found {found}")]
    WrongValueType {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("gguf metadata `general.alignment` must be a non-zero power of two, found {alignment}")]
    BadAlignment { alignment: u64 },
    #[error("gguf tensor `{name}` has {n_dims} dimensions, at most {limit} are allowed")]
    TooManyDims { name: String, n_dims: u32, limit: usize },
    #[error("gguf tensor `{name}` has an invalid shape {dims:?}: {reason}")]
    BadShape {
        name: String,
        dims: Vec<u64>,
        reason: String,
    },
    #[error("gguf tensor `{name}` offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedTensor {
        name: String,
        offset: u64,
        alignment: u64,
    },
    #[error(
        "gguf tensor `{name}` ({bytes} bytes at data offset {offset}) runs past the end of the file ({available} data bytes)"
    )]
    TensorOutOfBounds {
        name: String,
        offset: u64,
        bytes: u64,
        available: u64,
    },
    #[error("gguf tensor `{name}` of type {ggml_type} needs {expected} bytes, {found} were given")]
    ByteLength {
        name: String,
        ggml_type: String,
        expected: u64,
        found: u64,
    },
    #[error(
        "gguf tensor `{name}` has type {ggml_type}, which cannot be dequantised (supported: {supported})"
    )]
    UnsupportedType {
        name: String,
        ggml_type: String,
        supported: &'static str,
    },
    #[error("gguf tensor `{name}` not found")]
    MissingTensor { name: String },
}

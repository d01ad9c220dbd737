//! `TensorRef`: what a gRPC message carries instead of a tensor.

use serde::{Deserialize, Serialize};

use crate::dtype::DType;

/// A pointer to a stored tensor; mirrors `storyreel.common.v1.TensorRef` field for field.
///
/// `byte_len` and `checksum` describe the stored value (the safetensors bytes), so a reader
/// can check the value it fetched before decoding it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorRef {
    /// Full store key, e.g. `storyreel:job42:keyframe:3:latents`.
    pub key: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Length of the encoded value in bytes (header + data).
    pub byte_len: u64,
    /// `xxh3-128:<32 hex>` of the encoded value.
    pub checksum: String,
}

impl TensorRef {
    /// Number of elements the tensor holds, saturating on absurd shapes.
    pub fn numel(&self) -> usize {
        self.shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .unwrap_or(usize::MAX)
    }
}

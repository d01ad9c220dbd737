//! The element types a stored tensor may have, and the Rust types that hold them.

use std::fmt;
use std::str::FromStr;

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Element type of a tensor. Names follow safetensors ("F32", "BF16", ...), which is also how
/// they appear in JSON and in `TensorRef.dtype`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    F32,
    F16,
    BF16,
    U8,
    I64,
}

impl DType {
    /// Every supported dtype, for tests and error messages.
    pub const ALL: [DType; 5] = [DType::F32, DType::F16, DType::BF16, DType::U8, DType::I64];

    /// Bytes per element.
    pub const fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 => 1,
            DType::I64 => 8,
        }
    }

    /// The safetensors name ("F32", ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::U8 => "U8",
            DType::I64 => "I64",
        }
    }

    pub(crate) fn to_safetensors(self) -> safetensors::Dtype {
        match self {
            DType::F32 => safetensors::Dtype::F32,
            DType::F16 => safetensors::Dtype::F16,
            DType::BF16 => safetensors::Dtype::BF16,
            DType::U8 => safetensors::Dtype::U8,
            DType::I64 => safetensors::Dtype::I64,
        }
    }

    pub(crate) fn from_safetensors(dtype: safetensors::Dtype) -> Option<DType> {
        Some(match dtype {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            safetensors::Dtype::U8 => DType::U8,
            safetensors::Dtype::I64 => DType::I64,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts the safetensors names in any case ("F16", "f16", "bf16"), as protos and configs
/// spell them either way.
impl FromStr for DType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        DType::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::invalid("dtype", format!("{s:?} is not one of F32, F16, BF16, U8, I64")))
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust element type with a [`DType`]: `f32`, `half::f16`, `half::bf16`, `u8`, `i64`.
///
/// Sealed: the set is the codec's, not open for extension.
pub trait Element: Copy + sealed::Sealed + Send + Sync + 'static {
    /// The dtype this type is stored as.
    const DTYPE: DType;
    /// Append `values` as little-endian bytes.
    fn extend_le(values: &[Self], out: &mut Vec<u8>);
    /// Read little-endian bytes (length a multiple of `DTYPE.size()`).
    fn read_le(bytes: &[u8]) -> Vec<Self>;
}

macro_rules! element {
    ($ty:ty, $dtype:expr, $n:literal) => {
        impl sealed::Sealed for $ty {}
        impl Element for $ty {
            const DTYPE: DType = $dtype;

            fn extend_le(values: &[Self], out: &mut Vec<u8>) {
                out.reserve(values.len() * $n);
                for v in values {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }

            fn read_le(bytes: &[u8]) -> Vec<Self> {
                bytes
                    .chunks_exact($n)
                    .map(|c| {
                        let mut a = [0u8; $n];
                        a.copy_from_slice(c);
                        <$ty>::from_le_bytes(a)
                    })
                    .collect()
            }
        }
    };
}

element!(f32, DType::F32, 4);
element!(f16, DType::F16, 2);
element!(bf16, DType::BF16, 2);
element!(i64, DType::I64, 8);

impl sealed::Sealed for u8 {}
impl Element for u8 {
    const DTYPE: DType = DType::U8;

    fn extend_le(values: &[Self], out: &mut Vec<u8>) {
        out.extend_from_slice(values);
    }

    fn read_le(bytes: &[u8]) -> Vec<Self> {
        bytes.to_vec()
    }
}

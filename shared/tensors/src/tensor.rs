//! The host-side tensor value: dtype, shape and raw little-endian bytes.

use std::fmt;

use bytes::Bytes;

use crate::dtype::{DType, Element};
use crate::error::{Error, Result};

/// Highest rank accepted. Video latents are 5-D (B, C, F, H, W); 8 leaves room and keeps a
/// hostile header from making us walk a huge shape.
pub const MAX_RANK: usize = 8;

/// A dense, row-major (C order) tensor in host memory.
///
/// The bytes are a [`Bytes`], so cloning is cheap and a decoded tensor shares the buffer
/// it was read from instead of copying it.
#[derive(Clone, PartialEq, Eq)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<usize>,
    data: Bytes,
}

/// Alias for readers who think of it as the host copy of a device tensor.
pub type HostTensor = Tensor;

impl Tensor {
    /// Wrap raw little-endian bytes; checks that they fill `shape` exactly.
    pub fn new(dtype: DType, shape: impl Into<Vec<usize>>, data: impl Into<Bytes>) -> Result<Self> {
        let shape = shape.into();
        let data = data.into();
        let expected = byte_len_for(dtype, &shape)?;
        if data.len() != expected {
            return Err(Error::invalid(
                "data",
                format!(
                    "{} bytes given, but shape {:?} of {} needs {} bytes",
                    data.len(),
                    shape,
                    dtype,
                    expected
                ),
            ));
        }
        Ok(Tensor { dtype, shape, data })
    }

    /// Copy typed values into a tensor of `shape`.
    pub fn from_slice<T: Element>(shape: impl Into<Vec<usize>>, values: &[T]) -> Result<Self> {
        let shape = shape.into();
        let numel = numel_of(&shape)?;
        if values.len() != numel {
            return Err(Error::invalid(
                "values",
                format!(
                    "{} values given, but shape {:?} holds {} elements",
                    values.len(),
                    shape,
                    numel
                ),
            ));
        }
        let mut out = Vec::new();
        T::extend_le(values, &mut out);
        Tensor::new(T::DTYPE, shape, out)
    }

    /// A tensor of zeros (all-zero bytes are 0 in every supported dtype).
    pub fn zeros(dtype: DType, shape: impl Into<Vec<usize>>) -> Result<Self> {
        let shape = shape.into();
        let len = byte_len_for(dtype, &shape)?;
        Ok(Tensor {
            dtype,
            shape,
            data: Bytes::from(vec![0u8; len]),
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of elements (1 for a scalar, 0 if any dimension is 0).
    pub fn numel(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Raw little-endian bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// The shared byte buffer (no copy).
    pub fn bytes(&self) -> &Bytes {
        &self.data
    }

    /// Give up the value, keeping its bytes.
    pub fn into_bytes(self) -> Bytes {
        self.data
    }

    /// Copy out as typed values; errors when `T` is not this tensor's dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype {
            return Err(Error::invalid(
                "dtype",
                format!("tensor holds {}, {} was requested", self.dtype, T::DTYPE),
            ));
        }
        Ok(T::read_le(&self.data))
    }
}

impl fmt::Debug for Tensor {
    // The data can be hundreds of MB: show its size, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tensor")
            .field("dtype", &self.dtype)
            .field("shape", &self.shape)
            .field("byte_len", &self.data.len())
            .finish()
    }
}

/// Element count of `shape`, checking rank and overflow.
pub(crate) fn numel_of(shape: &[usize]) -> Result<usize> {
    if shape.len() > MAX_RANK {
        return Err(Error::invalid(
            "shape",
            format!("rank {} is over the limit of {MAX_RANK}", shape.len()),
        ));
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid("shape", format!("{shape:?} has more elements than fit in usize")))
}

/// Byte length of a tensor of `dtype` and `shape`, checking rank and overflow.
pub(crate) fn byte_len_for(dtype: DType, shape: &[usize]) -> Result<usize> {
    numel_of(shape)?.checked_mul(dtype.size()).ok_or_else(|| {
        Error::invalid(
            "shape",
            format!("{shape:?} of {dtype} has more bytes than fit in usize"),
        )
    })
}

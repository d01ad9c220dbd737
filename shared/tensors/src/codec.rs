//! Tensor <-> safetensors bytes, and the xxh3-128 checksum of those bytes.
//!
//! Values in the store are standard safetensors files holding one tensor named
//! [`TENSOR_NAME`], so any language with a safetensors reader can read them. Encoding copies
//! the data once (into the output buffer); decoding copies nothing: the decoded tensor is a
//! slice of the input [`Bytes`].

use bytes::Bytes;
use safetensors::tensor::{SafeTensorError, TensorInfo, View};
use std::borrow::Cow;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::tensor::{MAX_RANK, Tensor};

/// Name of the single tensor in an encoded value.
pub const TENSOR_NAME: &str = "tensor";

/// Prefix of every checksum string; the rest is 32 lowercase hex digits.
pub const CHECKSUM_PREFIX: &str = "xxh3-128:";

const WHAT: &str = "tensor bytes";

/// Adapter so the safetensors serialiser can borrow our bytes (no extra copy).
struct ViewOf<'a>(&'a Tensor);

impl View for ViewOf<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.0.dtype().to_safetensors()
    }
    fn shape(&self) -> &[usize] {
        self.0.shape()
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.0.as_bytes())
    }
    fn data_len(&self) -> usize {
        self.0.as_bytes().len()
    }
}

/// Encode one tensor as a safetensors value.
pub fn encode(tensor: &Tensor) -> Result<Bytes> {
    encode_named([(TENSOR_NAME, tensor)])
}

/// Encode several named tensors into one safetensors value.
pub fn encode_named<'a, I>(tensors: I) -> Result<Bytes>
where
    I: IntoIterator<Item = (&'a str, &'a Tensor)>,
{
    let views: Vec<(&str, ViewOf<'_>)> = tensors.into_iter().map(|(n, t)| (n, ViewOf(t))).collect();
    safetensors::serialize(views, None)
        .map(Bytes::from)
        .map_err(|e| Error::Internal {
            reason: format!("safetensors serialisation failed: {e}"),
        })
}

/// Decode a value holding exactly one tensor (of any name).
pub fn decode(bytes: impl Into<Bytes>) -> Result<Tensor> {
    let mut all = decode_named(bytes)?;
    if all.len() != 1 {
        return Err(Error::corrupt(
            WHAT,
            format!("holds {} tensors, expected exactly 1", all.len()),
        ));
    }
    Ok(all.remove(0).1)
}

/// Verify `checksum` over the bytes, then decode one tensor.
pub fn decode_verified(bytes: impl Into<Bytes>, checksum: &str) -> Result<Tensor> {
    let bytes = bytes.into();
    verify_checksum(&bytes, checksum)?;
    decode(bytes)
}

/// Decode every tensor of a value, in storage order.
pub fn decode_named(bytes: impl Into<Bytes>) -> Result<Vec<(String, Tensor)>> {
    let bytes = bytes.into();
    let header_len = check_header_len(&bytes)?;
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).map_err(describe)?;
    let data_start = 8 + header_len;

    let mut out = Vec::new();
    for name in metadata.offset_keys() {
        let info = metadata
            .info(&name)
            .ok_or_else(|| Error::corrupt(WHAT, format!("header lists {name:?} without its info")))?;
        out.push((name.clone(), tensor_at(&bytes, data_start, &name, info)?));
    }
    Ok(out)
}

/// The xxh3-128 checksum of encoded bytes, as `xxh3-128:<32 hex>`.
pub fn checksum(bytes: &[u8]) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(bytes);
    format!("{CHECKSUM_PREFIX}{h:032x}")
}

/// Check that `expected` is a well-formed checksum string.
pub fn validate_checksum(expected: &str) -> Result<()> {
    let hex = expected.strip_prefix(CHECKSUM_PREFIX).unwrap_or("");
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::invalid(
            "checksum",
            format!("{expected:?} is not \"{CHECKSUM_PREFIX}\" followed by 32 lowercase hex digits"),
        ));
    }
    Ok(())
}

/// Compare the checksum of `bytes` with `expected`.
pub fn verify_checksum(bytes: &[u8], expected: &str) -> Result<()> {
    validate_checksum(expected)?;
    let actual = checksum(bytes);
    if actual != expected {
        return Err(Error::corrupt(
            WHAT,
            format!("checksum mismatch: expected {expected}, computed {actual}"),
        ));
    }
    Ok(())
}

/// Reject a missing or oversize length prefix with a precise message before safetensors
/// reports a generic one.
fn check_header_len(bytes: &[u8]) -> Result<usize> {
    let Some(prefix) = bytes.first_chunk::<8>() else {
        return Err(Error::corrupt(
            WHAT,
            format!(
                "truncated: {} bytes, shorter than the 8-byte header length",
                bytes.len()
            ),
        ));
    };
    let n = u64::from_le_bytes(*prefix);
    let room = (bytes.len() - 8) as u64;
    if n > room {
        return Err(Error::corrupt(
            WHAT,
            format!("header length {n} is over the {room} bytes that follow it"),
        ));
    }
    Ok(n as usize)
}

fn tensor_at(bytes: &Bytes, data_start: usize, name: &str, info: &TensorInfo) -> Result<Tensor> {
    let dtype = DType::from_safetensors(info.dtype).ok_or_else(|| {
        Error::corrupt(
            WHAT,
            format!(
                "tensor {name:?} has dtype {:?}; supported: F32, F16, BF16, U8, I64",
                info.dtype
            ),
        )
    })?;
    if info.shape.len() > MAX_RANK {
        return Err(Error::corrupt(
            WHAT,
            format!(
                "tensor {name:?} has rank {}, over the limit of {MAX_RANK}",
                info.shape.len()
            ),
        ));
    }
    let (s, e) = info.data_offsets;
    // read_metadata already checked offsets against the buffer; re-check rather than trust.
    let range = data_start
        .checked_add(s)
        .zip(data_start.checked_add(e))
        .filter(|&(a, b)| a <= b && b <= bytes.len())
        .ok_or_else(|| {
            Error::corrupt(
                WHAT,
                format!("tensor {name:?} offsets [{s}, {e}] are out of bounds"),
            )
        })?;
    Tensor::new(dtype, info.shape.clone(), bytes.slice(range.0..range.1))
        .map_err(|e| Error::corrupt(WHAT, format!("tensor {name:?}: {e}")))
}

fn describe(e: SafeTensorError) -> Error {
    let reason = match e {
        SafeTensorError::HeaderTooLarge => "header is over the 100000000-byte limit".to_string(),
        SafeTensorError::InvalidHeaderLength => "header length is out of bounds".to_string(),
        SafeTensorError::InvalidHeader(e) => format!("header is not utf-8: {e}"),
        SafeTensorError::InvalidHeaderDeserialization(e) => format!("header is not valid json: {e}"),
        SafeTensorError::InvalidOffset(name) => {
            format!("tensor {name:?} has data offsets that are not contiguous")
        }
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's shape times element size differs from its data length".to_string()
        }
        SafeTensorError::ValidationOverflow => "a tensor's shape overflows usize".to_string(),
        SafeTensorError::MetadataIncompleteBuffer => {
            "data length differs from what the header describes".to_string()
        }
        other => other.to_string(),
    };
    Error::corrupt(WHAT, reason)
}

//! What both backends do around a write and after a read, so their semantics cannot drift:
//! encode + size limit + ref on the way in; length, checksum, decode and ref match on the
//! way out.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;

use crate::cache_key::CacheKey;
use crate::codec;
use crate::config::MAX_TTL_SECS;
use crate::error::{Error, Result};
use crate::keys::{KeySchema, TensorKey, validate_component};
use crate::tensor::Tensor;
use crate::tensor_ref::TensorRef;

/// Most outputs in one cache entry.
pub const MAX_CACHE_OUTPUTS: usize = 256;

/// Cache tensors outlive their manifest by this much, so a reader who just got the
/// manifest still finds the tensors.
pub(crate) const CACHE_TENSOR_GRACE: Duration = Duration::from_secs(60);

/// An encoded value ready to write.
pub(crate) struct Prepared {
    pub bytes: Bytes,
    pub r: TensorRef,
}

/// Limits a backend enforces, from its config.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub default_ttl: Duration,
    pub max_value_bytes: usize,
}

impl Limits {
    /// The TTL to write with: the caller's, or the default; between 1 ms and 30 days.
    pub fn ttl(&self, ttl: Option<Duration>) -> Result<Duration> {
        let ttl = ttl.unwrap_or(self.default_ttl);
        if ttl < Duration::from_millis(1) || ttl > Duration::from_secs(MAX_TTL_SECS) {
            return Err(Error::invalid(
                "ttl",
                format!("{ttl:?} is outside the allowed range 1ms..={MAX_TTL_SECS}s"),
            ));
        }
        Ok(ttl)
    }

    /// Encode `tensor` for `key`, enforcing `max_value_bytes`.
    pub fn prepare(&self, keys: &KeySchema, key: &TensorKey, tensor: &Tensor) -> Result<Prepared> {
        keys.owns(key)?;
        // Check the raw size first so an oversize tensor is refused before we copy it.
        let raw = tensor.as_bytes().len();
        if raw > self.max_value_bytes {
            return Err(self.too_large(key, raw));
        }
        let bytes = codec::encode(tensor)?;
        if bytes.len() > self.max_value_bytes {
            return Err(self.too_large(key, bytes.len()));
        }
        let r = TensorRef {
            key: key.as_str().to_string(),
            dtype: tensor.dtype(),
            shape: tensor.shape().to_vec(),
            byte_len: bytes.len() as u64,
            checksum: codec::checksum(&bytes),
        };
        Ok(Prepared { bytes, r })
    }

    /// Encode a stage's outputs for cache entry `cache`; names must be unique components.
    pub fn prepare_cache(
        &self,
        keys: &KeySchema,
        cache: &CacheKey,
        outputs: &[(String, Tensor)],
    ) -> Result<Vec<(String, Prepared)>> {
        if outputs.is_empty() || outputs.len() > MAX_CACHE_OUTPUTS {
            return Err(Error::invalid(
                "outputs",
                format!(
                    "{} given; a cache entry holds 1 to {MAX_CACHE_OUTPUTS} tensors",
                    outputs.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(outputs.len());
        for (name, tensor) in outputs {
            validate_component("name", name)?;
            if !seen.insert(name.as_str()) {
                return Err(Error::invalid(
                    "name",
                    format!("{name:?} appears twice in outputs"),
                ));
            }
            let bytes = codec::encode(tensor)?;
            let checksum = codec::checksum(&bytes);
            let key = keys.cache_output(cache, name, &checksum)?;
            if bytes.len() > self.max_value_bytes {
                return Err(self.too_large(&key, bytes.len()));
            }
            let r = TensorRef {
                key: key.into_string(),
                dtype: tensor.dtype(),
                shape: tensor.shape().to_vec(),
                byte_len: bytes.len() as u64,
                checksum,
            };
            out.push((name.clone(), Prepared { bytes, r }));
        }
        Ok(out)
    }

    fn too_large(&self, key: &TensorKey, actual: usize) -> Error {
        Error::TooLarge {
            what: format!("tensor value for {key}"),
            actual,
            limit_name: "max_value_bytes",
            limit: self.max_value_bytes,
        }
    }
}

/// Check fetched bytes against the ref that pointed at them, then decode.
pub(crate) fn open_checked(r: &TensorRef, bytes: Bytes) -> Result<Tensor> {
    if bytes.len() as u64 != r.byte_len {
        return Err(Error::corrupt(
            format!("tensor value at {}", r.key),
            format!("{} bytes stored, the ref says {}", bytes.len(), r.byte_len),
        ));
    }
    let tensor = codec::decode_verified(bytes, &r.checksum).map_err(|e| e.at_key(&r.key))?;
    if tensor.dtype() != r.dtype || tensor.shape() != r.shape.as_slice() {
        return Err(Error::corrupt(
            format!("tensor value at {}", r.key),
            format!(
                "holds {} {:?}, the ref says {} {:?}",
                tensor.dtype(),
                tensor.shape(),
                r.dtype,
                r.shape
            ),
        ));
    }
    Ok(tensor)
}

/// Decode fetched bytes that have no ref to compare with.
pub(crate) fn open_unchecked(key: &TensorKey, bytes: Bytes) -> Result<Tensor> {
    codec::decode(bytes).map_err(|e| e.at_key(key.as_str()))
}

pub(crate) fn not_found(key: &str) -> Error {
    Error::NotFound { key: key.to_string() }
}

//! `TensorRef` between its store form (`storyreel_tensors::TensorRef`) and its wire form
//! (`storyreel.common.v1.TensorRef`). Incoming refs are checked here, so a bad ref is an
//! INVALID_ARGUMENT that names the field, before any store round trip.

use crate::config::ValidationError;
use storyreel_proto::common::{Dtype, TensorRef as WireRef};
use storyreel_tensors::{DType, MAX_RANK, TensorRef};

/// Longest key accepted from a request.
pub const MAX_KEY_BYTES: usize = 512;

pub fn to_wire(r: &TensorRef) -> WireRef {
    let dtype = match r.dtype {
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::Bf16,
        DType::U8 => Dtype::U8,
        DType::I64 => Dtype::I64,
    };
    WireRef {
        key: r.key.clone(),
        dtype: dtype as i32,
        shape: r.shape.iter().map(|&d| d as i64).collect(),
        byte_len: r.byte_len,
        checksum: r.checksum.clone(),
    }
}

/// Checks a ref from a request; `field` is its name in the request (`reference_latents`).
pub fn from_wire(field: &str, w: &WireRef) -> Result<TensorRef, ValidationError> {
    let err = |sub: &str, msg: String| ValidationError::new(format!("{field}.{sub}"), msg);
    if w.key.is_empty() || w.key.len() > MAX_KEY_BYTES {
        return Err(err(
            "key",
            format!("must be 1-{MAX_KEY_BYTES} bytes, got {}", w.key.len()),
        ));
    }
    let dtype = match Dtype::try_from(w.dtype) {
        Ok(Dtype::F32) => DType::F32,
        Ok(Dtype::F16) => DType::F16,
        Ok(Dtype::Bf16) => DType::BF16,
        Ok(Dtype::U8) => DType::U8,
        Ok(Dtype::I64) => DType::I64,
        Ok(Dtype::Unspecified) | Err(_) => {
            return Err(err(
                "dtype",
                format!("must be one of F32, F16, BF16, U8, I64, got {}", w.dtype),
            ));
        }
    };
    if w.shape.is_empty() || w.shape.len() > MAX_RANK {
        return Err(err(
            "shape",
            format!("must have 1-{MAX_RANK} dimensions, got {}", w.shape.len()),
        ));
    }
    let shape = w
        .shape
        .iter()
        .map(|&d| usize::try_from(d).ok().filter(|&d| d >= 1))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| err("shape", format!("dimensions must be >= 1, got {:?}", w.shape)))?;
    if !w.checksum.starts_with("xxh3-128:") {
        return Err(err(
            "checksum",
            format!("must be `xxh3-128:<32 hex>`, got `{}`", w.checksum),
        ));
    }
    Ok(TensorRef {
        key: w.key.clone(),
        dtype,
        shape,
        byte_len: w.byte_len,
        checksum: w.checksum.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TensorRef {
        TensorRef {
            key: "storyreel:job1:keyframe:0:latents".into(),
            dtype: DType::F16,
            shape: vec![1, 4, 16, 64, 64],
            byte_len: 524_400,
            checksum: format!("xxh3-128:{}", "0".repeat(32)),
        }
    }

    #[test]
    fn round_trips() {
        let r = sample();
        assert_eq!(from_wire("latents", &to_wire(&r)).unwrap(), r);
    }

    #[test]
    fn bad_refs_name_the_field() {
        let mut w = to_wire(&sample());
        w.dtype = 0;
        assert_eq!(from_wire("latents", &w).unwrap_err().field, "latents.dtype");
        let mut w = to_wire(&sample());
        w.shape = vec![1, 0];
        assert_eq!(from_wire("latents", &w).unwrap_err().field, "latents.shape");
        let mut w = to_wire(&sample());
        w.key = String::new();
        assert_eq!(from_wire("latents", &w).unwrap_err().field, "latents.key");
        let mut w = to_wire(&sample());
        w.shape = vec![1; 9];
        assert!(
            from_wire("latents", &w)
                .unwrap_err()
                .to_string()
                .contains("1-8 dimensions")
        );
    }
}

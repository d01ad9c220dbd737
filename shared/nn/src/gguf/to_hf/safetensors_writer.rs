//! Streams tensors into a safetensors file one at a time, so converting a checkpoint never
//! holds more than one dequantised tensor in memory. The file is written under a temporary
//! name and renamed at the end: an interrupted conversion leaves no valid-looking file.
//!
//! Format: u64 little-endian header length, a JSON header `{name: {dtype, shape,
//! data_offsets}}` padded with spaces to 8 bytes, then the tensor bytes.

use super::{ConvertError, OutputDtype};
use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
};

/// One tensor's header entry.
#[derive(Debug, Clone)]
pub struct PlannedTensor {
    pub name: String,
    pub shape: Vec<usize>,
}

impl PlannedTensor {
    pub fn n_elements(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Writes `tensors` in order; `values_of(i)` produces the f32 values of tensor `i`. Returns
/// the file size.
pub fn write_safetensors(
    path: &Path,
    tensors: &[PlannedTensor],
    dtype: OutputDtype,
    values_of: impl FnMut(usize) -> Result<Vec<f32>, ConvertError>,
) -> Result<u64, ConvertError> {
    let partial = path.with_extension("safetensors.partial");
    let written = match write_to(&partial, tensors, dtype, values_of) {
        Ok(written) => written,
        Err(err) => {
            // best effort: the error being returned matters more than a failed clean-up
            let _ = std::fs::remove_file(&partial);
            return Err(err);
        }
    };
    std::fs::rename(&partial, path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(written)
}

fn write_to(
    partial: &Path,
    tensors: &[PlannedTensor],
    dtype: OutputDtype,
    mut values_of: impl FnMut(usize) -> Result<Vec<f32>, ConvertError>,
) -> Result<u64, ConvertError> {
    let header = header_bytes(tensors, dtype)?;
    let io = |source| ConvertError::Io {
        path: partial.to_path_buf(),
        source,
    };
    let mut out = BufWriter::new(File::create(partial).map_err(io)?);
    out.write_all(&(header.len() as u64).to_le_bytes()).map_err(io)?;
    out.write_all(&header).map_err(io)?;
    let mut bytes = Vec::new();
    let mut written = 8 + header.len() as u64;
    for (i, tensor) in tensors.iter().enumerate() {
        let values = values_of(i)?;
        if values.len() != tensor.n_elements() {
            return Err(ConvertError::ValueCount {
                name: tensor.name.clone(),
                expected: tensor.n_elements(),
                found: values.len(),
            });
        }
        bytes.clear();
        dtype.encode(&values, &mut bytes);
        out.write_all(&bytes).map_err(io)?;
        written += bytes.len() as u64;
    }
    out.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    Ok(written)
}

fn header_bytes(tensors: &[PlannedTensor], dtype: OutputDtype) -> Result<Vec<u8>, ConvertError> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".to_string(), serde_json::json!({ "format": "pt" }));
    let mut offset = 0usize;
    for tensor in tensors {
        let end = offset + tensor.n_elements() * dtype.bytes_per_value();
        let entry = serde_json::json!({
            "dtype": dtype.safetensors_name(),
            "shape": tensor.shape,
            "data_offsets": [offset, end],
        });
        if header.insert(tensor.name.clone(), entry).is_some() {
            return Err(ConvertError::DuplicateOutput {
                name: tensor.name.clone(),
            });
        }
        offset = end;
    }
    let mut bytes = serde_json::to_vec(&header).map_err(|e| ConvertError::Json {
        what: "safetensors header".to_string(),
        source: e,
    })?;
    // the data that follows must start 8-byte aligned
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_file_tch_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let tensors = vec![
            PlannedTensor {
                name: "b".to_string(),
                shape: vec![2, 3],
            },
            PlannedTensor {
                name: "a".to_string(),
                shape: vec![1],
            },
        ];
        let values = [vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], vec![-0.5]];
        for dtype in [OutputDtype::F32, OutputDtype::F16, OutputDtype::BF16] {
            write_safetensors(&path, &tensors, dtype, |i| Ok(values[i].clone())).unwrap();
            let read = tch::Tensor::read_safetensors(&path).unwrap();
            let b = &read.iter().find(|(n, _)| n == "b").unwrap().1;
            assert_eq!(b.size(), [2, 3]);
            let b: Vec<f32> = Vec::try_from(b.to_kind(tch::Kind::Float).flatten(0, -1)).unwrap();
            assert_eq!(b, values[0], "{dtype}");
            assert!(!path.with_extension("safetensors.partial").exists());
        }
    }

    #[test]
    fn a_wrong_value_count_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let tensors = vec![PlannedTensor {
            name: "w".to_string(),
            shape: vec![2],
        }];
        let err = write_safetensors(&path, &tensors, OutputDtype::F32, |_| Ok(vec![1.0])).unwrap_err();
        assert!(err.to_string().contains("`w`"), "{err}");
        assert!(!path.exists());
        assert!(!path.with_extension("safetensors.partial").exists());
    }
}

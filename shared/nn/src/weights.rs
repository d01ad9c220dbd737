//! Strict checkpoint loading: every variable of the model must be in the files, and every
//! tensor in the files must belong to the model. tch's own `VarStore::load` ignores extra
//! keys, which hides a wrong module tree; this does not.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};
use tch::{Tensor, nn::VarStore};

/// At most this many names are listed in an error; the rest are counted.
const LISTED_NAMES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read weights file {path}: {source}")]
    Read { path: PathBuf, source: tch::TchError },
    #[error("tensor `{name}` appears in both {first} and {second}")]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error(
        "checkpoint does not match the model: {missing_count} missing key(s) [{missing}], {unexpected_count} unexpected key(s) [{unexpected}]"
    )]
    KeyMismatch {
        missing_count: usize,
        missing: String,
        unexpected_count: usize,
        unexpected: String,
    },
    #[error("tensor `{name}` has shape {found:?} in the checkpoint, the model expects {expected:?}")]
    Shape {
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("cannot copy tensor `{name}` into the model: {source}")]
    Copy { name: String, source: tch::TchError },
}

/// Reads safetensors `files` (one, or the shards of a sharded checkpoint) into `vs`,
/// converting each tensor to the variable's dtype and device.
pub fn load_strict(vs: &mut VarStore, files: &[impl AsRef<Path>]) -> Result<(), WeightsError> {
    let mut found: BTreeMap<String, (Tensor, PathBuf)> = BTreeMap::new();
    for file in files {
        let path = file.as_ref().to_path_buf();
        let tensors = Tensor::read_safetensors(&path).map_err(|source| WeightsError::Read {
            path: path.clone(),
            source,
        })?;
        for (name, tensor) in tensors {
            if let Some((_, first)) = found.get(&name) {
                return Err(WeightsError::Duplicate {
                    name,
                    first: first.clone(),
                    second: path,
                });
            }
            found.insert(name, (tensor, path.clone()));
        }
    }

    let variables = vs.variables();
    let wanted: BTreeSet<&String> = variables.keys().collect();
    let have: BTreeSet<&String> = found.keys().collect();
    let missing: Vec<&String> = wanted.difference(&have).copied().collect();
    let unexpected: Vec<&String> = have.difference(&wanted).copied().collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(WeightsError::KeyMismatch {
            missing_count: missing.len(),
            missing: list(&missing),
            unexpected_count: unexpected.len(),
            unexpected: list(&unexpected),
        });
    }

    tch::no_grad(|| {
        for (name, mut var) in variables {
            let (src, _) = &found[&name];
            if src.size() != var.size() {
                return Err(WeightsError::Shape {
                    name,
                    expected: var.size(),
                    found: src.size(),
                });
            }
            let src = src.to_kind(var.kind()).to_device(var.device());
            var.f_copy_(&src)
                .map_err(|source| WeightsError::Copy { name, source })?;
        }
        Ok(())
    })
}

fn list(names: &[&String]) -> String {
    let mut out: Vec<&str> = names.iter().take(LISTED_NAMES).map(|s| s.as_str()).collect();
    let rest = names.len().saturating_sub(LISTED_NAMES);
    let more = format!("... and {rest} more");
    if rest > 0 {
        out.push(&more);
    }
    out.join(", ")
}

/// Safetensors headers larger than this are refused (real ones are a few hundred KiB).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// The tensor names in a safetensors file, read from its header alone (8-byte little-endian
/// length, then a JSON object; `__metadata__` is not a tensor).
pub fn safetensors_names(path: &Path) -> Result<Vec<String>, (PathBuf, String)> {
    let fail = |message: String| (path.to_path_buf(), message);
    let mut file = File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| fail(format!("cannot read the header length: {e}")))?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER_BYTES {
        return Err(fail(format!(
            "header of {len} bytes (at most {MAX_HEADER_BYTES} accepted)"
        )));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| fail(format!("cannot read the {len}-byte header: {e}")))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| fail(format!("header is not JSON: {e}")))?;
    Ok(header
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name != "__metadata__")
        .collect())
}

/// The names and shapes of the variables a model constructor declares, without holding
/// real weights: the variables are created one byte per element (f8 e4m3), so even an SD 1.5
/// UNet costs ~0.9 GB briefly. For key-set checks against published checkpoints.
pub fn declared_shapes(build: impl FnOnce(&tch::nn::Path)) -> BTreeMap<String, Vec<i64>> {
    let mut vs = VarStore::new(tch::Device::Cpu);
    vs.set_kind(tch::Kind::Float8e4m3fn);
    build(&vs.root());
    vs.variables()
        .into_iter()
        .map(|(name, t)| (name, t.size()))
        .collect()
}

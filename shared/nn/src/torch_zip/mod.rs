//! Reading `torch.save` checkpoints (the zip format: `<name>/data.pkl` + `<name>/data/<key>`)
//! without Python: a state dict's pickle is interpreted by a small pickle machine that knows
//! only what state dicts use, and each tensor is rebuilt from its storage entry.
//!
//! Only used by `storyreel-convert` to turn published `.pkl`/`.pth` files into safetensors
//! (`make models`); the models themselves load safetensors.

mod pickle;

use std::{
    collections::BTreeMap,
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

use tch::{Kind, Tensor};

pub use pickle::Value;

#[derive(Debug, thiserror::Error)]
pub enum TorchZipError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a torch zip checkpoint: {message}")]
    Zip { path: PathBuf, message: String },
    #[error("{path}: data.pkl at byte {at}: {message}")]
    Pickle {
        path: PathBuf,
        at: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Reads the tensors of a state dict saved by `torch.save` (any nesting of dicts is
/// flattened with `.`), in file order of their names. Tensors come back contiguous, on
/// the CPU, in their stored dtype.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>, TorchZipError> {
    let file = File::open(path).map_err(|source| TorchZipError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let zip_err = |message: String| TorchZipError::Zip {
        path: path.to_path_buf(),
        message,
    };
    let mut archive = zip::ZipArchive::new(file).map_err(|e| zip_err(e.to_string()))?;
    let pkl_name = archive
        .file_names()
        .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
        .map(str::to_owned)
        .ok_or_else(|| zip_err("no <name>/data.pkl entry".into()))?;
    let prefix = pkl_name.trim_end_matches("data.pkl").to_owned();
    let pickle_bytes = read_entry(&mut archive, &pkl_name).map_err(zip_err)?;
    let root = pickle::load(&pickle_bytes).map_err(|(at, message)| TorchZipError::Pickle {
        path: path.to_path_buf(),
        at,
        message,
    })?;

    let mut refs = Vec::new();
    flatten("", &root, &mut refs).map_err(|message| TorchZipError::Layout {
        path: path.to_path_buf(),
        message,
    })?;
    let mut storages: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut out = Vec::with_capacity(refs.len());
    for (name, t) in refs {
        if !storages.contains_key(&t.storage) {
            let bytes = read_entry(&mut archive, &format!("{prefix}data/{}", t.storage)).map_err(zip_err)?;
            storages.insert(t.storage.clone(), bytes);
        }
        let bytes = &storages[&t.storage];
        let element = t.kind.elt_size_in_bytes();
        if !bytes.len().is_multiple_of(element) {
            return Err(TorchZipError::Layout {
                path: path.to_path_buf(),
                message: format!(
                    "storage {} of `{name}` is {} bytes, not a multiple of {element}",
                    t.storage,
                    bytes.len()
                ),
            });
        }
        let storage = Tensor::f_from_data_size(bytes, &[(bytes.len() / element) as i64], t.kind)?;
        let tensor = storage
            .f_as_strided(&t.size, &t.stride, Some(t.offset))?
            .f_contiguous()?;
        out.push((name, tensor));
    }
    Ok(out)
}

fn read_entry<R: Read + std::io::Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> Result<Vec<u8>, String> {
    let mut entry = archive.by_name(name).map_err(|e| format!("entry {name}: {e}"))?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| format!("entry {name}: {e}"))?;
    Ok(bytes)
}

/// One `_rebuild_tensor_v2(storage, offset, size, stride, ...)` call.
struct TensorRef {
    storage: String,
    kind: Kind,
    offset: i64,
    size: Vec<i64>,
    stride: Vec<i64>,
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, TensorRef)>) -> Result<(), String> {
    match value {
        Value::Dict(items) => {
            for (key, item) in items {
                let Value::Str(key) = key else {
                    return Err(format!("a key under `{prefix}` is not a string: {key:?}"));
                };
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, item, out)?;
            }
            Ok(())
        }
        Value::Call { callable, args } => match callable.as_ref() {
            Value::Global(module, name) if module == "torch._utils" && name == "_rebuild_tensor_v2" => {
                out.push((prefix.to_owned(), tensor_ref(prefix, args)?));
                Ok(())
            }
            other => Err(format!("`{prefix}` is built by {other:?}, not a tensor")),
        },
        other => Err(format!("`{prefix}` is {other:?}, not a tensor or a dict")),
    }
}

fn tensor_ref(name: &str, args: &[Value]) -> Result<TensorRef, String> {
    let bad = || format!("`{name}`: unexpected _rebuild_tensor_v2 arguments {args:?}");
    let [
        Value::PersistentId(pid),
        Value::Int(offset),
        Value::Tuple(size),
        Value::Tuple(stride),
        ..,
    ] = args
    else {
        return Err(bad());
    };
    let Value::Tuple(pid) = pid.as_ref() else {
        return Err(bad());
    };
    let [
        Value::Str(tag),
        Value::Global(_, storage_type),
        Value::Str(key),
        ..,
    ] = pid.as_slice()
    else {
        return Err(bad());
    };
    if tag != "storage" {
        return Err(bad());
    }
    let kind = match storage_type.as_str() {
        "FloatStorage" => Kind::Float,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "DoubleStorage" => Kind::Double,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        other => return Err(format!("`{name}`: storage type {other} is not supported")),
    };
    let ints = |values: &[Value]| -> Result<Vec<i64>, String> {
        values
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                _ => Err(bad()),
            })
            .collect()
    };
    Ok(TensorRef {
        storage: key.clone(),
        kind,
        offset: *offset,
        size: ints(size)?,
        stride: ints(stride)?,
    })
}

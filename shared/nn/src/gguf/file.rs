//! A parsed GGUF file (v2 and v3, little-endian): header, metadata, tensor infos, and the
//! tensor data, memory-mapped. Every offset and length in the header is checked against the
//! file size when the file is opened, so later accesses cannot go out of bounds.

use super::{GgmlType, GgufError, GgufValue, byte_reader::ByteReader, dequantize, value::read_tagged_value};
use std::{collections::HashMap, fs::File, ops::Deref, path::Path};

/// The magic every GGUF file starts with.
const MAGIC: [u8; 4] = *b"GGUF";
/// ggml's `GGML_MAX_DIMS`.
const MAX_DIMS: usize = 4;
/// Data alignment when `general.alignment` is absent (GGUF spec).
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The smallest possible encodings, used to cap counts by the file size: a metadata entry is a
/// key length, a type tag and a one-byte value; a tensor info a name length, a dimension count,
/// a type and an offset.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// One tensor's header entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the fastest-varying (the row length).
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Offset from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Element count (checked to fit a usize when the file was opened; saturates for a
    /// hand-made info that does not).
    pub fn n_elements(&self) -> usize {
        self.dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
            .unwrap_or(usize::MAX)
    }

    /// The row-major (PyTorch) shape: the ggml dims reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// Bytes the tensor occupies, when its type's block layout is known (and the size fits
    /// a u64).
    pub fn byte_len(&self) -> Option<u64> {
        let (block_elems, block_bytes) = self.ggml_type.block_layout()?;
        let n = self.dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))?;
        (n / block_elems).checked_mul(block_bytes)
    }
}

enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(map) => map,
            Bytes::Owned(bytes) => bytes,
        }
    }
}

/// An opened GGUF file.
pub struct GgufFile {
    bytes: Bytes,
    version: u32,
    metadata: Vec<(String, GgufValue)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_start: u64,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment)
            .finish()
    }
}

impl GgufFile {
    /// Opens and parses `path`, memory-mapping it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref();
        let io = |source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        if file.metadata().map_err(io)?.is_dir() {
            return Err(io(std::io::Error::other("it is a directory")));
        }
        // SAFETY: the map is read-only and private to this value. As with every mmap-based
        // loader, another process truncating the file while it is open could fault a read;
        // model files are written once (atomically, by `make models`) and then only read.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        Self::parse(Bytes::Mapped(map))
    }

    /// Parses a GGUF image held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, GgufError> {
        Self::parse(Bytes::Owned(bytes))
    }

    fn parse(bytes: Bytes) -> Result<Self, GgufError> {
        let mut reader = ByteReader::new(&bytes);
        let magic: [u8; 4] = reader
            .take(4, || "magic".to_string())?
            .try_into()
            .unwrap_or_default();
        if magic != MAGIC {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = reader.u32(|| "version".to_string())?;
        if version != 2 && version != 3 {
            let hint = match version {
                1 => " (version 1 used 32-bit counts; re-convert the model)",
                v if matches!(v.swap_bytes(), 2 | 3) => {
                    " (the file looks big-endian, which is not supported)"
                }
                _ => "",
            };
            return Err(GgufError::UnsupportedVersion { version, hint });
        }
        let tensor_count = reader.u64(|| "tensor count".to_string())?;
        let kv_count = reader.u64(|| "metadata count".to_string())?;
        let kv_count = reader.check_count(kv_count, MIN_KV_BYTES, || "metadata".to_string())?;

        let mut metadata = Vec::with_capacity(kv_count);
        let mut metadata_index = HashMap::with_capacity(kv_count);
        for i in 0..kv_count {
            let key = reader.string(|| format!("key of metadata entry {i}"))?;
            let value = read_tagged_value(&mut reader, &key)?;
            if metadata_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.push((key, value));
        }
        let alignment = match metadata_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => alignment_from(&metadata[i].1)?,
        };

        let tensor_count =
            reader.check_count(tensor_count, MIN_TENSOR_INFO_BYTES, || "tensor".to_string())?;
        let mut tensors = Vec::with_capacity(tensor_count);
        let mut tensor_index = HashMap::with_capacity(tensor_count);
        for i in 0..tensor_count {
            let info = read_tensor_info(&mut reader, i, alignment)?;
            if tensor_index.insert(info.name.clone(), tensors.len()).is_some() {
                return Err(GgufError::DuplicateTensor { name: info.name });
            }
            tensors.push(info);
        }

        // The data section starts at the next multiple of the alignment; a file without tensors
        // may end before it.
        let data_start = reader
            .position()
            .checked_next_multiple_of(alignment)
            .ok_or(GgufError::BadAlignment { alignment })?;
        let available = reader.file_len().saturating_sub(data_start);
        check_tensor_bounds(&tensors, available)?;

        Ok(Self {
            bytes,
            version,
            metadata,
            metadata_index,
            tensors,
            tensor_index,
            alignment,
            data_start,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// File offset of the tensor data section.
    pub fn data_start(&self) -> u64 {
        self.data_start
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> &[(String, GgufValue)] {
        &self.metadata
    }

    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    pub fn require(&self, key: &str) -> Result<&GgufValue, GgufError> {
        self.get(key)
            .ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&'a GgufValue) -> Option<T>,
    ) -> Result<Option<T>, GgufError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        read(value).map(Some).ok_or_else(|| GgufError::WrongValueType {
            key: key.to_string(),
            expected,
            found: value.type_description(),
        })
    }

    /// An optional non-negative integer.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.typed(key, "a non-negative integer", GgufValue::as_u64)
    }

    pub fn f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.typed(key, "a number", GgufValue::as_f32)
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.typed(key, "a bool", GgufValue::as_bool)
    }

    pub fn str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.typed(key, "a string", GgufValue::as_str)
    }

    pub fn array(&self, key: &str) -> Result<Option<&[GgufValue]>, GgufError> {
        self.typed(key, "an array", GgufValue::as_array)
    }

    /// A required non-negative integer.
    pub fn require_u64(&self, key: &str) -> Result<u64, GgufError> {
        self.u64(key)?
            .ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    pub fn require_str(&self, key: &str) -> Result<&str, GgufError> {
        self.str(key)?
            .ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    /// A required array of strings (`tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    pub fn require_strings(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        let wrong = |found: String| GgufError::WrongValueType {
            key: key.to_string(),
            expected: "an array of strings",
            found,
        };
        let value = self.require(key)?;
        let values = value.as_array().ok_or_else(|| wrong(value.type_description()))?;
        values
            .iter()
            .map(|v| v.as_str().ok_or_else(|| wrong(value.type_description())))
            .collect()
    }

    /// Tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    pub fn tensor(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensor_index
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| GgufError::MissingTensor {
                name: name.to_string(),
            })
    }

    pub fn has_tensor(&self, name: &str) -> bool {
        self.tensor_index.contains_key(name)
    }

    /// The raw bytes of a tensor of a known block layout.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> Result<&[u8], GgufError> {
        let unsupported = || GgufError::UnsupportedType {
            name: info.name.clone(),
            ggml_type: info.ggml_type.to_string(),
            supported: GgmlType::DEQUANTISABLE_NAMES,
        };
        let len = info.byte_len().ok_or_else(unsupported)?;
        // Checked for this file's tensors in `parse`; checked again for a hand-made info.
        let out_of_bounds = || GgufError::TensorOutOfBounds {
            name: info.name.clone(),
            offset: info.offset,
            bytes: len,
            available: (self.bytes.len() as u64).saturating_sub(self.data_start),
        };
        let start = self
            .data_start
            .checked_add(info.offset)
            .ok_or_else(out_of_bounds)?;
        let end = start.checked_add(len).ok_or_else(out_of_bounds)?;
        let range = usize::try_from(start).ok().zip(usize::try_from(end).ok());
        range
            .and_then(|(start, end)| self.bytes.get(start..end))
            .ok_or_else(out_of_bounds)
    }

    /// The tensor's values as f32, in row-major order of [`TensorInfo::shape`].
    pub fn dequantize(&self, info: &TensorInfo) -> Result<Vec<f32>, GgufError> {
        if !info.ggml_type.is_dequantisable() {
            return Err(GgufError::UnsupportedType {
                name: info.name.clone(),
                ggml_type: info.ggml_type.to_string(),
                supported: GgmlType::DEQUANTISABLE_NAMES,
            });
        }
        dequantize(
            &info.name,
            info.ggml_type,
            self.tensor_bytes(info)?,
            info.n_elements(),
        )
    }
}

fn alignment_from(value: &GgufValue) -> Result<u64, GgufError> {
    let alignment = value.as_u64().ok_or_else(|| GgufError::WrongValueType {
        key: "general.alignment".to_string(),
        expected: "a non-negative integer",
        found: value.type_description(),
    })?;
    if !alignment.is_power_of_two() {
        return Err(GgufError::BadAlignment { alignment });
    }
    Ok(alignment)
}

fn read_tensor_info(
    reader: &mut ByteReader<'_>,
    index: usize,
    alignment: u64,
) -> Result<TensorInfo, GgufError> {
    let name = reader.string(|| format!("name of tensor {index}"))?;
    let n_dims = reader.u32(|| format!("dimension count of tensor `{name}`"))?;
    if n_dims as usize > MAX_DIMS {
        return Err(GgufError::TooManyDims {
            name,
            n_dims,
            limit: MAX_DIMS,
        });
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for d in 0..n_dims {
        dims.push(reader.u64(|| format!("dimension {d} of tensor `{name}`"))?);
    }
    let ggml_type = GgmlType(reader.u32(|| format!("type of tensor `{name}`"))?);
    let offset = reader.u64(|| format!("offset of tensor `{name}`"))?;

    let bad_shape = |reason: String| GgufError::BadShape {
        name: name.clone(),
        dims: dims.clone(),
        reason,
    };
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| usize::try_from(n).is_ok())
        .ok_or_else(|| bad_shape("the element count overflows".to_string()))?;
    if let Some((block_elems, block_bytes)) = ggml_type.block_layout() {
        let row = dims.first().copied().unwrap_or(1);
        if !row.is_multiple_of(block_elems) {
            return Err(bad_shape(format!(
                "the row length {row} is not a multiple of the {ggml_type} block size {block_elems}"
            )));
        }
        if (n_elements / block_elems).checked_mul(block_bytes).is_none() {
            return Err(bad_shape("the byte size overflows".to_string()));
        }
    }
    if !offset.is_multiple_of(alignment) {
        return Err(GgufError::MisalignedTensor {
            name,
            offset,
            alignment,
        });
    }
    Ok(TensorInfo {
        name,
        dims,
        ggml_type,
        offset,
    })
}

/// Every tensor of a known layout must lie inside the data section.
fn check_tensor_bounds(tensors: &[TensorInfo], available: u64) -> Result<(), GgufError> {
    for info in tensors {
        let Some(bytes) = info.byte_len() else { continue };
        let fits = info.offset.checked_add(bytes).is_some_and(|end| end <= available);
        if !fits {
            return Err(GgufError::TensorOutOfBounds {
                name: info.name.clone(),
                offset: info.offset,
                bytes,
                available,
            });
        }
    }
    Ok(())
}

//! GGUF metadata values: the thirteen scalar/string/array types of the format, and how to
//! read one from the header.

use super::{GgufError, byte_reader::ByteReader};

/// Arrays of arrays are legal GGUF; this bounds the recursion a crafted file could ask for.
const MAX_ARRAY_DEPTH: usize = 8;

/// The type tag written before every metadata value (GGUF spec, `gguf_metadata_value_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum GgufValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl GgufValueType {
    pub fn from_u32(tag: u32) -> Option<Self> {
        Some(match tag {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::F32 => "float32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "uint64",
            Self::I64 => "int64",
            Self::F64 => "float64",
        }
    }

    /// The fewest bytes one value of this type takes in the file (a string's length prefix,
    /// an array's type tag and count), used to cap counts by the file size.
    fn min_encoded_bytes(self) -> u64 {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            Self::Array => 12,
        }
    }
}

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    /// The element type is kept so that an empty array still says what it holds.
    Array {
        element_type: GgufValueType,
        values: Vec<GgufValue>,
    },
    U64(u64),
    I64(i64),
    F64(f64),
}

impl GgufValue {
    pub fn value_type(&self) -> GgufValueType {
        match self {
            Self::U8(_) => GgufValueType::U8,
            Self::I8(_) => GgufValueType::I8,
            Self::U16(_) => GgufValueType::U16,
            Self::I16(_) => GgufValueType::I16,
            Self::U32(_) => GgufValueType::U32,
            Self::I32(_) => GgufValueType::I32,
            Self::F32(_) => GgufValueType::F32,
            Self::Bool(_) => GgufValueType::Bool,
            Self::String(_) => GgufValueType::String,
            Self::Array { .. } => GgufValueType::Array,
            Self::U64(_) => GgufValueType::U64,
            Self::I64(_) => GgufValueType::I64,
            Self::F64(_) => GgufValueType::F64,
        }
    }

    /// A short description for error messages: `uint32`, `array of string`.
    pub fn type_description(&self) -> String {
        match self {
            Self::Array { element_type, .. } => format!("array of {}", element_type.name()),
            other => other.value_type().name().to_string(),
        }
    }

    /// Any integer type holding a non-negative value.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer type whose value fits an i64.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Self::I8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// A float, or an integer read as one (some writers store `rope.freq_base` as an int).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => self.as_i64().map(|v| v as f64),
        }
    }

    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Self::F32(v) => Some(v),
            _ => self.as_f64().map(|v| v as f32),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            Self::Array { values, .. } => Some(values),
            _ => None,
        }
    }

    /// The value as JSON (floats widened to f64), for dumps and fixture comparisons.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::U8(v) => J::from(*v),
            Self::I8(v) => J::from(*v),
            Self::U16(v) => J::from(*v),
            Self::I16(v) => J::from(*v),
            Self::U32(v) => J::from(*v),
            Self::I32(v) => J::from(*v),
            Self::U64(v) => J::from(*v),
            Self::I64(v) => J::from(*v),
            Self::F32(v) => J::from(f64::from(*v)),
            Self::F64(v) => J::from(*v),
            Self::Bool(v) => J::from(*v),
            Self::String(v) => J::from(v.as_str()),
            Self::Array { values, .. } => J::Array(values.iter().map(Self::to_json).collect()),
        }
    }
}

/// Reads the type tag and the value of metadata entry `key`.
pub(crate) fn read_tagged_value(reader: &mut ByteReader<'_>, key: &str) -> Result<GgufValue, GgufError> {
    let tag = reader.u32(|| format!("type of metadata `{key}`"))?;
    let value_type = GgufValueType::from_u32(tag).ok_or_else(|| GgufError::UnknownValueType {
        key: key.to_string(),
        value_type: tag,
    })?;
    read_value(reader, value_type, key, 0)
}

fn read_value(
    reader: &mut ByteReader<'_>,
    value_type: GgufValueType,
    key: &str,
    depth: usize,
) -> Result<GgufValue, GgufError> {
    let what = || format!("metadata `{key}`");
    Ok(match value_type {
        GgufValueType::U8 => GgufValue::U8(reader.u8(what)?),
        GgufValueType::I8 => GgufValue::I8(reader.u8(what)? as i8),
        GgufValueType::U16 => GgufValue::U16(reader.u16(what)?),
        GgufValueType::I16 => GgufValue::I16(reader.u16(what)? as i16),
        GgufValueType::U32 => GgufValue::U32(reader.u32(what)?),
        GgufValueType::I32 => GgufValue::I32(reader.u32(what)? as i32),
        GgufValueType::U64 => GgufValue::U64(reader.u64(what)?),
        GgufValueType::I64 => GgufValue::I64(reader.u64(what)? as i64),
        GgufValueType::F32 => GgufValue::F32(reader.f32(what)?),
        GgufValueType::F64 => GgufValue::F64(reader.f64(what)?),
        GgufValueType::Bool => {
            let offset = reader.position();
            match reader.u8(what)? {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                byte => {
                    return Err(GgufError::BadBool {
                        key: key.to_string(),
                        offset,
                        byte,
                    });
                }
            }
        }
        GgufValueType::String => GgufValue::String(reader.string(what)?),
        GgufValueType::Array => read_array(reader, key, depth)?,
    })
}

fn read_array(reader: &mut ByteReader<'_>, key: &str, depth: usize) -> Result<GgufValue, GgufError> {
    if depth >= MAX_ARRAY_DEPTH {
        return Err(GgufError::ArrayTooDeep {
            key: key.to_string(),
            limit: MAX_ARRAY_DEPTH,
        });
    }
    let tag = reader.u32(|| format!("element type of metadata `{key}`"))?;
    let element_type = GgufValueType::from_u32(tag).ok_or_else(|| GgufError::UnknownValueType {
        key: key.to_string(),
        value_type: tag,
    })?;
    let count = reader.u64(|| format!("length of metadata `{key}`"))?;
    let count = reader.check_count(count, element_type.min_encoded_bytes(), || {
        format!("metadata `{key}` array")
    })?;
    let mut values = Vec::with_capacity(count);
    for _ in 0..count {
        values.push(read_value(reader, element_type, key, depth + 1)?);
    }
    Ok(GgufValue::Array { element_type, values })
}

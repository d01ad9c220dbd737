//! A little-endian cursor over the file's bytes that checks every read against the end of
//! the file, so a truncated or corrupt header becomes an error instead of a panic.

use super::GgufError;

pub(crate) struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos as u64
    }

    pub(crate) fn remaining(&self) -> u64 {
        (self.bytes.len() - self.pos) as u64
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The next `len` bytes; `what` names the field in the error (built only on failure).
    pub(crate) fn take(&mut self, len: u64, what: impl FnOnce() -> String) -> Result<&'a [u8], GgufError> {
        if len > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.position(),
                needed: len,
                file_len: self.file_len(),
            });
        }
        // `len <= remaining`, which is a usize, so the cast is lossless.
        let start = self.pos;
        self.pos += len as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: impl FnOnce() -> String) -> Result<u8, GgufError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: impl FnOnce() -> String) -> Result<u16, GgufError> {
        self.array(what).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    pub(crate) fn f32(&mut self, what: impl FnOnce() -> String) -> Result<f32, GgufError> {
        self.array(what).map(f32::from_le_bytes)
    }

    pub(crate) fn f64(&mut self, what: impl FnOnce() -> String) -> Result<f64, GgufError> {
        self.array(what).map(f64::from_le_bytes)
    }

    /// A GGUF string: a u64 byte length, then UTF-8 bytes (no terminator).
    pub(crate) fn string(&mut self, what: impl Fn() -> String) -> Result<String, GgufError> {
        let len = self.u64(|| format!("length of {}", what()))?;
        let offset = self.position();
        let bytes = self.take(len, &what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 { what: what(), offset })
    }

    /// Fails unless `count` items of at least `min_item_bytes` each fit in what is left, so a
    /// corrupt count cannot make us allocate more than the file could hold.
    pub(crate) fn check_count(
        &self,
        count: u64,
        min_item_bytes: u64,
        what: impl FnOnce() -> String,
    ) -> Result<usize, GgufError> {
        let fits = count
            .checked_mul(min_item_bytes)
            .is_some_and(|bytes| bytes <= self.remaining());
        match usize::try_from(count) {
            Ok(count) if fits => Ok(count),
            _ => Err(GgufError::CountTooLarge {
                what: what(),
                count,
                file_len: self.file_len(),
            }),
        }
    }
}

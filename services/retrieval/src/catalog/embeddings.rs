//! The caption embeddings: an append-only, memory-mapped side store beside the tantivy
//! index (`embeddings.f32`).
//!
//! Layout: a 64-byte header (`SREMB001`, dimension as u32 LE, zero padding) and then one
//! row of `dim` little-endian f32 per slot. A clip's tantivy document holds its slot (a u64
//! fast field). Rows are only appended, by the one process holding the tantivy writer lock,
//! and flushed before the tantivy commit that makes their documents visible, so every
//! visible document's row is on disk. A re-indexed or deleted clip leaves its old row
//! unreferenced (garbage; [`EmbeddingStore::rows`] minus the catalog's clip count says
//! how much); rewriting the store to drop it is left to an offline compaction.
//!
//! Readers map the file and remap when a slot beyond the mapped length shows up (a commit
//! by this process or by another one, e.g. `storyreel-ingest`). An old mapping stays valid
//! while the file grows, so searches never wait for the remap of another.

use crate::error::RetrievalError;
use memmap2::Mmap;
use std::{
    fs::{File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

const MAGIC: &[u8; 8] = b"SREMB001";
pub const HEADER_BYTES: usize = 64;

/// Read side: the mapped rows.
pub struct EmbeddingStore {
    path: PathBuf,
    dim: usize,
    map: RwLock<Arc<Mmap>>,
}

impl EmbeddingStore {
    /// Opens `path`, creating it with a header for `dim` when missing. An existing file
    /// with another dimension, a bad header or a torn last row is an error.
    pub fn open(path: &Path, dim: usize) -> Result<Self, RetrievalError> {
        if !path.exists() {
            let mut header = [0u8; HEADER_BYTES];
            header[..8].copy_from_slice(MAGIC);
            header[8..12].copy_from_slice(&(dim as u32).to_le_bytes());
            let tmp = path.with_extension("f32.tmp");
            std::fs::write(&tmp, header).map_err(|e| RetrievalError::io("writing", &tmp, e))?;
            std::fs::rename(&tmp, path).map_err(|e| RetrievalError::io("renaming", &tmp, e))?;
        }
        let mut file = File::open(path).map_err(|e| RetrievalError::io("opening", path, e))?;
        let mut header = [0u8; HEADER_BYTES];
        file.read_exact(&mut header)
            .map_err(|e| RetrievalError::io("reading the header of", path, e))?;
        let bad = |message: String| RetrievalError::Catalog {
            dir: path.to_path_buf(),
            message,
        };
        if &header[..8] != MAGIC {
            return Err(bad("embeddings.f32 has no SREMB001 header".into()));
        }
        let stored_dim = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
        if stored_dim != dim {
            return Err(bad(format!(
                "embeddings.f32 holds {stored_dim}-dimensional rows, the encoder makes {dim}"
            )));
        }
        let store = EmbeddingStore {
            path: path.to_path_buf(),
            dim,
            map: RwLock::new(Arc::new(map_file(path)?)),
        };
        Ok(store)
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Complete rows in the current mapping.
    pub fn rows(&self) -> u64 {
        rows_of(self.mapping().len(), self.dim)
    }

    /// The current mapping, remapped first when `needed_slot` is beyond it.
    pub fn mapping_for(&self, needed_slot: u64) -> Result<Arc<Mmap>, RetrievalError> {
        let current = self.mapping();
        if needed_slot < rows_of(current.len(), self.dim) {
            return Ok(current);
        }
        self.refresh()?;
        Ok(self.mapping())
    }

    /// Remaps the file (after this process appended rows, or to see another's).
    pub fn refresh(&self) -> Result<(), RetrievalError> {
        let fresh = Arc::new(map_file(&self.path)?);
        *self.map.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    fn mapping(&self) -> Arc<Mmap> {
        self.map.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Row `slot` of a mapping, when it holds it.
pub fn row(map: &Mmap, dim: usize, slot: u64) -> Option<impl Iterator<Item = f32> + '_> {
    let start = HEADER_BYTES + slot as usize * dim * 4;
    let bytes = map.get(start..start + dim * 4)?;
    Some(
        bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
    )
}

/// Dot product of row `slot` with `query` (the cosine, both being unit vectors).
pub fn dot(map: &Mmap, dim: usize, slot: u64, query: &[f32]) -> Option<f32> {
    let start = HEADER_BYTES + slot as usize * dim * 4;
    let bytes = map.get(start..start + dim * 4)?;
    let mut sums = [0f32; 4];
    for (i, (b, q)) in bytes.chunks_exact(4).zip(query).enumerate() {
        sums[i & 3] += f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * q;
    }
    Some(sums.iter().sum())
}

/// Write side, held together with the tantivy writer.
pub struct EmbeddingAppender {
    file: File,
    path: PathBuf,
    dim: usize,
    next_slot: u64,
}

impl EmbeddingAppender {
    /// Opens the store for appending. A torn last row (a crash mid-append) is cut off: no
    /// committed document can reference it, as rows are flushed before commits.
    pub fn open(path: &Path, dim: usize) -> Result<Self, RetrievalError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| RetrievalError::io("opening for append", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| RetrievalError::io("reading the size of", path, e))?
            .len();
        let rows = rows_of(len as usize, dim);
        let whole = (HEADER_BYTES + rows as usize * dim * 4) as u64;
        if whole != len {
            file.set_len(whole)
                .map_err(|e| RetrievalError::io("truncating a torn row of", path, e))?;
        }
        file.seek(SeekFrom::End(0))
            .map_err(|e| RetrievalError::io("seeking", path, e))?;
        Ok(EmbeddingAppender {
            file,
            path: path.to_path_buf(),
            dim,
            next_slot: rows,
        })
    }

    /// Appends one row and returns its slot.
    pub fn append(&mut self, embedding: &[f32]) -> Result<u64, RetrievalError> {
        if embedding.len() != self.dim {
            return Err(RetrievalError::Internal(format!(
                "embedding of {} values, the store holds {}",
                embedding.len(),
                self.dim
            )));
        }
        let mut bytes = Vec::with_capacity(self.dim * 4);
        for v in embedding {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.file
            .write_all(&bytes)
            .map_err(|e| RetrievalError::io("appending to", &self.path, e))?;
        let slot = self.next_slot;
        self.next_slot += 1;
        Ok(slot)
    }

    /// Flushes the appended rows to disk (before the index commit that references them).
    pub fn sync(&mut self) -> Result<(), RetrievalError> {
        self.file
            .sync_data()
            .map_err(|e| RetrievalError::io("syncing", &self.path, e))
    }
}

fn map_file(path: &Path) -> Result<Mmap, RetrievalError> {
    let file = File::open(path).map_err(|e| RetrievalError::io("opening", path, e))?;
    // SAFETY: the file is only ever appended to (never truncated below a mapped length
    // except a torn row, which no document references), so the mapped bytes stay valid.
    unsafe { Mmap::map(&file) }.map_err(|e| RetrievalError::io("memory-mapping", path, e))
}

fn rows_of(len: usize, dim: usize) -> u64 {
    (len.saturating_sub(HEADER_BYTES) / (dim * 4)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_append_remap_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("embeddings.f32");
        let store = EmbeddingStore::open(&path, 3).unwrap();
        assert_eq!(store.rows(), 0);
        let mut writer = EmbeddingAppender::open(&path, 3).unwrap();
        assert_eq!(writer.append(&[1.0, 0.0, 0.0]).unwrap(), 0);
        assert_eq!(writer.append(&[0.0, 0.6, 0.8]).unwrap(), 1);
        writer.sync().unwrap();
        // The old mapping does not hold slot 1; asking for it remaps.
        let map = store.mapping_for(1).unwrap();
        assert_eq!(store.rows(), 2);
        assert_eq!(row(&map, 3, 1).unwrap().collect::<Vec<_>>(), vec![0.0, 0.6, 0.8]);
        assert!((dot(&map, 3, 1, &[0.0, 1.0, 0.0]).unwrap() - 0.6).abs() < 1e-6);
        assert!(dot(&map, 3, 2, &[0.0, 1.0, 0.0]).is_none());
        drop(writer);

        // A torn row is cut off by the next writer; the dimension is checked.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&[1, 2, 3])
            .unwrap();
        let mut writer = EmbeddingAppender::open(&path, 3).unwrap();
        assert_eq!(writer.append(&[0.0, 0.0, 1.0]).unwrap(), 2);
        let err = EmbeddingStore::open(&path, 4).err().unwrap().to_string();
        assert!(err.contains("3-dimensional"), "{err}");
    }
}

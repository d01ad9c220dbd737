//! The KV cache: per layer, one contiguous key and one value buffer of shape
//! `(batch, num_key_value_heads, capacity, head_dim)`, preallocated and written in place.
//!
//! Attention reads a narrowed view of the first `len` positions, so no step copies what is
//! already cached. A forward call past the capacity grows the buffers (doubling); callers
//! that know the final length (prompt + max new tokens) allocate it up front.
//! Rows can be dropped ([`KvCache::retain_rows`]) when sequences of a batch finish. A row
//! can start from keys and values computed earlier ([`KvCache::write_row`]) and give its
//! own back ([`KvCache::gather_row`]): prefix reuse across calls.

use super::config::LlamaConfig;
use tch::{Device, Kind, Tensor};

#[derive(Debug)]
pub struct KvCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    batch: i64,
    len: i64,
    capacity: i64,
}

impl KvCache {
    /// An empty cache for `batch` rows of up to `capacity` positions.
    pub fn new(config: &LlamaConfig, batch: usize, capacity: usize, device: Device, kind: Kind) -> Self {
        let shape = [
            batch as i64,
            config.num_key_value_heads as i64,
            capacity as i64,
            config.head_dim as i64,
        ];
        let alloc = || {
            (0..config.num_hidden_layers)
                .map(|_| Tensor::zeros(shape, (kind, device)))
                .collect::<Vec<_>>()
        };
        KvCache {
            keys: alloc(),
            values: alloc(),
            batch: batch as i64,
            len: 0,
            capacity: capacity as i64,
        }
    }

    /// Positions cached so far (the padded length for a left-padded batch).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn batch_size(&self) -> usize {
        self.batch as usize
    }

    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    pub fn device(&self) -> Device {
        self.keys.first().map_or(Device::Cpu, Tensor::device)
    }

    pub fn num_layers(&self) -> usize {
        self.keys.len()
    }

    /// Forgets everything cached, keeping the buffers.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps only the given batch rows, in that order (e.g. when sequences finish).
    pub fn retain_rows(&mut self, rows: &[usize]) {
        let device = self.device();
        let index: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let index = Tensor::from_slice(&index).to_device(device);
        for t in self.keys.iter_mut().chain(self.values.iter_mut()) {
            // copies the filled positions only, not the whole capacity
            let mut shape = t.size();
            shape[0] = index.size()[0];
            let kept = Tensor::zeros(&shape, (t.kind(), t.device()));
            kept.narrow(2, 0, self.len)
                .copy_(&t.narrow(2, 0, self.len).index_select(0, &index));
            *t = kept;
        }
        self.batch = rows.len() as i64;
    }

    /// Makes room for `extra` more positions, growing the buffers if needed.
    pub(crate) fn reserve(&mut self, extra: i64) {
        let needed = self.len + extra;
        if needed <= self.capacity {
            return;
        }
        let capacity = needed.max(2 * self.capacity);
        for t in self.keys.iter_mut().chain(self.values.iter_mut()) {
            let mut shape = t.size();
            shape[2] = capacity;
            let grown = Tensor::zeros(&shape, (t.kind(), t.device()));
            grown.narrow(2, 0, self.len).copy_(&t.narrow(2, 0, self.len));
            *t = grown;
        }
        self.capacity = capacity;
    }

    /// Writes one layer's new keys and values `(B, n_kv, T, D)` after the cached positions and
    /// returns views of everything cached for that layer, new positions included.
    /// [`KvCache::advance`] moves the length once every layer has written.
    pub(crate) fn update(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> (Tensor, Tensor) {
        let t = k.size()[2];
        let total = self.len + t;
        self.keys[layer].narrow(2, self.len, t).copy_(k);
        self.values[layer].narrow(2, self.len, t).copy_(v);
        (
            self.keys[layer].narrow(2, 0, total),
            self.values[layer].narrow(2, 0, total),
        )
    }

    pub(crate) fn advance(&mut self, t: i64) {
        self.len += t;
    }

    /// Sets the cached length (positions the next forward call appends after), for a cache
    /// whose rows were filled by [`KvCache::write_row`].
    pub(crate) fn set_len(&mut self, len: usize) -> Result<(), String> {
        if len as i64 > self.capacity {
            return Err(format!("length {len} is past the capacity {}", self.capacity));
        }
        self.len = len as i64;
        Ok(())
    }

    /// Writes per-layer keys and values `(1, n_kv, len, head_dim)` into row `row`, at
    /// positions `end - len..end`.
    pub(crate) fn write_row(
        &mut self,
        row: usize,
        end: usize,
        keys: &[Tensor],
        values: &[Tensor],
    ) -> Result<(), String> {
        if keys.len() != self.keys.len() || values.len() != self.values.len() {
            return Err(format!(
                "holds {} layers, the model has {}",
                keys.len(),
                self.keys.len()
            ));
        }
        let len = keys.first().map_or(0, |k| k.size()[2]);
        let end = end as i64;
        if row as i64 >= self.batch || len > end || end > self.capacity {
            return Err(format!(
                "{len} positions ending at {end} do not fit row {row} of a ({}, {}) cache",
                self.batch, self.capacity
            ));
        }
        for (dst, src) in self
            .keys
            .iter_mut()
            .zip(keys)
            .chain(self.values.iter_mut().zip(values))
        {
            let mut expected = dst.size();
            (expected[0], expected[2]) = (1, len);
            if src.size() != expected || src.device() != dst.device() {
                return Err(format!(
                    "a layer is {:?} on {:?}, expected {expected:?} on {:?}",
                    src.size(),
                    src.device(),
                    dst.device()
                ));
            }
            dst.narrow(0, row as i64, 1).narrow(2, end - len, len).copy_(src);
        }
        Ok(())
    }

    /// Copies the keys and values of row `row` at the given positions `(n,)` (int64), per
    /// layer `(1, n_kv, n, head_dim)`.
    pub(crate) fn gather_row(&self, row: usize, positions: &Tensor) -> (Vec<Tensor>, Vec<Tensor>) {
        let gather = |ts: &[Tensor]| {
            ts.iter()
                .map(|t| t.narrow(0, row as i64, 1).index_select(2, positions))
                .collect()
        };
        (gather(&self.keys), gather(&self.values))
    }
}

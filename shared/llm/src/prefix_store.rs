//! The worker's store of KV caches for prefix reuse, keyed by the job's `prefix_key`.
//!
//! A request that decodes several items whose prompts grow (story-llm's scenes) gives
//! every item the same key; the worker keeps the cache each item leaves and hands it to
//! the next item with that key, so only the new tail of the prompt is prefilled
//! ([`storyreel_nn::generation::generate_reusing`]). Entries are bounded in bytes and the
//! least recently used go first; a key holds one entry (the latest item's), since a
//! later prompt extends the latest one. Keys are chosen by the services, per request,
//! so requests never read each other's entries: an output does not depend on which
//! requests ran before it.

use std::collections::HashMap;
use storyreel_nn::generation::CachedPrefix;

struct Entry {
    prefix: CachedPrefix,
    bytes: usize,
    last_used: u64,
}

/// Least-recently-used map from prefix key to cache, within a byte budget. Lives on the
/// worker thread (the tensors are not `Sync`).
pub struct PrefixStore {
    entries: HashMap<String, Entry>,
    budget_bytes: usize,
    bytes: usize,
    clock: u64,
}

impl PrefixStore {
    /// A store of at most `budget_bytes`; 0 keeps nothing (reuse off).
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            entries: HashMap::new(),
            budget_bytes,
            bytes: 0,
            clock: 0,
        }
    }

    /// Whether anything can be kept (a budget of 0 turns reuse off).
    pub fn enabled(&self) -> bool {
        self.budget_bytes > 0
    }

    /// The cache kept under `key`. (Recency is that of the last [`PrefixStore::put`]: a
    /// used entry is replaced by the cache its job leaves.)
    pub fn get(&self, key: &str) -> Option<&CachedPrefix> {
        self.entries.get(key).map(|e| &e.prefix)
    }

    /// Keeps `prefix` under `key` (replacing what was there), then drops least recently
    /// used entries until the store is within its budget. A prefix larger than the whole
    /// budget is not kept.
    pub fn put(&mut self, key: &str, prefix: CachedPrefix) {
        self.remove(key);
        let bytes = prefix.byte_size();
        if bytes > self.budget_bytes || prefix.is_empty() {
            return;
        }
        while self.bytes + bytes > self.budget_bytes {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.remove(&k),
                None => break,
            }
        }
        self.clock += 1;
        self.bytes += bytes;
        self.entries.insert(
            key.to_string(),
            Entry {
                prefix,
                bytes,
                last_used: self.clock,
            },
        );
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= e.bytes;
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    /// A one-layer prefix of `len` tokens: 2 * len * 4 f32 = 32 * len bytes.
    fn prefix(len: usize) -> CachedPrefix {
        let kv = || {
            vec![Tensor::zeros(
                [1, 1, len as i64, 4],
                (Kind::Float, tch::Device::Cpu),
            )]
        };
        CachedPrefix::from_parts(vec![7; len], kv(), kv()).unwrap()
    }

    #[test]
    fn the_least_recently_stored_key_goes_first_when_over_budget() {
        let mut store = PrefixStore::new(32 * 25);
        store.put("a", prefix(10));
        store.put("b", prefix(10));
        assert_eq!(store.bytes(), 32 * 20);
        store.put("a", prefix(12)); // replaces a, now the most recent
        assert_eq!(store.len(), 2);
        store.put("c", prefix(5)); // 12 + 10 + 5 > 25: b goes
        assert!(store.get("b").is_none());
        assert_eq!(store.get("a").map(CachedPrefix::len), Some(12));
        assert_eq!(store.get("c").map(CachedPrefix::len), Some(5));
        assert_eq!(store.bytes(), 32 * 17);
    }

    #[test]
    fn a_prefix_over_the_whole_budget_or_a_zero_budget_keeps_nothing() {
        let mut store = PrefixStore::new(32 * 4);
        store.put("a", prefix(3));
        store.put("a", prefix(5));
        assert!(store.is_empty(), "the larger prefix replaced and was not kept");
        assert_eq!(store.bytes(), 0);
        let mut off = PrefixStore::new(0);
        assert!(!off.enabled());
        off.put("a", prefix(1));
        assert!(off.is_empty());
    }
}

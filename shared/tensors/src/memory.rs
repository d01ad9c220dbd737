//! In-process backend with the Redis backend's semantics: same encoding, checksums, size
//! limit, TTLs (checked on access) and first-writer-wins cache. Used by embedded mode and
//! tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::cache_key::CacheKey;
use crate::config::StoreConfig;
use crate::entry::{self, CACHE_TENSOR_GRACE, Limits};
use crate::error::Result;
use crate::keys::{KeySchema, TensorKey};
use crate::manifest;
use crate::store::{NamedRef, TensorStore};
use crate::tensor::Tensor;
use crate::tensor_ref::TensorRef;

/// Sweep expired entries after this many writes, so unread values do not pile up.
const SWEEP_EVERY: u64 = 256;

/// A `TensorStore` in a mutex-guarded map (no await is held across the lock).
pub struct MemoryStore {
    keys: KeySchema,
    limits: Limits,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Slot>,
    writes: u64,
}

struct Slot {
    bytes: Bytes,
    expires: Instant,
}

impl Inner {
    /// The live value at `key`; an expired one is removed, as Redis does on access.
    fn live(&mut self, key: &str, now: Instant) -> Option<Bytes> {
        match self.map.get(key) {
            Some(slot) if slot.expires > now => Some(slot.bytes.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: String, bytes: Bytes, expires: Instant, now: Instant) {
        self.map.insert(key, Slot { bytes, expires });
        self.writes += 1;
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.map.retain(|_, s| s.expires > now);
        }
    }
}

impl MemoryStore {
    /// A store with `config`'s prefix, default TTL and size limit (the backend field and
    /// the redis table are ignored).
    pub fn new(config: &StoreConfig) -> Result<Self> {
        Ok(MemoryStore {
            keys: KeySchema::new(config.key_prefix.clone())?,
            limits: Limits {
                default_ttl: config.default_ttl(),
                max_value_bytes: config.max_value_bytes,
            },
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Number of live values (for tests and metrics).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock().map.values().filter(|s| s.expires > now).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated (each operation
        // is a single insert/remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fetch(&self, key: &str) -> Result<Bytes> {
        self.lock()
            .live(key, Instant::now())
            .ok_or_else(|| entry::not_found(key))
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore {
            keys: KeySchema::default(),
            limits: Limits {
                default_ttl: StoreConfig::default().default_ttl(),
                max_value_bytes: StoreConfig::default().max_value_bytes,
            },
            inner: Mutex::new(Inner::default()),
        }
    }
}

#[async_trait]
impl TensorStore for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn keys(&self) -> &KeySchema {
        &self.keys
    }

    fn default_ttl(&self) -> Duration {
        self.limits.default_ttl
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn put(&self, key: &TensorKey, tensor: &Tensor, ttl: Option<Duration>) -> Result<TensorRef> {
        let ttl = self.limits.ttl(ttl)?;
        let p = self.limits.prepare(&self.keys, key, tensor)?;
        let now = Instant::now();
        self.lock().insert(p.r.key.clone(), p.bytes, now + ttl, now);
        Ok(p.r)
    }

    async fn get(&self, r: &TensorRef) -> Result<Tensor> {
        let key = self.keys.parse(&r.key)?;
        entry::open_checked(r, self.fetch(key.as_str())?)
    }

    async fn get_key(&self, key: &TensorKey) -> Result<Tensor> {
        entry::open_unchecked(key, self.fetch(key.as_str())?)
    }

    async fn put_many(&self, items: &[(TensorKey, Tensor)], ttl: Option<Duration>) -> Result<Vec<TensorRef>> {
        let ttl = self.limits.ttl(ttl)?;
        let prepared = items
            .iter()
            .map(|(k, t)| self.limits.prepare(&self.keys, k, t))
            .collect::<Result<Vec<_>>>()?;
        let now = Instant::now();
        let mut inner = self.lock();
        Ok(prepared
            .into_iter()
            .map(|p| {
                inner.insert(p.r.key.clone(), p.bytes, now + ttl, now);
                p.r
            })
            .collect())
    }

    async fn get_many(&self, refs: &[TensorRef]) -> Result<Vec<Tensor>> {
        for r in refs {
            self.keys.parse(&r.key)?;
        }
        // Take every value under one lock (a consistent snapshot, like MGET), decode after.
        let fetched = {
            let now = Instant::now();
            let mut inner = self.lock();
            refs.iter()
                .map(|r| inner.live(&r.key, now).ok_or_else(|| entry::not_found(&r.key)))
                .collect::<Result<Vec<_>>>()?
        };
        refs.iter()
            .zip(fetched)
            .map(|(r, bytes)| entry::open_checked(r, bytes))
            .collect()
    }

    async fn exists(&self, key: &TensorKey) -> Result<bool> {
        Ok(self.lock().live(key.as_str(), Instant::now()).is_some())
    }

    async fn delete(&self, key: &TensorKey) -> Result<bool> {
        let mut inner = self.lock();
        let live = inner.live(key.as_str(), Instant::now()).is_some();
        inner.map.remove(key.as_str());
        Ok(live)
    }

    async fn put_cache(
        &self,
        key: &CacheKey,
        outputs: &[(String, Tensor)],
        ttl: Option<Duration>,
    ) -> Result<Vec<NamedRef>> {
        let ttl = self.limits.ttl(ttl)?;
        let prepared = self.limits.prepare_cache(&self.keys, key, outputs)?;
        let refs: Vec<NamedRef> = prepared.iter().map(|(n, p)| (n.clone(), p.r.clone())).collect();
        let manifest_bytes = Bytes::from(manifest::encode(&refs)?);

        let now = Instant::now();
        let mut inner = self.lock();
        if let Some(existing) = inner.live(key.as_str(), now) {
            // First writer wins: keep what is stored, hand back its refs.
            return manifest::decode(&self.keys, key, &existing);
        }
        for (_, p) in prepared {
            inner.insert(p.r.key, p.bytes, now + ttl + CACHE_TENSOR_GRACE, now);
        }
        inner.insert(key.as_str().to_string(), manifest_bytes, now + ttl, now);
        Ok(refs)
    }

    async fn get_cache(&self, key: &CacheKey) -> Result<Option<Vec<NamedRef>>> {
        let now = Instant::now();
        let mut inner = self.lock();
        let Some(bytes) = inner.live(key.as_str(), now) else {
            return Ok(None);
        };
        let refs = manifest::decode(&self.keys, key, &bytes)?;
        if refs.iter().all(|(_, r)| inner.live(&r.key, now).is_some()) {
            Ok(Some(refs))
        } else {
            // A tensor outlived by its manifest: drop the entry so it can be rewritten.
            inner.map.remove(key.as_str());
            Ok(None)
        }
    }
}

//! The `TensorStore` trait every stage uses to exchange tensors, and `open_store`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::cache_key::CacheKey;
use crate::config::{Backend, StoreConfig};
use crate::error::Result;
use crate::keys::{KeySchema, TensorKey};
use crate::memory::MemoryStore;
use crate::redis_store::RedisStore;
use crate::tensor::Tensor;
use crate::tensor_ref::TensorRef;

/// A named output of a stage, as stored in a cache entry.
pub type NamedRef = (String, TensorRef);

/// Where stages put and get tensors. Object safe: hold it as `Arc<dyn TensorStore>`.
///
/// Values are safetensors bytes checked by xxh3-128 (see [`crate::codec`]). Every write
/// carries a TTL; `None` means the store's default (24 h unless configured).
#[async_trait]
pub trait TensorStore: Send + Sync {
    /// `"redis"` or `"memory"`, for logs and health details.
    fn backend(&self) -> &'static str;

    /// The key schema (prefix) of this store; build keys with it.
    fn keys(&self) -> &KeySchema;

    /// TTL used when a write passes `None`.
    fn default_ttl(&self) -> Duration;

    /// Round trip to the backend, for readiness probes.
    async fn ping(&self) -> Result<()>;

    /// Store `tensor` at `key` (overwriting) and return its ref.
    async fn put(&self, key: &TensorKey, tensor: &Tensor, ttl: Option<Duration>) -> Result<TensorRef>;

    /// Fetch the tensor `r` points at, checking length, checksum, dtype and shape against
    /// `r`. A missing key is [`crate::Error::NotFound`].
    async fn get(&self, r: &TensorRef) -> Result<Tensor>;

    /// Fetch by key alone (no checksum to compare with; the bytes are still validated).
    async fn get_key(&self, key: &TensorKey) -> Result<Tensor>;

    /// Store several tensors in one round trip; all or none become visible.
    async fn put_many(&self, items: &[(TensorKey, Tensor)], ttl: Option<Duration>) -> Result<Vec<TensorRef>>;

    /// Fetch several tensors in one round trip, in the order of `refs`.
    async fn get_many(&self, refs: &[TensorRef]) -> Result<Vec<Tensor>>;

    /// Whether `key` holds a value now.
    async fn exists(&self, key: &TensorKey) -> Result<bool>;

    /// Remove `key`; true when something was removed.
    async fn delete(&self, key: &TensorKey) -> Result<bool>;

    /// Store a stage's outputs under a content-addressed cache key.
    ///
    /// The first writer wins: if an entry already exists, nothing is overwritten and the
    /// existing entry's refs are returned (use those, not your own tensors). Readers never
    /// see a half-written entry.
    async fn put_cache(
        &self,
        key: &CacheKey,
        outputs: &[(String, Tensor)],
        ttl: Option<Duration>,
    ) -> Result<Vec<NamedRef>>;

    /// The outputs stored under `key`, or `None` on a miss (never written, expired, or
    /// one of its tensors is gone).
    async fn get_cache(&self, key: &CacheKey) -> Result<Option<Vec<NamedRef>>>;
}

/// Build the backend `config.backend` names, after validating the config.
pub async fn open_store(config: &StoreConfig) -> Result<Arc<dyn TensorStore>> {
    config.validate()?;
    Ok(match config.backend {
        Backend::Redis => Arc::new(RedisStore::connect(config).await?),
        Backend::Memory => Arc::new(MemoryStore::new(config)?),
    })
}

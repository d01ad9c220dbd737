//! A stage's content-addressed output cache (DESIGN.md §4): the same inputs on the same
//! model are answered from the tensor store instead of being computed again.
//!
//! A stage builds its entry key from the model identity, the canonical parameters of the
//! call and the checksums of its input tensors ([`StageCache::key`]); a call that asks to
//! bypass the cache (`context.bypass_cache`) or a stage configured without it gets no key,
//! and stores its outputs under the job instead. [`StageCache::lookup`] answers a hit or a
//! miss, [`StageCache::fill`] stores the outputs of a miss (the first writer wins: use the
//! refs it returns). Every call is counted in `storyreel_stage_cache_requests_total` by
//! `stage` and `result`: `hit`, `miss`, `unfit` (an entry that does not fit its call: the
//! stage computes again) or `off`.

use crate::{CacheKey, NamedRef, Result, Tensor, TensorRef, TensorStore};
use serde::Serialize;
use std::sync::Arc;

/// The counter of cache lookups.
pub const CACHE_REQUESTS: &str = "storyreel_stage_cache_requests_total";

/// One stage's view of the cache.
#[derive(Clone)]
pub struct StageCache {
    store: Arc<dyn TensorStore>,
    stage: &'static str,
    enabled: bool,
}

impl StageCache {
    /// `enabled`: the stage's `cache_outputs` setting.
    pub fn new(store: Arc<dyn TensorStore>, stage: &'static str, enabled: bool) -> Self {
        Self {
            store,
            stage,
            enabled,
        }
    }

    pub fn store(&self) -> &Arc<dyn TensorStore> {
        &self.store
    }

    pub fn stage(&self) -> &'static str {
        self.stage
    }

    /// The entry key of a call, or `None` when the cache is off for it (configured off,
    /// or `bypass`), counted as `off`. `model` identifies the model exactly (name,
    /// version and weights digest); `params` is everything else that shapes the outputs.
    pub fn key(
        &self,
        model: &str,
        params: &impl Serialize,
        inputs: &[&TensorRef],
        bypass: bool,
    ) -> Result<Option<CacheKey>> {
        if !self.enabled || bypass {
            self.count("off");
            return Ok(None);
        }
        let checksums: Vec<&str> = inputs.iter().map(|r| r.checksum.as_str()).collect();
        self.store
            .keys()
            .cache(self.stage, model, params, &checksums)
            .map(Some)
    }

    /// The outputs stored under `key`: `Some` on a hit, `None` on a miss (never written,
    /// expired, or a tensor of it gone).
    pub async fn lookup(&self, key: &CacheKey) -> Result<Option<Vec<NamedRef>>> {
        let found = self.store.get_cache(key).await?;
        self.count(if found.is_some() { "hit" } else { "miss" });
        Ok(found)
    }

    /// Stores `outputs` as the entry at `key` and returns the entry's refs (another
    /// call's, if it stored the same entry first).
    pub async fn fill(&self, key: &CacheKey, outputs: &[(String, Tensor)]) -> Result<Vec<NamedRef>> {
        self.store.put_cache(key, outputs, None).await
    }

    /// Counts a lookup whose entry did not fit its call (the stage computes again).
    pub fn count_unfit(&self) {
        self.count("unfit");
    }

    fn count(&self, result: &'static str) {
        metrics::counter!(CACHE_REQUESTS, "stage" => self.stage, "result" => result).increment(1);
    }
}

/// The ref named `name` in an entry.
pub fn find_output(refs: &[NamedRef], name: &str) -> Option<TensorRef> {
    refs.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryStore, StoreConfig};

    fn cache(enabled: bool) -> StageCache {
        let store = Arc::new(MemoryStore::new(&StoreConfig::default()).unwrap());
        StageCache::new(store, "test", enabled)
    }

    #[tokio::test]
    async fn a_filled_entry_is_a_hit_for_the_same_call_only() {
        let cache = cache(true);
        let key = cache.key("m:1:abc", &("a", 1), &[], false).unwrap().unwrap();
        assert!(cache.lookup(&key).await.unwrap().is_none());
        let tensor = Tensor::from_slice(vec![2], &[1.0f32, 2.0]).unwrap();
        let refs = cache.fill(&key, &[("out".into(), tensor)]).await.unwrap();
        let hit = cache.lookup(&key).await.unwrap().unwrap();
        assert_eq!(hit, refs);
        assert!(find_output(&hit, "out").is_some());
        let other = cache.key("m:1:abc", &("a", 2), &[], false).unwrap().unwrap();
        assert_ne!(other, key);
        let retrained = cache.key("m:1:abd", &("a", 1), &[], false).unwrap().unwrap();
        assert_ne!(retrained, key);
    }

    #[test]
    fn bypass_and_disabled_give_no_key() {
        assert!(cache(true).key("m", &1, &[], true).unwrap().is_none());
        assert!(cache(false).key("m", &1, &[], false).unwrap().is_none());
    }
}

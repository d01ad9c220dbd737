//! A language-model stage's outputs in the stage cache (DESIGN.md §4): a finished story,
//! rewrite or keyword list is kept as JSON bytes in a u8 tensor under a content-addressed
//! key over the model identity and the request's canonical parameters, so the same
//! request on the same model is answered without decoding again.
//!
//! Only seeded requests are cached: a request whose seed was drawn at random has asked for
//! a new sample. `context.bypass_cache` and `cache_outputs = false` skip the cache. The
//! cache is an optimisation: a store that cannot be reached or an entry that does not
//! decode is logged and the request is computed as if there were no entry.

use crate::seed::SeedOrigin;
use serde::{Serialize, de::DeserializeOwned};
use storyreel_runtime::{ModelInfo, ModelState};
use storyreel_tensors::{CacheKey, StageCache, Tensor, stage_cache::find_output};
use tokio::sync::watch;

/// The entry's one output.
const OUTPUT: &str = "output";

#[derive(Clone)]
pub struct OutputCache {
    cache: StageCache,
}

impl OutputCache {
    pub fn new(cache: StageCache) -> Self {
        Self { cache }
    }

    /// The entry key of a request with `params` (everything but the model that shapes the
    /// output), or `None` when it is not cached: bypassed, unseeded, or no model ready.
    pub fn key(
        &self,
        state: &watch::Receiver<ModelState>,
        params: &impl Serialize,
        seed_origin: SeedOrigin,
        bypass: bool,
    ) -> Option<(CacheKey, ModelInfo)> {
        let ModelState::Ready(model) = state.borrow().clone() else {
            return None;
        };
        let bypass = bypass || seed_origin == SeedOrigin::Random;
        match self.cache.key(&model.cache_identity(), params, &[], bypass) {
            Ok(key) => key.map(|key| (key, model)),
            Err(err) => {
                tracing::warn!(error = %err, stage = self.cache.stage(), "no cache key; computing");
                None
            }
        }
    }

    /// The output stored under `key`, if any.
    pub async fn get<T: DeserializeOwned>(&self, key: &CacheKey) -> Option<T> {
        let refs = match self.cache.lookup(key).await {
            Ok(refs) => refs?,
            Err(err) => {
                tracing::warn!(error = %err, %key, "the stage cache cannot be read; computing");
                return None;
            }
        };
        let decoded = match find_output(&refs, OUTPUT) {
            Some(output) => match self.cache.store().get(&output).await {
                Ok(tensor) => serde_json::from_slice(tensor.as_bytes()).map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            },
            None => Err(format!("no `{OUTPUT}` in the entry")),
        };
        decoded
            .inspect_err(|err| {
                self.cache.count_unfit();
                tracing::warn!(%err, %key, "a stage cache entry does not decode; computing");
            })
            .ok()
    }

    /// Stores `output` under `key` (the first writer wins).
    pub async fn put<T: Serialize>(&self, key: &CacheKey, output: &T) {
        let stored = async {
            let bytes = serde_json::to_vec(output).map_err(|e| e.to_string())?;
            let tensor = Tensor::from_slice(vec![bytes.len()], &bytes).map_err(|e| e.to_string())?;
            self.cache
                .fill(key, &[(OUTPUT.to_string(), tensor)])
                .await
                .map_err(|e| e.to_string())
        };
        if let Err(err) = stored.await {
            tracing::warn!(%err, %key, "the output was not cached");
        }
    }
}

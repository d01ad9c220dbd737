//! [`CachedPromptRewriter`]: any [`PromptRewriter`] behind the stage cache
//! (`storyreel_llm::OutputCache`).
//!
//! A seeded Rewrite or Keywords call whose result is in the cache is answered from it
//! (`stats.cache_hit`) without the model; otherwise it runs on the inner service and its
//! result is kept. The keys cover the model identity and everything that shapes the
//! result: the texts and their indices, title, style, budgets, seed, sampling and the
//! configured negative prompt.

use crate::{
    error::PromptRewriterError,
    service::{
        JobInfo, Keywords, KeywordsRequest, ModelInfo, ModelState, PromptRewriter, Rewrite, RewriteRequest,
        SceneKeywords, ScenePrompt, SceneText, SeedOrigin, StageStats, TokenUsage,
    },
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::{future::Future, sync::Arc};
use storyreel_llm::{OutputCache, Sampling};
use tokio::sync::watch;

/// The entry layout; bumped when what an entry keeps changes.
const LAYOUT: u32 = 1;

#[derive(Serialize)]
struct RewriteKey<'a> {
    layout: u32,
    title: &'a str,
    scenes: &'a [SceneText],
    style: Option<&'a str>,
    max_clip_tokens: usize,
    negative_prompt: &'a str,
    seed: u64,
    sampling: &'a Sampling,
}

#[derive(Serialize)]
struct KeywordsKey<'a> {
    layout: u32,
    prompts: &'a [SceneText],
    max_keywords: usize,
    seed: u64,
    sampling: &'a Sampling,
}

/// What an entry keeps of a result: the items, the seed and the tokens they took.
#[derive(Serialize, Deserialize)]
struct Kept<T> {
    items: Vec<T>,
    seed: u64,
    usage: TokenUsage,
}

fn hit() -> StageStats {
    StageStats {
        cache_hit: true,
        ..StageStats::default()
    }
}

pub struct CachedPromptRewriter {
    inner: Arc<dyn PromptRewriter>,
    cache: OutputCache,
    /// The configured negative prompt every scene gets: part of a rewrite's key.
    negative_prompt: String,
}

/// A result as the cache keeps it, and back.
trait Cacheable: Sized {
    type Item: Serialize + DeserializeOwned;
    fn keep(&self) -> Kept<Self::Item>;
    fn from_kept(kept: Kept<Self::Item>, model: ModelInfo) -> Self;
}

impl Cacheable for Rewrite {
    type Item = ScenePrompt;
    fn keep(&self) -> Kept<ScenePrompt> {
        Kept {
            items: self.prompts.clone(),
            seed: self.seed,
            usage: self.usage,
        }
    }
    fn from_kept(kept: Kept<ScenePrompt>, model: ModelInfo) -> Self {
        Rewrite {
            prompts: kept.items,
            model,
            usage: kept.usage,
            seed: kept.seed,
            stats: hit(),
        }
    }
}

impl Cacheable for Keywords {
    type Item = SceneKeywords;
    fn keep(&self) -> Kept<SceneKeywords> {
        Kept {
            items: self.keywords.clone(),
            seed: self.seed,
            usage: self.usage,
        }
    }
    fn from_kept(kept: Kept<SceneKeywords>, model: ModelInfo) -> Self {
        Keywords {
            keywords: kept.items,
            model,
            usage: kept.usage,
            seed: kept.seed,
            stats: hit(),
        }
    }
}

impl CachedPromptRewriter {
    pub fn new(inner: Arc<dyn PromptRewriter>, cache: OutputCache, negative_prompt: &str) -> Self {
        Self {
            inner,
            cache,
            negative_prompt: negative_prompt.to_string(),
        }
    }

    /// The result of a call of `items` texts keyed by `params`: from its entry, else
    /// computed and kept.
    async fn through<R: Cacheable>(
        &self,
        params: &impl Serialize,
        seed_origin: SeedOrigin,
        job: &JobInfo,
        items: usize,
        compute: impl Future<Output = Result<R, PromptRewriterError>>,
    ) -> Result<R, PromptRewriterError> {
        let state = self.inner.model_state();
        let Some((key, model)) = self.cache.key(&state, params, seed_origin, job.bypass_cache) else {
            return compute.await;
        };
        job.check_model_pin(&model)?;
        if let Some(kept) = self.cache.get::<Kept<R::Item>>(&key).await
            && kept.items.len() == items
        {
            return Ok(R::from_kept(kept, model));
        }
        let result = compute.await?;
        self.cache.put(&key, &result.keep()).await;
        Ok(result)
    }
}

#[async_trait::async_trait]
impl PromptRewriter for CachedPromptRewriter {
    async fn rewrite(&self, request: RewriteRequest) -> Result<Rewrite, PromptRewriterError> {
        let params = RewriteKey {
            layout: LAYOUT,
            title: &request.title,
            scenes: &request.scenes,
            style: request.style.as_deref(),
            max_clip_tokens: request.max_clip_tokens,
            negative_prompt: &self.negative_prompt,
            seed: request.seed,
            sampling: &request.sampling,
        };
        let (origin, job, items) = (request.seed_origin, request.job.clone(), request.scenes.len());
        self.through(&params, origin, &job, items, self.inner.rewrite(request.clone()))
            .await
    }

    async fn keywords(&self, request: KeywordsRequest) -> Result<Keywords, PromptRewriterError> {
        let params = KeywordsKey {
            layout: LAYOUT,
            prompts: &request.prompts,
            max_keywords: request.max_keywords,
            seed: request.seed,
            sampling: &request.sampling,
        };
        let (origin, job, items) = (request.seed_origin, request.job.clone(), request.prompts.len());
        self.through(&params, origin, &job, items, self.inner.keywords(request.clone()))
            .await
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.inner.model_state()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelBackedPromptRewriter, PromptRewriterConfig, compose::TokenCounter};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use storyreel_llm::ModelWorker;
    use storyreel_tensors::{MemoryStore, StageCache, StoreConfig};

    struct WordCounter;

    impl TokenCounter for WordCounter {
        fn count(&self, text: &str) -> Result<usize, String> {
            Ok(text.split_whitespace().count() + 2)
        }
    }

    /// A cached rewriter over a scripted model that counts the fields it writes.
    fn rewriter() -> (CachedPromptRewriter, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let worker = ModelWorker::scripted(move |job| {
            counter.fetch_add(1, Ordering::SeqCst);
            match job.prompt.assistant_prefix.as_str() {
                "Description:" => " A red fox runs along the river bank.".into(),
                "Colours:" => " red, green".into(),
                _ => " fox, river".into(),
            }
        });
        let config = PromptRewriterConfig::default();
        let inner = Arc::new(ModelBackedPromptRewriter::with_parts(
            worker,
            Arc::new(WordCounter),
            &config,
        ));
        let store = Arc::new(MemoryStore::new(&StoreConfig::default()).unwrap());
        let cache = OutputCache::new(StageCache::new(store, "prompt-rewriter", true));
        (
            CachedPromptRewriter::new(inner, cache, &config.negative_prompt),
            calls,
        )
    }

    fn sampling() -> Sampling {
        Sampling {
            temperature: 0.2,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.1,
            max_new_tokens: 16,
        }
    }

    fn rewrite(seed_origin: SeedOrigin, bypass_cache: bool) -> RewriteRequest {
        RewriteRequest {
            title: "The fox and the river".into(),
            scenes: vec![SceneText {
                index: 0,
                text: "A red fox runs along the river.".into(),
            }],
            style: None,
            max_clip_tokens: 77,
            seed: 3,
            seed_origin,
            sampling: sampling(),
            deadline: None,
            job: JobInfo {
                bypass_cache,
                ..JobInfo::default()
            },
        }
    }

    #[tokio::test]
    async fn a_repeated_seeded_rewrite_is_a_cache_hit_and_bypass_recomputes() {
        let (rewriter, calls) = rewriter();
        let first = rewriter
            .rewrite(rewrite(SeedOrigin::Request, false))
            .await
            .unwrap();
        assert!(!first.stats.cache_hit);
        let written = calls.load(Ordering::SeqCst);
        let second = rewriter
            .rewrite(rewrite(SeedOrigin::Request, false))
            .await
            .unwrap();
        assert!(second.stats.cache_hit);
        assert_eq!(second.prompts, first.prompts);
        assert_eq!(
            calls.load(Ordering::SeqCst),
            written,
            "the model was not asked again"
        );
        let bypassed = rewriter
            .rewrite(rewrite(SeedOrigin::Request, true))
            .await
            .unwrap();
        assert!(!bypassed.stats.cache_hit);
        assert!(calls.load(Ordering::SeqCst) > written);
        // a random seed asks for a new sample
        let before = calls.load(Ordering::SeqCst);
        let unseeded = rewriter
            .rewrite(rewrite(SeedOrigin::Random, false))
            .await
            .unwrap();
        assert!(!unseeded.stats.cache_hit);
        assert!(calls.load(Ordering::SeqCst) > before);
    }

    #[tokio::test]
    async fn keywords_are_cached_apart_from_rewrites() {
        let (rewriter, calls) = rewriter();
        let request = KeywordsRequest {
            prompts: vec![SceneText {
                index: 1,
                text: "a red fox by a river, watercolour".into(),
            }],
            max_keywords: 4,
            seed: 3,
            seed_origin: SeedOrigin::Job,
            sampling: sampling(),
            deadline: None,
            job: JobInfo::default(),
        };
        let first = rewriter.keywords(request.clone()).await.unwrap();
        let written = calls.load(Ordering::SeqCst);
        let second = rewriter.keywords(request).await.unwrap();
        assert!(second.stats.cache_hit && !first.stats.cache_hit);
        assert_eq!(second.keywords, first.keywords);
        assert_eq!(calls.load(Ordering::SeqCst), written);
    }
}

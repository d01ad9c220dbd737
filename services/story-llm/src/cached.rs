//! [`CachedStoryLlm`]: any [`StoryLlm`] behind the stage cache (`storyreel_llm::OutputCache`).
//!
//! A seeded request whose story is in the cache is answered from it: its scenes, their
//! progress and the finished story (`stats.cache_hit`), with no tokens and without the
//! model. Otherwise the request runs on the inner service and its finished story is kept.
//! The key covers the model identity and everything of the request that shapes the story:
//! title, scene count, style, language, seed and sampling.

use crate::{
    error::StoryLlmError,
    service::{
        ModelState, SceneDone, StageStats, Story, StoryEvent, StoryEventStream, StoryLlm, StoryProgress,
        StoryRequest, TokenUsage,
    },
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use storyreel_llm::{OutputCache, Sampling};
use tokio::sync::watch;

/// The entry layout; bumped when [`CachedStory`] changes, so old entries stop matching.
const LAYOUT: u32 = 1;

#[derive(Serialize)]
struct Key<'a> {
    layout: u32,
    title: &'a str,
    n_scenes: usize,
    style: Option<&'a str>,
    language: &'a str,
    seed: u64,
    sampling: &'a Sampling,
}

/// What an entry keeps of a finished story.
#[derive(Serialize, Deserialize)]
struct CachedStory {
    scenes: Vec<String>,
    seed: u64,
    attempts: u32,
    usage: TokenUsage,
}

pub struct CachedStoryLlm {
    inner: Arc<dyn StoryLlm>,
    cache: OutputCache,
}

impl CachedStoryLlm {
    pub fn new(inner: Arc<dyn StoryLlm>, cache: OutputCache) -> Self {
        Self { inner, cache }
    }
}

#[async_trait::async_trait]
impl StoryLlm for CachedStoryLlm {
    async fn generate_stream(&self, request: StoryRequest) -> Result<StoryEventStream, StoryLlmError> {
        let params = Key {
            layout: LAYOUT,
            title: &request.title,
            n_scenes: request.n_scenes,
            style: request.style.as_deref(),
            language: &request.language,
            seed: request.seed,
            sampling: &request.sampling,
        };
        let state = self.inner.model_state();
        let Some((key, model)) =
            self.cache
                .key(&state, &params, request.seed_origin, request.job.bypass_cache)
        else {
            return self.inner.generate_stream(request).await;
        };
        request.job.check_model_pin(&model)?;
        if let Some(cached) = self.cache.get::<CachedStory>(&key).await
            && cached.scenes.len() == request.n_scenes
        {
            let story = Story {
                scenes: cached.scenes,
                model,
                usage: cached.usage,
                seed: cached.seed,
                attempts: cached.attempts,
                stats: StageStats {
                    cache_hit: true,
                    ..StageStats::default()
                },
            };
            return Ok(futures::stream::iter(replay(story).into_iter().map(Ok)).boxed());
        }
        let events = self.inner.generate_stream(request).await?;
        let cache = self.cache.clone();
        Ok(events
            .then(move |event| {
                let (cache, key) = (cache.clone(), key.clone());
                async move {
                    if let Ok(StoryEvent::Finished(story)) = &event {
                        let kept = CachedStory {
                            scenes: story.scenes.clone(),
                            seed: story.seed,
                            attempts: story.attempts,
                            usage: story.usage,
                        };
                        cache.put(&key, &kept).await;
                    }
                    event
                }
            })
            .boxed())
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.inner.model_state()
    }
}

/// The events of a stream that wrote `story`: per scene its text and progress, then the
/// story.
fn replay(story: Story) -> Vec<StoryEvent> {
    let n = story.scenes.len() as u32;
    let mut events = Vec::with_capacity(2 * story.scenes.len() + 1);
    for (index, text) in story.scenes.iter().enumerate() {
        events.push(StoryEvent::Scene(SceneDone {
            attempt: story.attempts,
            index: index as u32,
            text: text.clone(),
        }));
        events.push(StoryEvent::Progress(StoryProgress {
            scenes_done: index as u32 + 1,
            n_scenes: n,
            message: format!("scene {} of {n} (cached)", index + 1),
        }));
    }
    events.push(StoryEvent::Finished(story));
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ModelBackedStoryLlm,
        service::{JobInfo, SeedOrigin},
    };
    use std::sync::atomic::{AtomicUsize, Ordering};
    use storyreel_llm::ModelWorker;
    use storyreel_tensors::{MemoryStore, StageCache, StoreConfig};

    fn request(seed_origin: SeedOrigin, bypass_cache: bool) -> StoryRequest {
        StoryRequest {
            title: "A fox and the river".into(),
            n_scenes: 2,
            style: None,
            language: "en".into(),
            seed: 7,
            seed_origin,
            sampling: Sampling {
                temperature: 0.7,
                top_p: 0.9,
                top_k: 0,
                repetition_penalty: 1.3,
                max_new_tokens: 16,
            },
            deadline: None,
            job: JobInfo {
                bypass_cache,
                ..JobInfo::default()
            },
        }
    }

    /// A cached service over a scripted model that counts the scenes it writes.
    fn service() -> (CachedStoryLlm, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let worker = ModelWorker::scripted(move |_| {
            const LINES: [&str; 4] = [
                " A red fox wakes beside the cold river at dawn.",
                " Heavy rain floods the valley and the fox climbs a hill.",
                " An old heron shows the fox a hidden bridge of stones.",
                " Snow falls softly while the fox sleeps under a pine.",
            ];
            LINES[counter.fetch_add(1, Ordering::SeqCst) % LINES.len()].to_string()
        });
        let inner = Arc::new(ModelBackedStoryLlm::with_worker(worker, 3));
        let store = Arc::new(MemoryStore::new(&StoreConfig::default()).unwrap());
        let cache = OutputCache::new(StageCache::new(store, "story-llm", true));
        (CachedStoryLlm::new(inner, cache), calls)
    }

    #[tokio::test]
    async fn a_repeated_seeded_request_is_a_cache_hit_and_bypass_recomputes() {
        let (llm, calls) = service();
        let first = llm.generate(request(SeedOrigin::Request, false)).await.unwrap();
        assert!(!first.stats.cache_hit);
        let written = calls.load(Ordering::SeqCst);
        assert!(written >= 2);

        let second = llm.generate(request(SeedOrigin::Request, false)).await.unwrap();
        assert!(second.stats.cache_hit);
        assert_eq!(second.scenes, first.scenes);
        assert_eq!((second.seed, second.attempts), (first.seed, first.attempts));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            written,
            "the model was not asked again"
        );

        let bypassed = llm.generate(request(SeedOrigin::Request, true)).await.unwrap();
        assert!(!bypassed.stats.cache_hit);
        assert!(calls.load(Ordering::SeqCst) > written);
    }

    #[tokio::test]
    async fn a_hit_streams_the_scenes_then_the_story() {
        let (llm, _) = service();
        llm.generate(request(SeedOrigin::Job, false)).await.unwrap();
        let events: Vec<_> = llm
            .generate_stream(request(SeedOrigin::Job, false))
            .await
            .unwrap()
            .collect()
            .await;
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| match e.as_ref().unwrap() {
                StoryEvent::Token(_) => "token",
                StoryEvent::Scene(_) => "scene",
                StoryEvent::Progress(_) => "progress",
                StoryEvent::Finished(_) => "finished",
            })
            .collect();
        assert_eq!(kinds, ["scene", "progress", "scene", "progress", "finished"]);
    }

    #[tokio::test]
    async fn unseeded_requests_are_not_cached() {
        let (llm, calls) = service();
        llm.generate(request(SeedOrigin::Random, false)).await.unwrap();
        let written = calls.load(Ordering::SeqCst);
        let again = llm.generate(request(SeedOrigin::Random, false)).await.unwrap();
        assert!(!again.stats.cache_hit);
        assert!(calls.load(Ordering::SeqCst) > written);
    }
}

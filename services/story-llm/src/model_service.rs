//! [`ModelBackedStoryLlm`]: the [`StoryLlm`] that writes stories with the model worker.
//!
//! A request is driven by a task that asks the worker for one scene at a time
//! ([`crate::prompting::scene_prompt`]: the list so far in the assistant turn, the next
//! number forced), streams the scene's tokens, cleans the line
//! ([`crate::parsing::clean_scene`]) and rejects it when it repeats an earlier scene
//! ([`crate::parsing::find_duplicate`]). An unusable scene discards the attempt; the next
//! attempt starts over with [`crate::seed::for_attempt`], up to `max_attempts`, after
//! which the request fails with [`StoryLlmError::UnusableOutput`] naming the reason.
//!
//! Each story has at most one scene in the worker's queue at a time. Its first scene is
//! queued before the stream is returned, so a full queue is refused up front
//! ([`StoryLlmError::Overloaded`]); a later scene that meets a full queue ends the stream
//! with the same error.
//!
//! The scenes of a story share one prefix key ([`LlmJob::prefix_key`]): each scene's
//! prompt extends the previous one, so the worker prefills only the scene just written
//! and the next number, not the whole story again.
//!
//! Dropping the returned stream sets the job's cancel flag and ends the task, so the
//! worker stops decoding the request within one decode step; past the request's deadline
//! the stream ends with [`StoryLlmError::DeadlineExceeded`] and decoding stops alike.

use crate::{
    config::StoryLlmConfig,
    error::StoryLlmError,
    parsing::{RejectedScene, Rejection, SceneSetError, clean_scene, find_duplicate},
    prompting::{PromptSpec, SCENE_STOP, scene_prompt},
    service::{
        ModelInfo, ModelState, SceneDone, StageStats, Story, StoryEvent, StoryEventStream, StoryLlm,
        StoryProgress, StoryRequest, TokenPiece, TokenUsage,
    },
};
use futures::StreamExt;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};
use storyreel_llm::{
    CancelOnDrop, ChatPrompt, JobSampling, LlmJob, LlmOutput, ModelWorker, WorkerEvent, WorkerStats, seed,
};
use tokio::sync::{mpsc, watch};

/// Events buffered between the driving task and the caller.
const EVENT_BUFFER: usize = 256;
/// Characters of a rejected scene quoted in the error.
const EXCERPT_CHARS: usize = 60;
/// Numbers the stories of this process, for their prefix keys.
static NEXT_STORY: AtomicU64 = AtomicU64::new(1);

/// SmolLM2 (or any Llama-family chat model) behind the [`StoryLlm`] trait.
pub struct ModelBackedStoryLlm {
    worker: Arc<ModelWorker>,
    max_attempts: u32,
}

impl ModelBackedStoryLlm {
    /// Starts the model worker; the model loads in the background ([`StoryLlm::model_state`]
    /// says when it is ready).
    pub fn start(config: &StoryLlmConfig) -> Result<Self, StoryLlmError> {
        Ok(Self {
            worker: Arc::new(ModelWorker::spawn(config.worker_settings())?),
            max_attempts: config.max_attempts,
        })
    }

    /// Over a given worker (tests use a scripted one).
    pub fn with_worker(worker: ModelWorker, max_attempts: u32) -> Self {
        Self {
            worker: Arc::new(worker),
            max_attempts,
        }
    }

    /// The worker's counters (batches, cancellations).
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.worker.stats().clone()
    }

    /// Waits until the model is loaded; the reason when loading failed.
    pub async fn wait_ready(&self) -> Result<ModelInfo, String> {
        storyreel_runtime::model::wait_ready(self.worker.state()).await
    }
}

#[async_trait::async_trait]
impl StoryLlm for ModelBackedStoryLlm {
    async fn generate_stream(&self, request: StoryRequest) -> Result<StoryEventStream, StoryLlmError> {
        let model = self.worker.ready_model()?;
        request.job.check_model_pin(&model)?;
        if request.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(StoryLlmError::DeadlineExceeded);
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        let driver = Driver {
            worker: self.worker.clone(),
            spec: PromptSpec::from(&request),
            request,
            model,
            max_attempts: self.max_attempts,
            cancelled: cancelled.clone(),
            prefix_key: format!("story-{}", NEXT_STORY.fetch_add(1, Ordering::Relaxed)),
        };
        // The first scene is queued here, so a full queue is refused before any event.
        let first = driver.submit(seed::for_attempt(driver.request.seed, 1), &[])?;
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        tokio::spawn(driver.run(first, tx));
        let guard = CancelOnDrop(cancelled);
        Ok(
            futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
                rx.recv().await.map(|item| (item, (rx, guard)))
            })
            .boxed(),
        )
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }
}

type EventSender = mpsc::Sender<Result<StoryEvent, StoryLlmError>>;

/// Why a request stopped early.
enum Stop {
    /// The caller is gone: nothing more to send.
    CallerGone,
    /// Send this error and end.
    Error(StoryLlmError),
}

struct Driver {
    worker: Arc<ModelWorker>,
    request: StoryRequest,
    spec: PromptSpec,
    model: ModelInfo,
    max_attempts: u32,
    cancelled: Arc<AtomicBool>,
    /// Unique to this story: its scenes reuse each other's KV cache, nothing else's.
    prefix_key: String,
}

#[derive(Default)]
struct Totals {
    usage: TokenUsage,
    stats: StageStats,
}

impl Driver {
    /// Queues the scene after `so_far` of an attempt seeded with `attempt_seed`.
    fn submit(
        &self,
        attempt_seed: u64,
        so_far: &[String],
    ) -> Result<mpsc::UnboundedReceiver<WorkerEvent>, StoryLlmError> {
        let prompt = scene_prompt(&self.spec, so_far);
        let sampling = &self.request.sampling;
        let (events, rx) = mpsc::unbounded_channel();
        self.worker.submit(LlmJob {
            prompt: ChatPrompt {
                messages: prompt.messages,
                assistant_prefix: prompt.assistant_prefix,
            },
            stop_strings: vec![SCENE_STOP.to_string()],
            sampling: JobSampling::new(sampling, seed::for_scene(attempt_seed, so_far.len())),
            deadline: self.request.deadline,
            cancelled: self.cancelled.clone(),
            events,
            enqueued_at: Instant::now(),
            prefix_key: Some(self.prefix_key.clone()),
        })?;
        Ok(rx)
    }

    async fn run(self, first: mpsc::UnboundedReceiver<WorkerEvent>, tx: EventSender) {
        match self.write_story(first, &tx).await {
            Ok(story) => {
                let _ = tx.send(Ok(StoryEvent::Finished(story))).await;
            }
            Err(Stop::CallerGone) => {
                self.cancelled.store(true, Ordering::SeqCst);
                tracing::debug!("story request cancelled by the caller");
            }
            Err(Stop::Error(err)) => {
                self.cancelled.store(true, Ordering::SeqCst);
                match &err {
                    StoryLlmError::UnusableOutput { .. } | StoryLlmError::Model(_) => {
                        tracing::warn!(error = %err, title = %self.request.title, "story failed")
                    }
                    _ => tracing::debug!(error = %err, "story stopped"),
                }
                let _ = tx.send(Err(err)).await;
            }
        }
    }

    async fn write_story(
        &self,
        first: mpsc::UnboundedReceiver<WorkerEvent>,
        tx: &EventSender,
    ) -> Result<Story, Stop> {
        let n = self.request.n_scenes;
        let mut totals = Totals::default();
        let mut pending = Some(first);
        let mut last_failure = None;
        for attempt in 1..=self.max_attempts {
            let attempt_seed = seed::for_attempt(self.request.seed, attempt);
            let mut scenes: Vec<String> = Vec::with_capacity(n);
            let mut failure = None;
            while scenes.len() < n {
                let index = scenes.len();
                let rx = match pending.take() {
                    Some(rx) => rx,
                    None => self.submit(attempt_seed, &scenes).map_err(Stop::Error)?,
                };
                let output = self.scene(rx, attempt, index, tx).await?;
                totals.usage.add(&output);
                totals.stats.queue_time += output.queue_time;
                totals.stats.compute_time += output.compute_time;
                let rejection = match clean_scene(&output.text) {
                    Ok(text) => {
                        let earlier: Vec<&str> = scenes.iter().map(String::as_str).collect();
                        match find_duplicate(&text, &earlier) {
                            Some(of) => Err(Rejection::Duplicate { of: of + 1 }),
                            None => Ok(text),
                        }
                    }
                    Err(rejection) => Err(rejection),
                };
                match rejection {
                    Ok(text) => {
                        let done = SceneDone {
                            attempt,
                            index: index as u32,
                            text: text.clone(),
                        };
                        scenes.push(text);
                        send(tx, StoryEvent::Scene(done)).await?;
                        let progress = StoryProgress {
                            scenes_done: scenes.len() as u32,
                            n_scenes: n as u32,
                            message: format!("scene {} of {n}", scenes.len()),
                        };
                        send(tx, StoryEvent::Progress(progress)).await?;
                    }
                    Err(rejection) => {
                        tracing::debug!(attempt, scene = index, %rejection, text = %output.text, "scene rejected");
                        failure = Some(SceneSetError {
                            wanted: n,
                            usable: scenes.len(),
                            rejected: vec![RejectedScene {
                                position: index + 1,
                                rejection,
                                excerpt: output.text.trim().chars().take(EXCERPT_CHARS).collect(),
                            }],
                        });
                        break;
                    }
                }
            }
            match failure {
                None => {
                    return Ok(Story {
                        scenes,
                        model: self.model.clone(),
                        usage: totals.usage,
                        seed: attempt_seed,
                        attempts: attempt,
                        stats: totals.stats,
                    });
                }
                Some(failure) => last_failure = Some(failure),
            }
        }
        Err(Stop::Error(StoryLlmError::UnusableOutput {
            attempts: self.max_attempts,
            last: last_failure.unwrap_or(SceneSetError {
                wanted: n,
                usable: 0,
                rejected: vec![],
            }),
        }))
    }

    /// Streams one scene's tokens; its raw output.
    async fn scene(
        &self,
        mut rx: mpsc::UnboundedReceiver<WorkerEvent>,
        attempt: u32,
        index: usize,
        tx: &EventSender,
    ) -> Result<LlmOutput, Stop> {
        let deadline = self.request.deadline.map(tokio::time::Instant::from_std);
        let past_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(past_deadline);
        loop {
            tokio::select! {
                _ = tx.closed() => return Err(Stop::CallerGone),
                _ = &mut past_deadline => return Err(Stop::Error(StoryLlmError::DeadlineExceeded)),
                event = rx.recv() => match event {
                    Some(WorkerEvent::Token { token_id, text }) => {
                        let piece = TokenPiece {
                            attempt,
                            scene_index: index as u32,
                            token_id,
                            text,
                        };
                        send(tx, StoryEvent::Token(piece)).await?;
                    }
                    Some(WorkerEvent::Done(Ok(output))) => return Ok(output),
                    Some(WorkerEvent::Done(Err(err))) => return Err(Stop::Error(err.into())),
                    None => {
                        return Err(Stop::Error(StoryLlmError::model(
                            "the model worker stopped before the scene was written",
                        )));
                    }
                },
            }
        }
    }
}

async fn send(tx: &EventSender, event: StoryEvent) -> Result<(), Stop> {
    tx.send(Ok(event)).await.map_err(|_| Stop::CallerGone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{JobInfo, Sampling, SeedOrigin};
    use std::sync::Mutex;

    fn request(n_scenes: usize, seed: u64) -> StoryRequest {
        StoryRequest {
            title: "A fox and the river".into(),
            n_scenes,
            style: None,
            language: "en".into(),
            seed,
            seed_origin: SeedOrigin::Request,
            sampling: Sampling {
                temperature: 0.7,
                top_p: 0.9,
                top_k: 0,
                repetition_penalty: 1.3,
                max_new_tokens: 16,
            },
            deadline: None,
            job: JobInfo::default(),
        }
    }

    fn service(answer: impl FnMut(&LlmJob) -> String + Send + 'static) -> ModelBackedStoryLlm {
        ModelBackedStoryLlm {
            worker: Arc::new(ModelWorker::scripted(answer)),
            max_attempts: 3,
        }
    }

    /// The number the assistant prefix asks for next (`"1. ...\n2."` -> 2).
    fn next_number(job: &LlmJob) -> String {
        let last = job.prompt.assistant_prefix.rsplit('\n').next().unwrap();
        last.trim_end_matches('.').to_string()
    }

    #[tokio::test]
    async fn scenes_are_written_one_by_one_and_streamed_in_order() {
        let llm = service(|job| format!(" The fox reaches place number {} today.", next_number(job)));
        let mut events = llm.generate_stream(request(3, 5)).await.unwrap();
        let mut kinds = vec![];
        let mut finished = None;
        while let Some(event) = events.next().await {
            match event.unwrap() {
                StoryEvent::Scene(scene) => kinds.push(format!("scene {}", scene.index)),
                StoryEvent::Progress(p) => kinds.push(format!("progress {}/{}", p.scenes_done, p.n_scenes)),
                StoryEvent::Finished(story) => finished = Some(story),
                StoryEvent::Token(_) => {}
            }
        }
        assert_eq!(
            kinds,
            [
                "scene 0",
                "progress 1/3",
                "scene 1",
                "progress 2/3",
                "scene 2",
                "progress 3/3"
            ]
        );
        let story = finished.expect("a finished story");
        assert_eq!(
            story.scenes,
            [
                "The fox reaches place number 1 today.",
                "The fox reaches place number 2 today.",
                "The fox reaches place number 3 today."
            ]
        );
        assert_eq!((story.attempts, story.seed), (1, 5));
        assert_eq!(story.usage.generated_tokens, 15);
    }

    #[tokio::test]
    async fn a_repeated_scene_is_regenerated_with_the_next_attempt_seed() {
        // Attempt 1 repeats its first scene; attempt 2 writes distinct ones.
        let calls = Arc::new(Mutex::new(0));
        let seen = calls.clone();
        let llm = service(move |job| {
            let mut calls = seen.lock().unwrap();
            *calls += 1;
            if *calls <= 2 {
                "The fox runs home.".into()
            } else {
                format!("The fox swims across river {}.", next_number(job))
            }
        });
        let story = llm.generate(request(2, 9)).await.unwrap();
        assert_eq!(story.attempts, 2);
        assert_eq!(story.seed, seed::for_attempt(9, 2));
        assert_eq!(*calls.lock().unwrap(), 4);
    }

    #[tokio::test]
    async fn unusable_output_after_max_attempts_names_the_reason() {
        let llm = service(|_| "The fox runs home.".into());
        let err = llm.generate(request(2, 1)).await.unwrap_err();
        let StoryLlmError::UnusableOutput { attempts, last } = &err else {
            panic!("expected unusable output, got {err:?}");
        };
        assert_eq!(*attempts, 3);
        assert_eq!((last.wanted, last.usable), (2, 1));
        assert!(err.to_string().contains("repeats candidate 1"), "{err}");

        let llm = service(|_| "Hi".into());
        let err = llm.generate(request(1, 1)).await.unwrap_err();
        assert!(err.to_string().contains("fewer than"), "{err}");
    }

    #[tokio::test]
    async fn a_call_pinned_to_another_model_version_is_refused() {
        let llm = service(|_| "The fox runs home.".into());
        let mut pinned = request(1, 1);
        pinned.job.model_version = Some("other".into());
        let Err(err) = llm.generate_stream(pinned).await else {
            panic!("a pinned call to another version must fail");
        };
        assert!(matches!(err, StoryLlmError::ModelPin(_)), "{err:?}");
        assert_eq!(
            storyreel_runtime::to_status(&err).code(),
            tonic::Code::FailedPrecondition
        );
        let mut same = request(1, 1);
        same.job.model_version = Some("scripted".into());
        assert!(llm.generate(same).await.is_ok());
    }
}

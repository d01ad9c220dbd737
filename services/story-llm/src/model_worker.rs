//! The model worker: SmolLM2 on its own OS thread (tch tensors are `Send` but not `Sync`),
//! fed by a bounded queue of [`SceneJob`]s, in the shape of text-embeddings-inference's
//! `BackendThread` (STYLE.md).
//!
//! - Loading: the thread loads the weights, tokenizer and chat template from
//!   `config.model_dir` and publishes [`ModelState::Loading`], then
//!   [`ModelState::Ready`] (with the SHA-256 of `model.safetensors`) or
//!   [`ModelState::Failed`] on a `watch` channel. When the thread ends, the state becomes
//!   `Failed`.
//! - Static batching: the worker takes the first waiting job, then collects more until
//!   `batching.max_batch_size` jobs are in hand or `batching.max_wait_ms` passed, and
//!   writes one scene for every job of the batch in one [`generate`] call. A job is one
//!   scene of one story (stories in a batch may be at different scenes): its chat turns
//!   are rendered with the model's template (`add_generation_prompt`), the assistant
//!   prefix is appended verbatim, and decoding stops at [`SCENE_STOP`] or after the job's
//!   `max_new_tokens`.
//! - Cancellation and deadlines: a job whose caller has gone (its cancel flag is set or
//!   its event receiver dropped) or whose deadline passed is dropped when it leaves the
//!   queue, and the token sink cancels its sequence at the next token, so decoding stops
//!   within one decode step.
//! - Metrics: `storyreel_story_llm_batch_size` (histogram, one sample per `generate`
//!   call), `storyreel_story_llm_batched_requests_total`,
//!   `storyreel_story_llm_cancelled_sequences_total`; [`WorkerStats`] holds the same
//!   figures for tests and benchmarks.

use crate::{
    config::StoryLlmConfig,
    error::StoryLlmError,
    prompting::{ChatMessage, SCENE_STOP},
    service::{ModelInfo, ModelState},
};
use sha2::{Digest, Sha256};
use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::{self as std_mpsc, RecvTimeoutError, TrySendError},
    },
    time::{Duration, Instant},
};
use storyreel_nn::{
    DType, DeviceSpec,
    generation::{FinishReason, GenerationRequest, SamplingParams, TokenEvent, generate},
    llama::LlamaForCausalLM,
    tokenizer::{ChatMessage as TemplateMessage, ChatTemplate},
};
use tokenizers::Tokenizer;
use tokio::sync::{mpsc, watch};

/// Sampling for one scene, as the worker passes it to [`generate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneSampling {
    /// 0 is greedy.
    pub temperature: f32,
    pub top_p: f32,
    /// 0 disables.
    pub top_k: u32,
    /// 1.0 disables.
    pub repetition_penalty: f32,
    pub seed: u64,
    pub max_new_tokens: usize,
}

/// One scene of one story, to be written by the worker.
#[derive(Debug)]
pub struct SceneJob {
    /// System and user turns.
    pub messages: Vec<ChatMessage>,
    /// Appended verbatim after the rendered template (`"1. ...\n2."`).
    pub assistant_prefix: String,
    pub sampling: SceneSampling,
    pub deadline: Option<Instant>,
    /// Set by the caller when it goes away.
    pub cancelled: Arc<AtomicBool>,
    /// Tokens as they are generated, then one [`WorkerEvent::Done`].
    pub events: mpsc::UnboundedSender<WorkerEvent>,
    pub enqueued_at: Instant,
}

impl SceneJob {
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.events.is_closed()
    }

    fn is_past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// What the worker sends back for a job.
#[derive(Debug)]
pub enum WorkerEvent {
    /// A generated token and the text it made final (possibly empty).
    Token { token_id: u32, text: String },
    /// The scene is written, or failed. Last event of a job.
    Done(Result<SceneOutput, StoryLlmError>),
}

/// A written scene, raw (still to be cleaned by [`crate::parsing::clean_scene`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SceneOutput {
    pub text: String,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub finish_reason: FinishReason,
    pub queue_time: Duration,
    pub compute_time: Duration,
}

/// Counters of the worker, shared with the service (tests and benchmarks read them).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// `generate` calls made.
    pub batches: AtomicU64,
    /// Jobs run in those calls.
    pub batched_requests: AtomicU64,
    /// Largest batch seen.
    pub max_batch_size: AtomicU64,
    /// Sequences stopped because their caller went away or their deadline passed, during
    /// decoding or when leaving the queue.
    pub cancelled_sequences: AtomicU64,
    /// Tokens decoded for a sequence after its cancellation was seen (the token of the
    /// step that saw it included): at most one per cancelled sequence.
    pub tokens_after_cancel: AtomicU64,
    /// Tokens generated, all jobs.
    pub generated_tokens: AtomicU64,
}

impl WorkerStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

/// The handle to the worker thread. Dropping it closes the queue; the thread ends once
/// the batch under way is done.
pub struct ModelWorker {
    queue: std_mpsc::SyncSender<SceneJob>,
    capacity: usize,
    state: watch::Receiver<ModelState>,
    stats: Arc<WorkerStats>,
}

impl ModelWorker {
    /// Starts the thread, which loads the model (the state is [`ModelState::Loading`]
    /// until it is done) and then serves the queue.
    pub fn spawn(config: &StoryLlmConfig) -> Result<Self, StoryLlmError> {
        let capacity = config.batching.queue_capacity;
        let (queue, jobs) = std_mpsc::sync_channel(capacity);
        let (state_tx, state) = watch::channel(ModelState::Loading);
        let stats = Arc::new(WorkerStats::default());
        let settings = WorkerSettings {
            model_dir: config.model_dir.clone(),
            device: config.device.clone(),
            dtype: config.dtype.clone(),
            max_batch_size: config.batching.max_batch_size,
            max_wait: Duration::from_millis(config.batching.max_wait_ms),
        };
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("story-llm-model".into())
            .spawn(move || worker_main(settings, jobs, state_tx, thread_stats))
            .map_err(|e| StoryLlmError::Internal(format!("cannot start the model thread: {e}")))?;
        Ok(Self {
            queue,
            capacity,
            state,
            stats,
        })
    }

    /// Queues a job; a full queue is [`StoryLlmError::Overloaded`].
    pub fn submit(&self, job: SceneJob) -> Result<(), StoryLlmError> {
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(StoryLlmError::Overloaded {
                capacity: self.capacity,
            }),
            Err(TrySendError::Disconnected(_)) => Err(StoryLlmError::NotReady {
                reason: "the model worker has stopped".into(),
            }),
        }
    }

    pub fn state(&self) -> watch::Receiver<ModelState> {
        self.state.clone()
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// A worker without a model, for tests of the code above it: a thread that answers
    /// every job with `answer(job)` as the scene's raw text.
    #[cfg(test)]
    pub(crate) fn scripted(mut answer: impl FnMut(&SceneJob) -> String + Send + 'static) -> Self {
        let (queue, jobs) = std_mpsc::sync_channel::<SceneJob>(16);
        std::thread::spawn(move || {
            for job in jobs {
                let text = answer(&job);
                let _ = job.events.send(WorkerEvent::Done(Ok(SceneOutput {
                    text,
                    prompt_tokens: 10,
                    generated_tokens: 5,
                    finish_reason: FinishReason::StopString(SCENE_STOP.into()),
                    queue_time: Duration::ZERO,
                    compute_time: Duration::ZERO,
                })));
            }
        });
        Self {
            queue,
            capacity: 16,
            state: watch::channel(ModelState::Ready(ModelInfo::default())).1,
            stats: Arc::default(),
        }
    }
}

struct WorkerSettings {
    model_dir: std::path::PathBuf,
    device: String,
    dtype: String,
    max_batch_size: usize,
    max_wait: Duration,
}

/// What the thread holds once loaded.
struct Loaded {
    model: LlamaForCausalLM,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stop_token_ids: Vec<u32>,
}

/// Marks the model failed when the thread ends, however it ends.
struct FailOnExit(watch::Sender<ModelState>);

impl Drop for FailOnExit {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            "the model worker panicked"
        } else {
            "the model worker stopped"
        };
        self.0.send_replace(ModelState::Failed(reason.into()));
    }
}

fn worker_main(
    settings: WorkerSettings,
    jobs: std_mpsc::Receiver<SceneJob>,
    state: watch::Sender<ModelState>,
    stats: Arc<WorkerStats>,
) {
    let started = Instant::now();
    let loaded = match load(&settings) {
        Ok((loaded, info)) => {
            tracing::info!(
                model = %info.name,
                version = %info.version,
                weights_sha256 = %info.weights_sha256,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "model loaded"
            );
            state.send_replace(ModelState::Ready(info));
            loaded
        }
        Err(reason) => {
            tracing::error!(%reason, model_dir = %settings.model_dir.display(), "cannot load the model");
            state.send_replace(ModelState::Failed(reason));
            // Refuse queued and future jobs: dropping `jobs` disconnects the queue.
            return;
        }
    };
    let _fail_on_exit = FailOnExit(state);
    while let Some(batch) = next_batch(&jobs, settings.max_batch_size, settings.max_wait) {
        run_batch(&loaded, batch, &stats);
    }
}

/// Blocks for the first job, then collects more until the batch is full or `max_wait`
/// passed. `None` once the queue is closed and empty.
fn next_batch(jobs: &std_mpsc::Receiver<SceneJob>, max: usize, max_wait: Duration) -> Option<Vec<SceneJob>> {
    let first = jobs.recv().ok()?;
    let until = Instant::now() + max_wait;
    let mut batch = vec![first];
    while batch.len() < max {
        let left = until.saturating_duration_since(Instant::now());
        let next = if left.is_zero() {
            jobs.try_recv().map_err(|_| RecvTimeoutError::Timeout)
        } else {
            jobs.recv_timeout(left)
        };
        match next {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn load(settings: &WorkerSettings) -> Result<(Loaded, ModelInfo), String> {
    let dir = &settings.model_dir;
    let device: DeviceSpec = settings.device.parse()?;
    let dtype = match settings.dtype.as_str() {
        "f32" => DType::F32,
        "f16" => DType::F16,
        "bf16" => DType::Bf16,
        other => return Err(format!("unsupported dtype `{other}`")),
    };
    let weights = dir.join("model.safetensors");
    let weights_sha256 = sha256_file(&weights).map_err(|e| format!("reading {}: {e}", weights.display()))?;
    let model = LlamaForCausalLM::load(dir, device, dtype)
        .map_err(|e| format!("loading the model from {}: {e}", dir.display()))?;
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer = Tokenizer::from_file(&tokenizer_path)
        .map_err(|e| format!("loading {}: {e}", tokenizer_path.display()))?;
    let config_path = dir.join("tokenizer_config.json");
    let template = ChatTemplate::from_tokenizer_config(&config_path).map_err(|e| e.to_string())?;
    let stop_token_ids = eos_token(&config_path)
        .and_then(|eos| tokenizer.token_to_id(&eos))
        .into_iter()
        .collect();
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "story-llm".into());
    let info = ModelInfo {
        name,
        // Content-addressed: the weights are the version.
        version: weights_sha256[..12].to_string(),
        weights_sha256,
    };
    Ok((
        Loaded {
            model,
            tokenizer,
            template,
            stop_token_ids,
        },
        info,
    ))
}

/// SHA-256 of a file, streamed, as 64 lowercase hex characters.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// `eos_token` of a `tokenizer_config.json` (a string or `{content}`).
fn eos_token(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    match &config["eos_token"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// The prompt ids of a job: template with the generation prompt, then the prefix.
fn encode(loaded: &Loaded, job: &SceneJob) -> Result<Vec<u32>, StoryLlmError> {
    let messages: Vec<TemplateMessage> = job
        .messages
        .iter()
        .map(|m| TemplateMessage::new(m.role.as_str(), m.content.clone()))
        .collect();
    let mut prompt = loaded
        .template
        .render(&messages, true)
        .map_err(StoryLlmError::model)?;
    prompt.push_str(&job.assistant_prefix);
    let encoding = loaded
        .tokenizer
        .encode(prompt, false)
        .map_err(|e| StoryLlmError::model(e.to_string()))?;
    Ok(encoding.get_ids().to_vec())
}

fn generation_request(loaded: &Loaded, prompt_ids: Vec<u32>, s: &SceneSampling) -> GenerationRequest {
    let sampling = if s.temperature == 0.0 {
        SamplingParams {
            repetition_penalty: s.repetition_penalty,
            ..SamplingParams::greedy()
        }
    } else {
        SamplingParams {
            do_sample: true,
            temperature: s.temperature,
            top_k: (s.top_k > 0).then_some(s.top_k as usize),
            top_p: (s.top_p < 1.0).then_some(s.top_p),
            repetition_penalty: s.repetition_penalty,
            seed: s.seed,
        }
    };
    GenerationRequest::new(prompt_ids, s.max_new_tokens)
        .with_sampling(sampling)
        .with_stop_tokens(loaded.stop_token_ids.iter().copied())
        .with_stop_strings([SCENE_STOP])
}

/// The error of a job stopped early: its deadline, else its caller's cancellation.
fn stopped_error(job: &SceneJob) -> StoryLlmError {
    if job.is_past_deadline() {
        StoryLlmError::DeadlineExceeded
    } else {
        StoryLlmError::Cancelled
    }
}

fn run_batch(loaded: &Loaded, batch: Vec<SceneJob>, stats: &WorkerStats) {
    let dequeued = Instant::now();
    let max_context = loaded.model.config().max_context();
    // Leaving the queue: drop the jobs whose caller is gone or whose deadline passed, and
    // answer the ones whose prompt cannot be built.
    let mut jobs = Vec::with_capacity(batch.len());
    let mut requests = Vec::with_capacity(batch.len());
    for job in batch {
        if job.is_cancelled() || job.is_past_deadline() {
            stats.cancelled_sequences.fetch_add(1, Ordering::SeqCst);
            metrics::counter!("storyreel_story_llm_cancelled_sequences_total").increment(1);
            let _ = job.events.send(WorkerEvent::Done(Err(stopped_error(&job))));
            continue;
        }
        let prompt_ids = match encode(loaded, &job) {
            Ok(ids) => ids,
            Err(err) => {
                let _ = job.events.send(WorkerEvent::Done(Err(err)));
                continue;
            }
        };
        if prompt_ids.len() + job.sampling.max_new_tokens > max_context {
            let err = StoryLlmError::model(format!(
                "the prompt ({} tokens) plus max_new_tokens ({}) exceeds the model's context of {max_context} tokens",
                prompt_ids.len(),
                job.sampling.max_new_tokens
            ));
            let _ = job.events.send(WorkerEvent::Done(Err(err)));
            continue;
        }
        requests.push(generation_request(loaded, prompt_ids, &job.sampling));
        jobs.push(job);
    }
    if jobs.is_empty() {
        return;
    }

    let size = jobs.len() as u64;
    stats.batches.fetch_add(1, Ordering::SeqCst);
    stats.batched_requests.fetch_add(size, Ordering::SeqCst);
    stats.max_batch_size.fetch_max(size, Ordering::SeqCst);
    metrics::histogram!("storyreel_story_llm_batch_size").record(size as f64);
    metrics::counter!("storyreel_story_llm_batched_requests_total").increment(size);
    let _span = tracing::debug_span!("generate", batch_size = size).entered();

    let mut cancelled = vec![false; jobs.len()];
    let mut sink = |event: TokenEvent| -> bool {
        let job = &jobs[event.request];
        stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
        if job.is_cancelled() || job.is_past_deadline() {
            if !cancelled[event.request] {
                cancelled[event.request] = true;
                stats.cancelled_sequences.fetch_add(1, Ordering::SeqCst);
                metrics::counter!("storyreel_story_llm_cancelled_sequences_total").increment(1);
            }
            stats.tokens_after_cancel.fetch_add(1, Ordering::SeqCst);
            return false;
        }
        let _ = job.events.send(WorkerEvent::Token {
            token_id: event.token_id,
            text: event.text,
        });
        true
    };
    let started = Instant::now();
    let result = generate(&loaded.model, &loaded.tokenizer, &requests, &mut sink);
    let compute_time = started.elapsed();
    match result {
        Ok(outputs) => {
            for (job, output) in jobs.iter().zip(outputs) {
                let done = if output.finish_reason == FinishReason::Cancelled {
                    Err(stopped_error(job))
                } else {
                    Ok(SceneOutput {
                        text: output.text,
                        prompt_tokens: output.prompt_tokens,
                        generated_tokens: output.token_ids.len(),
                        finish_reason: output.finish_reason,
                        queue_time: dequeued.saturating_duration_since(job.enqueued_at),
                        compute_time,
                    })
                };
                let _ = job.events.send(WorkerEvent::Done(done));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, batch_size = size, "generation failed");
            let message = err.to_string();
            for job in &jobs {
                let _ = job
                    .events
                    .send(WorkerEvent::Done(Err(StoryLlmError::model(message.clone()))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompting::Role;

    fn job() -> (SceneJob, mpsc::UnboundedReceiver<WorkerEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let job = SceneJob {
            messages: vec![ChatMessage::new(Role::User, "Title: A fox")],
            assistant_prefix: "1.".into(),
            sampling: SceneSampling {
                temperature: 0.7,
                top_p: 0.9,
                top_k: 0,
                repetition_penalty: 1.3,
                seed: 1,
                max_new_tokens: 8,
            },
            deadline: None,
            cancelled: Arc::default(),
            events,
            enqueued_at: Instant::now(),
        };
        (job, rx)
    }

    #[test]
    fn a_batch_takes_what_is_waiting_up_to_the_maximum() {
        let (tx, rx) = std_mpsc::sync_channel(16);
        let mut receivers = vec![];
        for _ in 0..5 {
            let (job, events) = job();
            tx.send(job).unwrap();
            receivers.push(events);
        }
        let batch = next_batch(&rx, 3, Duration::from_millis(0)).unwrap();
        assert_eq!(batch.len(), 3);
        let batch = next_batch(&rx, 3, Duration::from_millis(0)).unwrap();
        assert_eq!(batch.len(), 2);
        drop(tx);
        assert!(next_batch(&rx, 3, Duration::from_millis(0)).is_none());
    }

    #[test]
    fn a_batch_waits_for_late_jobs_until_max_wait() {
        let (tx, rx) = std_mpsc::sync_channel(16);
        let (first, _a) = job();
        tx.send(first).unwrap();
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let (job, events) = job();
            tx.send(job).unwrap();
            // Keep the queue open: a closed queue ends the wait early.
            (tx, events)
        });
        let started = Instant::now();
        let batch = next_batch(&rx, 8, Duration::from_millis(300)).unwrap();
        assert_eq!(batch.len(), 2);
        assert!(started.elapsed() >= Duration::from_millis(300));
        let _open = late.join().unwrap();
    }

    #[test]
    fn the_weights_digest_is_sha256_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[tokio::test]
    async fn a_missing_model_fails_and_refuses_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoryLlmConfig {
            model_dir: dir.path().to_path_buf(),
            ..StoryLlmConfig::default()
        };
        let worker = ModelWorker::spawn(&config).unwrap();
        let mut state = worker.state();
        let state = state
            .wait_for(|s| !matches!(s, ModelState::Loading))
            .await
            .unwrap()
            .clone();
        let ModelState::Failed(reason) = state else {
            panic!("expected a failure, got {state:?}");
        };
        assert!(reason.contains("model.safetensors"), "{reason}");
        // The thread has ended and dropped the queue.
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            match worker.submit(job().0) {
                Err(StoryLlmError::NotReady { .. }) => break,
                other => assert!(Instant::now() < until, "{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn a_full_queue_is_overloaded() {
        let (queue, _jobs) = std_mpsc::sync_channel(1);
        let worker = ModelWorker {
            queue,
            capacity: 1,
            state: watch::channel(ModelState::Loading).1,
            stats: Arc::default(),
        };
        worker.submit(job().0).unwrap();
        assert!(matches!(
            worker.submit(job().0),
            Err(StoryLlmError::Overloaded { capacity: 1 })
        ));
    }
}

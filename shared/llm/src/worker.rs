//! The language-model worker: a Llama-family chat model (SmolLM2 by default) as a
//! [`StageModel`] on the stage's generic model worker ([`storyreel_stage::ModelWorker`]:
//! its own thread, bounded queue, readiness, panic isolation, queue metrics). story-llm
//! and prompt-rewriter each run one.
//!
//! - Loading: the worker thread loads the weights, tokenizer and chat template from
//!   `model_dir`; the model's identity follows `storyreel_runtime::model_identity`.
//! - Static batching, as the generic worker's policy: it takes the first waiting job, then
//!   more until `max_batch_size` jobs are in hand or `max_wait` passed; the model decodes
//!   every job of the batch in one [`generate`] call. A job is one output item (a scene of a story, a
//!   field of a scene's prompt; requests in a batch may be at different items): its chat
//!   turns are rendered with the model's template (`add_generation_prompt`), the
//!   assistant prefix is appended verbatim, and decoding stops at one of the job's stop
//!   strings, at the model's end-of-sequence token, or after the job's `max_new_tokens`.
//! - Cancellation and deadlines: a job whose caller has gone (its cancel flag is set or
//!   its event receiver dropped) or whose deadline passed is dropped when it leaves the
//!   queue, and the token sink cancels its sequence at the next token, so decoding stops
//!   within one decode step.
//! - Prefix reuse: jobs that carry the same `prefix_key` (the items of one request whose
//!   prompts grow, like story-llm's scenes) start from the KV cache the previous one left
//!   ([`PrefixStore`], bounded by `prefix_cache_bytes`), so each prefills only the new
//!   tail of its prompt.
//! - Metrics, labelled `worker` (the service name; the process-wide `service` label is telemetry's): `storyreel_llm_batch_size` (histogram, one sample per
//!   `generate` call), `storyreel_llm_batched_requests_total`,
//!   `storyreel_llm_cancelled_sequences_total`, `storyreel_llm_prompt_tokens_total`,
//!   `storyreel_llm_reused_prompt_tokens_total`; [`WorkerStats`] holds the same figures
//!   for tests and benchmarks.

use crate::{WorkerError, WorkerSettings, chat::ChatPrompt, prefix_store::PrefixStore};
use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use storyreel_nn::{
    DType, DeviceSpec,
    generation::{
        CachedPrefix, FinishReason, GenerationOutput, GenerationRequest, SamplingParams, TokenEvent,
        generate, generate_reusing,
    },
    llama::LlamaForCausalLM,
    tokenizer::{ChatMessage as TemplateMessage, ChatTemplate},
};
use storyreel_runtime::{
    model::{ModelInfo, ModelState},
    model_identity::{IdentityOverrides, identify_model_dir},
};
use storyreel_stage::{BatchControl, StageModel, WorkerConfig, WorkerJob};
use tokenizers::Tokenizer;
use tokio::sync::{mpsc, watch};

/// Sampling for one job, as the worker passes it to [`generate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobSampling {
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

/// One output item of one request, to be decoded by the worker.
#[derive(Debug)]
pub struct LlmJob {
    /// The chat turns and the pre-filled start of the answer.
    pub prompt: ChatPrompt,
    /// Decoding stops once the output contains one of these (it is cut there).
    pub stop_strings: Vec<String>,
    pub sampling: JobSampling,
    pub deadline: Option<Instant>,
    /// Set by the caller when it goes away.
    pub cancelled: Arc<AtomicBool>,
    /// Tokens as they are generated, then one [`WorkerEvent::Done`].
    pub events: mpsc::UnboundedSender<WorkerEvent>,
    pub enqueued_at: Instant,
    /// Jobs with the same key reuse each other's KV cache: give the successive items of
    /// one request, whose prompts extend each other, one key unique to that request.
    /// None: no reuse.
    pub prefix_key: Option<String>,
}

impl LlmJob {
    fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.events.is_closed()
    }

    fn is_past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// Sets a request's cancel flag ([`LlmJob::cancelled`]) when dropped: held by the future
/// or stream of a call, so a caller that goes away stops its decoding.
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What the worker sends back for a job.
#[derive(Debug)]
pub enum WorkerEvent {
    /// A generated token and the text it made final (possibly empty).
    Token { token_id: u32, text: String },
    /// The item is decoded, or failed. Last event of a job.
    Done(Result<LlmOutput, WorkerError>),
}

/// A decoded item, raw (the service parses and cleans it).
#[derive(Debug, Clone, PartialEq)]
pub struct LlmOutput {
    pub text: String,
    pub prompt_tokens: usize,
    /// Of `prompt_tokens`, those taken from a cached prefix instead of computed.
    pub reused_prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Mean natural-log probability of the generated tokens under the model's own
    /// distribution (0 when none): how sure the model was of this text, to rank
    /// candidates by.
    pub mean_logprob: f32,
    pub finish_reason: FinishReason,
    pub queue_time: Duration,
    pub compute_time: Duration,
}

/// Counters of the worker, shared with the service (tests and benchmarks read them).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// `generate` calls started.
    pub batches: AtomicU64,
    /// `generate` calls finished (equal to `batches` when the worker is idle).
    pub finished_batches: AtomicU64,
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
    /// Prompt tokens of the jobs run, and of those, the ones reused from a cached prefix.
    pub prompt_tokens: AtomicU64,
    pub reused_prompt_tokens: AtomicU64,
}

impl WorkerStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::SeqCst)
    }
}

impl WorkerJob for LlmJob {
    /// Answers with `error` (a receiver takes the first [`WorkerEvent::Done`] it sees).
    fn fail(&mut self, error: storyreel_stage::WorkerError) {
        let _ = self.events.send(WorkerEvent::Done(Err(error.into())));
    }
}

/// The handle to the worker. Dropping it stops the batch under way at its next token and
/// waits for the thread.
pub struct ModelWorker {
    inner: storyreel_stage::ModelWorker<LlmJob>,
    stats: Arc<WorkerStats>,
}

impl ModelWorker {
    /// Starts the worker, which loads the model (the state is [`ModelState::Loading`]
    /// until it is done) and then serves the queue.
    pub fn spawn(settings: WorkerSettings) -> Result<Self, WorkerError> {
        let stats = Arc::new(WorkerStats::default());
        let config = WorkerConfig {
            queue_capacity: settings.queue_capacity,
            max_batch_size: settings.max_batch_size,
            max_wait_ms: settings.max_wait.as_millis() as u64,
            threads: 0,
            keep_freed_memory: false,
            max_consecutive_failures: settings.max_consecutive_failures,
        };
        let model_stats = stats.clone();
        let inner = storyreel_stage::ModelWorker::spawn(
            storyreel_stage::WorkerSettings::new(settings.service, config),
            move || {
                let (loaded, info) = load(&settings)?;
                let model = LlmModel {
                    loaded,
                    stats: model_stats,
                    service: settings.service,
                    prefixes: PrefixStore::new(settings.prefix_cache_bytes),
                };
                Ok((model, info))
            },
        )?;
        Ok(Self { inner, stats })
    }

    /// Queues a job; a full queue is [`WorkerError::Overloaded`].
    pub fn submit(&self, job: LlmJob) -> Result<(), WorkerError> {
        Ok(self.inner.submit(job)?)
    }

    pub fn state(&self) -> watch::Receiver<ModelState> {
        self.inner.state()
    }

    pub fn stats(&self) -> &Arc<WorkerStats> {
        &self.stats
    }

    /// The model's info once ready; [`WorkerError::NotReady`] while loading or failed.
    pub fn ready_model(&self) -> Result<ModelInfo, WorkerError> {
        Ok(self.inner.ready_model()?)
    }

    /// A worker without a model, for unit tests of the services above it (not a model):
    /// every job is answered with `answer(job)` as its raw text.
    pub fn scripted(answer: impl FnMut(&LlmJob) -> String + Send + 'static) -> Self {
        let info = ModelInfo {
            name: "scripted".into(),
            version: "scripted".into(),
            ..Default::default()
        };
        let config = WorkerConfig {
            queue_capacity: 16,
            ..WorkerConfig::default()
        };
        let inner = storyreel_stage::ModelWorker::spawn(
            storyreel_stage::WorkerSettings::new("scripted", config),
            move || Ok((Scripted(Box::new(answer)), info)),
        )
        .expect("the scripted worker starts");
        // ready before the first submit, as a loaded model would be
        let until = Instant::now() + Duration::from_secs(10);
        while inner.ready_model().is_err() {
            assert!(Instant::now() < until, "the scripted worker never became ready");
            std::thread::sleep(Duration::from_millis(1));
        }
        Self {
            inner,
            stats: Arc::default(),
        }
    }
}

/// The model of [`ModelWorker::scripted`].
struct Scripted(Box<dyn FnMut(&LlmJob) -> String + Send>);

impl StageModel for Scripted {
    type Job = LlmJob;

    fn run_batch(&mut self, batch: &mut [LlmJob], _: &BatchControl) -> Result<(), String> {
        for job in batch.iter() {
            let text = (self.0)(job);
            let finish_reason = match job.stop_strings.first() {
                Some(stop) => FinishReason::StopString(stop.clone()),
                None => FinishReason::Length,
            };
            let _ = job.events.send(WorkerEvent::Done(Ok(LlmOutput {
                text,
                prompt_tokens: 10,
                reused_prompt_tokens: 0,
                generated_tokens: 5,
                mean_logprob: -1.0,
                finish_reason,
                queue_time: Duration::ZERO,
                compute_time: Duration::ZERO,
            })));
        }
        Ok(())
    }
}

/// The loaded model as the worker's [`StageModel`].
struct LlmModel {
    loaded: Loaded,
    stats: Arc<WorkerStats>,
    service: &'static str,
    prefixes: PrefixStore,
}

impl StageModel for LlmModel {
    type Job = LlmJob;

    fn run_batch(&mut self, batch: &mut [LlmJob], control: &BatchControl) -> Result<(), String> {
        run_batch(
            &self.loaded,
            batch,
            &self.stats,
            self.service,
            control,
            &mut self.prefixes,
        )
    }
}

/// What the thread holds once loaded.
struct Loaded {
    model: LlamaForCausalLM,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stop_token_ids: Vec<u32>,
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
    let info = identify_model_dir(
        dir,
        IdentityOverrides {
            name: None,
            version: settings.model_version.as_deref(),
        },
    )
    .map_err(|e| e.to_string())?;
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
fn encode(loaded: &Loaded, job: &LlmJob) -> Result<Vec<u32>, WorkerError> {
    let messages: Vec<TemplateMessage> = job
        .prompt
        .messages
        .iter()
        .map(|m| TemplateMessage::new(m.role.as_str(), m.content.clone()))
        .collect();
    let mut prompt = loaded
        .template
        .render(&messages, true)
        .map_err(|e| WorkerError::Model(e.to_string()))?;
    prompt.push_str(&job.prompt.assistant_prefix);
    let encoding = loaded
        .tokenizer
        .encode(prompt, false)
        .map_err(|e| WorkerError::Model(e.to_string()))?;
    Ok(encoding.get_ids().to_vec())
}

fn generation_request(loaded: &Loaded, prompt_ids: Vec<u32>, job: &LlmJob) -> GenerationRequest {
    let s = &job.sampling;
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
        .with_stop_strings(job.stop_strings.iter().cloned())
}

/// The error of a job stopped early: its deadline, else its caller's cancellation.
fn stopped_error(job: &LlmJob, stopping: bool) -> WorkerError {
    if stopping {
        WorkerError::NotReady {
            reason: "the model worker is stopping".into(),
        }
    } else if job.is_past_deadline() {
        WorkerError::DeadlineExceeded
    } else {
        WorkerError::Cancelled
    }
}

/// Runs one batch and answers each job; `Err` when the generation call itself failed
/// (the generic worker then fails the batch's jobs).
fn run_batch(
    loaded: &Loaded,
    batch: &[LlmJob],
    stats: &WorkerStats,
    service: &'static str,
    control: &BatchControl,
    prefixes: &mut PrefixStore,
) -> Result<(), String> {
    let dequeued = control.dequeued();
    let stopping = control.stopping();
    let max_context = loaded.model.config().max_context();
    // Leaving the queue: drop the jobs whose caller is gone or whose deadline passed, and
    // answer the ones whose prompt cannot be built.
    let mut jobs = Vec::with_capacity(batch.len());
    let mut requests = Vec::with_capacity(batch.len());
    for job in batch {
        if stopping || job.is_cancelled() || job.is_past_deadline() {
            stats.cancelled_sequences.fetch_add(1, Ordering::SeqCst);
            metrics::counter!("storyreel_llm_cancelled_sequences_total", "worker" => service).increment(1);
            let _ = job
                .events
                .send(WorkerEvent::Done(Err(stopped_error(job, stopping))));
            continue;
        }
        let prompt_ids = match encode(loaded, job) {
            Ok(ids) => ids,
            Err(err) => {
                let _ = job.events.send(WorkerEvent::Done(Err(err)));
                continue;
            }
        };
        if prompt_ids.len() + job.sampling.max_new_tokens > max_context {
            let err = WorkerError::ContextExceeded {
                prompt_tokens: prompt_ids.len(),
                max_new_tokens: job.sampling.max_new_tokens,
                context: max_context,
            };
            let _ = job.events.send(WorkerEvent::Done(Err(err)));
            continue;
        }
        requests.push(generation_request(loaded, prompt_ids, job));
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Ok(());
    }

    let size = jobs.len() as u64;
    stats.batches.fetch_add(1, Ordering::SeqCst);
    stats.batched_requests.fetch_add(size, Ordering::SeqCst);
    stats.max_batch_size.fetch_max(size, Ordering::SeqCst);
    metrics::histogram!("storyreel_llm_batch_size", "worker" => service).record(size as f64);
    metrics::counter!("storyreel_llm_batched_requests_total", "worker" => service).increment(size);
    let _span = tracing::debug_span!("generate", batch_size = size).entered();

    let mut cancelled = vec![false; jobs.len()];
    let mut sink = |event: TokenEvent| -> bool {
        let job = &jobs[event.request];
        stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
        if control.stopping() || job.is_cancelled() || job.is_past_deadline() {
            if !cancelled[event.request] {
                cancelled[event.request] = true;
                stats.cancelled_sequences.fetch_add(1, Ordering::SeqCst);
                metrics::counter!("storyreel_llm_cancelled_sequences_total", "worker" => service)
                    .increment(1);
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
    let result = decode(loaded, &jobs, &requests, prefixes, &mut sink);
    let compute_time = started.elapsed();
    stats.finished_batches.fetch_add(1, Ordering::SeqCst);
    match result {
        Ok(outputs) => {
            for (job, (output, reused, cache)) in jobs.iter().zip(outputs) {
                let done = if output.finish_reason == FinishReason::Cancelled {
                    Err(stopped_error(job, stopping))
                } else {
                    Ok(LlmOutput {
                        text: output.text,
                        prompt_tokens: output.prompt_tokens,
                        reused_prompt_tokens: reused,
                        generated_tokens: output.token_ids.len(),
                        mean_logprob: mean(&output.token_logprobs),
                        finish_reason: output.finish_reason,
                        queue_time: dequeued.saturating_duration_since(job.enqueued_at),
                        compute_time,
                    })
                };
                stats
                    .prompt_tokens
                    .fetch_add(output.prompt_tokens as u64, Ordering::SeqCst);
                stats
                    .reused_prompt_tokens
                    .fetch_add(reused as u64, Ordering::SeqCst);
                metrics::counter!("storyreel_llm_prompt_tokens_total", "worker" => service)
                    .increment(output.prompt_tokens as u64);
                metrics::counter!("storyreel_llm_reused_prompt_tokens_total", "worker" => service)
                    .increment(reused as u64);
                if let Some(key) = &job.prefix_key {
                    // a stopped request has no next item: its cache is of no further use
                    match (cache, &done) {
                        (Some(cache), Ok(_)) => prefixes.put(key, cache),
                        _ => prefixes.remove(key),
                    }
                }
                let _ = job.events.send(WorkerEvent::Done(done));
            }
        }
        Err(err) => {
            for key in jobs.iter().filter_map(|j| j.prefix_key.as_ref()) {
                prefixes.remove(key);
            }
            // the generic worker answers every job of the batch with the failure
            return Err(format!("generation failed: {err}"));
        }
    }
    Ok(())
}

/// An output, the prompt tokens it reused, and the cache it leaves (jobs with a key).
type Decoded = (GenerationOutput, usize, Option<CachedPrefix>);

/// Runs one batch: with the cached prefixes of the jobs that carry a key when reuse is on,
/// plainly otherwise.
fn decode(
    loaded: &Loaded,
    jobs: &[&LlmJob],
    requests: &[GenerationRequest],
    prefixes: &PrefixStore,
    sink: &mut dyn storyreel_nn::generation::TokenSink,
) -> Result<Vec<Decoded>, storyreel_nn::generation::GenerationError> {
    let reuse = prefixes.enabled();
    if !reuse || jobs.iter().all(|j| j.prefix_key.is_none()) {
        let outputs = generate(&loaded.model, &loaded.tokenizer, requests, sink)?;
        return Ok(outputs.into_iter().map(|o| (o, 0, None)).collect());
    }
    let cached: Vec<Option<&CachedPrefix>> = jobs
        .iter()
        .map(|j| j.prefix_key.as_deref().and_then(|k| prefixes.get(k)))
        .collect();
    let outputs = generate_reusing(&loaded.model, &loaded.tokenizer, requests, &cached, sink)?;
    Ok(outputs
        .into_iter()
        .zip(jobs)
        .map(|(o, job)| {
            let cache = job.prefix_key.is_some().then_some(o.cache);
            (o.output, o.reused_prompt_tokens, cache)
        })
        .collect())
}

/// The mean of `values`, 0 for none.
fn mean(values: &[f32]) -> f32 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f32>() / values.len() as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        BatchingConfig,
        chat::{ChatMessage, Role},
    };

    fn job() -> (LlmJob, mpsc::UnboundedReceiver<WorkerEvent>) {
        let (events, rx) = mpsc::unbounded_channel();
        let job = LlmJob {
            prompt: ChatPrompt {
                messages: vec![ChatMessage::new(Role::User, "Title: A fox")],
                assistant_prefix: "1.".into(),
            },
            stop_strings: vec!["\n".into()],
            sampling: JobSampling {
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
            prefix_key: None,
        };
        (job, rx)
    }

    fn settings(dir: &Path) -> WorkerSettings {
        WorkerSettings::new(
            "test",
            dir.to_path_buf(),
            "cpu",
            "f32",
            &BatchingConfig::default(),
        )
    }

    #[tokio::test]
    async fn a_missing_model_fails_and_refuses_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let worker = ModelWorker::spawn(settings(dir.path())).unwrap();
        let mut state = worker.state();
        let state = state
            .wait_for(|s| !matches!(s, ModelState::Loading))
            .await
            .unwrap()
            .clone();
        let ModelState::Failed(reason) = state else {
            panic!("expected a failure, got {state:?}");
        };
        assert!(reason.contains("make models"), "{reason}");
        assert!(matches!(
            worker.submit(job().0),
            Err(WorkerError::NotReady { .. })
        ));
    }

    #[tokio::test]
    async fn dropping_the_handle_ends_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let worker = ModelWorker::spawn(settings(dir.path())).unwrap();
        let mut state = worker.state();
        drop(worker);
        // The thread has ended: its state sender is gone.
        let until = Instant::now() + Duration::from_secs(5);
        while state.changed().await.is_ok() {
            assert!(Instant::now() < until);
        }
    }

    #[tokio::test]
    async fn a_scripted_worker_answers_every_job() {
        let worker = ModelWorker::scripted(|job| format!("echo {}", job.prompt.assistant_prefix));
        storyreel_runtime::model::wait_ready(worker.state())
            .await
            .unwrap();
        let (job, mut events) = job();
        worker.submit(job).unwrap();
        let Some(WorkerEvent::Done(Ok(output))) = events.recv().await else {
            panic!("no answer");
        };
        assert_eq!(output.text, "echo 1.");
    }
}

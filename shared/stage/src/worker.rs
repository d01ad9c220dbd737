//! The model worker every stage runs its model on: one OS thread that owns the model (tch
//! tensors are `Send` but not `Sync`), fed by a bounded queue, in the shape of
//! text-embeddings-inference's `BackendThread` (STYLE.md).
//!
//! - Start-up does not wait for the model: the thread loads it and publishes
//!   [`ModelState::Loading`], then [`ModelState::Ready`] or [`ModelState::Failed`] on a
//!   `watch` channel that readiness (`grpc.health.v1`) follows.
//! - The thread applies the settings that make libtorch behave as the benchmarks measured
//!   it: `no_grad`, its thread count, and optionally the allocator tuning of
//!   [`storyreel_nn::allocator::keep_freed_memory`].
//! - Batching is a policy: the thread takes the first waiting job, then more until their
//!   [`WorkerJob::weight`]s reach `max_batch_size` or `max_wait` passed (a model that runs
//!   one job at a time sets `max_batch_size = 1`).
//! - A full queue is [`WorkerError::Overloaded`] (RESOURCE_EXHAUSTED).
//! - A panic in model code (libtorch raises its C++ errors, out-of-memory included, as
//!   panics in tch) fails the batch it happened in: every job of it not yet answered gets
//!   [`WorkerError::BatchFailed`] (INTERNAL) and the worker takes the next batch. After
//!   `max_consecutive_failures` failed batches in a row the model is taken for broken:
//!   the state becomes [`ModelState::Failed`] (NOT_SERVING, so the platform replaces the
//!   replica) and queued and later jobs are refused with [`WorkerError::NotReady`].
//! - Metrics, labelled `stage`: `storyreel_stage_queue_depth` (gauge: the signal a GPU
//!   pool autoscales on), `storyreel_stage_batch_size` (histogram),
//!   `storyreel_stage_batches_total{outcome=ok|error|panic}`,
//!   `storyreel_stage_batch_duration_seconds`, `storyreel_stage_queue_wait_seconds` and
//!   `storyreel_stage_stopped_jobs_total` (jobs cut short by their caller, their deadline
//!   or a shutdown).

use crate::{WorkerError, metrics as names};
use serde::{Deserialize, Serialize};
use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc::{self as std_mpsc, RecvTimeoutError, TrySendError},
    },
    time::{Duration, Instant},
};
use storyreel_runtime::{
    ValidationError,
    config::check_range,
    model::{ModelInfo, ModelState},
};
use tokio::sync::watch;

/// A job on the worker's queue.
pub trait WorkerJob: Send + 'static {
    /// Its share of a batch (texts of an embedding job, sequences of a generation); 1 by
    /// default.
    fn weight(&self) -> usize {
        1
    }

    /// Answers the job with `error`, unless it has been answered already.
    fn fail(&mut self, error: WorkerError);
}

/// What the worker's thread asks of the model it owns.
pub trait StageModel: 'static {
    type Job: WorkerJob;

    /// Runs one batch and answers each of its jobs (through the job's own channel). An
    /// `Err` fails the jobs it has not answered and counts as a failed batch; so does a
    /// panic.
    fn run_batch(&mut self, batch: &mut [Self::Job], control: &BatchControl) -> Result<(), String>;
}

/// What a batch may look at while it runs.
#[derive(Debug)]
pub struct BatchControl {
    stage: &'static str,
    stopping: Arc<AtomicBool>,
    dequeued: Instant,
    counters: Arc<WorkerCounters>,
}

impl BatchControl {
    /// The worker's handle was dropped: stop at the next step.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// When the batch left the queue (a job's queue time ends here).
    pub fn dequeued(&self) -> Instant {
        self.dequeued
    }

    /// Counts a job that stopped before its end (its caller gone, its deadline passed or
    /// the worker stopping) after `units_done` units of its work, `units_after_cancel` of
    /// them finished after its caller cancelled.
    pub fn record_stopped(&self, units_done: u32, units_after_cancel: u32) {
        self.counters.stopped_jobs.fetch_add(1, Ordering::SeqCst);
        self.counters
            .units_of_stopped_jobs
            .fetch_add(u64::from(units_done), Ordering::SeqCst);
        self.counters
            .units_after_cancel
            .fetch_add(u64::from(units_after_cancel), Ordering::SeqCst);
        metrics::counter!(names::STOPPED_JOBS, "stage" => self.stage).increment(1);
    }
}

/// The `[<stage>.worker]` table of a stage's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Jobs waiting for the model before new ones are refused with RESOURCE_EXHAUSTED.
    pub queue_capacity: usize,
    /// Largest batch, in job weight (1-256).
    pub max_batch_size: usize,
    /// Longest wait for a batch to fill after its first job, in milliseconds (0-10000).
    pub max_wait_ms: u64,
    /// libtorch intra-op threads; 0 keeps libtorch's default.
    pub threads: usize,
    /// glibc malloc keeps freed memory for reuse (`storyreel_nn::allocator`); process-wide.
    pub keep_freed_memory: bool,
    /// Failed batches in a row after which the model is taken for broken (NOT_SERVING).
    pub max_consecutive_failures: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 64,
            max_batch_size: 1,
            max_wait_ms: 0,
            threads: 0,
            keep_freed_memory: false,
            max_consecutive_failures: 3,
        }
    }
}

impl WorkerConfig {
    /// A worker for a model that runs one call at a time on large activations (diffusion,
    /// VAE, upsampling): a short queue, freed memory kept for reuse.
    pub fn one_call_at_a_time() -> Self {
        Self {
            queue_capacity: 16,
            keep_freed_memory: true,
            ..Self::default()
        }
    }

    /// [`WorkerConfig::validate`], and one call at a time (`max_batch_size` 1).
    pub fn validate_one_call_at_a_time(&self) -> Result<(), ValidationError> {
        self.validate()?;
        if self.max_batch_size != 1 {
            return Err(ValidationError::new(
                "worker.max_batch_size",
                format!("must be 1 (one call at a time), got {}", self.max_batch_size),
            ));
        }
        Ok(())
    }

    /// Field names are relative to the table (`worker.queue_capacity`).
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("worker.queue_capacity", self.queue_capacity, 1, 100_000)?;
        check_range("worker.max_batch_size", self.max_batch_size, 1, 256)?;
        check_range("worker.max_wait_ms", self.max_wait_ms, 0, 10_000)?;
        check_range("worker.threads", self.threads, 0, 1024)?;
        check_range(
            "worker.max_consecutive_failures",
            self.max_consecutive_failures,
            1,
            1000,
        )
    }
}

/// What [`ModelWorker::spawn`] needs: the config plus the stage name (thread name and the
/// `stage` metric label).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSettings {
    pub stage: &'static str,
    pub config: WorkerConfig,
}

impl WorkerSettings {
    pub fn new(stage: &'static str, config: WorkerConfig) -> Self {
        Self { stage, config }
    }
}

/// Counters of a worker, for tests and benchmarks (the metrics carry the same figures).
#[derive(Debug, Default)]
pub struct WorkerCounters {
    pub batches: AtomicU64,
    pub failed_batches: AtomicU64,
    pub panics: AtomicU64,
    /// Jobs that stopped before their end ([`BatchControl::record_stopped`]).
    pub stopped_jobs: AtomicU64,
    /// The units (steps, frames) those jobs had finished when they stopped.
    pub units_of_stopped_jobs: AtomicU64,
    /// Of those, the units finished after their callers had cancelled.
    pub units_after_cancel: AtomicU64,
}

struct Queued<J> {
    job: J,
    enqueued: Instant,
}

/// The handle of a model worker. Dropping it stops the thread after the batch under way
/// (which sees [`BatchControl::stopping`]) and waits for it, so no model code runs once
/// the handle is gone: a process that exits right after must not tear libtorch's globals
/// down under a running forward pass.
pub struct ModelWorker<J: WorkerJob> {
    /// `None` once dropping: closing the queue ends the thread's loop.
    queue: Option<std_mpsc::SyncSender<Queued<J>>>,
    stage: &'static str,
    capacity: usize,
    depth: Arc<AtomicUsize>,
    state: watch::Receiver<ModelState>,
    counters: Arc<WorkerCounters>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<J: WorkerJob> Drop for ModelWorker<J> {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.queue.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(stage = self.stage, "the model worker thread panicked");
        }
    }
}

impl<J: WorkerJob> ModelWorker<J> {
    /// Starts the thread; it runs `load` (the state is [`ModelState::Loading`] until it
    /// returns) and then serves the queue with the model `load` made.
    pub fn spawn<M, L>(settings: WorkerSettings, load: L) -> Result<Self, WorkerError>
    where
        M: StageModel<Job = J>,
        L: FnOnce() -> Result<(M, ModelInfo), String> + Send + 'static,
    {
        let WorkerSettings { stage, config } = settings;
        let capacity = config.queue_capacity;
        let (queue, jobs) = std_mpsc::sync_channel(capacity);
        let (state_tx, state) = watch::channel(ModelState::Loading);
        let depth = Arc::new(AtomicUsize::new(0));
        let counters = Arc::new(WorkerCounters::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (depth, counters, stopping) = (depth.clone(), counters.clone(), stopping.clone());
            std::thread::Builder::new()
                .name(format!("{stage}-model"))
                .spawn(move || {
                    let thread = WorkerThread {
                        stage,
                        config,
                        jobs,
                        depth,
                        counters,
                        stopping,
                    };
                    thread.run(load, state_tx)
                })
                .map_err(|e| WorkerError::NotReady {
                    reason: format!("cannot start the model thread: {e}"),
                })?
        };
        metrics::gauge!(names::QUEUE_DEPTH, "stage" => stage).set(0.0);
        Ok(Self {
            queue: Some(queue),
            stage,
            capacity,
            depth,
            state,
            counters,
            stopping,
            thread: Some(thread),
        })
    }

    /// Queues `job`. A full queue is [`WorkerError::Overloaded`]; a model that is not
    /// ready (loading, failed, stopped) is [`WorkerError::NotReady`].
    pub fn submit(&self, job: J) -> Result<(), WorkerError> {
        self.ready_model()?;
        let Some(queue) = &self.queue else {
            return Err(not_ready("the model worker is stopping"));
        };
        // Counted before sending, so the thread never sees a depth below zero.
        let depth = self.depth.fetch_add(1, Ordering::SeqCst) + 1;
        let queued = Queued {
            job,
            enqueued: Instant::now(),
        };
        match queue.try_send(queued) {
            Ok(()) => {
                metrics::gauge!(names::QUEUE_DEPTH, "stage" => self.stage).set(depth as f64);
                Ok(())
            }
            Err(err) => {
                self.depth.fetch_sub(1, Ordering::SeqCst);
                Err(match err {
                    TrySendError::Full(_) => WorkerError::Overloaded {
                        capacity: self.capacity,
                    },
                    TrySendError::Disconnected(_) => not_ready("the model worker has stopped"),
                })
            }
        }
    }

    /// The state readiness follows.
    pub fn state(&self) -> watch::Receiver<ModelState> {
        self.state.clone()
    }

    /// The model's info once ready; [`WorkerError::NotReady`] while loading or failed.
    pub fn ready_model(&self) -> Result<ModelInfo, WorkerError> {
        match &*self.state.borrow() {
            ModelState::Ready(info) => Ok(info.clone()),
            ModelState::Loading => Err(not_ready("the model is loading")),
            ModelState::Failed(reason) => Err(not_ready(reason)),
        }
    }

    /// Waits until the model is loaded: its info, or why it failed.
    pub async fn wait_ready(&self) -> Result<ModelInfo, WorkerError> {
        storyreel_runtime::model::wait_ready(self.state())
            .await
            .map_err(|reason| WorkerError::NotReady { reason })
    }

    /// Jobs waiting in the queue now.
    pub fn queue_depth(&self) -> usize {
        self.depth.load(Ordering::SeqCst)
    }

    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

fn not_ready(reason: impl Into<String>) -> WorkerError {
    WorkerError::NotReady {
        reason: reason.into(),
    }
}

/// Marks the model failed when the thread ends, however it ends.
struct FailOnExit(watch::Sender<ModelState>);

impl Drop for FailOnExit {
    fn drop(&mut self) {
        if !matches!(*self.0.borrow(), ModelState::Failed(_)) {
            self.0
                .send_replace(ModelState::Failed("the model worker stopped".into()));
        }
    }
}

struct WorkerThread<J> {
    stage: &'static str,
    config: WorkerConfig,
    jobs: std_mpsc::Receiver<Queued<J>>,
    depth: Arc<AtomicUsize>,
    counters: Arc<WorkerCounters>,
    stopping: Arc<AtomicBool>,
}

impl<J: WorkerJob> WorkerThread<J> {
    fn run<M, L>(self, load: L, state: watch::Sender<ModelState>)
    where
        M: StageModel<Job = J>,
        L: FnOnce() -> Result<(M, ModelInfo), String>,
    {
        let state = FailOnExit(state);
        if self.config.threads > 0 {
            tch::set_num_threads(self.config.threads as i32);
        }
        if self.config.keep_freed_memory && !storyreel_nn::allocator::keep_freed_memory() {
            tracing::warn!(
                stage = self.stage,
                "`keep_freed_memory` is set but this allocator does not take the tuning"
            );
        }
        let _no_grad = tch::no_grad_guard();
        let started = Instant::now();
        let loaded = std::panic::catch_unwind(AssertUnwindSafe(load))
            .unwrap_or_else(|panic| Err(format!("loading panicked: {}", panic_message(&panic))));
        let mut model = match loaded {
            Ok((model, info)) => {
                tracing::info!(
                    stage = self.stage,
                    model = %info.name,
                    version = %info.version,
                    weights_sha256 = %info.weights_sha256,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "model loaded"
                );
                state.0.send_replace(ModelState::Ready(info));
                model
            }
            Err(reason) => {
                tracing::error!(stage = self.stage, %reason, "cannot load the model");
                state.0.send_replace(ModelState::Failed(reason));
                self.refuse_queued("the model failed to load");
                return;
            }
        };
        let mut failures_in_a_row = 0;
        while let Some(mut batch) = self.next_batch() {
            let control = BatchControl {
                stage: self.stage,
                stopping: self.stopping.clone(),
                dequeued: Instant::now(),
                counters: self.counters.clone(),
            };
            match self.run_batch(&mut model, &mut batch, &control) {
                Ok(()) => failures_in_a_row = 0,
                Err(reason) => {
                    failures_in_a_row += 1;
                    if failures_in_a_row >= self.config.max_consecutive_failures {
                        let reason = format!(
                            "{failures_in_a_row} batches failed in a row (`max_consecutive_failures`); last: {reason}"
                        );
                        tracing::error!(stage = self.stage, %reason, "model taken for broken; not serving");
                        state.0.send_replace(ModelState::Failed(reason));
                        self.refuse_queued("the model failed repeatedly");
                        return;
                    }
                }
            }
        }
    }

    /// Runs one batch, isolating a panic; `Err` when it failed.
    fn run_batch<M: StageModel<Job = J>>(
        &self,
        model: &mut M,
        batch: &mut [J],
        control: &BatchControl,
    ) -> Result<(), String> {
        let stage = self.stage;
        self.counters.batches.fetch_add(1, Ordering::SeqCst);
        let weight: usize = batch.iter().map(WorkerJob::weight).sum();
        metrics::histogram!(names::BATCH_SIZE, "stage" => stage).record(weight as f64);
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| model.run_batch(batch, control)));
        metrics::histogram!(names::BATCH_DURATION, "stage" => stage).record(started.elapsed().as_secs_f64());
        let (outcome, failure) = match result {
            Ok(Ok(())) => ("ok", None),
            Ok(Err(reason)) => ("error", Some(reason)),
            Err(panic) => {
                self.counters.panics.fetch_add(1, Ordering::SeqCst);
                (
                    "panic",
                    Some(format!("model code panicked: {}", panic_message(&panic))),
                )
            }
        };
        metrics::counter!(names::BATCHES, "stage" => stage, "outcome" => outcome).increment(1);
        let Some(reason) = failure else {
            return Ok(());
        };
        self.counters.failed_batches.fetch_add(1, Ordering::SeqCst);
        tracing::error!(stage, %reason, jobs = batch.len(), "a batch failed; its requests get INTERNAL");
        for job in batch.iter_mut() {
            job.fail(WorkerError::BatchFailed(reason.clone()));
        }
        Err(reason)
    }

    /// Blocks for the first job, then collects more until the batch's weight reaches
    /// `max_batch_size` or `max_wait` passed. `None` once the queue is closed and empty.
    fn next_batch(&self) -> Option<Vec<J>> {
        let first = self.jobs.recv().ok()?;
        let max = self.config.max_batch_size;
        let until = Instant::now() + Duration::from_millis(self.config.max_wait_ms);
        let mut weight = first.job.weight();
        let mut batch = vec![self.dequeued(first)];
        while weight < max {
            let left = until.saturating_duration_since(Instant::now());
            let next = if left.is_zero() {
                self.jobs.try_recv().map_err(|_| RecvTimeoutError::Timeout)
            } else {
                self.jobs.recv_timeout(left)
            };
            match next {
                Ok(queued) => {
                    weight += queued.job.weight();
                    batch.push(self.dequeued(queued));
                }
                Err(_) => break,
            }
        }
        Some(batch)
    }

    fn dequeued(&self, queued: Queued<J>) -> J {
        let depth = self.depth.fetch_sub(1, Ordering::SeqCst).saturating_sub(1);
        metrics::gauge!(names::QUEUE_DEPTH, "stage" => self.stage).set(depth as f64);
        metrics::histogram!(names::QUEUE_WAIT, "stage" => self.stage)
            .record(queued.enqueued.elapsed().as_secs_f64());
        queued.job
    }

    /// Answers every queued job with NotReady; later submits see the queue closed.
    fn refuse_queued(self, reason: &str) {
        while let Ok(queued) = self.jobs.try_recv() {
            self.dequeued(queued).fail(not_ready(reason));
        }
    }
}

/// The message of a panic payload (`panic!` with a literal or a formatted string).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

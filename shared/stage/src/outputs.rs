//! A tensor-in, tensor-out call from its worker job to its stored output (keyframe,
//! decoder, interpolation): the output goes into the call's stage-cache entry, or under
//! `storyreel:{job}:{stage}:{scene}:{name}` when the cache is off for the call; a cache
//! hit answers without the worker; the worker's progress is forwarded as it comes; a call
//! that does not finish stores nothing, and dropping its event stream cancels its job.

use crate::StageError;
use futures::{StreamExt, stream::BoxStream};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};
use storyreel_runtime::{JobInfo, ModelInfo, StageStats};
use storyreel_tensors::{CacheKey, StageCache, Tensor, TensorRef, stage_cache::find_output};
use tokio::sync::mpsc;

/// What a worker reports about a job, in order.
#[derive(Debug)]
pub enum JobEvent {
    /// The job left the queue.
    Started { queue_time: Duration },
    /// `done` of `total` units (steps, slices, frames) finished.
    Progress { done: u32, total: u32 },
    /// A look at the work after `step` units (a keyframe preview).
    Preview { step: u32, image: Tensor },
    /// The last event.
    Done(Result<Tensor, StageError>),
}

/// A call's stored output.
#[derive(Debug, Clone, PartialEq)]
pub struct StageOutput {
    pub tensor: TensorRef,
    /// The model that made it; `None` when nothing ran.
    pub model: Option<ModelInfo>,
    pub stats: StageStats,
}

impl StageOutput {
    /// An output found in the stage cache.
    pub fn cache_hit(tensor: TensorRef, model: ModelInfo) -> Self {
        StageOutput {
            tensor,
            model: Some(model),
            stats: StageStats {
                cache_hit: true,
                ..StageStats::default()
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StageEvent {
    /// `done` of `total` units finished.
    Progress { done: u32, total: u32 },
    /// A look at the work after `step` units, stored under the job's `preview` key (each
    /// overwrites the last).
    Preview { step: u32, image: TensorRef },
    /// Last, once.
    Finished(Box<StageOutput>),
}

pub type StageEvents = BoxStream<'static, Result<StageEvent, StageError>>;

/// The events of a call answered at once with `output`.
pub fn answered(output: StageOutput) -> StageEvents {
    futures::stream::iter([Ok(StageEvent::Finished(Box::new(output)))]).boxed()
}

/// Where a call's output goes.
#[derive(Clone)]
pub struct OutputPlace {
    pub cache: StageCache,
    /// The call's entry; `None`: the cache is off for it.
    pub key: Option<CacheKey>,
    /// The tensor key's stage and name when not cached (`decode`, `frames`).
    pub stage: &'static str,
    pub name: &'static str,
    pub job: JobInfo,
}

impl OutputPlace {
    /// The output of an earlier identical call, if its entry is there.
    pub async fn cached(&self) -> Result<Option<TensorRef>, StageError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        Ok(self
            .cache
            .lookup(key)
            .await?
            .and_then(|refs| find_output(&refs, self.name)))
    }

    /// Stores `tensor`: as the entry (another call's, if it stored the same entry first),
    /// else under the job.
    pub async fn store(&self, tensor: Tensor) -> Result<TensorRef, StageError> {
        if let Some(key) = &self.key {
            let refs = self.cache.fill(key, &[(self.name.to_string(), tensor)]).await?;
            return find_output(&refs, self.name)
                .ok_or_else(|| StageError::Model(format!("the cache entry {key} has no `{}`", self.name)));
        }
        let store = self.cache.store();
        let scene = self.job.scene_index.unwrap_or(0);
        let key = store
            .keys()
            .tensor(&self.job.job_id_for_keys(), self.stage, scene, self.name)?;
        Ok(store.put(&key, &tensor, None).await?)
    }

    /// Stores `tensor` under the job's key `name` (never in the cache), e.g. a preview.
    pub async fn store_aside(&self, name: &str, tensor: &Tensor) -> Result<TensorRef, StageError> {
        let store = self.cache.store();
        let scene = self.job.scene_index.unwrap_or(0);
        let key = store
            .keys()
            .tensor(&self.job.job_id_for_keys(), self.stage, scene, name)?;
        Ok(store.put(&key, tensor, None).await?)
    }
}

/// Sets a flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The events of a job submitted at `submitted`: its progress as the worker reports it,
/// then its output stored at `place` (made by `model`), with its queue time and its time
/// on the worker (`compute_time`: from leaving the queue to its last event, the output's
/// storing excluded). Dropping the stream sets
/// `cancelled`, which the job polls between its steps.
pub fn forward(
    mut events: mpsc::Receiver<JobEvent>,
    place: OutputPlace,
    model: ModelInfo,
    submitted: Instant,
    cancelled: Arc<AtomicBool>,
) -> StageEvents {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut queue_time = Duration::ZERO;
        let mut started = submitted;
        while let Some(event) = events.recv().await {
            let out = match event {
                JobEvent::Started { queue_time: q } => {
                    (queue_time, started) = (q, Instant::now());
                    continue;
                }
                JobEvent::Progress { done, total } => Ok(StageEvent::Progress { done, total }),
                JobEvent::Preview { step, image } => place
                    .store_aside("preview", &image)
                    .await
                    .map(|image| StageEvent::Preview { step, image }),
                JobEvent::Done(Err(err)) => Err(err),
                JobEvent::Done(Ok(tensor)) => {
                    // the model's time on the worker; storing the output is not in it
                    let compute_time = started.elapsed();
                    place.store(tensor).await.map(|tensor| {
                        StageEvent::Finished(Box::new(StageOutput {
                            tensor,
                            model: Some(model.clone()),
                            stats: StageStats {
                                cache_hit: false,
                                queue_time,
                                compute_time,
                            },
                        }))
                    })
                }
            };
            let last = !matches!(out, Ok(StageEvent::Progress { .. } | StageEvent::Preview { .. }));
            if tx.send(out).await.is_err() || last {
                return;
            }
        }
    });
    let guard = SetOnDrop(cancelled);
    futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|item| (item, (rx, guard)))
    })
    .boxed()
}

/// The output at the end of `events`, or the error that ended them.
pub async fn finished(mut events: StageEvents) -> Result<StageOutput, StageError> {
    while let Some(event) = events.next().await {
        if let StageEvent::Finished(output) = event? {
            return Ok(*output);
        }
    }
    Err(StageError::Model("the work ended without an output".into()))
}

/// A worker job: what to compute and its channel to the caller.
pub struct ChannelJob<W> {
    pub work: W,
    pub channel: JobChannel,
}

impl<W: Send + 'static> crate::WorkerJob for ChannelJob<W> {
    fn fail(&mut self, error: crate::WorkerError) {
        self.channel.done(Err(error.into()));
    }
}

/// Runs the jobs of a batch one after the other with `run`, each reported as started and
/// done; a job whose caller is gone (or past its deadline) is not run, and one that stops
/// on the way is counted with the units it had finished.
pub fn run_each<W>(
    batch: &[ChannelJob<W>],
    control: &crate::BatchControl,
    mut run: impl FnMut(&W, &JobChannel) -> Result<Tensor, StageError>,
) {
    for job in batch {
        job.channel.started(control);
        let result = job
            .channel
            .check(control)
            .and_then(|()| run(&job.work, &job.channel));
        if matches!(result, Err(StageError::Cancelled)) {
            control.record_stopped(job.channel.units_done(), job.channel.units_after_cancel());
        }
        job.channel.done(result);
    }
}

/// A worker job's handle on its caller: progress and the end go to `events`; the job
/// stops at its next step once `stopped` says so.
pub struct JobChannel {
    pub events: mpsc::Sender<JobEvent>,
    pub cancelled: Arc<AtomicBool>,
    pub deadline: Instant,
    pub enqueued: Instant,
    /// The `done` of the last progress reported.
    units_done: AtomicU32,
    /// Progress reports made after `cancelled` was set: the units that ran on after it.
    units_after_cancel: AtomicU32,
}

impl JobChannel {
    /// A channel for a job of a call with `deadline` (none: a day), and its receiving end.
    pub fn new(deadline: Option<Instant>) -> (Self, mpsc::Receiver<JobEvent>) {
        let (events, receiver) = mpsc::channel(256);
        let now = Instant::now();
        let channel = JobChannel {
            events,
            cancelled: Arc::default(),
            deadline: deadline.unwrap_or(now + Duration::from_secs(24 * 3600)),
            enqueued: now,
            units_done: AtomicU32::new(0),
            units_after_cancel: AtomicU32::new(0),
        };
        (channel, receiver)
    }

    /// The caller is gone, the deadline passed, or the worker is stopping.
    pub fn stopped(&self, control: &crate::BatchControl) -> bool {
        control.stopping()
            || self.cancelled.load(Ordering::Relaxed)
            || self.events.is_closed()
            || Instant::now() >= self.deadline
    }

    /// Err(Cancelled) once [`JobChannel::stopped`].
    pub fn check(&self, control: &crate::BatchControl) -> Result<(), StageError> {
        if self.stopped(control) {
            Err(StageError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Reports progress; dropped when the caller is behind (the next one supersedes it).
    pub fn progress(&self, done: usize, total: usize) {
        self.units_done.store(done as u32, Ordering::Relaxed);
        if self.cancelled.load(Ordering::Relaxed) {
            self.units_after_cancel.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self.events.try_send(JobEvent::Progress {
            done: done as u32,
            total: total as u32,
        });
    }

    /// The `done` of the last progress reported (0 before any).
    pub fn units_done(&self) -> u32 {
        self.units_done.load(Ordering::Relaxed)
    }

    /// Units reported done after the caller cancelled: a job that stops at its next step
    /// boundary ran on for at most one.
    pub fn units_after_cancel(&self) -> u32 {
        self.units_after_cancel.load(Ordering::Relaxed)
    }

    /// Sends a preview; dropped when the caller is behind.
    pub fn preview(&self, step: usize, image: Tensor) {
        let _ = self.events.try_send(JobEvent::Preview {
            step: step as u32,
            image,
        });
    }

    /// Reports that the job left the queue.
    pub fn started(&self, control: &crate::BatchControl) {
        let _ = self.events.blocking_send(JobEvent::Started {
            queue_time: control.dequeued().saturating_duration_since(self.enqueued),
        });
    }

    /// Reports the end (from the worker thread).
    pub fn done(&self, result: Result<Tensor, StageError>) {
        let _ = self.events.blocking_send(JobEvent::Done(result));
    }
}

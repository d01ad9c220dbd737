//! The context of one call to a stage: the validated job, one deadline, cancellation, one
//! span and the stage latency histogram. Every stage's gRPC adapter makes one per call
//! through [`StageCalls::begin`] and runs the call through [`CallContext::unary`] or
//! [`CallContext::stream`]:
//!
//! - deadline: the earliest of the job's (`context.deadline`), the call's (`grpc-timeout`)
//!   and the server's `request_timeout_ms`; a passed one fails at once; the whole call,
//!   a stream to its last message included, runs under it (tonic's own timeout ends at a
//!   stream's headers), ending with DEADLINE_EXCEEDED and dropping the work;
//! - cancellation: when the caller goes away, tonic drops the call's future or stream;
//!   [`CallContext::cancel_flag`] is set then, for work that polls a flag (denoising steps);
//! - span: `stage.call` with the stage, method, job id, scene, endpoint group and the
//!   model version served, the parent of everything the call does;
//! - metric: `storyreel_stage_request_duration_seconds` recorded when the call ends (for
//!   a stream: its last message, its error, or the caller dropping it) with the status
//!   code it ended with.

use crate::metrics::REQUEST_DURATION;
use futures::{Stream, StreamExt, stream::BoxStream};
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use storyreel_runtime::{
    ErrorCode, HasErrorCode, JobInfo, ModelState,
    job::{earliest, grpc_deadline},
    to_status,
};
use tokio::sync::watch;
use tonic::{Code, Status, metadata::MetadataMap};
use tracing::Instrument;

/// A call whose deadline passed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error(
    "the deadline passed before the call finished (the earliest of `context.deadline`, grpc-timeout and `server.request_timeout_ms`)"
)]
pub struct DeadlineExceeded;

impl HasErrorCode for DeadlineExceeded {
    fn error_code(&self) -> ErrorCode {
        ErrorCode::Timeout
    }
}

/// What every call of one stage shares: made once by the gRPC adapter.
#[derive(Clone)]
pub struct StageCalls {
    stage: &'static str,
    request_timeout: Duration,
    state: watch::Receiver<ModelState>,
}

impl StageCalls {
    /// `state` is the served model's: its version labels the metric and the span.
    pub fn new(stage: &'static str, request_timeout: Duration, state: watch::Receiver<ModelState>) -> Self {
        Self {
            stage,
            request_timeout,
            state,
        }
    }

    /// [`StageCalls::begin`] for a validated request whose `deadline` field holds its
    /// job's deadline: the field becomes the call's one deadline.
    pub fn begin_request(
        &self,
        method: &'static str,
        metadata: &MetadataMap,
        job: &JobInfo,
        deadline: &mut Option<Instant>,
    ) -> Result<CallContext, Status> {
        let context = self.begin(method, metadata, job.clone(), *deadline)?;
        *deadline = Some(context.deadline);
        Ok(context)
    }

    /// The context of a call of `method` for `job`, whose own deadline is `job_deadline`
    /// (from its validated `context`). DEADLINE_EXCEEDED when the deadline has passed.
    pub fn begin(
        &self,
        method: &'static str,
        metadata: &MetadataMap,
        job: JobInfo,
        job_deadline: Option<Instant>,
    ) -> Result<CallContext, Status> {
        let now = Instant::now();
        let deadline = earliest(
            earliest(job_deadline, grpc_deadline(metadata, now)),
            now.checked_add(self.request_timeout),
        )
        .unwrap_or(now + self.request_timeout);
        let model_version = match &*self.state.borrow() {
            ModelState::Ready(info) => info.version.clone(),
            _ => String::new(),
        };
        let endpoint_group = job.endpoint_group.clone().unwrap_or_default();
        let span = tracing::info_span!(
            "stage.call",
            stage = self.stage,
            method,
            job_id = job.job_id.as_deref().unwrap_or(""),
            scene = job.scene_index.map(i64::from).unwrap_or(-1),
            request_id = job.request_id.as_deref().unwrap_or(""),
            endpoint_group = %endpoint_group,
            model_version = %model_version,
        );
        let context = CallContext {
            job,
            deadline,
            span,
            cancelled: Arc::default(),
            record: Record {
                stage: self.stage,
                method,
                model_version,
                endpoint_group,
                started: now,
            },
        };
        if deadline <= now {
            context.record.finish(Code::DeadlineExceeded);
            return Err(to_status(&DeadlineExceeded));
        }
        Ok(context)
    }
}

/// One call: see the module docs.
pub struct CallContext {
    pub job: JobInfo,
    /// The one deadline of the call.
    pub deadline: Instant,
    span: tracing::Span,
    cancelled: Arc<AtomicBool>,
    record: Record,
}

impl CallContext {
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Set when the caller goes away (the call's future or stream is dropped unfinished).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancelled.clone()
    }

    /// The deadline, the span, and the guard that records the call once.
    fn into_parts(self) -> (Instant, tracing::Span, EndGuard) {
        let guard = EndGuard {
            record: Some(self.record),
            cancelled: self.cancelled,
        };
        (self.deadline, self.span, guard)
    }

    /// Runs a unary call under the deadline and the span; records the metric.
    pub async fn unary<T, E, F>(self, call: F) -> Result<T, Status>
    where
        E: HasErrorCode,
        F: Future<Output = Result<T, E>>,
    {
        let (deadline, span, mut guard) = self.into_parts();
        let result = match tokio::time::timeout_at(deadline.into(), call.instrument(span.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(span.in_scope(|| failed(&err))),
            Err(_) => Err(to_status(&DeadlineExceeded)),
        };
        guard.finish(match &result {
            Ok(_) => Code::Ok,
            Err(status) => status.code(),
        });
        result
    }

    /// Runs a streaming call whose stream is opened by `open` (errors known before the
    /// first event: a full queue, no model) under the deadline and the span.
    pub async fn open_stream<T, E, S, F>(
        self,
        open: F,
    ) -> Result<BoxStream<'static, Result<T, Status>>, Status>
    where
        T: Send + 'static,
        E: HasErrorCode + Send + 'static,
        S: Stream<Item = Result<T, E>> + Send + 'static,
        F: Future<Output = Result<S, E>>,
    {
        let opened = tokio::time::timeout_at(self.deadline.into(), open.instrument(self.span.clone())).await;
        let failure = match opened {
            Ok(Ok(events)) => return Ok(self.stream(events)),
            Ok(Err(err)) => self.span.in_scope(|| failed(&err)),
            Err(_) => to_status(&DeadlineExceeded),
        };
        self.into_parts().2.finish(failure.code());
        Err(failure)
    }

    /// Runs a streaming call: `events` until its end, its first error or the deadline
    /// (then DEADLINE_EXCEEDED, dropping `events`); records the metric at the end.
    pub fn stream<T, E, S>(self, events: S) -> BoxStream<'static, Result<T, Status>>
    where
        T: Send + 'static,
        E: HasErrorCode + Send + 'static,
        S: Stream<Item = Result<T, E>> + Send + 'static,
    {
        let (deadline, span, guard) = self.into_parts();
        let state = StreamState {
            events: events.boxed(),
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            guard,
            span,
        };
        futures::stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            let next = tokio::select! {
                biased;
                item = state.events.next().instrument(state.span.clone()) => Some(item),
                _ = &mut state.sleep => None,
            };
            match next {
                Some(Some(Ok(item))) => Some((Ok(item), Some(state))),
                Some(Some(Err(err))) => {
                    let status = state.span.in_scope(|| failed(&err));
                    state.guard.finish(status.code());
                    Some((Err(status), None))
                }
                Some(None) => {
                    state.guard.finish(Code::Ok);
                    None
                }
                None => {
                    state.guard.finish(Code::DeadlineExceeded);
                    Some((Err(to_status(&DeadlineExceeded)), None))
                }
            }
        })
        .boxed()
    }
}

fn failed<E: HasErrorCode>(err: &E) -> Status {
    tracing::debug!(error = %err, "call failed");
    to_status(err)
}

struct StreamState<T, E> {
    events: BoxStream<'static, Result<T, E>>,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    guard: EndGuard,
    span: tracing::Span,
}

/// The metric labels of a call and when it started.
struct Record {
    stage: &'static str,
    method: &'static str,
    model_version: String,
    endpoint_group: String,
    started: Instant,
}

impl Record {
    fn finish(self, code: Code) {
        metrics::histogram!(
            REQUEST_DURATION,
            "stage" => self.stage,
            "method" => self.method,
            "model_version" => self.model_version,
            "endpoint_group" => self.endpoint_group,
            "code" => code_name(code),
        )
        .record(self.started.elapsed().as_secs_f64());
    }
}

/// Records the call once: at its end, or as CANCELLED when dropped unfinished (the caller
/// went away), setting the cancel flag.
struct EndGuard {
    record: Option<Record>,
    cancelled: Arc<AtomicBool>,
}

impl EndGuard {
    fn finish(&mut self, code: Code) {
        if let Some(record) = self.record.take() {
            record.finish(code);
        }
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            self.cancelled.store(true, Ordering::SeqCst);
            record.finish(Code::Cancelled);
        }
    }
}

/// The gRPC name of a code, as the `code` label (`OK`, `DEADLINE_EXCEEDED`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

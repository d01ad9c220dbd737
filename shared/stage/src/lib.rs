//! The skeleton every storyreel model stage is built on (DESIGN.md §2, §4), so that a stage
//! is its model code, its validation, a plain service trait and a thin gRPC adapter:
//!
//! - [`worker`]: the model on its own thread behind a bounded queue, with batching,
//!   panic isolation, readiness ([`storyreel_runtime::ModelState`]) and queue metrics;
//! - [`context`]: a call's [`CallContext`] (one deadline, cancellation, one span, the
//!   stage latency histogram measured when the call, or its stream, ends);
//! - [`metrics`]: the stage metric names and their latency buckets;
//! - [`outputs`]: a tensor-in, tensor-out call from its worker job to its stored output
//!   (stage cache or job key, progress, cancellation);
//! - [`scheduler`]: a diffusion request's scheduler choice;
//! - [`stage_error`]: [`StageError`], the errors of a tensor-in, tensor-out stage;
//! - [`serve`]: the [`Stage`] trait, its server ([`serve::serve`]) and process entry
//!   point ([`serve::main`]).

pub mod context;
pub mod metrics;
pub mod outputs;
pub mod scheduler;
pub mod serve;
pub mod stage_error;
pub mod worker;
mod worker_error;

pub use context::{CallContext, StageCalls};
pub use serve::{Adapter, Stage};
pub use stage_error::StageError;
pub use worker::{BatchControl, ModelWorker, StageModel, WorkerConfig, WorkerJob, WorkerSettings};
pub use worker_error::WorkerError;

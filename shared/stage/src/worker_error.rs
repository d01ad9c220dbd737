//! Why the model worker did not answer a job. Stages wrap it in their own error enum
//! (`From<WorkerError>`), keeping its code.

use storyreel_runtime::{ErrorCode, HasErrorCode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerError {
    /// The worker's queue is full.
    #[error(
        "the model queue is full ({capacity} requests waiting, `queue_capacity`); retry later or on another replica"
    )]
    Overloaded { capacity: usize },

    /// The model is loading, failed to load, failed too often, or the worker stopped.
    #[error("the model is not ready: {reason}")]
    NotReady { reason: String },

    /// The caller went away before the job ran.
    #[error("the request was cancelled")]
    Cancelled,

    /// The batch holding this job failed (a model error or a panic in model code); the
    /// worker goes on with the next batch.
    #[error("the model failed on this request: {0}")]
    BatchFailed(String),
}

impl HasErrorCode for WorkerError {
    fn error_code(&self) -> ErrorCode {
        match self {
            WorkerError::Overloaded { .. } => ErrorCode::Overloaded,
            WorkerError::NotReady { .. } => ErrorCode::NotReady,
            WorkerError::Cancelled => ErrorCode::Cancelled,
            WorkerError::BatchFailed(_) => ErrorCode::Internal,
        }
    }
}

//! Why the model worker did not answer a job. Services wrap it in their own error enum
//! (`From<WorkerError>`), keeping its code.

use storyreel_runtime::{ErrorCode, HasErrorCode};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkerError {
    /// The worker's queue is full.
    #[error("the model queue is full ({capacity} sequences waiting); retry later or on another replica")]
    Overloaded { capacity: usize },

    /// No model is loaded, or the worker has stopped.
    #[error("the model is not ready: {reason}")]
    NotReady { reason: String },

    /// The job's deadline passed before or while it was decoded.
    #[error("the deadline passed before the model finished")]
    DeadlineExceeded,

    /// The caller went away (cancelled, dropped its receiver).
    #[error("the request was cancelled")]
    Cancelled,

    /// The prompt plus the tokens to generate do not fit the model's context.
    #[error(
        "the prompt ({prompt_tokens} tokens) plus max_new_tokens ({max_new_tokens}) exceeds the model's context of {context} tokens"
    )]
    ContextExceeded {
        prompt_tokens: usize,
        max_new_tokens: usize,
        context: usize,
    },

    /// The model failed (a tensor error, a template error, a crashed worker).
    #[error("the model failed: {0}")]
    Model(String),
}

impl From<storyreel_stage::WorkerError> for WorkerError {
    fn from(err: storyreel_stage::WorkerError) -> Self {
        use storyreel_stage::WorkerError as Stage;
        match err {
            Stage::Overloaded { capacity } => WorkerError::Overloaded { capacity },
            Stage::NotReady { reason } => WorkerError::NotReady { reason },
            Stage::Cancelled => WorkerError::Cancelled,
            Stage::BatchFailed(reason) => WorkerError::Model(reason),
        }
    }
}

impl HasErrorCode for WorkerError {
    /// `ContextExceeded` is the request's doing (its inputs and `max_new_tokens`), so it
    /// is a validation error whose message says the numbers.
    fn error_code(&self) -> ErrorCode {
        match self {
            WorkerError::Overloaded { .. } => ErrorCode::Overloaded,
            WorkerError::NotReady { .. } => ErrorCode::NotReady,
            WorkerError::DeadlineExceeded => ErrorCode::Timeout,
            WorkerError::Cancelled => ErrorCode::Cancelled,
            WorkerError::ContextExceeded { .. } => ErrorCode::Validation,
            WorkerError::Model(_) => ErrorCode::Internal,
        }
    }
}

//! The error of a tensor-in, tensor-out stage (keyframe, decoder, interpolation): what
//! such a call can run into, each with its code in the error table. A stage with errors
//! of its own keeps its own enum.

use storyreel_runtime::{ErrorCode, HasErrorCode, ValidationError, job::ModelPinMismatch};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A request field is outside its limits; the message names the field and the limit.
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// The call's work would need more memory than the stage's budget allows.
    #[error("{what} is {pixels} pixels, over `max_frame_pixels` ({limit}); {advice}")]
    OverBudget {
        what: String,
        pixels: u64,
        limit: u64,
        advice: &'static str,
    },

    /// The model queue is full, or the model is not ready.
    #[error(transparent)]
    Worker(#[from] crate::WorkerError),

    /// The call is pinned to another model version.
    #[error(transparent)]
    ModelPin(#[from] ModelPinMismatch),

    /// The caller went away or the deadline passed; the work stopped at its next step.
    #[error("the request was cancelled")]
    Cancelled,

    /// Reading an input tensor or writing an output (missing key: FAILED_PRECONDITION,
    /// corrupt bytes: DATA_LOSS, store down: UNAVAILABLE).
    #[error(transparent)]
    Tensors(#[from] storyreel_tensors::Error),

    /// The model failed on valid input.
    #[error("the model failed: {0}")]
    Model(String),
}

impl HasErrorCode for StageError {
    fn error_code(&self) -> ErrorCode {
        match self {
            StageError::Validation(_) => ErrorCode::Validation,
            StageError::OverBudget { .. } => ErrorCode::Overloaded,
            StageError::Worker(err) => err.error_code(),
            StageError::ModelPin(err) => err.error_code(),
            StageError::Cancelled => ErrorCode::Cancelled,
            StageError::Tensors(err) => err.error_code(),
            StageError::Model(_) => ErrorCode::Internal,
        }
    }
}

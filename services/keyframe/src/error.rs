//! The one error type of keyframe, and its code in the error table.

use storyreel_runtime::{ErrorCode, HasErrorCode, ValidationError, job::ModelPinMismatch};

#[derive(Debug, thiserror::Error)]
pub enum KeyframeError {
    /// A request field is outside its limits; the message names the field and the limit.
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// The work would need more memory than `max_frame_pixels` allows.
    #[error(
        "{frames} frames of {width}x{height} are {pixels} pixels, over `max_frame_pixels` ({limit}); ask for fewer frames or a smaller size"
    )]
    OverBudget {
        frames: u32,
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },

    /// The model queue is full, or the model is not ready.
    #[error(transparent)]
    Worker(#[from] storyreel_stage::WorkerError),

    /// The call is pinned to another model version.
    #[error(transparent)]
    ModelPin(#[from] ModelPinMismatch),

    /// The caller went away; sampling stopped at the next step.
    #[error("the request was cancelled")]
    Cancelled,

    /// Reading the reference latents or writing the output (missing key: FAILED_PRECONDITION,
    /// corrupt bytes: DATA_LOSS, store down: UNAVAILABLE).
    #[error(transparent)]
    Tensors(#[from] storyreel_tensors::Error),

    /// The pipeline failed on valid input.
    #[error("the video pipeline failed: {0}")]
    Model(String),
}

impl HasErrorCode for KeyframeError {
    fn error_code(&self) -> ErrorCode {
        match self {
            KeyframeError::Validation(_) => ErrorCode::Validation,
            KeyframeError::OverBudget { .. } => ErrorCode::Overloaded,
            KeyframeError::Worker(err) => err.error_code(),
            KeyframeError::ModelPin(err) => err.error_code(),
            KeyframeError::Cancelled => ErrorCode::Cancelled,
            KeyframeError::Tensors(err) => err.error_code(),
            KeyframeError::Model(_) => ErrorCode::Internal,
        }
    }
}

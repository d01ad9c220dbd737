//! The one error type of prompt-rewriter, and its code in the error table
//! (`storyreel_runtime::error_code`), which the gRPC adapter turns into a status.

use storyreel_llm::WorkerError;
use storyreel_runtime::{ErrorCode, HasErrorCode, ValidationError, job::ModelPinMismatch};

#[derive(Debug, thiserror::Error)]
pub enum PromptRewriterError {
    /// A request field is outside its limits; the message names the field and the limit.
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// The call is pinned to another model version than the one served.
    #[error(transparent)]
    ModelPin(#[from] ModelPinMismatch),

    /// The model worker refused or failed a job (full queue, not ready, deadline,
    /// cancellation, context overflow, model failure); keeps the worker's code.
    #[error(transparent)]
    Worker(#[from] WorkerError),

    /// The request's deadline passed.
    #[error("the deadline passed before the prompts were written")]
    DeadlineExceeded,

    /// Every attempt at a required field gave nothing usable.
    #[error("no usable {field} for scene {scene_index} after {attempts} attempt(s); last output: {last:?}")]
    UnusableOutput {
        field: &'static str,
        scene_index: u32,
        attempts: u32,
        last: String,
    },

    /// The CLIP tokenizer failed on a text.
    #[error("the CLIP tokenizer failed: {0}")]
    Tokenizer(String),

    /// A broken invariant: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl HasErrorCode for PromptRewriterError {
    /// `UnusableOutput` is `GaveUp` (ABORTED, its message reaching the caller), for the
    /// reasons given in story-llm's error: the service's failure, not retryable as is.
    fn error_code(&self) -> ErrorCode {
        match self {
            PromptRewriterError::Validation(_) => ErrorCode::Validation,
            PromptRewriterError::ModelPin(err) => err.error_code(),
            PromptRewriterError::Worker(err) => err.error_code(),
            PromptRewriterError::DeadlineExceeded => ErrorCode::Timeout,
            PromptRewriterError::UnusableOutput { .. } => ErrorCode::GaveUp,
            PromptRewriterError::Tokenizer(_) => ErrorCode::Internal,
            PromptRewriterError::Internal(_) => ErrorCode::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyreel_runtime::to_status;
    use tonic::Code;

    #[test]
    fn each_error_has_its_code() {
        let cases = [
            (
                PromptRewriterError::from(ValidationError::new("scenes", "must have 1-8 entries, got 0")),
                Code::InvalidArgument,
            ),
            (
                PromptRewriterError::from(WorkerError::Overloaded { capacity: 64 }),
                Code::ResourceExhausted,
            ),
            (
                PromptRewriterError::from(WorkerError::NotReady {
                    reason: "loading".into(),
                }),
                Code::Unavailable,
            ),
            (PromptRewriterError::from(WorkerError::Cancelled), Code::Cancelled),
            (PromptRewriterError::DeadlineExceeded, Code::DeadlineExceeded),
            (
                PromptRewriterError::UnusableOutput {
                    field: "description",
                    scene_index: 2,
                    attempts: 3,
                    last: "".into(),
                },
                Code::Aborted,
            ),
            (PromptRewriterError::Internal("bug".into()), Code::Internal),
        ];
        for (err, code) in cases {
            assert_eq!(to_status(&err).code(), code, "{err}");
        }
    }
}

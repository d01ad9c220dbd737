//! The one error type of story-llm, and its code in the error table
//! (`storyreel_runtime::error_code`), which the gRPC adapter turns into a status.

use crate::parsing::SceneSetError;
use storyreel_llm::WorkerError;
use storyreel_runtime::{ErrorCode, HasErrorCode, ValidationError, job::ModelPinMismatch};

#[derive(Debug, thiserror::Error)]
pub enum StoryLlmError {
    /// A request field is outside its limits; the message names the field and the limit.
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// The model worker's queue is full.
    #[error("the model queue is full ({capacity} requests waiting); retry later or on another replica")]
    Overloaded { capacity: usize },

    /// No model is loaded yet, or the service is shutting down.
    #[error("the model is not ready: {reason}")]
    NotReady { reason: String },

    /// The call is pinned to another model version than the one served.
    #[error(transparent)]
    ModelPin(#[from] ModelPinMismatch),

    /// The prompt plus `max_new_tokens` do not fit the model's context.
    #[error("{0}")]
    ContextExceeded(WorkerError),

    /// The request's deadline (job deadline, gRPC deadline or server timeout) passed.
    #[error("the deadline passed before the story was finished")]
    DeadlineExceeded,

    /// The caller cancelled (closed the stream or dropped the call).
    #[error("the request was cancelled")]
    Cancelled,

    /// Every attempt produced output that did not parse into `n_scenes` usable scenes.
    #[error("no usable story after {attempts} attempt(s); last attempt: {last}")]
    UnusableOutput { attempts: u32, last: SceneSetError },

    /// The model failed (a tensor error, a crashed worker).
    #[error("the model failed")]
    Model(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A broken invariant: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl StoryLlmError {
    /// Wraps any model-side error (`storyreel_nn` errors, a worker's panic message).
    pub fn model(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoryLlmError::Model(err.into())
    }
}

impl From<WorkerError> for StoryLlmError {
    fn from(err: WorkerError) -> Self {
        match err {
            WorkerError::Overloaded { capacity } => StoryLlmError::Overloaded { capacity },
            WorkerError::NotReady { reason } => StoryLlmError::NotReady { reason },
            WorkerError::DeadlineExceeded => StoryLlmError::DeadlineExceeded,
            WorkerError::Cancelled => StoryLlmError::Cancelled,
            err @ WorkerError::ContextExceeded { .. } => StoryLlmError::ContextExceeded(err),
            WorkerError::Model(message) => StoryLlmError::model(message),
        }
    }
}

impl HasErrorCode for StoryLlmError {
    /// `UnusableOutput` is `GaveUp` (ABORTED): the request was valid and the service could
    /// not serve it, which is the service's failure to count and alert on (a model version
    /// that does it more often shows up in its canary's error rate under its own code); it
    /// is not retryable as is (`UNAVAILABLE` would make clients repeat a deterministic
    /// failure: the same seed gives the same output; a caller may retry with another
    /// seed). Unlike `Internal`, its message reaches the caller: it says why ("wanted 8
    /// usable scenes, got 6: candidate 4 repeats candidate 2 ...").
    fn error_code(&self) -> ErrorCode {
        match self {
            StoryLlmError::Validation(_) => ErrorCode::Validation,
            StoryLlmError::Overloaded { .. } => ErrorCode::Overloaded,
            StoryLlmError::NotReady { .. } => ErrorCode::NotReady,
            StoryLlmError::ModelPin(err) => err.error_code(),
            StoryLlmError::ContextExceeded(_) => ErrorCode::Validation,
            StoryLlmError::DeadlineExceeded => ErrorCode::Timeout,
            StoryLlmError::Cancelled => ErrorCode::Cancelled,
            StoryLlmError::UnusableOutput { .. } => ErrorCode::GaveUp,
            StoryLlmError::Model(_) => ErrorCode::Internal,
            StoryLlmError::Internal(_) => ErrorCode::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsing::validate_scene_set;
    use storyreel_runtime::to_status;
    use tonic::Code;

    fn unusable() -> StoryLlmError {
        StoryLlmError::UnusableOutput {
            attempts: 3,
            last: validate_scene_set(&["The fox runs home.", "the fox runs home"], 2).unwrap_err(),
        }
    }

    #[test]
    fn each_error_has_its_code() {
        let cases = [
            (
                StoryLlmError::from(ValidationError::new("n_scenes", "must be between 1 and 8, got 9")),
                Code::InvalidArgument,
            ),
            (
                StoryLlmError::Overloaded { capacity: 64 },
                Code::ResourceExhausted,
            ),
            (
                StoryLlmError::NotReady {
                    reason: "loading".into(),
                },
                Code::Unavailable,
            ),
            (StoryLlmError::DeadlineExceeded, Code::DeadlineExceeded),
            (StoryLlmError::Cancelled, Code::Cancelled),
            (unusable(), Code::Aborted),
            (
                StoryLlmError::from(WorkerError::ContextExceeded {
                    prompt_tokens: 8000,
                    max_new_tokens: 1024,
                    context: 8192,
                }),
                Code::InvalidArgument,
            ),
            (StoryLlmError::model("cuda out of memory"), Code::Internal),
            (StoryLlmError::Internal("bug".into()), Code::Internal),
        ];
        for (err, code) in cases {
            assert_eq!(to_status(&err).code(), code, "{err}");
        }
    }

    #[test]
    fn messages_name_the_cause() {
        let err = StoryLlmError::from(ValidationError::new("n_scenes", "must be between 1 and 8, got 9"));
        assert_eq!(
            to_status(&err).message(),
            "`n_scenes` must be between 1 and 8, got 9"
        );
        assert_eq!(
            unusable().to_string(),
            "no usable story after 3 attempt(s); last attempt: wanted 2 usable scenes, got 1: \
             candidate 2 (\"the fox runs home\") repeats candidate 1"
        );
        // The reason reaches the caller.
        assert!(to_status(&unusable()).message().contains("candidate 2"));
        // Internal details stay in the log.
        assert!(
            !to_status(&StoryLlmError::model("tensor shape [3] mismatch"))
                .message()
                .contains("shape")
        );
    }
}

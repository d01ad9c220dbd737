//! The one error type of story-llm, and its code in the error table
//! (`storyreel_runtime::error_code`), which the gRPC adapter turns into a status.

use crate::parsing::SceneSetError;
use storyreel_runtime::{ErrorCode, HasErrorCode, ValidationError};

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

impl HasErrorCode for StoryLlmError {
    /// `UnusableOutput` is `Internal`: the request was valid and the service failed to
    /// serve it, which is the service's failure to count and alert on (a model version
    /// that does it more often must show up in its canary's error rate, not as client
    /// errors); it is not retryable as such (`UNAVAILABLE` would make clients repeat a
    /// deterministic failure: the same seed gives the same output). The price: the
    /// runtime's table hides internal messages from callers, so the reason ("wanted 8
    /// usable scenes, got 6: candidate 4 repeats candidate 2 ...") reaches the service log
    /// (with the trace id), not the caller.
    fn error_code(&self) -> ErrorCode {
        match self {
            StoryLlmError::Validation(_) => ErrorCode::Validation,
            StoryLlmError::Overloaded { .. } => ErrorCode::Overloaded,
            StoryLlmError::NotReady { .. } => ErrorCode::NotReady,
            StoryLlmError::DeadlineExceeded => ErrorCode::Timeout,
            StoryLlmError::Cancelled => ErrorCode::Cancelled,
            StoryLlmError::UnusableOutput { .. } => ErrorCode::Internal,
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
            (unusable(), Code::Internal),
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
        // Internal details stay in the log.
        assert!(!to_status(&unusable()).message().contains("candidate"));
    }
}

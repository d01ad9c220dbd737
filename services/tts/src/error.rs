//! The one error type of tts, and its code in the error table
//! (`storyreel_runtime::error_code`), which the gRPC adapter turns into a status.

use crate::voice::VoiceError;
use storyreel_runtime::{ErrorCode, HasErrorCode, ValidationError, job::ModelPinMismatch};

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// A request field is outside its limits; the message names the field and the limit.
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// The synthesis worker's queue is full.
    #[error("the synthesis queue is full ({capacity} requests waiting); retry later or on another replica")]
    Overloaded { capacity: usize },

    /// The worker stopped (shutting down, or it failed).
    #[error("the synthesis worker is not running: {reason}")]
    NotReady { reason: String },

    /// The call is pinned to another model version than the voice's.
    #[error(transparent)]
    ModelPin(#[from] ModelPinMismatch),

    /// The request's deadline passed.
    #[error("the deadline passed before the narration was finished")]
    DeadlineExceeded,

    /// The caller went away.
    #[error("the request was cancelled")]
    Cancelled,

    /// Writing the audio to the tensor store failed.
    #[error(transparent)]
    Tensors(#[from] storyreel_tensors::Error),

    /// A voice failed (libespeak-ng, a tensor error).
    #[error("voice `{voice}` failed")]
    Voice {
        voice: String,
        #[source]
        source: VoiceError,
    },

    /// Loading a voice at start-up failed.
    #[error("cannot load voice `{voice}`: {reason}")]
    Load { voice: String, reason: String },

    /// A broken invariant: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<storyreel_stage::WorkerError> for TtsError {
    fn from(err: storyreel_stage::WorkerError) -> Self {
        use storyreel_stage::WorkerError as Worker;
        match err {
            Worker::Overloaded { capacity } => TtsError::Overloaded { capacity },
            Worker::NotReady { reason } => TtsError::NotReady { reason },
            Worker::Cancelled => TtsError::Cancelled,
            Worker::BatchFailed(reason) => TtsError::Internal(reason),
        }
    }
}

impl HasErrorCode for TtsError {
    fn error_code(&self) -> ErrorCode {
        match self {
            TtsError::Validation(_) => ErrorCode::Validation,
            TtsError::Overloaded { .. } => ErrorCode::Overloaded,
            TtsError::NotReady { .. } => ErrorCode::NotReady,
            TtsError::ModelPin(err) => err.error_code(),
            TtsError::DeadlineExceeded => ErrorCode::Timeout,
            TtsError::Cancelled => ErrorCode::Cancelled,
            TtsError::Tensors(err) => err.error_code(),
            TtsError::Voice { .. } | TtsError::Load { .. } | TtsError::Internal(_) => ErrorCode::Internal,
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
                TtsError::from(ValidationError::new("voice", "unknown")),
                Code::InvalidArgument,
            ),
            (TtsError::Overloaded { capacity: 4 }, Code::ResourceExhausted),
            (
                TtsError::NotReady {
                    reason: "stopped".into(),
                },
                Code::Unavailable,
            ),
            (TtsError::DeadlineExceeded, Code::DeadlineExceeded),
            (TtsError::Cancelled, Code::Cancelled),
            (TtsError::Internal("bug".into()), Code::Internal),
        ];
        for (err, code) in cases {
            assert_eq!(to_status(&err).code(), code, "{err}");
        }
    }
}

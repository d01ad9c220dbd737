//! The one error type of retrieval, and its code in the error table
//! (`storyreel_runtime::error_code`), which the gRPC adapter turns into a status.

use std::path::PathBuf;
use storyreel_runtime::{ErrorCode, HasErrorCode, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    /// A request field is outside its limits; the message names the field and the limit.
    #[error(transparent)]
    Validation(#[from] ValidationError),

    /// The call is pinned to a model version this server does not serve.
    #[error(transparent)]
    ModelPin(#[from] storyreel_runtime::job::ModelPinMismatch),

    /// Too many searches in flight, or the encoder queue is full.
    #[error("{what} is full ({capacity} waiting); retry later or on another replica")]
    Overloaded { what: &'static str, capacity: usize },

    /// The encoder is not running (failed to load, or shutting down).
    #[error("the sentence encoder is not ready: {reason}")]
    NotReady { reason: String },

    /// The encoder failed on a text.
    #[error("the sentence encoder failed: {0}")]
    Encoder(String),

    /// tantivy failed (open, query, commit).
    #[error("catalog index at {dir}: {source}")]
    Index {
        dir: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },

    /// The catalog on disk is not usable as it is (wrong embedding model or dimension,
    /// a corrupt side store, a second writer).
    #[error("catalog at {dir}: {message}")]
    Catalog { dir: PathBuf, message: String },

    /// Another process (or batch) holds the catalog's writer lock; retry later.
    #[error("catalog at {dir}: another writer holds the index lock; retry when it is done")]
    CatalogBusy { dir: PathBuf },

    /// A file of the catalog could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// ffmpeg could not produce the frames of a clip that was indexed with them.
    #[error("frames of clip `{clip_id}`: {message}")]
    Frames { clip_id: String, message: String },

    /// `frames_clip_id` names a clip that the search did not return.
    #[error(
        "`frames_clip_id` is `{clip_id}`, which is not among the {hits} hits of this search; \
         pass one of the returned clip ids or leave it empty for the best"
    )]
    NotAHit { clip_id: String, hits: usize },

    /// The tensor store failed.
    #[error(transparent)]
    Tensors(#[from] storyreel_tensors::Error),

    /// The request's deadline passed.
    #[error("the deadline passed before the search was finished")]
    DeadlineExceeded,

    /// A broken invariant or a panicked blocking task: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl RetrievalError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RetrievalError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl From<storyreel_stage::WorkerError> for RetrievalError {
    fn from(err: storyreel_stage::WorkerError) -> Self {
        use storyreel_stage::WorkerError as Worker;
        match err {
            Worker::Overloaded { capacity } => RetrievalError::Overloaded {
                what: "the encoder queue",
                capacity,
            },
            Worker::NotReady { reason } => RetrievalError::NotReady { reason },
            Worker::Cancelled => RetrievalError::NotReady {
                reason: "the encoder job was cancelled".into(),
            },
            Worker::BatchFailed(reason) => RetrievalError::Encoder(reason),
        }
    }
}

impl HasErrorCode for RetrievalError {
    fn error_code(&self) -> ErrorCode {
        match self {
            RetrievalError::Validation(_) => ErrorCode::Validation,
            RetrievalError::ModelPin(e) => e.error_code(),
            RetrievalError::Overloaded { .. } => ErrorCode::Overloaded,
            RetrievalError::NotReady { .. } => ErrorCode::NotReady,
            RetrievalError::DeadlineExceeded => ErrorCode::Timeout,
            RetrievalError::CatalogBusy { .. } => ErrorCode::Unavailable,
            RetrievalError::NotAHit { .. } => ErrorCode::NotFound,
            RetrievalError::Tensors(e) => e.error_code(),
            RetrievalError::Encoder(_)
            | RetrievalError::Index { .. }
            | RetrievalError::Catalog { .. }
            | RetrievalError::Io { .. }
            | RetrievalError::Frames { .. }
            | RetrievalError::Internal(_) => ErrorCode::Internal,
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
                RetrievalError::from(ValidationError::new("k", "must be between 1 and 50, got 0")),
                Code::InvalidArgument,
            ),
            (
                RetrievalError::Overloaded {
                    what: "the search pool",
                    capacity: 4,
                },
                Code::ResourceExhausted,
            ),
            (
                RetrievalError::NotReady {
                    reason: "loading".into(),
                },
                Code::Unavailable,
            ),
            (RetrievalError::DeadlineExceeded, Code::DeadlineExceeded),
            (
                RetrievalError::from(storyreel_runtime::job::ModelPinMismatch {
                    wanted: "v2".into(),
                    served: "v1".into(),
                    model: "all-minilm-l6-v2".into(),
                }),
                Code::FailedPrecondition,
            ),
            (
                RetrievalError::CatalogBusy { dir: "/c".into() },
                Code::Unavailable,
            ),
            (
                RetrievalError::NotAHit {
                    clip_id: "c9".into(),
                    hits: 5,
                },
                Code::NotFound,
            ),
            (RetrievalError::Internal("bug".into()), Code::Internal),
        ];
        for (err, code) in cases {
            assert_eq!(to_status(&err).code(), code, "{err}");
        }
        let err = RetrievalError::from(ValidationError::new("k", "must be between 1 and 50, got 0"));
        assert_eq!(to_status(&err).message(), "`k` must be between 1 and 50, got 0");
    }
}

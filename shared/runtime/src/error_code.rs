//! The one table from storyreel error kinds to gRPC status codes (DESIGN.md §4).
//!
//! Every crate keeps its own error enum and says which [`ErrorCode`] each variant is;
//! the gRPC adapters turn errors into `Status` through [`to_status`] only, so the mapping
//! is decided once, here.

use tonic::{Code, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Bad input: the message names the field and the limit.
    Validation,
    /// Queue or concurrency limit reached: retry later, elsewhere.
    Overloaded,
    /// Model still loading, or the service is draining.
    NotReady,
    /// A deadline passed.
    Timeout,
    /// An input tensor is not in the store (expired or never written).
    MissingTensor,
    /// A named thing (job, artifact, voice) does not exist.
    NotFound,
    /// The caller cancelled.
    Cancelled,
    /// No or wrong credentials.
    Unauthenticated,
    /// A quota is used up (per-key concurrent jobs).
    QuotaExceeded,
    /// A dependency (Redis, another stage) could not be reached.
    Unavailable,
    /// Stored bytes failed validation or their checksum.
    DataLoss,
    /// The call is pinned to a model version this server does not serve.
    ModelMismatch,
    /// The request was valid and the work ran, but gave up (e.g. a model's output stayed
    /// unusable after every allowed attempt): not retryable as is, and the message says why.
    GaveUp,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorCode {
    pub fn grpc_code(self) -> Code {
        match self {
            ErrorCode::Validation => Code::InvalidArgument,
            ErrorCode::Overloaded => Code::ResourceExhausted,
            ErrorCode::QuotaExceeded => Code::ResourceExhausted,
            ErrorCode::NotReady => Code::Unavailable,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::Timeout => Code::DeadlineExceeded,
            ErrorCode::MissingTensor => Code::FailedPrecondition,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::Cancelled => Code::Cancelled,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::DataLoss => Code::DataLoss,
            ErrorCode::ModelMismatch => Code::FailedPrecondition,
            ErrorCode::GaveUp => Code::Aborted,
            ErrorCode::Internal => Code::Internal,
        }
    }

    /// A stable lowercase name, used as a metric label and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Validation => "validation",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::NotReady => "not_ready",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::MissingTensor => "missing_tensor",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::DataLoss => "data_loss",
            ErrorCode::ModelMismatch => "model_mismatch",
            ErrorCode::GaveUp => "gave_up",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Implemented by every crate's error enum.
pub trait HasErrorCode: std::error::Error {
    fn error_code(&self) -> ErrorCode;
}

/// Tensor-store errors keep their class: a missing input tensor is FAILED_PRECONDITION,
/// a store outage UNAVAILABLE (retryable), corrupt bytes DATA_LOSS.
impl HasErrorCode for storyreel_tensors::Error {
    fn error_code(&self) -> ErrorCode {
        use storyreel_tensors::ErrorCode as Tensors;
        match self.code() {
            Tensors::Validation => ErrorCode::Validation,
            Tensors::NotFound => ErrorCode::MissingTensor,
            Tensors::Unavailable => ErrorCode::Unavailable,
            Tensors::Corrupt => ErrorCode::DataLoss,
            Tensors::Internal => ErrorCode::Internal,
        }
    }
}

/// The status a gRPC adapter returns for `err`. Internal errors are logged here with their
/// full chain and reach the caller without it, so no internals leak.
pub fn to_status<E: HasErrorCode>(err: &E) -> Status {
    let code = err.error_code();
    if code == ErrorCode::Internal {
        tracing::error!(error = %chain(err), "internal error");
        return Status::internal("internal error; see the service log");
    }
    let mut status = Status::new(code.grpc_code(), err.to_string());
    if let Ok(value) = code.as_str().parse() {
        status.metadata_mut().insert("storyreel-error-code", value);
    }
    status
}

/// `err: cause: cause ...`, for logs.
pub fn chain(err: &(dyn std::error::Error + '_)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Demo {
        #[error("`n_scenes` must be between 1 and 8, got 9")]
        Bad,
        #[error("worker crashed")]
        Crash(#[source] std::io::Error),
    }

    impl HasErrorCode for Demo {
        fn error_code(&self) -> ErrorCode {
            match self {
                Demo::Bad => ErrorCode::Validation,
                Demo::Crash(_) => ErrorCode::Internal,
            }
        }
    }

    #[test]
    fn the_table_matches_the_design() {
        assert_eq!(ErrorCode::Validation.grpc_code(), Code::InvalidArgument);
        assert_eq!(ErrorCode::Overloaded.grpc_code(), Code::ResourceExhausted);
        assert_eq!(ErrorCode::NotReady.grpc_code(), Code::Unavailable);
        assert_eq!(ErrorCode::Timeout.grpc_code(), Code::DeadlineExceeded);
        assert_eq!(ErrorCode::MissingTensor.grpc_code(), Code::FailedPrecondition);
    }

    #[test]
    fn a_missing_tensor_is_a_failed_precondition() {
        let schema = storyreel_tensors::KeySchema::new("storyreel").unwrap();
        let key = schema.tensor("job1", "keyframe", 0, "latents").unwrap();
        let err = storyreel_tensors::Error::NotFound { key: key.to_string() };
        assert_eq!(to_status(&err).code(), Code::FailedPrecondition);
    }

    #[test]
    fn validation_messages_reach_the_caller_internal_ones_do_not() {
        let status = to_status(&Demo::Bad);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("n_scenes"));
        assert_eq!(
            status.metadata().get("storyreel-error-code").unwrap(),
            "validation"
        );

        let status = to_status(&Demo::Crash(std::io::Error::other("secret path /x")));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }
}

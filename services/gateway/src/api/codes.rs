//! The API's one error table: each [`ApiError`] has a gRPC code, and each code an HTTP
//! status (the mapping Google's APIs use), so the gRPC and REST adapters answer a failure
//! alike.

use super::service::ApiError;
use tonic::Code;

/// The gRPC code of an API error.
pub fn grpc_code(error: &ApiError) -> Code {
    match error {
        ApiError::Invalid(_) => Code::InvalidArgument,
        ApiError::Unauthenticated(_) => Code::Unauthenticated,
        ApiError::NotFound(_) | ApiError::NoArtifact { .. } => Code::NotFound,
        ApiError::AlreadyExists(_) => Code::AlreadyExists,
        ApiError::Quota(_) => Code::ResourceExhausted,
        ApiError::OutOfRange(_) => Code::OutOfRange,
        ApiError::Unavailable(_) => Code::Unavailable,
        ApiError::Internal(_) => Code::Internal,
        ApiError::Stage(status) => status.code(),
    }
}

/// The HTTP status of a gRPC code.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::InvalidArgument | Code::FailedPrecondition => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::OutOfRange => 416,
        Code::ResourceExhausted => 429,
        Code::Cancelled => 499,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        Code::Unknown | Code::Internal | Code::DataLoss => 500,
    }
}

/// The name a code has in the API's error bodies, e.g. `INVALID_ARGUMENT` (the stages'
/// metric label names it alike).
pub use storyreel_stage::context::code_name;

/// The field a validation error names, if any.
pub fn field(error: &ApiError) -> Option<&str> {
    match error {
        ApiError::Invalid(e) => Some(&e.field),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyreel_runtime::ValidationError;

    #[test]
    fn each_error_has_its_code_and_status() {
        let cases = [
            (
                ApiError::Invalid(ValidationError::new("spec.title", "too long")),
                400,
            ),
            (ApiError::Unauthenticated("no key".into()), 401),
            (ApiError::NotFound("job".into()), 404),
            (ApiError::AlreadyExists("key".into()), 409),
            (ApiError::OutOfRange("range".into()), 416),
            (ApiError::Unavailable("redis".into()), 503),
            (ApiError::Internal("bug".into()), 500),
            (ApiError::Stage(tonic::Status::aborted("no scene")), 409),
            (ApiError::Stage(tonic::Status::deadline_exceeded("slow")), 504),
        ];
        for (error, status) in cases {
            assert_eq!(http_status(grpc_code(&error)), status, "{error}");
        }
        assert_eq!(
            field(&ApiError::Invalid(ValidationError::new("spec.title", "x"))),
            Some("spec.title")
        );
        assert_eq!(code_name(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
    }
}

//! An API error as an HTTP response: the status from the API's one error table, and a
//! JSON body that names the field and the limit of a validation error:
//! `{"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "...", "field": "spec.title"}}`.

use crate::api::{
    codes::{code_name, field, grpc_code, http_status},
    service::ApiError,
};
use axum::{
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use storyreel_runtime::ValidationError;

/// A failed REST call.
#[derive(Debug)]
pub struct HttpError(pub ApiError);

impl<E: Into<ApiError>> From<E> for HttpError {
    fn from(e: E) -> Self {
        HttpError(e.into())
    }
}

/// The JSON error body of `error`.
pub fn error_body(error: &ApiError) -> serde_json::Value {
    let code = grpc_code(error);
    let mut body = serde_json::json!({
        "code": http_status(code),
        "status": code_name(code),
        "message": error.to_string(),
    });
    if let Some(field) = field(error) {
        body["field"] = field.into();
    }
    serde_json::json!({ "error": body })
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let code = grpc_code(&self.0);
        let status = StatusCode::from_u16(http_status(code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(error = %self.0, "REST call failed");
        }
        let mut response = (status, axum::Json(error_body(&self.0))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// A query parameter or path segment outside its rule.
pub fn invalid(field: &str, message: impl Into<String>) -> HttpError {
    HttpError(ApiError::Invalid(ValidationError::new(field, message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validation_error_names_its_field() {
        let body = error_body(&ApiError::Invalid(ValidationError::new(
            "spec.title",
            "must be 1-500 characters, got 501",
        )));
        assert_eq!(body["error"]["code"], 400);
        assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
        assert_eq!(body["error"]["field"], "spec.title");
        assert!(body["error"]["message"].as_str().unwrap().contains("1-500"));
        let missing = error_body(&ApiError::NotFound("job-1".into()));
        assert_eq!(missing["error"]["code"], 404);
        assert!(missing["error"].get("field").is_none());
    }
}

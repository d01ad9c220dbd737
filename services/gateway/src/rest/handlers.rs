//! The REST handlers of the unary calls: each reads its request (path, query, JSON
//! body), calls the plain [`GatewayService`](crate::api::service::GatewayService) as the
//! gRPC adapter does, and answers the message as JSON.

use super::{
    RestState,
    auth::{Authed, session_cookie},
    error::{HttpError, invalid},
    json::{from_json, to_json},
};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::sync::Arc;
use storyreel_proto::gateway::{
    CancelJobRequest, CreateVideoRequest, FindReferencesRequest, GetJobRequest, GetOptionsRequest, JobState,
    ListJobsRequest,
};

/// A body must say it is JSON: a plain form post from another site cannot.
fn require_json(headers: &HeaderMap, body: &Bytes) -> Result<(), HttpError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let is_json = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if body.is_empty() || is_json {
        Ok(())
    } else {
        Err(invalid(
            "content-type",
            format!("must be application/json, got `{content_type}`"),
        ))
    }
}

/// A request message from a JSON body (an empty body is `{}`).
pub fn json_body<M: prost::Message + prost::Name + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<M, HttpError> {
    require_json(headers, body)?;
    Ok(from_json(body)?)
}

pub async fn create_job(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    let request: CreateVideoRequest = json_body(&headers, &body)?;
    let response = state.service.create_video(&caller, request).await?;
    let status = if response.existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(to_json(&response))).into_response())
}

pub async fn get_job(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
    Path(job_id): Path<String>,
) -> Result<Json<serde_json::Value>, HttpError> {
    let job = state.service.get_job(&caller, GetJobRequest { job_id }).await?;
    Ok(Json(to_json(&job)))
}

pub async fn cancel_job(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
    Path(job_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, HttpError> {
    let mut request: CancelJobRequest = json_body(&headers, &body)?;
    if !request.job_id.is_empty() && request.job_id != job_id {
        return Err(invalid("job_id", "must be the job of the path, or left out"));
    }
    request.job_id = job_id;
    let job = state.service.cancel_job(&caller, request).await?;
    Ok(Json(to_json(&job)))
}

/// `page_size`, `page_token`, `state` (repeated, a JobState name) and `label`
/// (repeated, `key=value`).
fn list_request(query: Option<&str>) -> Result<ListJobsRequest, HttpError> {
    let mut request = ListJobsRequest::default();
    for (name, value) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "page_size" => {
                request.page_size = value
                    .parse()
                    .map_err(|_| invalid("page_size", format!("must be 0-100, got `{value}`")))?;
            }
            "page_token" => request.page_token = value.into_owned(),
            "state" => {
                let state = JobState::from_str_name(&value)
                    .filter(|s| *s != JobState::Unspecified)
                    .ok_or_else(|| {
                        invalid(
                            "state",
                            format!("must be a job state like JOB_STATE_RUNNING, got `{value}`"),
                        )
                    })?;
                request.states.push(state as i32);
            }
            "label" => {
                let (k, v) = value
                    .split_once('=')
                    .ok_or_else(|| invalid("label", format!("must be key=value, got `{value}`")))?;
                request.labels.insert(k.to_string(), v.to_string());
            }
            other => return Err(invalid(other, "is not a parameter of this call")),
        }
    }
    Ok(request)
}

pub async fn list_jobs(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
    RawQuery(query): RawQuery,
) -> Result<Json<serde_json::Value>, HttpError> {
    let request = list_request(query.as_deref())?;
    let response = state.service.list_jobs(&caller, request).await?;
    Ok(Json(to_json(&response)))
}

pub async fn get_options(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
) -> Result<Json<serde_json::Value>, HttpError> {
    let response = state.service.get_options(&caller, GetOptionsRequest {}).await?;
    Ok(Json(to_json(&response)))
}

pub async fn find_references(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, HttpError> {
    let request: FindReferencesRequest = json_body(&headers, &body)?;
    let response = state.service.find_references(&caller, request).await?;
    Ok(Json(to_json(&response)))
}

/// `{"api_key": "..."}`: checks the key and sets the session cookie.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    api_key: String,
}

pub async fn create_session(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, HttpError> {
    require_json(&headers, &body)?;
    let request: SessionRequest = serde_json::from_slice(&body)
        .map_err(|e| invalid("body", format!("must be {{\"api_key\": \"...\"}}: {e}")))?;
    let bearer = format!("Bearer {}", request.api_key);
    state.keys.authenticate(Some(&bearer)).map_err(HttpError::from)?;
    let cookie = session_cookie(&request.api_key, state.secure_cookie);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

pub async fn delete_session(State(state): State<Arc<RestState>>) -> Response {
    let cookie = session_cookie("", state.secure_cookie);
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_query_reads_states_and_labels() {
        let request = list_request(Some(
            "page_size=5&state=JOB_STATE_RUNNING&state=JOB_STATE_QUEUED&label=team%3Dml",
        ))
        .unwrap();
        assert_eq!(request.page_size, 5);
        assert_eq!(
            request.states,
            vec![JobState::Running as i32, JobState::Queued as i32]
        );
        assert_eq!(request.labels.get("team").map(String::as_str), Some("ml"));
        for bad in ["page_size=x", "state=RUNNING", "label=nokey", "colour=red"] {
            assert!(list_request(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(list_request(None).unwrap(), ListJobsRequest::default());
    }
}

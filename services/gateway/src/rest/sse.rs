//! The streamed calls as server-sent events. A job's events (`GET
//! /v1/jobs/{job_id}/events`) carry their event id as the SSE `id`, so a browser's
//! `EventSource` that loses its connection reconnects with `Last-Event-ID` and resumes
//! exactly after the last event it saw (the `after` parameter does the same for other
//! clients). GenerateTexts (`POST /v1/texts`) streams its messages the same way. A
//! failure inside a stream is an `error` event with the API's JSON error body; one before
//! it is an ordinary error response.

use super::{
    RestState,
    auth::Authed,
    error::{HttpError, error_body, invalid},
    handlers::json_body,
    json::to_json,
};
use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt};
use std::{convert::Infallible, sync::Arc, time::Duration};
use storyreel_proto::gateway::{GenerateTextsRequest, WatchJobRequest};

/// Comments that keep idle connections (and proxies) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Resume after this event id (`Last-Event-ID` wins when both are sent).
    #[serde(default)]
    after: Option<String>,
    /// Also the story text as it is written.
    #[serde(default)]
    include_story_text: Option<bool>,
}

fn error_event(error: &crate::api::service::ApiError) -> Event {
    Event::default()
        .event("error")
        .data(error_body(error).to_string())
}

pub async fn job_events(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
    Path(job_id): Path<String>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let Query(query) = query.map_err(|e| invalid("query", e.body_text()))?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let resume_after = last_event_id
        .map(str::to_string)
        .or(query.after)
        .unwrap_or_default();
    let request = WatchJobRequest {
        job_id,
        resume_after,
        include_story_text: query.include_story_text.unwrap_or(false),
    };
    let events = state.service.watch_job(&caller, request).await?;
    let stream = events.map(|event| {
        Ok(match event {
            Ok(event) => {
                let mut sse = Event::default().event("job").data(to_json(&event).to_string());
                if !event.event_id.is_empty() {
                    sse = sse.id(event.event_id.clone());
                }
                sse
            }
            Err(e) => error_event(&e),
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

pub async fn generate_texts(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let request: GenerateTextsRequest = json_body(&headers, &body)?;
    let texts = state.service.generate_texts(&caller, request).await?;
    let stream = texts.map(|message| {
        Ok(match message {
            Ok(message) => Event::default()
                .event("texts")
                .data(to_json(&message).to_string()),
            Err(e) => error_event(&e),
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

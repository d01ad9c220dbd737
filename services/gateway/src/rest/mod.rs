//! The REST mirror of the gateway API and the web UI, served by axum in the gateway
//! process on `[gateway.http] listen`. Every call goes to the same plain
//! [`GatewayService`] as the gRPC adapter, with the same validation, API keys and error
//! codes (HTTP statuses from the one table in [`crate::api::codes`]). [`ROUTES`] is the
//! single list the router and the OpenAPI document at `/openapi.json` are both built
//! from.
//!
//! | call | route |
//! |---|---|
//! | CreateVideo | `POST /v1/jobs` |
//! | ListJobs | `GET /v1/jobs?state=&label=&page_size=&page_token=` |
//! | GetJob | `GET /v1/jobs/{job_id}` |
//! | CancelJob | `POST /v1/jobs/{job_id}/cancel` |
//! | WatchJob | `GET /v1/jobs/{job_id}/events` (server-sent events, `Last-Event-ID`) |
//! | GetArtifact | `GET /v1/jobs/{job_id}/artifacts/{name}` (range requests) |
//! | GenerateTexts | `POST /v1/texts` (server-sent events) |
//! | FindReferences | `POST /v1/references` |
//! | GetOptions | `GET /v1/options` |

pub mod artifacts;
pub mod auth;
pub mod error;
pub mod handlers;
pub mod json;
pub mod openapi;
pub mod sse;
pub mod ui;

use crate::api::{auth::ApiKeys, service::GatewayService};
use axum::{
    Router,
    http::Method,
    routing::{MethodRouter, delete, get, post},
};
use std::sync::Arc;

/// What the handlers share.
pub struct RestState {
    pub service: Arc<GatewayService>,
    pub keys: ApiKeys,
    pub secure_cookie: bool,
}

/// A parameter of a route, for the OpenAPI document.
pub struct Param {
    pub name: &'static str,
    /// `path` or `query`.
    pub location: &'static str,
    /// A JSON schema of the value.
    pub schema: fn() -> serde_json::Value,
    pub description: &'static str,
}

/// What a route reads from its body.
pub enum Body {
    None,
    /// A message of the API (its full proto name) as JSON.
    Message(&'static str),
    /// `{"api_key": "..."}`.
    Session,
}

/// What a route answers.
pub enum Reply {
    /// A message of the API as JSON, with this status.
    Message(u16, &'static str),
    /// CreateVideo: 201 for a new job, 200 for an idempotent repeat.
    Created(&'static str),
    /// Server-sent events, each carrying this message as JSON.
    Events(&'static str),
    /// An artifact's bytes.
    Bytes,
    /// 204 No Content.
    NoContent,
    /// A UI file of this content type.
    Asset(&'static str),
    /// The OpenAPI document itself.
    OpenApi,
}

/// One route: its method and path, its documentation, and its handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub operation_id: &'static str,
    pub summary: &'static str,
    /// Needs an API key (header or session cookie).
    pub auth: bool,
    pub params: &'static [Param],
    pub body: Body,
    pub reply: Reply,
    pub handler: fn() -> MethodRouter<Arc<RestState>>,
}

fn string() -> serde_json::Value {
    serde_json::json!({"type": "string"})
}

fn boolean() -> serde_json::Value {
    serde_json::json!({"type": "boolean"})
}

fn job_id() -> serde_json::Value {
    serde_json::json!({"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"})
}

fn artifact_name() -> serde_json::Value {
    serde_json::json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[A-Za-z0-9_-][A-Za-z0-9._-]*$"})
}

fn page_size() -> serde_json::Value {
    serde_json::json!({"type": "integer", "minimum": 0, "maximum": 100})
}

fn states() -> serde_json::Value {
    serde_json::json!({"type": "array", "items": {"type": "string", "enum": [
        "JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"
    ]}})
}

fn labels() -> serde_json::Value {
    serde_json::json!({"type": "array", "maxItems": 16, "items": {"type": "string", "pattern": "^[a-z0-9_-]{1,63}=[a-z0-9_-]{0,63}$"}})
}

const JOB_ID: Param = Param {
    name: "job_id",
    location: "path",
    schema: job_id,
    description: "The job id.",
};

/// Every route the gateway serves over HTTP.
pub const ROUTES: &[Route] = &[
    Route {
        method: Method::GET,
        path: "/",
        operation_id: "webUi",
        summary: "The web UI.",
        auth: false,
        params: &[],
        body: Body::None,
        reply: Reply::Asset("text/html"),
        handler: || get(ui::index),
    },
    Route {
        method: Method::GET,
        path: "/ui/app.js",
        operation_id: "webUiScript",
        summary: "The web UI's script.",
        auth: false,
        params: &[],
        body: Body::None,
        reply: Reply::Asset("text/javascript"),
        handler: || get(ui::script),
    },
    Route {
        method: Method::GET,
        path: "/ui/app.css",
        operation_id: "webUiStyle",
        summary: "The web UI's style sheet.",
        auth: false,
        params: &[],
        body: Body::None,
        reply: Reply::Asset("text/css"),
        handler: || get(ui::style),
    },
    Route {
        method: Method::GET,
        path: "/openapi.json",
        operation_id: "openApi",
        summary: "This document.",
        auth: false,
        params: &[],
        body: Body::None,
        reply: Reply::OpenApi,
        handler: || get(openapi::serve),
    },
    Route {
        method: Method::POST,
        path: "/v1/session",
        operation_id: "createSession",
        summary: "Checks an API key and sets it as the HttpOnly session cookie (for browsers).",
        auth: false,
        params: &[],
        body: Body::Session,
        reply: Reply::NoContent,
        handler: || post(handlers::create_session),
    },
    Route {
        method: Method::DELETE,
        path: "/v1/session",
        operation_id: "deleteSession",
        summary: "Clears the session cookie.",
        auth: false,
        params: &[],
        body: Body::None,
        reply: Reply::NoContent,
        handler: || delete(handlers::delete_session),
    },
    Route {
        method: Method::GET,
        path: "/v1/options",
        operation_id: "getOptions",
        summary: "What a client may choose: backends, voices, sizes, limits and defaults (GetOptions).",
        auth: true,
        params: &[],
        body: Body::None,
        reply: Reply::Message(200, "storyreel.gateway.v1.GetOptionsResponse"),
        handler: || get(handlers::get_options),
    },
    Route {
        method: Method::POST,
        path: "/v1/texts",
        operation_id: "generateTexts",
        summary: "Writes the story and the prompts of a spec, streamed as server-sent `texts` events (GenerateTexts).",
        auth: true,
        params: &[],
        body: Body::Message("storyreel.gateway.v1.GenerateTextsRequest"),
        reply: Reply::Events("storyreel.gateway.v1.GenerateTextsResponse"),
        handler: || post(sse::generate_texts),
    },
    Route {
        method: Method::POST,
        path: "/v1/references",
        operation_id: "findReferences",
        summary: "The reference clips retrieval finds for each prompt, with thumbnails (FindReferences).",
        auth: true,
        params: &[],
        body: Body::Message("storyreel.gateway.v1.FindReferencesRequest"),
        reply: Reply::Message(200, "storyreel.gateway.v1.FindReferencesResponse"),
        handler: || post(handlers::find_references),
    },
    Route {
        method: Method::POST,
        path: "/v1/jobs",
        operation_id: "createVideo",
        summary: "Starts a job, or returns the earlier job of the same idempotency key (CreateVideo).",
        auth: true,
        params: &[],
        body: Body::Message("storyreel.gateway.v1.CreateVideoRequest"),
        reply: Reply::Created("storyreel.gateway.v1.CreateVideoResponse"),
        handler: || post(handlers::create_job),
    },
    Route {
        method: Method::GET,
        path: "/v1/jobs",
        operation_id: "listJobs",
        summary: "The caller's jobs, newest first (ListJobs).",
        auth: true,
        params: &[
            Param {
                name: "page_size",
                location: "query",
                schema: page_size,
                description: "Jobs per page, 0-100; 0: 20.",
            },
            Param {
                name: "page_token",
                location: "query",
                schema: string,
                description: "next_page_token of the previous page.",
            },
            Param {
                name: "state",
                location: "query",
                schema: states,
                description: "Only jobs in these states (repeat the parameter).",
            },
            Param {
                name: "label",
                location: "query",
                schema: labels,
                description: "Only jobs with all of these labels, each `key=value` (repeat the parameter).",
            },
        ],
        body: Body::None,
        reply: Reply::Message(200, "storyreel.gateway.v1.ListJobsResponse"),
        handler: || get(handlers::list_jobs),
    },
    Route {
        method: Method::GET,
        path: "/v1/jobs/{job_id}",
        operation_id: "getJob",
        summary: "A job with its per-stage status (GetJob).",
        auth: true,
        params: &[JOB_ID],
        body: Body::None,
        reply: Reply::Message(200, "storyreel.gateway.v1.Job"),
        handler: || get(handlers::get_job),
    },
    Route {
        method: Method::POST,
        path: "/v1/jobs/{job_id}/cancel",
        operation_id: "cancelJob",
        summary: "Requests cancellation; running stages are stopped. Idempotent (CancelJob).",
        auth: true,
        params: &[JOB_ID],
        body: Body::Message("storyreel.gateway.v1.CancelJobRequest"),
        reply: Reply::Message(200, "storyreel.gateway.v1.Job"),
        handler: || post(handlers::cancel_job),
    },
    Route {
        method: Method::GET,
        path: "/v1/jobs/{job_id}/events",
        operation_id: "watchJob",
        summary: "A job's events as server-sent `job` events, each with its event id; resumes after `Last-Event-ID` (WatchJob).",
        auth: true,
        params: &[
            JOB_ID,
            Param {
                name: "after",
                location: "query",
                schema: string,
                description: "Resume after this event id (the `Last-Event-ID` header wins).",
            },
            Param {
                name: "include_story_text",
                location: "query",
                schema: boolean,
                description: "Also the story text as it is written.",
            },
        ],
        body: Body::None,
        reply: Reply::Events("storyreel.gateway.v1.JobEvent"),
        handler: || get(sse::job_events),
    },
    Route {
        method: Method::GET,
        path: "/v1/jobs/{job_id}/artifacts/{name}",
        operation_id: "getArtifact",
        summary: "An artifact's bytes, with range requests; `subtitles.vtt` is the SRT as WebVTT (GetArtifact).",
        auth: true,
        params: &[
            JOB_ID,
            Param {
                name: "name",
                location: "path",
                schema: artifact_name,
                description: "The artifact's name, e.g. video.mp4.",
            },
            Param {
                name: "download",
                location: "query",
                schema: boolean,
                description: "Answer as an attachment (a save-as): `true` or `1`.",
            },
        ],
        body: Body::None,
        reply: Reply::Bytes,
        handler: || get(artifacts::get_artifact),
    },
];

/// The router of [`ROUTES`].
pub fn router(state: Arc<RestState>) -> Router {
    let mut router = Router::new();
    for route in ROUTES {
        router = router.route(route.path, (route.handler)());
    }
    router
        .fallback(|| async {
            let body = serde_json::json!({"error": {"code": 404, "status": "NOT_FOUND", "message": "no such route"}});
            (axum::http::StatusCode::NOT_FOUND, axum::Json(body))
        })
        .with_state(state)
}

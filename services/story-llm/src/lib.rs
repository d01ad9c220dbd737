//! story-llm: a story title S^I -> N scene texts S^D (paper eq. 1), over gRPC.
//!
//! - [`service`]: the plain trait [`StoryLlm`] and its types (no tonic);
//! - [`validation`]: wire request -> [`StoryRequest`], limits and defaults of the proto;
//! - [`prompting`]: the scene-by-scene chat prompts (DESIGN.md §9);
//! - [`parsing`]: model output -> usable, distinct scene texts;
//! - [`error`]: [`StoryLlmError`] and its error codes;
//! - [`grpc`]: the thin tonic adapter;
//! - [`model_service`]: [`ModelBackedStoryLlm`], the [`StoryLlm`] over the model worker
//!   of `storyreel_llm` (its own thread, static batching, cancellation);
//! - [`config`]: the `[story_llm]` table;
//! - [`run`]: serves a [`StoryLlm`] until shutdown, ready while its model is.
//!
//! The model-backed [`StoryLlm`] ([`ModelBackedStoryLlm`], SmolLM2 on a batching worker
//! thread) is plugged in by passing it to [`run`].

pub mod config;
pub mod error;
pub mod grpc;
pub mod model_service;
pub mod parsing;
pub mod prompting;
pub mod service;
pub mod validation;

pub use config::StoryLlmConfig;
pub use error::StoryLlmError;
pub use model_service::ModelBackedStoryLlm;
pub use service::{ModelState, Story, StoryEvent, StoryLlm, StoryRequest};

use std::{future::Future, sync::Arc};
use storyreel_runtime::{model::serve_model_service, server::ServerError};
use tokio::net::TcpListener;
use tonic::service::Routes;

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.story_llm.v1.StoryLlmService";

/// Serves `service` on `listener` until `shutdown` resolves, then drains in-flight calls
/// (`server.shutdown_grace_ms`). Health (`""` and [`SERVICE_NAME`]) is SERVING exactly
/// while `service.model_state()` is [`ModelState::Ready`].
pub async fn run(
    config: StoryLlmConfig,
    service: Arc<dyn StoryLlm>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let state = service.model_state();
    let routes = Routes::new(grpc::StoryLlmGrpc::new(service, &config).into_server(&config.server));
    serve_model_service(config.server, SERVICE_NAME, state, listener, routes, shutdown).await
}

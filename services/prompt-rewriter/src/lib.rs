//! prompt-rewriter: story scenes S^D -> diffusion prompts S^P with negative prompts and
//! visual attributes (paper eq. 2, Fig. 3), and prompts -> search keywords S^K (eq. 3),
//! over gRPC.
//!
//! - [`service`]: the plain trait [`PromptRewriter`] and its types (no tonic);
//! - [`validation`]: wire requests -> validated requests, the proto's limits and defaults;
//! - [`prompting`]: one short chat prompt per field of a scene;
//! - [`parsing`]: model output -> descriptions, attribute lists, colours, keywords;
//! - [`compose`]: S^P from the fields within the CLIP token budget;
//! - [`error`]: [`PromptRewriterError`] and its error codes;
//! - [`grpc`]: the thin tonic adapter;
//! - [`model_service`]: [`ModelBackedPromptRewriter`], over the batching model worker of
//!   `storyreel_llm` and the CLIP tokenizer;
//! - [`config`]: the `[prompt_rewriter]` table;
//! - [`run`]: serves a [`PromptRewriter`] until shutdown, ready while its model is.

pub mod compose;
pub mod config;
pub mod error;
pub mod grpc;
pub mod model_service;
pub mod parsing;
pub mod prompting;
pub mod service;
pub mod validation;

pub use config::PromptRewriterConfig;
pub use error::PromptRewriterError;
pub use model_service::ModelBackedPromptRewriter;
pub use service::{Keywords, KeywordsRequest, ModelState, PromptRewriter, Rewrite, RewriteRequest};

use std::{future::Future, sync::Arc};
use storyreel_runtime::{model::serve_model_service, server::ServerError};
use tokio::net::TcpListener;
use tonic::service::Routes;

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.prompt_rewriter.v1.PromptRewriterService";

/// Serves `service` on `listener` until `shutdown` resolves, then drains in-flight calls
/// (`server.shutdown_grace_ms`). Health (`""` and [`SERVICE_NAME`]) is SERVING exactly
/// while `service.model_state()` is [`ModelState::Ready`].
pub async fn run(
    config: PromptRewriterConfig,
    service: Arc<dyn PromptRewriter>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let state = service.model_state();
    let routes = Routes::new(grpc::PromptRewriterGrpc::new(service, &config).into_server(&config.server));
    serve_model_service(config.server, SERVICE_NAME, state, listener, routes, shutdown).await
}

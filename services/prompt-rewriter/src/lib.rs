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
use storyreel_runtime::{GrpcServer, model::follow_model_state, server::ServerError};
use tokio::{net::TcpListener, sync::oneshot};
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
    let server = GrpcServer::new(config.server.clone())
        .await
        .with_descriptor_set(storyreel_proto::FILE_DESCRIPTOR_SET);
    let health = server.health();
    health.register(SERVICE_NAME).await;

    let (stop_following, stopped) = oneshot::channel();
    let follower = tokio::spawn(follow_model_state(health, service.model_state(), stopped));
    // Readiness stops following the model before the server reports NOT_SERVING and
    // drains, so a late model event cannot flip it back to SERVING.
    let shutdown = async move {
        shutdown.await;
        let _ = stop_following.send(());
        let _ = follower.await;
    };

    let routes = Routes::new(grpc::PromptRewriterGrpc::new(service, &config).into_server(&config.server));
    server.serve(listener, routes, shutdown).await
}

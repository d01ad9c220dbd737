//! A small gRPC service for the runtime's tests: the PromptRewriter API, answered without a
//! model. `Rewrite` sleeps `delay` (to be "in flight"), or, with a `downstream`, calls
//! `Keywords` there: two hops for trace propagation. A mock is right here: these tests
//! check the server and client plumbing, not a model.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};
use storyreel_proto::common::Scene;
use storyreel_proto::prompt_rewriter::{
    KeywordsRequest, KeywordsResponse, RewriteRequest, RewriteResponse,
    prompt_rewriter_service_client::PromptRewriterServiceClient,
    prompt_rewriter_service_server::{PromptRewriterService, PromptRewriterServiceServer},
};
use storyreel_runtime::{
    GrpcServer, Health, ServerConfig,
    client::{ClientConfig, ClientInterceptor, channel, with_retries},
    with_message_limits,
};
use tokio::{sync::oneshot, task::JoinHandle};
use tonic::{Request, Response, Status, service::Routes};

pub const SERVICE_NAME: &str = "storyreel.prompt_rewriter.v1.PromptRewriterService";

#[derive(Clone, Default)]
pub struct TestService {
    pub delay: Duration,
    pub downstream: Option<ClientConfig>,
}

#[tonic::async_trait]
impl PromptRewriterService for TestService {
    async fn rewrite(&self, request: Request<RewriteRequest>) -> Result<Response<RewriteResponse>, Status> {
        let _ = request.into_inner();
        if let Some(config) = &self.downstream {
            let channel = channel(config).map_err(|e| Status::internal(e.to_string()))?;
            let client =
                PromptRewriterServiceClient::with_interceptor(channel, ClientInterceptor::new(config));
            with_retries(&config.retry, || {
                let mut client = client.clone();
                let request = Request::new(KeywordsRequest {
                    prompts: vec![Scene {
                        index: 0,
                        text: "a red fox".into(),
                    }],
                    ..Default::default()
                });
                async move { client.keywords(request).await }
            })
            .await?;
        }
        tokio::time::sleep(self.delay).await;
        Ok(Response::new(RewriteResponse {
            seed: 42,
            ..Default::default()
        }))
    }

    async fn keywords(
        &self,
        _request: Request<KeywordsRequest>,
    ) -> Result<Response<KeywordsResponse>, Status> {
        tracing::info!("keywords handled");
        Ok(Response::new(KeywordsResponse::default()))
    }
}

/// A running test server; dropping `stop` (or sending on it) shuts it down gracefully.
pub struct Running {
    pub addr: SocketAddr,
    pub health: Health,
    pub stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<Result<(), storyreel_runtime::server::ServerError>>,
}

impl Running {
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            endpoint: self.endpoint(),
            ..Default::default()
        }
    }

    /// Sends the stop signal and waits (bounded) for `serve` to return.
    pub async fn shutdown(mut self) -> Result<(), storyreel_runtime::server::ServerError> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap()
    }
}

pub async fn start(service: TestService, config: ServerConfig, ready: bool) -> Running {
    let listener = storyreel_runtime::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server = GrpcServer::new(config.clone())
        .await
        .with_descriptor_set(storyreel_proto::FILE_DESCRIPTOR_SET);
    let health = server.health();
    health.register(SERVICE_NAME).await;
    if ready {
        health.set_ready(true).await;
    }
    let routes = Routes::new(with_message_limits!(
        PromptRewriterServiceServer::new(service),
        &config
    ));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, routes, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        health,
        stop: Some(stop),
        task,
    }
}

pub async fn client(endpoint: &str) -> PromptRewriterServiceClient<tonic::transport::Channel> {
    PromptRewriterServiceClient::connect(endpoint.to_string())
        .await
        .unwrap()
}

/// A plain channel to a test server (for the health and reflection clients).
pub async fn raw_channel(endpoint: &str) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(endpoint.to_string())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

//! gRPC server bootstrap shared by every service: a pre-bound listener (port 0 works in
//! tests), `grpc.health.v1` with readiness flipped by the service, server reflection (v1
//! and v1alpha),
//! telemetry and concurrency-limit layers, a request timeout, optional TLS/mTLS, and a
//! graceful shutdown that drains in-flight calls for up to `shutdown_grace_ms`.

use crate::{
    config::{ValidationError, check_range},
    server_layer::{ConcurrencyLimitLayer, GrpcTelemetryLayer},
    tls::{ServerTlsFiles, TlsError},
};
use serde::{Deserialize, Serialize};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::Mutex};
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, server::HealthReporter};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest gRPC message accepted or sent, in bytes (tensors travel through the tensor
    /// store, so messages stay small).
    pub max_message_bytes: usize,
    /// Requests in flight before new ones are refused with RESOURCE_EXHAUSTED.
    pub concurrency_limit: usize,
    /// Upper bound on one request, in milliseconds (a shorter client deadline wins).
    pub request_timeout_ms: u64,
    /// How long shutdown waits for in-flight calls before dropping them.
    pub shutdown_grace_ms: u64,
    /// TLS for this server; with `client_ca`, mTLS.
    pub tls: Option<ServerTlsFiles>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_message_bytes: 4 * 1024 * 1024,
            concurrency_limit: 64,
            request_timeout_ms: 600_000,
            shutdown_grace_ms: 30_000,
            tls: None,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range(
            "max_message_bytes",
            self.max_message_bytes,
            1024,
            64 * 1024 * 1024,
        )?;
        check_range("concurrency_limit", self.concurrency_limit, 1, 100_000)?;
        check_range(
            "request_timeout_ms",
            self.request_timeout_ms,
            100,
            24 * 3600 * 1000,
        )?;
        check_range("shutdown_grace_ms", self.shutdown_grace_ms, 0, 3600 * 1000)?;
        Ok(())
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

/// Sets a generated tonic server's message-size limits from the config:
/// `with_message_limits!(KeyframeServiceServer::new(svc), &config.server)`.
#[macro_export]
macro_rules! with_message_limits {
    ($server:expr, $config:expr) => {{
        let limit = ($config).max_message_bytes;
        $server
            .max_decoding_message_size(limit)
            .max_encoding_message_size(limit)
    }};
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("invalid TLS configuration: {0}")]
    TlsConfig(tonic::transport::Error),
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Serve(tonic::transport::Error),
}

/// Binds `config.listen`; tests bind `127.0.0.1:0` and read `local_addr()`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Readiness as seen by `grpc.health.v1` (and so by Kubernetes gRPC probes). Everything
/// starts NOT_SERVING; the service calls [`Health::set_ready`] once its model is loaded.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    services: Arc<Mutex<Vec<String>>>,
}

impl Health {
    /// Registers a fully-qualified service name (`storyreel.keyframe.v1.KeyframeService`)
    /// whose status follows readiness.
    pub async fn register(&self, service: &str) {
        self.services.lock().await.push(service.to_string());
        self.reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }

    /// Flips the server ("") and every registered service to SERVING or NOT_SERVING.
    pub async fn set_ready(&self, ready: bool) {
        let status = if ready {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
        for name in self.services.lock().await.iter() {
            self.reporter.set_service_status(name, status).await;
        }
    }
}

/// A server under construction: add the service's routes and serve.
pub struct GrpcServer {
    config: ServerConfig,
    health: Health,
    health_service: tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
    descriptor_sets: Vec<&'static [u8]>,
}

impl GrpcServer {
    pub async fn new(config: ServerConfig) -> Self {
        let reporter = HealthReporter::new();
        reporter.set_service_status("", ServingStatus::NotServing).await;
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(reporter.clone()),
        );
        Self {
            config,
            health: Health {
                reporter,
                services: Arc::default(),
            },
            health_service,
            descriptor_sets: vec![tonic_health::pb::FILE_DESCRIPTOR_SET],
        }
    }

    /// The readiness handle; clone it into the model worker.
    pub fn health(&self) -> Health {
        self.health.clone()
    }

    /// Adds an encoded `FileDescriptorSet` (e.g. `storyreel_proto::FILE_DESCRIPTOR_SET`)
    /// to the reflection service.
    pub fn with_descriptor_set(mut self, set: &'static [u8]) -> Self {
        self.descriptor_sets.push(set);
        self
    }

    /// Serves `routes` on `listener` until `shutdown` resolves, then reports NOT_SERVING,
    /// stops accepting, and waits up to `shutdown_grace_ms` for in-flight calls.
    pub async fn serve(
        self,
        listener: TcpListener,
        routes: Routes,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let mut reflection = tonic_reflection::server::Builder::configure();
        for set in &self.descriptor_sets {
            reflection = reflection.register_encoded_file_descriptor_set(set);
        }
        // v1alpha beside v1: grpcurl 1.8 and many clients still speak only v1alpha.
        let mut reflection_v1alpha = tonic_reflection::server::Builder::configure();
        for set in &self.descriptor_sets {
            reflection_v1alpha = reflection_v1alpha.register_encoded_file_descriptor_set(set);
        }
        let reflection_v1alpha = reflection_v1alpha.build_v1alpha()?;
        let reflection = reflection.build_v1()?;

        let mut builder = Server::builder();
        if let Some(tls) = &self.config.tls {
            builder = builder.tls_config(tls.load()?).map_err(ServerError::TlsConfig)?;
        }
        let router = builder
            .timeout(self.config.request_timeout())
            .layer(GrpcTelemetryLayer)
            .layer(ConcurrencyLimitLayer::new(self.config.concurrency_limit))
            .add_routes(routes)
            .add_service(self.health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha);

        let addr = listener.local_addr().ok();
        tracing::info!(?addr, "grpc server listening");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let server = router.serve_with_incoming_shutdown(incoming, async {
            let _ = stop_rx.await;
        });
        tokio::pin!(server);

        tokio::select! {
            result = &mut server => return result.map_err(ServerError::Serve),
            _ = shutdown => {}
        }
        self.health.set_ready(false).await;
        let _ = stop_tx.send(());
        let grace = Duration::from_millis(self.config.shutdown_grace_ms);
        match tokio::time::timeout(grace, server).await {
            Ok(result) => result.map_err(ServerError::Serve),
            Err(_) => {
                tracing::warn!(
                    grace_ms = self.config.shutdown_grace_ms,
                    "shutdown grace elapsed; dropping in-flight calls"
                );
                Ok(())
            }
        }
    }
}

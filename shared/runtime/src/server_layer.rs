//! Tower layers every storyreel gRPC server runs its requests through.
//!
//! - [`GrpcTelemetryLayer`]: one `grpc.server` span per request, parented on the caller's
//!   trace context, plus request counters and latency histograms per method;
//! - [`ConcurrencyLimitLayer`]: at most N requests in flight; the next one is refused at
//!   once with RESOURCE_EXHAUSTED (a model server should shed load, not queue unboundedly).
//!   Health checks and reflection are exempt, so probes keep answering under load.

use futures::future::BoxFuture;
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Paths that never count against the concurrency limit.
fn is_control_plane(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTelemetryLayer;

impl<S> Layer<S> for GrpcTelemetryLayer {
    type Service = GrpcTelemetry<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcTelemetry { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcTelemetry<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for GrpcTelemetry<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone is ready only after poll_ready; swap so we call the ready one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let method = request.uri().path().to_string();
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %method,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
        );
        // An invalid or absent parent just starts a new trace.
        let _ = span.set_parent(crate::propagation::extract_parent(request.headers()));
        let started = Instant::now();
        let fut = inner.call(request);
        Box::pin(
            async move {
                let result = fut.await;
                // Errors and trailers-only responses carry grpc-status in the headers; a
                // streamed success carries it in trailers, counted here as 0.
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("0")
                        .to_string(),
                    Err(_) => "transport".to_string(),
                };
                tracing::Span::current().record("rpc.grpc.status_code", code.as_str());
                if !is_control_plane(&method) {
                    metrics::counter!("storyreel_grpc_requests_total", "method" => method.clone(), "code" => code)
                        .increment(1);
                    metrics::histogram!("storyreel_grpc_request_duration_seconds", "method" => method)
                        .record(started.elapsed().as_secs_f64());
                }
                result
            }
            .instrument(span),
        )
    }
}

#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl ConcurrencyLimitLayer {
    pub fn new(limit: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimit {
            inner,
            permits: self.permits.clone(),
            limit: self.limit,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConcurrencyLimit<S> {
    inner: S,
    permits: Arc<Semaphore>,
    limit: usize,
}

impl<S, B, R> Service<http::Request<B>> for ConcurrencyLimit<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    R: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    R::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if is_control_plane(request.uri().path()) {
            let fut = inner.call(request);
            return Box::pin(async move { Ok(fut.await?.map(tonic::body::Body::new)) });
        }
        match self.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let fut = inner.call(request);
                // The permit lives as long as the response body: a server-streaming call
                // counts until its last message, not just until its headers.
                Box::pin(async move {
                    let response = fut.await?;
                    Ok(response.map(|body| {
                        tonic::body::Body::new(PermitBody {
                            inner: tonic::body::Body::new(body),
                            _permit: permit,
                        })
                    }))
                })
            }
            Err(_) => {
                metrics::counter!("storyreel_grpc_requests_shed_total").increment(1);
                let status = tonic::Status::resource_exhausted(format!(
                    "server busy: `server.concurrency_limit` of {} requests in flight reached; retry later",
                    self.limit
                ));
                Box::pin(async move { Ok(status.into_http()) })
            }
        }
    }
}

/// A response body that holds a concurrency permit until it is finished or dropped.
struct PermitBody {
    inner: tonic::body::Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for PermitBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

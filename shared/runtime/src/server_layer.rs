//! Tower layers every storyreel gRPC server runs its requests through.
//!
//! - [`GrpcTelemetryLayer`]: one `grpc.server` span per request, parented on the caller's
//!   trace context, plus request counters and latency histograms per method, recorded when
//!   the response body ends (a stream's trailers, not its headers) with its final status;
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
        // Recorded once: when the response body ends, or, if the call is dropped before
        // it has one (the server's request timeout), as CANCELLED.
        let mut watcher = CallWatcher(Some(CallEnd {
            method,
            started: Instant::now(),
            code: None,
            span: span.clone(),
        }));
        let fut = inner.call(request);
        Box::pin(
            async move {
                let response = match fut.await {
                    Ok(response) => response,
                    Err(err) => {
                        watcher.end("transport");
                        return Err(err);
                    }
                };
                // Errors and trailers-only responses carry grpc-status in the headers; any
                // other call, a stream above all, ends with it in the trailers: the call
                // is counted and timed when its body ends.
                if let (Some(code), Some(end)) = (
                    response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok()),
                    watcher.0.as_mut(),
                ) {
                    end.code = Some(code.to_string());
                }
                Ok(response.map(|body| watched(body, watcher)))
            }
            .instrument(span),
        )
    }
}

/// What is recorded when a call's response body ends.
struct CallEnd {
    method: String,
    started: Instant,
    /// grpc-status seen so far (headers, then trailers).
    code: Option<String>,
    span: tracing::Span,
}

impl CallEnd {
    /// `code`: the status seen, else `fallback` (`0` for a body that ended without one,
    /// `1` (CANCELLED) when the call or its body was dropped unfinished: the client went
    /// away or the request timeout cut it; `transport` for a failed body).
    fn record(self, fallback: &str) {
        let code = self.code.unwrap_or_else(|| fallback.to_string());
        self.span.record("rpc.grpc.status_code", code.as_str());
        if !is_control_plane(&self.method) {
            metrics::counter!("storyreel_grpc_requests_total", "method" => self.method.clone(), "code" => code)
                .increment(1);
            metrics::histogram!("storyreel_grpc_request_duration_seconds", "method" => self.method)
                .record(self.started.elapsed().as_secs_f64());
        }
    }
}

/// Records its call when the response body ends (or is dropped unfinished).
struct CallWatcher(Option<CallEnd>);

impl BodyWatcher for CallWatcher {
    fn frame(&mut self, frame: &http_body::Frame<bytes::Bytes>) {
        let status = frame
            .trailers_ref()
            .and_then(|t| t.get("grpc-status"))
            .and_then(|v| v.to_str().ok());
        if let (Some(status), Some(end)) = (status, self.0.as_mut()) {
            end.code = Some(status.to_string());
        }
    }

    fn end(&mut self, fallback: &str) {
        if let Some(end) = self.0.take() {
            end.record(fallback);
        }
    }
}

impl Drop for CallWatcher {
    /// Dropped before its end: the request timeout dropped the call, hyper stopped polling
    /// a body whose stream the client reset, or a unary body whose last frame was its
    /// trailers was dropped without a final poll (its code is known then).
    fn drop(&mut self) {
        self.end("1");
    }
}

/// What a response body tells the one watching it: each frame, and how it ended (the
/// status to assume when no grpc-status was seen).
trait BodyWatcher: Send + Unpin + 'static {
    fn frame(&mut self, _frame: &http_body::Frame<bytes::Bytes>) {}
    fn end(&mut self, _fallback: &str) {}
}

/// A concurrency permit held as long as the body: released when it is dropped.
impl BodyWatcher for OwnedSemaphorePermit {}

/// `body` with `watcher` looking on.
fn watched<B, W>(body: B, watcher: W) -> tonic::body::Body
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
    W: BodyWatcher,
{
    tonic::body::Body::new(WatchedBody {
        inner: tonic::body::Body::new(body),
        watcher,
    })
}

struct WatchedBody<W> {
    inner: tonic::body::Body,
    watcher: W,
}

impl<W: BodyWatcher> http_body::Body for WatchedBody<W> {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => self.watcher.frame(frame),
            Poll::Ready(Some(Err(_))) => self.watcher.end("transport"),
            Poll::Ready(None) => self.watcher.end("0"),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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
                    Ok(response.map(|body| watched(body, permit)))
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

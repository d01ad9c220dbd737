//! W3C trace context (`traceparent`, `tracestate`) in gRPC metadata, so that one job is
//! one trace across every service it passes through.
//!
//! Client side: [`InjectContext::inject_context`] on a request, or the
//! [`crate::client::ClientInterceptor`] which does it for every call. Server side:
//! [`crate::server_layer::GrpcTelemetryLayer`] extracts the context into the request span.

use opentelemetry::propagation::{Extractor, Injector};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(&value),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Writes the current span's trace context into `metadata`.
pub fn inject_current(metadata: &mut MetadataMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| {
        p.inject_context(&context, &mut MetadataInjector(metadata))
    });
}

/// The remote parent carried by incoming request headers (empty when absent).
pub fn extract_parent(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// `request.inject_context()`: carries the current trace into an outgoing request.
pub trait InjectContext {
    fn inject_context(self) -> Self;
}

impl<T> InjectContext for tonic::Request<T> {
    fn inject_context(mut self) -> Self {
        inject_current(self.metadata_mut());
        self
    }
}

/// The current span's trace context as `traceparent` / `tracestate` entries, for a
/// carrier that is not gRPC metadata (a durable job's stored input).
pub fn current_as_map() -> std::collections::HashMap<String, String> {
    let context = tracing::Span::current().context();
    let mut map = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut map));
    map
}

/// The remote parent carried by such a map (empty when absent).
pub fn parent_from_map(map: &std::collections::HashMap<String, String>) -> opentelemetry::Context {
    opentelemetry::global::get_text_map_propagator(|p| p.extract(map))
}

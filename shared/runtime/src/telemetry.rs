//! Logging, tracing and metrics for a service process.
//!
//! - logs: a `tracing` subscriber writing text or JSON, filtered by `log_filter`
//!   (`RUST_LOG` syntax);
//! - traces: when `otlp_endpoint` is set, spans are exported over OTLP/gRPC in batches;
//!   the W3C trace-context propagator is installed so [`crate::propagation`] carries one
//!   trace id across services (note: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, when set in
//!   the environment, takes precedence over the configured endpoint);
//! - metrics: when `metrics_listen` is set, a Prometheus `/metrics` endpoint is served on
//!   that address and the `metrics` macros record into it.
//!
//! Logging and metrics recorders are process-global: call [`init`] once, from `main`.

use crate::config::{ValidationError, check_range};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, time::Duration};
use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// `RUST_LOG`-style directives, e.g. `info,storyreel=debug`.
    pub log_filter: String,
    /// OTLP/gRPC collector, e.g. `http://otel-collector:4317`; unset disables export.
    pub otlp_endpoint: Option<String>,
    /// Export timeout per batch.
    pub otlp_timeout_ms: u64,
    /// Fraction of new traces sampled, 0.0-1.0 (a parent's decision is always followed).
    pub sample_ratio: f64,
    /// Address of the Prometheus `/metrics` endpoint; unset disables it.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_filter: "info".into(),
            otlp_endpoint: None,
            otlp_timeout_ms: 10_000,
            sample_ratio: 1.0,
            metrics_listen: None,
        }
    }
}

impl TelemetryConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("sample_ratio", self.sample_ratio, 0.0, 1.0)?;
        check_range("otlp_timeout_ms", self.otlp_timeout_ms, 100, 600_000)?;
        EnvFilter::try_new(&self.log_filter)
            .map_err(|e| ValidationError::new("log_filter", format!("is not a valid filter: {e}")))?;
        if let Some(endpoint) = &self.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ValidationError::new(
                "otlp_endpoint",
                format!("must start with http:// or https://, got `{endpoint}`"),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Otlp {
        endpoint: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("cannot start the Prometheus endpoint on {addr}: {source}")]
    Metrics {
        addr: SocketAddr,
        source: metrics_exporter_prometheus::BuildError,
    },
    #[error("a global tracing subscriber is already installed: {0}")]
    Subscriber(String),
}

/// Flushes and stops trace export when dropped: keep it alive for the life of `main`.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Exports every finished span now (tests and shutdown paths).
    pub fn flush(&self) {
        if let Some(provider) = &self.provider
            && let Err(err) = provider.force_flush()
        {
            tracing::warn!(error = %err, "trace flush failed");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: trace exporter shutdown failed: {err}");
        }
    }
}

/// Buckets of every `*_batch_size` histogram (model workers batch at most 32).
pub const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0];

/// Buckets of every `*_seconds` histogram unless a stage gives its own: 5 ms to 10 min.
pub const DEFAULT_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Installs the global subscriber, propagator, exporter and metrics endpoint.
/// Must be called inside a tokio runtime when OTLP or metrics are enabled.
pub fn init(
    service: &str,
    version: &str,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    init_with_latency_buckets(service, version, config, DEFAULT_LATENCY_BUCKETS)
}

/// [`init`], with `latency_buckets` for every `*_seconds` histogram (a stage's latency
/// range: milliseconds for retrieval, minutes for diffusion).
pub fn init_with_latency_buckets(
    service: &str,
    version: &str,
    config: &TelemetryConfig,
    latency_buckets: &[f64],
) -> Result<TelemetryGuard, TelemetryError> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .boxed(),
    };

    let provider = match &config.otlp_endpoint {
        None => None,
        Some(endpoint) => Some(tracer_provider(service, version, endpoint, config)?),
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service.to_string())));
    if let Some(provider) = &provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::Subscriber(e.to_string()))?;

    if let Some(addr) = config.metrics_listen {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .add_global_label("service", service)
            // Batch sizes as a histogram, not a summary: a summary's window forgets, a
            // histogram's buckets can be aggregated across replicas.
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_batch_size".into()),
                BATCH_SIZE_BUCKETS,
            )
            .map_err(|source| TelemetryError::Metrics { addr, source })?
            // Latencies as histograms too, with buckets suited to the stage.
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
                latency_buckets,
            )
            .map_err(|source| TelemetryError::Metrics { addr, source })?
            .install()
            .map_err(|source| TelemetryError::Metrics { addr, source })?;
    }
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    service: &str,
    version: &str,
    endpoint: &str,
    config: &TelemetryConfig,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_millis(config.otlp_timeout_ms))
        .build()
        .map_err(|source| TelemetryError::Otlp {
            endpoint: endpoint.to_string(),
            source,
        })?;
    let sampler = opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
        opentelemetry_sdk::trace::Sampler::TraceIdRatioBased(config.sample_ratio),
    ));
    let resource = Resource::builder()
        .with_service_name(service.to_string())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            version.to_string(),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(resource)
        .build())
}

//! A stage's server and process: the [`Stage`] trait names what differs between stages
//! (config table, service name, how the service starts, its routes); [`serve`] and
//! [`main`] are the same for all of them.
//!
//! A stage's `main.rs` is `storyreel_stage::serve::main::<TheStage>()`: it loads the
//! layered config (`[<table>]`, DESIGN.md §4), starts telemetry with the stage's latency
//! buckets, starts the service (its model loads in the background), binds, and serves
//! until SIGTERM/SIGINT. Health is SERVING exactly while the model is ready; reflection
//! serves the storyreel descriptor set (v1 and v1alpha).

use std::{future::Future, sync::Arc};
use storyreel_runtime::{
    ModelState, ServerConfig, Validate,
    config::Sources,
    model::serve_model_service,
    server::{self, ServerError},
    shutdown,
    telemetry::{self, TelemetryConfig},
};
use tokio::{net::TcpListener, sync::watch};
use tonic::service::Routes;

/// A stage's config: the layered `[<table>]`, with the server and telemetry sub-tables
/// every stage has.
pub trait StageConfig:
    serde::de::DeserializeOwned + serde::Serialize + Default + Validate + Clone + Send + Sync + 'static
{
    fn server(&self) -> &ServerConfig;
    fn telemetry(&self) -> &TelemetryConfig;
    /// The tensor store a stage process opens (`[<stage>.tensors]`).
    fn tensors(&self) -> &storyreel_tensors::StoreConfig;

    /// Validates the `server` and `telemetry` tables; a stage's `validate` starts here.
    fn validate_stage_tables(&self) -> Result<(), storyreel_runtime::ValidationError> {
        self.server().validate().map_err(|e| e.within("server"))?;
        self.telemetry().validate().map_err(|e| e.within("telemetry"))
    }
}

/// Checks what every tensor-in, tensor-out stage's config holds besides its models: the
/// tensor store, a one-call-at-a-time worker and the `max_frame_pixels` budget.
pub fn validate_tensor_stage(
    tensors: &storyreel_tensors::StoreConfig,
    worker: &crate::WorkerConfig,
    max_frame_pixels: u64,
) -> Result<(), storyreel_runtime::ValidationError> {
    tensors
        .validate()
        .map_err(|e| storyreel_runtime::ValidationError::new("tensors", e.to_string()))?;
    worker.validate_one_call_at_a_time()?;
    storyreel_runtime::config::check_range("max_frame_pixels", max_frame_pixels, 64 * 64, 1 << 40)
}

/// What a stage's gRPC adapter holds: the service, the config and the calls' context
/// factory. An adapter is a newtype over it (`pub struct TtsGrpc(Adapter<TtsStage>)`)
/// that implements the generated server trait.
pub struct Adapter<S: Stage> {
    pub service: Arc<S::Service>,
    pub config: Arc<S::Config>,
    pub calls: crate::StageCalls,
}

impl<S: Stage> Clone for Adapter<S> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
            config: self.config.clone(),
            calls: self.calls.clone(),
        }
    }
}

impl<S: Stage> Adapter<S> {
    pub fn new(service: Arc<S::Service>, config: &S::Config) -> Self {
        let calls = crate::StageCalls::new(
            S::NAME,
            config.server().request_timeout(),
            S::model_state(&service),
        );
        Self {
            service,
            config: Arc::new(config.clone()),
            calls,
        }
    }
}

/// Implements [`StageConfig`] for a config struct with `server` and `telemetry` fields.
#[macro_export]
macro_rules! stage_config {
    ($config:ty) => {
        impl $crate::serve::StageConfig for $config {
            fn server(&self) -> &storyreel_runtime::ServerConfig {
                &self.server
            }
            fn telemetry(&self) -> &storyreel_runtime::telemetry::TelemetryConfig {
                &self.telemetry
            }
            fn tensors(&self) -> &storyreel_tensors::StoreConfig {
                &self.tensors
            }
        }
    };
}

/// What makes one stage different from another.
#[async_trait::async_trait]
pub trait Stage: Send + Sync + 'static {
    /// Process and telemetry name, e.g. `story-llm`.
    const NAME: &'static str;
    /// The config table and the `STORYREEL_<TABLE>__` environment prefix, e.g. `story_llm`.
    const CONFIG_TABLE: &'static str;
    /// The fully-qualified gRPC service name (health, reflection).
    const SERVICE_NAME: &'static str;
    /// Buckets of the stage's latency histograms ([`crate::metrics`]).
    const LATENCY_BUCKETS: &'static [f64];

    type Config: StageConfig;
    /// The plain service trait object (`dyn StoryLlm`).
    type Service: ?Sized + Send + Sync + 'static;

    /// Starts the service of `config` on `store`, which it shares with whoever else holds
    /// it (the embedded pipeline gives every stage one in-process store). Its model may
    /// still be loading when this returns.
    async fn start_with_store(
        config: &Self::Config,
        store: Arc<dyn storyreel_tensors::TensorStore>,
    ) -> anyhow::Result<Arc<Self::Service>>;

    /// Starts the service of `config` on the store its `tensors` table names.
    async fn start(config: &Self::Config) -> anyhow::Result<Arc<Self::Service>> {
        let store = storyreel_tensors::open_store(config.tensors()).await?;
        Self::start_with_store(config, store).await
    }

    /// The model state readiness follows.
    fn model_state(service: &Self::Service) -> watch::Receiver<ModelState>;

    /// The gRPC routes of the service (the thin adapter).
    fn routes(service: Arc<Self::Service>, config: &Self::Config) -> Routes;
}

/// Serves `service` on `listener` until `shutdown` resolves, then drains in-flight calls
/// (`server.shutdown_grace_ms`). Health (`""` and the stage's service name) is SERVING
/// exactly while the model state is ready.
pub async fn serve<S: Stage>(
    config: S::Config,
    service: Arc<S::Service>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let state = S::model_state(&service);
    let routes = S::routes(service, &config);
    serve_model_service(
        config.server().clone(),
        S::SERVICE_NAME,
        state,
        listener,
        routes,
        shutdown,
    )
    .await
}

/// The whole process of a stage: see the module docs.
pub fn main<S: Stage>() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run_process::<S>())
}

async fn run_process<S: Stage>() -> anyhow::Result<()> {
    use anyhow::Context;
    let config: S::Config =
        storyreel_runtime::config::load(S::CONFIG_TABLE, &Sources::from_env()).context("loading config")?;
    let _telemetry = telemetry::init_with_latency_buckets(
        S::NAME,
        env!("CARGO_PKG_VERSION"),
        config.telemetry(),
        S::LATENCY_BUCKETS,
    )?;
    let service = S::start(&config)
        .await
        .with_context(|| format!("starting {}", S::NAME))?;
    let listener = server::bind(config.server().listen).await?;
    serve::<S>(config, service, listener, shutdown::signal()).await?;
    Ok(())
}

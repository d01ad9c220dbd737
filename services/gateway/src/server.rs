//! The gateway process (`storyreel serve`): the API over gRPC, and a Temporal worker on
//! the jobs' task queue, so that every replica both takes requests and runs jobs. Any
//! number of replicas share one Temporal namespace, one Redis and one artifact store.

use crate::{
    api::{auth::ApiKeys, grpc::GatewayGrpc, service::GatewayService},
    artifacts::ArtifactStore,
    config::PipelineConfig,
    events::EventLog,
    gateway_config::GatewayConfig,
    jobs::{activities::StageActivities, clients::StageClients, workflow::VideoWorkflow},
    quota::Quota,
    routing::Router,
};
use anyhow::Context;
use std::{sync::Arc, time::Duration};
use storyreel_proto::gateway::gateway_service_server::GatewayServiceServer;
use storyreel_runtime::{
    config::Sources,
    server::{GrpcServer, bind},
};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, TlsOptions};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};
use tonic::service::Routes;

/// The artifact store of `config`, or `file://<out_dir>/artifacts` by default.
pub fn artifacts_url(config: &GatewayConfig, pipeline: &PipelineConfig) -> anyhow::Result<String> {
    if !config.artifacts_url.is_empty() {
        return Ok(config.artifacts_url.clone());
    }
    let dir = std::path::absolute(pipeline.out_dir.join("artifacts")).context("the artifacts directory")?;
    Ok(url::Url::from_directory_path(&dir)
        .map_err(|()| anyhow::anyhow!("{} is not an absolute directory", dir.display()))?
        .to_string())
}

/// Connects to Temporal, retrying for up to `patience` (the cluster may be starting).
pub async fn connect_temporal(config: &GatewayConfig, patience: Duration) -> anyhow::Result<Client> {
    let url = url::Url::parse(&config.temporal.address).context("temporal.address")?;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let options = ConnectionOptions::new(url.clone())
            .identity(format!("storyreel-gateway@{}", std::process::id()))
            .maybe_api_key(config.temporal.api_key.as_ref().map(|k| k.expose().to_string()))
            .maybe_tls_options((url.scheme() == "https").then(TlsOptions::default))
            .build();
        match Connection::connect(options).await {
            Ok(connection) => {
                let client = Client::new(
                    connection,
                    ClientOptions::new(config.temporal.namespace.clone()).build(),
                )
                .context("a Temporal client")?;
                return Ok(client);
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::info!(error = %e, "waiting for Temporal");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "connecting to Temporal at {}: {e}",
                    config.temporal.address
                ));
            }
        }
    }
}

/// Runs the gateway until `shutdown` resolves.
pub async fn run(
    config: GatewayConfig,
    pipeline: PipelineConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let redis = storyreel_tensors::redis_client(&config.tensors.redis).context("redis")?;
    let retention = Duration::from_secs(config.retention_hours * 3600);
    let events = EventLog::connect(redis.clone(), &config.tensors.key_prefix, retention)
        .await
        .context("connecting to redis for job events")?;
    let quota = Quota::new(
        redis::aio::ConnectionManager::new(redis)
            .await
            .context("connecting to redis for quotas")?,
        &config.tensors.key_prefix,
    );
    let artifacts = ArtifactStore::open(&artifacts_url(&config, &pipeline)?)?;
    let store = storyreel_tensors::open_store(&config.tensors)
        .await
        .context("the tensor store")?;
    let client = connect_temporal(&config, Duration::from_secs(60)).await?;

    let stages = StageClients::new(&config)?;
    let activities = StageActivities {
        clients: stages.clone(),
        events: events.clone(),
        quota: quota.clone(),
        artifacts: artifacts.clone(),
        store: store.clone(),
        assembly: pipeline.assembly(None),
        heartbeat_every: Duration::from_millis((config.heartbeat_timeout_ms / 4).clamp(100, 1000)),
        router: Router::new(&config.stages),
        running: Default::default(),
    };
    let runtime = Runtime::from_current_tokio(Default::default()).context("the Temporal SDK runtime")?;
    let worker_options = WorkerOptions::new(config.temporal.task_queue.clone())
        .register_workflow::<VideoWorkflow>()
        .context("registering the job workflow")?
        .register_activities(activities)
        // A cancellation reaches a running stage call with its next heartbeat reply.
        .max_heartbeat_throttle_interval(Duration::from_millis(500))
        .default_heartbeat_throttle_interval(Duration::from_millis(500))
        // The SDK's detector of foreign wakers flags `futures`' FuturesUnordered (behind
        // the DAG's `buffered`), which wakes itself to yield. Its order of work follows
        // the order activities resolve in, which the history fixes, so the DAG is
        // deterministic on replay; it reads no clock, timer or channel of its own.
        .detect_nondeterministic_futures(false)
        .build();
    let mut worker = Worker::new(&runtime, client.clone(), worker_options).context("the Temporal worker")?;
    let stop_worker = worker.shutdown_handle();

    let service = Arc::new(GatewayService {
        client,
        router: Router::new(&config.stages),
        config: config.clone(),
        pipeline,
        events,
        quota,
        artifacts,
        stages,
        store,
    });
    let keys = ApiKeys::new(&config.api_keys);
    let rest = crate::rest::router(Arc::new(crate::rest::RestState {
        service: service.clone(),
        keys: keys.clone(),
        secure_cookie: config.http.secure_cookie,
    }));
    let grpc = GatewayGrpc { service, keys };
    let listener = bind(config.server.listen).await?;
    let server = GrpcServer::new(config.server.clone())
        .await
        .with_descriptor_set(storyreel_proto::FILE_DESCRIPTOR_SET);
    let health = server.health();
    health.register("storyreel.gateway.v1.GatewayService").await;
    let max = config.server.max_message_bytes;
    let routes = Routes::new(
        GatewayServiceServer::new(grpc)
            .max_decoding_message_size(max)
            .max_encoding_message_size(max),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = server.serve(listener, routes, async {
        let _ = stop_rx.await;
    });
    let (stop_http_tx, stop_http_rx) = tokio::sync::oneshot::channel::<()>();
    let http = if config.http.enabled {
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("binding [gateway.http] listen {}", config.http.listen))?;
        tracing::info!(listen = %config.http.listen, "REST API and web UI");
        Some(tokio::spawn(async move {
            axum::serve(listener, rest)
                .with_graceful_shutdown(async {
                    let _ = stop_http_rx.await;
                })
                .await
        }))
    } else {
        None
    };
    let http_run = async move {
        match http {
            Some(task) => task.await,
            None => futures::future::pending().await,
        }
    };
    tokio::pin!(http_run);
    health.set_ready(true).await;
    tracing::info!(listen = %config.server.listen, "gateway ready");

    tokio::pin!(serving);
    let worker_run = worker.run();
    tokio::pin!(worker_run);
    tokio::select! {
        result = &mut serving => result.context("the gateway's gRPC server")?,
        result = &mut worker_run => result.context("the Temporal worker")?,
        result = &mut http_run => result.context("the REST server task")?.context("the REST server")?,
        () = shutdown => {
            stop_worker();
            let _ = stop_tx.send(());
            let _ = stop_http_tx.send(());
            let _ = tokio::time::timeout(Duration::from_secs(10), worker_run).await;
            let _ = serving.await;
        }
    }
    Ok(())
}

/// `storyreel serve`: config `[gateway]` and `[pipeline]`, telemetry, then [`run`] until
/// SIGTERM/SIGINT.
pub async fn serve_process(sources: &Sources) -> anyhow::Result<()> {
    let config: GatewayConfig =
        storyreel_runtime::config::load("gateway", sources).context("config [gateway]")?;
    let pipeline: PipelineConfig =
        storyreel_runtime::config::load("pipeline", sources).context("config [pipeline]")?;
    let _telemetry =
        storyreel_runtime::telemetry::init("gateway", env!("CARGO_PKG_VERSION"), &config.telemetry)?;
    run(config, pipeline, storyreel_runtime::shutdown::signal()).await
}

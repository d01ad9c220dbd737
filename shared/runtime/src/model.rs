//! What every model-serving stage reports about its model: [`ModelInfo`] (name, version,
//! weights digest: common.proto `ModelInfo`), the [`ModelState`] readiness follows, and
//! the [`StageStats`] of a call.

use crate::{GrpcServer, Health, ServerConfig, server::ServerError};
use sha2::{Digest, Sha256};
use std::{future::Future, path::Path, time::Duration};
use storyreel_proto::common;
use tokio::{
    net::TcpListener,
    sync::{oneshot, watch},
};
use tonic::service::Routes;

/// Identity of a served model (`storyreel.common.v1.ModelInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelInfo {
    /// e.g. `smollm2-135m-instruct`.
    pub name: String,
    /// Version used for canary routing, model pins and metric labels.
    pub version: String,
    /// SHA-256 of the weights, 64 lowercase hex characters.
    pub weights_sha256: String,
    /// Parts of a composite model, in a fixed order; empty for a single model.
    pub components: Vec<ModelInfo>,
    /// The weights are random-initialised (an architecture test model, as `make models`
    /// writes where no trained weights exist in the package registries): the output is
    /// noise. Callers choose another path for what a person will see.
    pub random_init: bool,
}

impl ModelInfo {
    /// The exact identity stage-cache keys are made with: name, version and digest.
    pub fn cache_identity(&self) -> String {
        format!("{}:{}:{}", self.name, self.version, self.weights_sha256)
    }
}

impl From<ModelInfo> for common::ModelInfo {
    fn from(m: ModelInfo) -> Self {
        common::ModelInfo {
            name: m.name,
            version: m.version,
            weights_sha256: m.weights_sha256,
            components: m.components.into_iter().map(Into::into).collect(),
            random_init: m.random_init,
        }
    }
}

impl From<common::ModelInfo> for ModelInfo {
    fn from(m: common::ModelInfo) -> Self {
        ModelInfo {
            name: m.name,
            version: m.version,
            weights_sha256: m.weights_sha256,
            components: m.components.into_iter().map(Into::into).collect(),
            random_init: m.random_init,
        }
    }
}

/// What a stage's model is doing; readiness (`grpc.health.v1`) follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelState {
    /// Weights are being loaded: NOT_SERVING.
    Loading,
    /// Loaded and answering: SERVING.
    Ready(ModelInfo),
    /// Loading failed or the worker stopped: NOT_SERVING. The reason is logged.
    Failed(String),
}

/// Waits until the model is loaded: its info, or the reason loading failed.
pub async fn wait_ready(mut state: watch::Receiver<ModelState>) -> Result<ModelInfo, String> {
    loop {
        match &*state.borrow_and_update() {
            ModelState::Ready(info) => return Ok(info.clone()),
            ModelState::Failed(reason) => return Err(reason.clone()),
            ModelState::Loading => {}
        }
        state
            .changed()
            .await
            .map_err(|_| "the model worker is gone".to_string())?;
    }
}

/// Mirrors the model state into health until `stop` fires (or is dropped). A dropped
/// state sender means the model is gone: NOT_SERVING.
pub async fn follow_model_state(
    health: Health,
    mut state: watch::Receiver<ModelState>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let current = state.borrow_and_update().clone();
        match &current {
            ModelState::Loading => tracing::info!("model loading; not serving"),
            ModelState::Ready(model) => tracing::info!(
                model = %model.name,
                version = %model.version,
                "model ready; serving"
            ),
            ModelState::Failed(reason) => tracing::error!(%reason, "model failed; not serving"),
        }
        health.set_ready(matches!(current, ModelState::Ready(_))).await;
        tokio::select! {
            _ = &mut stop => return,
            changed = state.changed() => if changed.is_err() {
                tracing::warn!("model state channel closed; not serving");
                health.set_ready(false).await;
                return;
            },
        }
    }
}

/// Serves `routes` on `listener` until `shutdown` resolves, then drains in-flight calls
/// (`shutdown_grace_ms`). Health (`""` and `service_name`) is SERVING exactly while `state`
/// is [`ModelState::Ready`]; reflection serves the storyreel descriptor set. The server of
/// every model-backed stage.
pub async fn serve_model_service(
    config: ServerConfig,
    service_name: &str,
    state: watch::Receiver<ModelState>,
    listener: TcpListener,
    routes: Routes,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let server = GrpcServer::new(config)
        .await
        .with_descriptor_set(storyreel_proto::FILE_DESCRIPTOR_SET);
    let health = server.health();
    health.register(service_name).await;

    let (stop_following, stopped) = oneshot::channel();
    let model_service = crate::model_service::ModelServiceImpl::server(state.clone());
    let routes = routes.add_service(model_service);
    let follower = tokio::spawn(follow_model_state(health, state, stopped));
    // Readiness stops following the model before the server reports NOT_SERVING and
    // drains, so a late model event cannot flip it back to SERVING.
    let shutdown = async move {
        shutdown.await;
        let _ = stop_following.send(());
        let _ = follower.await;
    };
    server.serve(listener, routes, shutdown).await
}

/// Where a call's time went (`storyreel.common.v1.StageStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageStats {
    pub cache_hit: bool,
    /// Waiting for the model worker.
    pub queue_time: Duration,
    /// Computing, excluding `queue_time`.
    pub compute_time: Duration,
}

impl From<StageStats> for common::StageStats {
    fn from(s: StageStats) -> Self {
        let duration = |d: Duration| prost_types::Duration::try_from(d).ok();
        common::StageStats {
            cache_hit: s.cache_hit,
            queue_time: duration(s.queue_time),
            compute_time: duration(s.compute_time),
        }
    }
}

/// SHA-256 of a file, streamed, as 64 lowercase hex characters.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

/// Checks the model location fields of a service config.
pub fn validate_model_fields(
    model_dir: &std::path::Path,
    device: &str,
    dtype: &str,
) -> Result<(), crate::ValidationError> {
    if model_dir.as_os_str().is_empty() {
        return Err(crate::ValidationError::new("model_dir", "must not be empty"));
    }
    validate_device(device)?;
    if !matches!(dtype, "f32" | "f16" | "bf16") {
        return Err(crate::ValidationError::new(
            "dtype",
            format!("must be `f32`, `f16` or `bf16`, got `{dtype}`"),
        ));
    }
    Ok(())
}

fn validate_device(device: &str) -> Result<(), crate::ValidationError> {
    let ok = match device {
        "cpu" | "cuda" | "mps" => true,
        _ => device
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<u8>().ok())
            .is_some_and(|i| i < 64),
    };
    if ok {
        Ok(())
    } else {
        Err(crate::ValidationError::new(
            "device",
            format!("must be `cpu`, `cuda`, `cuda:<index 0-63>` or `mps`, got `{device}`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weights_digest_is_sha256_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn composite_models_keep_their_components_on_the_wire() {
        let part = ModelInfo {
            name: "vae".into(),
            ..Default::default()
        };
        let whole = ModelInfo {
            name: "keyframe".into(),
            components: vec![part],
            ..Default::default()
        };
        let wire = common::ModelInfo::from(whole);
        assert_eq!(wire.components[0].name, "vae");
    }

    #[tokio::test]
    async fn waiting_ends_with_ready_or_failed() {
        let (tx, rx) = watch::channel(ModelState::Loading);
        let waiter = tokio::spawn(wait_ready(rx));
        tx.send_replace(ModelState::Failed("no weights".into()));
        assert_eq!(waiter.await.unwrap(), Err("no weights".into()));
    }
}

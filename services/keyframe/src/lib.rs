//! keyframe: a scene's prompt S^P -> key-frame latents with a video latent diffusion model
//! (UNet with temporal attention, classifier-free guidance; paper eq. 4-5), optionally
//! started from noised reference latents, over gRPC.
//!
//! - [`validation`]: wire request -> [`service::KeyframeRequest`], limits of the proto;
//! - [`model`]: the video pipeline on the stage's model worker (progress per step,
//!   cancellation at the next step);
//! - [`service`]: the plain trait [`Keyframe`] and [`WorkerKeyframe`] (worker, tensor
//!   store, stage cache);
//! - [`grpc`]: the thin tonic adapter; [`config`]: the `[keyframe]` table;
//!   [`error`]: [`KeyframeError`] and its codes;
//! - [`KeyframeStage`]: the stage on the shared skeleton (`storyreel_stage`).

pub mod config;
pub mod error;
pub mod grpc;
pub mod model;
pub mod service;
pub mod validation;

pub use config::KeyframeConfig;
pub use error::KeyframeError;
pub use service::{Keyframe, WorkerKeyframe};

use std::{path::Path, sync::Arc};
use storyreel_nn::{
    DType, DeviceSpec,
    clip_text::ClipTokenizer,
    diffusion::pipeline::{PipelinePaths, VideoPipeline},
};
use storyreel_proto::keyframe::keyframe_service_server::KeyframeServiceServer;
use storyreel_runtime::{
    ModelInfo, ModelState,
    model_identity::{IdentityOverrides, composite, configured_or_stamped, identify_model_dir},
    with_message_limits,
};
use storyreel_stage::{Adapter, ModelWorker, Stage, WorkerSettings, metrics::DIFFUSION_BUCKETS};
use storyreel_tensors::StageCache;
use tokio::sync::watch;
use tonic::service::Routes;

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.keyframe.v1.KeyframeService";
/// The stage name: process, metric label, thread name, tensor keys.
pub const STAGE: &str = "keyframe";

/// The pipeline's identity: the text encoder, the UNet and the motion adapter as
/// components (each file hashed once), a digest over theirs, and the version configured
/// or the directory's stamp (else the components' versions).
pub fn pipeline_identity(dir: &Path, version: &str) -> Result<ModelInfo, String> {
    let dir_name = dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let mut parts = Vec::new();
    for part in ["text_encoder", "unet", "motion_adapter"] {
        let name = format!("{dir_name}/{part}");
        let overrides = IdentityOverrides {
            name: Some(&name),
            version: None,
        };
        parts.push(identify_model_dir(&dir.join(part), overrides).map_err(|e| e.to_string())?);
    }
    let version = configured_or_stamped(dir, Some(version));
    Ok(composite(&dir_name, version.as_deref(), parts))
}

/// The service of `config`: the pipeline loading on its worker (health is SERVING once it
/// has loaded), the CLIP tokenizer for validation, the tensor store and the stage cache.
pub async fn start_service(config: &KeyframeConfig) -> Result<Arc<WorkerKeyframe>, KeyframeError> {
    let store = storyreel_tensors::open_store(&config.tensors).await?;
    start_service_on(config, store).await
}

/// [`start_service`] on a store the caller shares (the embedded pipeline's).
pub async fn start_service_on(
    config: &KeyframeConfig,
    store: Arc<dyn storyreel_tensors::TensorStore>,
) -> Result<Arc<WorkerKeyframe>, KeyframeError> {
    let tokenizer_path = config.model_dir.join("tokenizer/tokenizer.json");
    let tokenizer = ClipTokenizer::from_file(&tokenizer_path).map_err(|e| {
        KeyframeError::Model(format!(
            "loading {} (run `make models`): {e}",
            tokenizer_path.display()
        ))
    })?;
    let device: DeviceSpec = config
        .device
        .parse()
        .map_err(|e: String| KeyframeError::Model(e))?;
    let dtype = match config.dtype.as_str() {
        "f16" => DType::F16,
        "bf16" => DType::Bf16,
        _ => DType::F32,
    };
    let (dir, version) = (config.model_dir.clone(), config.model_version.clone());
    let worker = ModelWorker::spawn(WorkerSettings::new(STAGE, config.worker.clone()), move || {
        let info = pipeline_identity(&dir, &version)?;
        let pipeline = VideoPipeline::load(&PipelinePaths::in_dir(&dir), device, dtype)
            .map_err(|e| format!("loading the pipeline from {}: {e}", dir.display()))?;
        Ok((model::KeyframeModel { pipeline }, info))
    })?;
    let cache = StageCache::new(store, STAGE, config.cache_outputs);
    Ok(Arc::new(WorkerKeyframe::new(worker, tokenizer, cache)))
}

/// The keyframe stage: served by `storyreel_stage::serve::serve::<KeyframeStage>`, its
/// process is `storyreel_stage::serve::main::<KeyframeStage>()`.
pub struct KeyframeStage;

#[async_trait::async_trait]
impl Stage for KeyframeStage {
    const NAME: &'static str = STAGE;
    const CONFIG_TABLE: &'static str = "keyframe";
    const SERVICE_NAME: &'static str = SERVICE_NAME;
    const LATENCY_BUCKETS: &'static [f64] = DIFFUSION_BUCKETS;
    type Config = KeyframeConfig;
    type Service = dyn Keyframe;

    async fn start_with_store(
        config: &KeyframeConfig,
        store: Arc<dyn storyreel_tensors::TensorStore>,
    ) -> anyhow::Result<Arc<dyn Keyframe>> {
        Ok(start_service_on(config, store).await?)
    }

    fn model_state(service: &dyn Keyframe) -> watch::Receiver<ModelState> {
        service.model_state()
    }

    fn routes(service: Arc<dyn Keyframe>, config: &KeyframeConfig) -> Routes {
        let adapter = grpc::KeyframeGrpc(Adapter::new(service, config));
        Routes::new(with_message_limits!(
            KeyframeServiceServer::new(adapter),
            &config.server
        ))
    }
}

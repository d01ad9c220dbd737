//! interpolation: key frames -> 4x or 16x frames (paper §3, "Interpolation LDM"): the
//! masked-conditioning latent model on latents (4x per pass, two passes for 16x) or RIFE
//! on pixels (2x per pass), over gRPC.
//!
//! - [`validation`]: wire request -> [`service::InterpolateRequest`], limits of the proto;
//! - [`model`]: the models on the stage's model worker (progress per step or frame pair,
//!   cancellation at the next one);
//! - [`service`]: the plain trait [`Interpolation`] and [`WorkerInterpolation`] (worker,
//!   tensor store, stage cache);
//! - [`grpc`]: the thin tonic adapter; [`config`]: the `[interpolation]` table;
//! - [`InterpolationStage`]: the stage on the shared skeleton (`storyreel_stage`).

pub mod config;
pub mod error;
pub mod grpc;
pub mod model;
pub mod service;
pub mod validation;

pub use config::InterpolateConfig;
pub use error::InterpolationError;
pub use service::{Interpolation, WorkerInterpolation};

use std::{path::Path, sync::Arc};
use storyreel_nn::{
    DType, DeviceSpec,
    clip_text::ClipTokenizer,
    diffusion::{interpolation::InterpolationModel, pipeline::PromptEncoder},
    rife::Rife,
};
use storyreel_proto::interpolation::interpolation_service_server::InterpolationServiceServer;
use storyreel_runtime::{
    ModelState,
    model_identity::{IdentityOverrides, composite, identify_model_dir},
    with_message_limits,
};
use storyreel_stage::{Adapter, ModelWorker, Stage, WorkerSettings, metrics::DIFFUSION_BUCKETS};
use storyreel_tensors::StageCache;
use tokio::sync::watch;
use tonic::service::Routes;

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.interpolation.v1.InterpolationService";
/// The stage name: process, metric label, thread name, tensor keys.
pub const STAGE: &str = "interpolation";

/// The service of `config`: the models loading on the worker (health is SERVING once
/// they have loaded), the CLIP tokenizer for validation, the tensor store, the cache.
pub async fn start_service(
    config: &InterpolateConfig,
) -> Result<Arc<WorkerInterpolation>, InterpolationError> {
    let store = storyreel_tensors::open_store(&config.tensors).await?;
    start_service_on(config, store).await
}

/// [`start_service`] on a store the caller shares (the embedded pipeline's).
pub async fn start_service_on(
    config: &InterpolateConfig,
    store: Arc<dyn storyreel_tensors::TensorStore>,
) -> Result<Arc<WorkerInterpolation>, InterpolationError> {
    let tokenizer_path = config.text_encoder_dir.join("tokenizer/tokenizer.json");
    let tokenizer = ClipTokenizer::from_file(&tokenizer_path).map_err(|e| {
        InterpolationError::Model(format!(
            "loading {} (run `make models`): {e}",
            tokenizer_path.display()
        ))
    })?;
    let device: DeviceSpec = config.device.parse().map_err(InterpolationError::Model)?;
    let dtype = match config.dtype.as_str() {
        "f16" => DType::F16,
        "bf16" => DType::Bf16,
        _ => DType::F32,
    };
    let (model_dir, text_dir, rife_dir) = (
        config.model_dir.clone(),
        config.text_encoder_dir.clone(),
        config.rife_dir.clone(),
    );
    let version = config.model_version.clone();
    let worker = ModelWorker::spawn(WorkerSettings::new(STAGE, config.worker.clone()), move || {
        let identity =
            |dir: &Path| identify_model_dir(dir, IdentityOverrides::default()).map_err(|e| e.to_string());
        let parts = vec![
            identity(&model_dir)?,
            identity(&text_dir.join("text_encoder"))?,
            identity(&rife_dir)?,
        ];
        let info = composite(STAGE, Some(&version), parts);
        let latent = InterpolationModel::load(&model_dir, device, dtype).map_err(|e| {
            format!(
                "loading the interpolation model from {}: {e}",
                model_dir.display()
            )
        })?;
        let prompts = PromptEncoder::load(
            &text_dir.join("text_encoder"),
            &text_dir.join("tokenizer"),
            device,
            dtype,
        )
        .map_err(|e| format!("loading the text encoder from {}: {e}", text_dir.display()))?;
        let tch_device = device.to_device().map_err(|e| e.to_string())?;
        let rife = Rife::load(&rife_dir, tch_device)
            .map_err(|e| format!("loading RIFE from {}: {e}", rife_dir.display()))?;
        Ok((
            model::InterpolationModels {
                latent,
                prompts,
                rife,
            },
            info,
        ))
    })?;
    let cache = StageCache::new(store, STAGE, config.cache_outputs);
    Ok(Arc::new(WorkerInterpolation::new(worker, tokenizer, cache)))
}

/// The interpolation stage: served by `storyreel_stage::serve::serve::<InterpolationStage>`,
/// its process is `storyreel_stage::serve::main::<InterpolationStage>()`.
pub struct InterpolationStage;

#[async_trait::async_trait]
impl Stage for InterpolationStage {
    const NAME: &'static str = STAGE;
    const CONFIG_TABLE: &'static str = "interpolation";
    const SERVICE_NAME: &'static str = SERVICE_NAME;
    const LATENCY_BUCKETS: &'static [f64] = DIFFUSION_BUCKETS;
    type Config = InterpolateConfig;
    type Service = dyn Interpolation;

    async fn start_with_store(
        config: &InterpolateConfig,
        store: Arc<dyn storyreel_tensors::TensorStore>,
    ) -> anyhow::Result<Arc<dyn Interpolation>> {
        Ok(start_service_on(config, store).await?)
    }

    fn model_state(service: &dyn Interpolation) -> watch::Receiver<ModelState> {
        service.model_state()
    }

    fn routes(service: Arc<dyn Interpolation>, config: &InterpolateConfig) -> Routes {
        let adapter = grpc::InterpolationGrpc(Adapter::new(service, config));
        Routes::new(with_message_limits!(
            InterpolationServiceServer::new(adapter),
            &config.server
        ))
    }
}

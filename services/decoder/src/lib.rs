//! decoder: latents <-> pixels with the VAE (reference frames -> reference latents for the
//! keyframe stage; key-frame or interpolated latents -> frames) and pixels -> upsampled
//! pixels with Real-ESRGAN or the diffusion x4 upscaler (the cascaded DM), over gRPC.
//!
//! - [`validation`]: wire requests -> typed requests, limits of the proto;
//! - [`model`]: the VAE, Real-ESRGAN and the upscaler on the stage's model worker
//!   (progress per slice, frame or denoising step, a stop at the next one when the caller
//!   is gone);
//! - [`service`]: the plain trait [`Decoder`] and [`WorkerDecoder`] (worker, tensor
//!   store, stage cache);
//! - [`grpc`]: the thin tonic adapter; [`config`]: the `[decoder]` table;
//! - [`DecoderStage`]: the stage on the shared skeleton (`storyreel_stage`).

pub mod config;
pub mod error;
pub mod grpc;
pub mod model;
pub mod service;
pub mod validation;

pub use config::DecoderConfig;
pub use error::DecoderError;
pub use service::{Decoder, WorkerDecoder};

use std::sync::Arc;
use storyreel_nn::{
    DType, DeviceSpec,
    clip_text::ClipTokenizer,
    diffusion::{
        upscale::{UpscalePaths, UpscalePipeline},
        vae::{AutoencoderKL, AutoencoderKLConfig},
    },
    realesrgan::{RealEsrgan, RealEsrganModel},
};
use storyreel_proto::decoder::decoder_service_server::DecoderServiceServer;
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
pub const SERVICE_NAME: &str = "storyreel.decoder.v1.DecoderService";
/// The stage name: process, metric label, thread name.
pub const STAGE: &str = "decoder";

/// The service of `config`: the VAE, both Real-ESRGAN models and the diffusion upscaler
/// loading on the worker (health is SERVING once they have loaded), the upscaler's CLIP
/// tokenizer for validation, the tensor store and the stage cache.
pub async fn start_service(config: &DecoderConfig) -> Result<Arc<WorkerDecoder>, DecoderError> {
    let store = storyreel_tensors::open_store(&config.tensors).await?;
    start_service_on(config, store).await
}

/// [`start_service`] on a store the caller shares (the embedded pipeline's).
pub async fn start_service_on(
    config: &DecoderConfig,
    store: Arc<dyn storyreel_tensors::TensorStore>,
) -> Result<Arc<WorkerDecoder>, DecoderError> {
    let tokenizer_path = config.upscaler_dir.join("tokenizer/tokenizer.json");
    let tokenizer = ClipTokenizer::from_file(&tokenizer_path).map_err(|e| {
        DecoderError::Model(format!(
            "loading {} (run `make models`): {e}",
            tokenizer_path.display()
        ))
    })?;
    let device: DeviceSpec = config.device.parse().map_err(DecoderError::Model)?;
    let dtype = match config.dtype.as_str() {
        "f16" => DType::F16,
        "bf16" => DType::Bf16,
        _ => DType::F32,
    };
    let (vae_dir, esrgan_dir, upscaler_dir) = (
        config.vae_dir.clone(),
        config.realesrgan_dir.clone(),
        config.upscaler_dir.clone(),
    );
    let version = config.model_version.clone();
    let worker = ModelWorker::spawn(WorkerSettings::new(STAGE, config.worker.clone()), move || {
        let err = |e: &dyn std::fmt::Display| e.to_string();
        let identity = |dir: &std::path::Path| {
            identify_model_dir(dir, IdentityOverrides::default()).map_err(|e| err(&e))
        };
        let info = composite(
            STAGE,
            Some(&version),
            vec![
                identity(&vae_dir)?,
                identity(&esrgan_dir)?,
                identity(&upscaler_dir)?,
            ],
        );
        let vae_config = AutoencoderKLConfig::from_file(vae_dir.join("config.json")).map_err(|e| err(&e))?;
        let vae = AutoencoderKL::load(
            &vae_config,
            &[vae_dir.join("diffusion_pytorch_model.safetensors")],
            device,
            dtype,
        )
        .map_err(|e| format!("loading the VAE from {}: {e}", vae_dir.display()))?;
        let tch_device = device.to_device().map_err(|e| err(&e))?;
        let load = |model| {
            RealEsrgan::load(&esrgan_dir, model, tch_device)
                .map_err(|e| format!("loading Real-ESRGAN from {}: {e}", esrgan_dir.display()))
        };
        let models = model::DecoderModels {
            vae,
            x2: load(RealEsrganModel::AnimeVideoV3X2)?,
            x4: load(RealEsrganModel::X4Plus)?,
            upscaler: UpscalePipeline::load(&UpscalePaths::in_dir(&upscaler_dir), device, dtype)
                .map_err(|e| format!("loading the upscaler from {}: {e}", upscaler_dir.display()))?,
        };
        Ok((models, info))
    })?;
    let cache = StageCache::new(store, STAGE, config.cache_outputs);
    Ok(Arc::new(WorkerDecoder::new(worker, tokenizer, cache)))
}

/// The decoder stage: served by `storyreel_stage::serve::serve::<DecoderStage>`, its
/// process is `storyreel_stage::serve::main::<DecoderStage>()`.
pub struct DecoderStage;

#[async_trait::async_trait]
impl Stage for DecoderStage {
    const NAME: &'static str = STAGE;
    const CONFIG_TABLE: &'static str = "decoder";
    const SERVICE_NAME: &'static str = SERVICE_NAME;
    const LATENCY_BUCKETS: &'static [f64] = DIFFUSION_BUCKETS;
    type Config = DecoderConfig;
    type Service = dyn Decoder;

    async fn start_with_store(
        config: &DecoderConfig,
        store: Arc<dyn storyreel_tensors::TensorStore>,
    ) -> anyhow::Result<Arc<dyn Decoder>> {
        Ok(start_service_on(config, store).await?)
    }

    fn model_state(service: &dyn Decoder) -> watch::Receiver<ModelState> {
        service.model_state()
    }

    fn routes(service: Arc<dyn Decoder>, config: &DecoderConfig) -> Routes {
        let adapter = grpc::DecoderGrpc(Adapter::new(service, config));
        Routes::new(with_message_limits!(
            DecoderServiceServer::new(adapter),
            &config.server
        ))
    }
}

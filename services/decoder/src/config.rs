//! The `[decoder]` configuration table (DESIGN.md §4): built-in defaults here, overridden
//! by `config/default.toml`, `config/{profile}.toml` and `STORYREEL_DECODER__<KEY>`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use storyreel_runtime::{
    ServerConfig, Validate, ValidationError,
    config::check_range,
    paths::{deserialize_expanded_path, expanded_default},
    telemetry::TelemetryConfig,
};
use storyreel_stage::{
    WorkerConfig,
    serve::{StageConfig, validate_tensor_stage},
};
use storyreel_tensors::StoreConfig;

/// The VAE unless configured: the tiny pipeline's, which `make models` writes.
pub const DEFAULT_VAE_DIR: &str = "${STORYREEL_CACHE}/models/keyframe-tiny/vae";
/// Real-ESRGAN unless configured: both published models, converted by `make models`.
pub const DEFAULT_REALESRGAN_DIR: &str = "${STORYREEL_CACHE}/models/realesrgan";
/// The diffusion x4 upscaler unless configured: the tiny random one `make models` writes.
pub const DEFAULT_UPSCALER_DIR: &str = "${STORYREEL_CACHE}/models/upscaler-tiny";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecoderConfig {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// Where inputs come from and outputs go (Redis in the mesh).
    pub tensors: StoreConfig,
    /// An `AutoencoderKL` directory (`config.json`, `diffusion_pytorch_model.safetensors`).
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub vae_dir: PathBuf,
    /// `realesr-animevideov3.safetensors` (x2) and `RealESRGAN_x4plus.safetensors` (x4).
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub realesrgan_dir: PathBuf,
    /// A `StableDiffusionUpscalePipeline` directory in the diffusers layout (`unet/`,
    /// `vae/`, `text_encoder/`, `tokenizer/`, `scheduler/`, `low_res_scheduler/`,
    /// `model_index.json`): `UPSAMPLE_MODE_DIFFUSION_X4`.
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub upscaler_dir: PathBuf,
    /// `cpu`, `cuda` or `cuda:<index>`.
    pub device: String,
    /// The weights dtype of the VAE and the upscaler: `f32`, `f16` or `bf16`.
    pub dtype: String,
    /// The served version; empty: the model directories' stamps.
    pub model_version: String,
    /// The model worker: one call at a time, its queue, threads, allocator tuning (on: the
    /// VAE's full-resolution activations are reused) and failures before NOT_SERVING.
    pub worker: WorkerConfig,
    /// The memory budget of one call: the pixels of its largest image tensor (frames x
    /// height x width, input or output); past it the call is RESOURCE_EXHAUSTED.
    pub max_frame_pixels: u64,
    /// Keep outputs in content-addressed stage-cache entries.
    pub cache_outputs: bool,
    /// Defaults of the fields a request leaves unset.
    pub default_slice_frames: u32,
    pub default_tile_size: u32,
    pub default_tile_overlap: u32,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                listen: "127.0.0.1:50057".parse().expect("a valid address"),
                ..ServerConfig::default()
            },
            telemetry: TelemetryConfig::default(),
            tensors: StoreConfig::default(),
            vae_dir: expanded_default(DEFAULT_VAE_DIR),
            realesrgan_dir: expanded_default(DEFAULT_REALESRGAN_DIR),
            upscaler_dir: expanded_default(DEFAULT_UPSCALER_DIR),
            device: "cpu".into(),
            dtype: "f32".into(),
            model_version: String::new(),
            worker: WorkerConfig::one_call_at_a_time(),
            // 64 frames of 1024 x 1024 (or 16 upsampled to 2048 x 2048)
            max_frame_pixels: 64 * 1024 * 1024,
            cache_outputs: true,
            default_slice_frames: 8,
            default_tile_size: 256,
            default_tile_overlap: 16,
        }
    }
}

storyreel_stage::stage_config!(DecoderConfig);

impl Validate for DecoderConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.validate_stage_tables()?;
        validate_tensor_stage(&self.tensors, &self.worker, self.max_frame_pixels)?;
        storyreel_runtime::model::validate_model_fields(&self.vae_dir, &self.device, &self.dtype)?;
        if self.realesrgan_dir.as_os_str().is_empty() {
            return Err(ValidationError::new("realesrgan_dir", "must not be empty"));
        }
        if self.upscaler_dir.as_os_str().is_empty() {
            return Err(ValidationError::new("upscaler_dir", "must not be empty"));
        }
        check_range("default_slice_frames", self.default_slice_frames, 1, 64)?;
        check_range("default_tile_size", self.default_tile_size, 32, 1024)?;
        check_range("default_tile_overlap", self.default_tile_overlap, 0, 64)?;
        if self.default_tile_overlap * 2 >= self.default_tile_size {
            return Err(ValidationError::new(
                "default_tile_overlap",
                format!(
                    "must be under half of `default_tile_size` ({}), got {}",
                    self.default_tile_size, self.default_tile_overlap
                ),
            ));
        }
        Ok(())
    }
}

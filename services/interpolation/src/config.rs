//! The `[interpolation]` configuration table (DESIGN.md §4): built-in defaults here,
//! overridden by `config/default.toml`, `config/{profile}.toml` and
//! `STORYREEL_INTERPOLATION__<KEY>`.

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

/// The interpolation LDM unless configured: the tiny random one `make models` writes.
pub const DEFAULT_MODEL_DIR: &str = "${STORYREEL_CACHE}/models/interpolation-tiny";
/// The text encoder of the keyframe pipeline (`text_encoder/`, `tokenizer/`).
pub const DEFAULT_TEXT_ENCODER_DIR: &str = "${STORYREEL_CACHE}/models/keyframe-tiny";
/// RIFE 4.0 (`flownet.safetensors`), converted by `make models`.
pub const DEFAULT_RIFE_DIR: &str = "${STORYREEL_CACHE}/models/rife-4.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InterpolateConfig {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// Where key frames come from and frames go (Redis in the mesh).
    pub tensors: StoreConfig,
    /// The masked-conditioning interpolation model (`unet/`, `motion_adapter/`,
    /// `scheduler/`, `interpolation_config.json`).
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub model_dir: PathBuf,
    /// A pipeline directory whose `text_encoder/` and `tokenizer/` condition it: the
    /// keyframe model's, so prompts mean the same to both stages.
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub text_encoder_dir: PathBuf,
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub rife_dir: PathBuf,
    /// `cpu`, `cuda` or `cuda:<index>`.
    pub device: String,
    /// `f32`, `f16` or `bf16` (the latent model; RIFE runs in f32).
    pub dtype: String,
    /// The served version; empty: the model directories' stamps.
    pub model_version: String,
    pub worker: WorkerConfig,
    /// The memory budget of one call: output frames x height x width in pixels (latents
    /// count 64 pixels each); past it the call is RESOURCE_EXHAUSTED.
    pub max_frame_pixels: u64,
    /// Keep outputs in content-addressed stage-cache entries.
    pub cache_outputs: bool,
    /// Defaults of the fields a request leaves unset.
    pub default_steps: u32,
    pub default_factor: u32,
}

impl Default for InterpolateConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                listen: "127.0.0.1:50056".parse().expect("a valid address"),
                ..ServerConfig::default()
            },
            telemetry: TelemetryConfig::default(),
            tensors: StoreConfig::default(),
            model_dir: expanded_default(DEFAULT_MODEL_DIR),
            text_encoder_dir: expanded_default(DEFAULT_TEXT_ENCODER_DIR),
            rife_dir: expanded_default(DEFAULT_RIFE_DIR),
            device: "cpu".into(),
            dtype: "f32".into(),
            model_version: String::new(),
            worker: WorkerConfig::one_call_at_a_time(),
            // 256 frames of 1024 x 1024
            max_frame_pixels: 256 * 1024 * 1024,
            cache_outputs: true,
            default_steps: 25,
            default_factor: 4,
        }
    }
}

storyreel_stage::stage_config!(InterpolateConfig);

impl Validate for InterpolateConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.validate_stage_tables()?;
        validate_tensor_stage(&self.tensors, &self.worker, self.max_frame_pixels)?;
        storyreel_runtime::model::validate_model_fields(&self.model_dir, &self.device, &self.dtype)?;
        for (field, dir) in [
            ("text_encoder_dir", &self.text_encoder_dir),
            ("rife_dir", &self.rife_dir),
        ] {
            if dir.as_os_str().is_empty() {
                return Err(ValidationError::new(field, "must not be empty"));
            }
        }
        check_range("default_steps", self.default_steps, 1, 150)?;
        if !matches!(self.default_factor, 4 | 16) {
            return Err(ValidationError::new(
                "default_factor",
                format!("must be 4 or 16, got {}", self.default_factor),
            ));
        }
        Ok(())
    }
}

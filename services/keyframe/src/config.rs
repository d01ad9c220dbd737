//! The `[keyframe]` configuration table (DESIGN.md §4): built-in defaults here, overridden
//! by `config/default.toml`, `config/{profile}.toml` and `STORYREEL_KEYFRAME__<KEY>`.

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

/// Where `model_dir` points unless configured: the tiny random pipeline `make models` writes.
pub const DEFAULT_MODEL_DIR: &str = "${STORYREEL_CACHE}/models/keyframe-tiny";

/// Limits of the requests (keyframe.proto).
pub mod limits {
    pub const STEPS_MAX: u32 = 150;
    pub const GUIDANCE_MAX: f32 = 30.0;
    pub const FRAMES_MAX: u32 = 32;
    pub const SIDE_MIN: u32 = 64;
    pub const SIDE_MAX: u32 = 1024;
    pub const SIDE_MULTIPLE: u32 = 64;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyframeConfig {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// Where the key-frame latents go (Redis in the mesh).
    pub tensors: StoreConfig,
    /// An `AnimateDiffPipeline` directory (diffusers layout: `text_encoder/`, `tokenizer/`,
    /// `unet/`, `motion_adapter/`, `scheduler/`).
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub model_dir: PathBuf,
    /// `cpu`, `cuda` or `cuda:<index>`.
    pub device: String,
    /// `f32`, `f16` or `bf16`.
    pub dtype: String,
    /// The served version; empty: the model directory's `make models` stamp.
    pub model_version: String,
    /// The model worker: one call at a time (`max_batch_size` 1), its queue, threads,
    /// allocator tuning (on: the UNet's activations are reused, as the benchmarks run) and
    /// failures before NOT_SERVING.
    pub worker: WorkerConfig,
    /// The memory budget of one call, as frames x width x height in pixels: past it the
    /// call is RESOURCE_EXHAUSTED before any work.
    pub max_frame_pixels: u64,
    /// Keep outputs in content-addressed stage-cache entries: the same request on the same
    /// model is answered without sampling again.
    pub cache_outputs: bool,
    /// Defaults of the fields a request leaves unset.
    pub default_steps: u32,
    pub default_guidance_scale: f32,
    pub default_frames: u32,
    pub default_width: u32,
    pub default_height: u32,
    pub default_reference_strength: f32,
}

impl Default for KeyframeConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                listen: "127.0.0.1:50054".parse().expect("a valid address"),
                ..ServerConfig::default()
            },
            telemetry: TelemetryConfig::default(),
            tensors: StoreConfig::default(),
            model_dir: expanded_default(DEFAULT_MODEL_DIR),
            device: "cpu".into(),
            dtype: "f32".into(),
            model_version: String::new(),
            worker: WorkerConfig::one_call_at_a_time(),
            // 16 frames of 768 x 768
            max_frame_pixels: 16 * 768 * 768,
            cache_outputs: true,
            default_steps: 25,
            default_guidance_scale: 7.5,
            default_frames: 16,
            default_width: 512,
            default_height: 512,
            default_reference_strength: 0.6,
        }
    }
}

storyreel_stage::stage_config!(KeyframeConfig);

impl Validate for KeyframeConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.validate_stage_tables()?;
        validate_tensor_stage(&self.tensors, &self.worker, self.max_frame_pixels)?;
        storyreel_runtime::model::validate_model_fields(&self.model_dir, &self.device, &self.dtype)?;
        check_range("default_steps", self.default_steps, 1, limits::STEPS_MAX)?;
        check_range(
            "default_guidance_scale",
            self.default_guidance_scale,
            0.0,
            limits::GUIDANCE_MAX,
        )?;
        check_range("default_frames", self.default_frames, 1, limits::FRAMES_MAX)?;
        for (field, side) in [
            ("default_width", self.default_width),
            ("default_height", self.default_height),
        ] {
            crate::validation::check_side(field, side)?;
        }
        if !(self.default_reference_strength > 0.0 && self.default_reference_strength <= 1.0) {
            return Err(ValidationError::new(
                "default_reference_strength",
                format!("must be in (0, 1], got {}", self.default_reference_strength),
            ));
        }
        Ok(())
    }
}

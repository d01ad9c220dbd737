//! Loading a [`VideoPipeline`] from diffusers directories: an `AnimateDiffPipeline`
//! directory (the tiny default model), or an SD 1.5 pipeline directory with an AnimateDiff
//! motion adapter directory beside it (as users hold them).

use std::path::{Path, PathBuf};

use super::{PromptEncoder, VideoPipeline};
use crate::{
    DType, DeviceSpec,
    clip_text::{ClipTextConfig, ClipTextModel, ClipTokenizer},
    diffusion::{
        DiffusionError, motion::MotionAdapterConfig, schedulers::SchedulerConfig, unet::UNet,
        unet::UNet2DConditionConfig,
    },
};

/// The component directories of a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelinePaths {
    /// `config.json` + `model.safetensors`.
    pub text_encoder: PathBuf,
    /// `tokenizer.json` (+ `tokenizer_config.json`: `model_max_length`, special tokens).
    pub tokenizer: PathBuf,
    /// `config.json` + `diffusion_pytorch_model.safetensors`.
    pub unet: PathBuf,
    pub motion_adapter: PathBuf,
    /// `scheduler_config.json`.
    pub scheduler: PathBuf,
}

impl PipelinePaths {
    /// The diffusers layout under `root` (`text_encoder/`, `tokenizer/`, `unet/`,
    /// `motion_adapter/`, `scheduler/`).
    pub fn in_dir(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        PipelinePaths {
            text_encoder: root.join("text_encoder"),
            tokenizer: root.join("tokenizer"),
            unet: root.join("unet"),
            motion_adapter: root.join("motion_adapter"),
            scheduler: root.join("scheduler"),
        }
    }

    /// The same with the motion adapter in its own directory (an SD 1.5 directory plus
    /// an AnimateDiff adapter).
    pub fn with_motion_adapter(mut self, dir: impl AsRef<Path>) -> Self {
        self.motion_adapter = dir.as_ref().to_path_buf();
        self
    }
}

/// `path` when it is a file, else a NotFound error naming it.
pub(crate) fn existing(path: PathBuf) -> Result<PathBuf, DiffusionError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(DiffusionError::Io {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            path,
        })
    }
}

/// `model_max_length` of `tokenizer_config.json` when present (the CLIP default, 77,
/// otherwise).
fn model_max_length(dir: &Path) -> Result<Option<usize>, DiffusionError> {
    let path = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(None);
    }
    let value: serde_json::Value = crate::diffusion::error::read_json(&path)?;
    Ok(value
        .get("model_max_length")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize))
}

impl VideoPipeline {
    /// Loads every component (strictly), weights in `dtype` on `device`.
    pub fn load(paths: &PipelinePaths, device: DeviceSpec, dtype: DType) -> Result<Self, DiffusionError> {
        let prompts = PromptEncoder::load(&paths.text_encoder, &paths.tokenizer, device, dtype)?;
        let weights = |dir: &Path| existing(dir.join("diffusion_pytorch_model.safetensors"));
        let unet_config = UNet2DConditionConfig::from_file(existing(paths.unet.join("config.json"))?)?;
        let adapter_config =
            MotionAdapterConfig::from_file(existing(paths.motion_adapter.join("config.json"))?)?;
        let unet = UNet::load_motion(
            &unet_config,
            &[weights(&paths.unet)?],
            &adapter_config,
            &[weights(&paths.motion_adapter)?],
            device,
            dtype,
        )?;
        let scheduler = SchedulerConfig::from_file(existing(paths.scheduler.join("scheduler_config.json"))?)?;
        Ok(VideoPipeline {
            prompts,
            unet,
            scheduler,
        })
    }
}

impl PromptEncoder {
    /// Loads a CLIP text encoder directory (`config.json`, `model.safetensors`) and a
    /// tokenizer directory (`tokenizer.json`, `tokenizer_config.json`), as a pipeline
    /// holds them.
    pub fn load(
        text_encoder: &Path,
        tokenizer: &Path,
        device: DeviceSpec,
        dtype: DType,
    ) -> Result<Self, DiffusionError> {
        let mut clip_tokenizer = ClipTokenizer::from_file(existing(tokenizer.join("tokenizer.json"))?)?;
        if let Some(n) = model_max_length(tokenizer)? {
            clip_tokenizer = clip_tokenizer.with_max_length(n)?;
        }
        let config = ClipTextConfig::from_file(existing(text_encoder.join("config.json"))?)?;
        let text_encoder = ClipTextModel::load(
            &config,
            &[existing(text_encoder.join("model.safetensors"))?],
            device,
            dtype,
        )?;
        Ok(PromptEncoder {
            tokenizer: clip_tokenizer,
            text_encoder,
            clip_skip: 0,
        })
    }
}

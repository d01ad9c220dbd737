//! Loading an [`UpscalePipeline`] from a `StableDiffusionUpscalePipeline` directory in the
//! diffusers layout, strictly (missing and unexpected tensors are errors), and the DDPM
//! `low_res_scheduler` that noises the low-resolution image.

use crate::diffusion::pipeline::load::existing;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};
use tch::Tensor;

use super::UpscalePipeline;
use crate::{
    DType, DeviceSpec,
    diffusion::{
        DiffusionError,
        error::read_json,
        pipeline::PromptEncoder,
        schedulers::{SchedulerConfig, schedule::alphas_cumprod},
        unet::{ClassEmbedding, UNet, UNet2DConditionConfig},
        vae::{AutoencoderKL, AutoencoderKLConfig},
    },
};

/// The pipeline class `model_index.json` must name.
pub const PIPELINE_CLASS: &str = "StableDiffusionUpscalePipeline";
/// diffusers' default `max_noise_level` (the published x4 upscaler's).
pub const DEFAULT_MAX_NOISE_LEVEL: i64 = 350;

/// The component directories of an upscaler pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpscalePaths {
    /// `_class_name` and `max_noise_level`.
    pub model_index: PathBuf,
    /// `config.json` + `model.safetensors`.
    pub text_encoder: PathBuf,
    /// `tokenizer.json` (+ `tokenizer_config.json`).
    pub tokenizer: PathBuf,
    /// `config.json` + `diffusion_pytorch_model.safetensors`.
    pub unet: PathBuf,
    /// `config.json` + `diffusion_pytorch_model.safetensors`.
    pub vae: PathBuf,
    /// `scheduler_config.json` of the denoising scheduler.
    pub scheduler: PathBuf,
    /// `scheduler_config.json` of the DDPM scheduler that noises the low-res image.
    pub low_res_scheduler: PathBuf,
}

impl UpscalePaths {
    /// The diffusers layout under `root`.
    pub fn in_dir(root: impl AsRef<Path>) -> Self {
        let root = root.as_ref();
        UpscalePaths {
            model_index: root.join("model_index.json"),
            text_encoder: root.join("text_encoder"),
            tokenizer: root.join("tokenizer"),
            unet: root.join("unet"),
            vae: root.join("vae"),
            scheduler: root.join("scheduler"),
            low_res_scheduler: root.join("low_res_scheduler"),
        }
    }
}

// diffusers' scheduler defaults, shared with the sampling schedulers' configs
use crate::diffusion::schedulers::config::{d_beta_end, d_beta_start, d_train};

fn d_linear() -> String {
    "linear".into()
}

/// The fields of a `DDPMScheduler` config that its `add_noise` depends on (the others,
/// `variance_type`, `clip_sample`, ..., only concern its sampling step, which the upscaler
/// does not take).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LowResSchedulerConfig {
    #[serde(rename = "_class_name")]
    pub class_name: String,
    #[serde(default = "d_train")]
    pub num_train_timesteps: i64,
    #[serde(default = "d_beta_start")]
    pub beta_start: f64,
    #[serde(default = "d_beta_end")]
    pub beta_end: f64,
    #[serde(default = "d_linear")]
    pub beta_schedule: String,
    #[serde(default)]
    pub trained_betas: Option<Value>,
    #[serde(default)]
    pub rescale_betas_zero_snr: bool,
}

/// diffusers' `DDPMScheduler.add_noise`, the only use the upscaler makes of it: the image
/// at noise level `t` is `sqrt(a_t) x + sqrt(1 - a_t) noise` with the cumulative alphas of
/// the config's beta schedule (f32, as diffusers computes them).
#[derive(Debug, Clone)]
pub struct LowResScheduler {
    config: LowResSchedulerConfig,
    alphas_cumprod: Vec<f32>,
}

impl LowResScheduler {
    pub fn new(config: LowResSchedulerConfig) -> Result<Self, DiffusionError> {
        if config.class_name != "DDPMScheduler" {
            return Err(DiffusionError::config(
                "_class_name",
                format!(
                    "of the low_res_scheduler must be DDPMScheduler, got {}",
                    config.class_name
                ),
            ));
        }
        if config.trained_betas.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(DiffusionError::config(
                "trained_betas",
                "is not supported: must be null",
            ));
        }
        if !matches!(
            config.beta_schedule.as_str(),
            "linear" | "scaled_linear" | "squaredcos_cap_v2"
        ) {
            return Err(DiffusionError::config(
                "beta_schedule",
                format!(
                    "must be linear, scaled_linear or squaredcos_cap_v2, got {}",
                    config.beta_schedule
                ),
            ));
        }
        // The schedule arithmetic is the shared one (DDIM's: no terminal-sigma fix).
        let schedule = SchedulerConfig::from_json(
            &json!({
                "_class_name": "DDIMScheduler",
                "num_train_timesteps": config.num_train_timesteps,
                "beta_start": config.beta_start,
                "beta_end": config.beta_end,
                "beta_schedule": config.beta_schedule,
                "rescale_betas_zero_snr": config.rescale_betas_zero_snr,
            })
            .to_string(),
        )?;
        Ok(LowResScheduler {
            alphas_cumprod: alphas_cumprod(&schedule),
            config,
        })
    }

    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DiffusionError> {
        Self::new(read_json(path.as_ref())?)
    }

    pub fn config(&self) -> &LowResSchedulerConfig {
        &self.config
    }

    /// The noise levels there are (the training timesteps).
    pub fn levels(&self) -> i64 {
        self.alphas_cumprod.len() as i64
    }

    /// `original` noised with `noise` to `level` (in `0..levels()`).
    pub fn add_noise(&self, original: &Tensor, noise: &Tensor, level: i64) -> Result<Tensor, DiffusionError> {
        if !(0..self.levels()).contains(&level) {
            return Err(DiffusionError::input(
                "noise_level",
                format!("must be in 0..{}, got {level}", self.levels()),
            ));
        }
        let a = self.alphas_cumprod[level as usize];
        Ok(original * (a.sqrt() as f64) + noise * ((1.0 - a).sqrt() as f64))
    }
}

/// The pipeline-level fields of `model_index.json`.
#[derive(Debug, Clone, Deserialize)]
struct ModelIndex {
    #[serde(rename = "_class_name")]
    class_name: String,
    #[serde(default)]
    max_noise_level: Option<i64>,
}

impl UpscalePipeline {
    /// Loads every component (strictly), weights in `dtype` on `device` (the VAE in f32
    /// when its config asks for `force_upcast`, as diffusers decodes).
    pub fn load(paths: &UpscalePaths, device: DeviceSpec, dtype: DType) -> Result<Self, DiffusionError> {
        let index: ModelIndex = read_json(&existing(paths.model_index.clone())?)?;
        if index.class_name != PIPELINE_CLASS {
            return Err(DiffusionError::config(
                "_class_name",
                format!(
                    "of {} must be {PIPELINE_CLASS}, got {}",
                    paths.model_index.display(),
                    index.class_name
                ),
            ));
        }
        let max_noise_level = index.max_noise_level.unwrap_or(DEFAULT_MAX_NOISE_LEVEL);
        let prompts = PromptEncoder::load(&paths.text_encoder, &paths.tokenizer, device, dtype)?;
        let weights = |dir: &Path| existing(dir.join("diffusion_pytorch_model.safetensors"));
        let unet_config = UNet2DConditionConfig::from_file(existing(paths.unet.join("config.json"))?)?;
        let unet = UNet::load_2d(&unet_config, &[weights(&paths.unet)?], device, dtype)?;
        let vae_config = AutoencoderKLConfig::from_file(existing(paths.vae.join("config.json"))?)?;
        let vae_dtype = if vae_config.force_upcast && dtype == DType::F16 {
            DType::F32
        } else {
            dtype
        };
        let vae = AutoencoderKL::load(&vae_config, &[weights(&paths.vae)?], device, vae_dtype)?;
        let scheduler = SchedulerConfig::from_file(existing(paths.scheduler.join("scheduler_config.json"))?)?;
        let low_res =
            LowResScheduler::from_file(existing(paths.low_res_scheduler.join("scheduler_config.json"))?)?;
        let pipeline = UpscalePipeline {
            prompts,
            unet,
            vae,
            scheduler,
            low_res,
            max_noise_level,
        };
        pipeline.check_components()?;
        Ok(pipeline)
    }

    /// The components fit together: latents + image channels are the UNet's input, the
    /// UNet has its noise-level table, every allowed noise level is a class of it.
    fn check_components(&self) -> Result<(), DiffusionError> {
        let unet = self.unet.config();
        let latent = self.vae.config().latent_channels;
        if latent + 3 != unet.in_channels {
            return Err(DiffusionError::config(
                "in_channels",
                format!(
                    "of the UNet must be the VAE's latent_channels + 3 (the image) = {}, got {}",
                    latent + 3,
                    unet.in_channels
                ),
            ));
        }
        if unet.out_channels != latent {
            return Err(DiffusionError::config(
                "out_channels",
                format!(
                    "of the UNet must be the VAE's latent_channels ({latent}), got {}",
                    unet.out_channels
                ),
            ));
        }
        let classes = match unet.class_embedding()? {
            ClassEmbedding::Table(n) => n,
            _ => {
                return Err(DiffusionError::config(
                    "num_class_embeds",
                    "must be set: the UNet takes the noise level as a class",
                ));
            }
        };
        let top = classes.min(self.low_res.levels()) - 1;
        if !(0..=top).contains(&self.max_noise_level) {
            return Err(DiffusionError::config(
                "max_noise_level",
                format!(
                    "must be in 0..={top} (the UNet's classes and the low_res_scheduler's levels), got {}",
                    self.max_noise_level
                ),
            ));
        }
        Ok(())
    }
}

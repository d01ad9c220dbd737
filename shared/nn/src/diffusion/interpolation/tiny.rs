//! The tiny random-initialised interpolation model `make models` writes as the default
//! (no trained interpolation LDM is in the package registries): the tiny keyframe model's
//! motion UNet (cross-attention 64, so the keyframe stage's prompt states condition it)
//! with 9 input channels for the masked conditioning, seeded, in the diffusers layout:
//!
//! ```text
//! interpolation_config.json                                   InterpolationConfig
//! unet/{config.json, diffusion_pytorch_model.safetensors}     UNet2DConditionModel (in 9)
//! motion_adapter/{config.json, diffusion_pytorch_model.safetensors}
//! scheduler/scheduler_config.json                             DDIMScheduler
//! ```

use std::path::{Path, PathBuf};

use super::{InterpolationConfig, model::CONFIG_FILE};
use crate::diffusion::{
    DiffusionError,
    motion::MotionAdapterConfig,
    tiny_model::{
        adapter_config, create_dir, parse, random_motion_unet, scheduler_config, unet_config, write_json,
        write_motion_unet_split,
    },
    unet::UNet2DConditionConfig,
};

/// Writes the tiny interpolation model into `out` (created), seeded by `seed`; returns the
/// files written.
pub fn write_tiny_interpolation_model(out: &Path, seed: u64) -> Result<Vec<PathBuf>, DiffusionError> {
    let config = InterpolationConfig::default();
    let mut unet_json = unet_config();
    unet_json["in_channels"] = (2 * config.latent_channels + 1).into();
    let adapter_json = adapter_config();
    let unet_cfg: UNet2DConditionConfig = parse(&unet_json);
    config.validate(&unet_cfg)?;
    let adapter_cfg: MotionAdapterConfig = parse(&adapter_json);
    let vs = random_motion_unet(&unet_cfg, &adapter_cfg, seed)?;
    let mut files = write_motion_unet_split(&vs, out, &unet_json, &adapter_json)?;
    let d = create_dir(out, "scheduler")?;
    write_json(&d.join("scheduler_config.json"), &scheduler_config())?;
    files.push(d.join("scheduler_config.json"));
    let value = serde_json::to_value(&config).expect("the config serialises");
    write_json(&out.join(CONFIG_FILE), &value)?;
    files.push(out.join(CONFIG_FILE));
    Ok(files)
}

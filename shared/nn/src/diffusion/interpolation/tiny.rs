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
        adapter_config, parse, random_motion_unet, scheduler_config, sorted, unet_config, write_json,
        write_tensors,
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
    let mut files = Vec::new();
    let dir = |name: &str| -> Result<PathBuf, DiffusionError> {
        let d = out.join(name);
        std::fs::create_dir_all(&d).map_err(|source| DiffusionError::Io {
            path: d.clone(),
            source,
        })?;
        Ok(d)
    };
    let motion = |n: &str| n.contains(".motion_modules.");
    for (name, json, keep) in [
        (
            "unet",
            &unet_json,
            &(|n: &str| !motion(n)) as &dyn Fn(&str) -> bool,
        ),
        ("motion_adapter", &adapter_json, &motion),
    ] {
        let d = dir(name)?;
        write_json(&d.join("config.json"), json)?;
        write_tensors(&d.join("diffusion_pytorch_model.safetensors"), sorted(&vs, keep))?;
        files.extend([
            d.join("config.json"),
            d.join("diffusion_pytorch_model.safetensors"),
        ]);
    }
    let d = dir("scheduler")?;
    write_json(&d.join("scheduler_config.json"), &scheduler_config())?;
    files.push(d.join("scheduler_config.json"));
    let value = serde_json::to_value(&config).expect("the config serialises");
    write_json(&out.join(CONFIG_FILE), &value)?;
    files.push(out.join(CONFIG_FILE));
    Ok(files)
}

//! The tiny random-initialised x4 upscaler that `make models` writes for the decoder's
//! `UPSAMPLE_MODE_DIFFUSION_X4` (no diffusion weights are in the package registries). It is
//! seeded and in the exact diffusers layout of a `StableDiffusionUpscalePipeline`
//! directory, with the published stabilityai/stable-diffusion-x4-upscaler's options at a
//! tiny size, so the code paths are the real model's:
//!
//! ```text
//! model_index.json                                          max_noise_level 350
//! unet/{config.json, diffusion_pytorch_model.safetensors}   UNet2DConditionModel: 7 input
//!                                                           channels, 1000 noise-level
//!                                                           classes, only_cross_attention
//! vae/{config.json, diffusion_pytorch_model.safetensors}    AutoencoderKL, 3 blocks (x4),
//!                                                           scaling_factor 0.08333
//! text_encoder/{config.json, model.safetensors}             CLIPTextModel (GELU, as SD 2)
//! tokenizer/{tokenizer.json, tokenizer_config.json}         CLIP BPE
//! scheduler/scheduler_config.json                           DDIMScheduler, v-prediction
//! low_res_scheduler/scheduler_config.json                   DDPMScheduler
//! ```
//!
//! Its outputs are noise-like. Weights as the tiny keyframe model's (N(0, 1/fan_in)
//! matrices, norm scales 1 + N(0, 0.1), biases N(0, 0.1)).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tch::{Device, nn};

use crate::diffusion::{
    AttentionNaming, DiffusionError,
    tiny_model::{
        Vocabulary, create_dir, parse, randomise, sorted, text_encoder_config, write_json, write_tensors,
        write_text_encoder,
    },
    unet::{UNet, UNet2DConditionConfig},
    vae::{AutoencoderKL, AutoencoderKLConfig},
};

const DIFFUSERS_VERSION: &str = "0.42.1";

fn unet_config() -> Value {
    json!({
        "_class_name": "UNet2DConditionModel", "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu", "attention_head_dim": 8, "block_out_channels": [32, 64, 64],
        "center_input_sample": false, "cross_attention_dim": 64,
        "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
        "downsample_padding": 1, "dual_cross_attention": false, "flip_sin_to_cos": true,
        "freq_shift": 0, "in_channels": 7, "layers_per_block": 1, "mid_block_scale_factor": 1,
        "norm_eps": 1e-05, "norm_num_groups": 8, "num_class_embeds": 1000,
        "only_cross_attention": [true, true, false], "out_channels": 4, "sample_size": 128,
        "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
        "use_linear_projection": true
    })
}

fn vae_config() -> Value {
    json!({
        "_class_name": "AutoencoderKL", "_diffusers_version": DIFFUSERS_VERSION,
        "act_fn": "silu", "block_out_channels": [16, 32, 32],
        "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
        "in_channels": 3, "latent_channels": 4, "layers_per_block": 1, "norm_num_groups": 8,
        "out_channels": 3, "sample_size": 256, "scaling_factor": 0.08333,
        "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]
    })
}

/// The published upscaler's DDIM settings.
fn scheduler_config() -> Value {
    json!({
        "_class_name": "DDIMScheduler", "_diffusers_version": DIFFUSERS_VERSION,
        "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "clip_sample": false, "num_train_timesteps": 1000, "prediction_type": "v_prediction",
        "set_alpha_to_one": false, "steps_offset": 1, "trained_betas": null
    })
}

/// The published upscaler's image-noising DDPM settings.
fn low_res_scheduler_config() -> Value {
    json!({
        "_class_name": "DDPMScheduler", "_diffusers_version": DIFFUSERS_VERSION,
        "beta_end": 0.02, "beta_schedule": "scaled_linear", "beta_start": 0.0001,
        "clip_sample": false, "num_train_timesteps": 1000, "trained_betas": null,
        "variance_type": "fixed_small"
    })
}

fn model_index() -> Value {
    json!({
        "_class_name": "StableDiffusionUpscalePipeline", "_diffusers_version": DIFFUSERS_VERSION,
        "feature_extractor": [null, null], "low_res_scheduler": ["diffusers", "DDPMScheduler"],
        "max_noise_level": 350, "safety_checker": [null, null],
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "watermarker": [null, null]
    })
}

/// Writes the tiny upscaler into `out` (created), seeded by `seed`, with the 675-token
/// fixture tokenizer; returns the files written.
pub fn write_tiny_upscaler(out: &Path, seed: u64) -> Result<Vec<PathBuf>, DiffusionError> {
    write(out, seed, Vocabulary::fixture())
}

/// [`write_tiny_upscaler`] with the CLIP tokenizer in `tokenizer_dir` (as `make models`
/// writes it): prompts are counted as for real weights.
pub fn write_tiny_upscaler_with_tokenizer(
    out: &Path,
    seed: u64,
    tokenizer_dir: &Path,
) -> Result<Vec<PathBuf>, DiffusionError> {
    write(out, seed, Vocabulary::from_dir(tokenizer_dir)?)
}

fn write_model(
    out: &Path,
    name: &str,
    config: &Value,
    vs: &nn::VarStore,
    files: &mut Vec<PathBuf>,
) -> Result<(), DiffusionError> {
    let d = create_dir(out, name)?;
    write_json(&d.join("config.json"), config)?;
    write_tensors(
        &d.join("diffusion_pytorch_model.safetensors"),
        sorted(vs, |_| true),
    )?;
    files.extend([
        d.join("config.json"),
        d.join("diffusion_pytorch_model.safetensors"),
    ]);
    Ok(())
}

fn write(out: &Path, seed: u64, vocabulary: Vocabulary) -> Result<Vec<PathBuf>, DiffusionError> {
    let mut files = Vec::new();

    let unet_json = unet_config();
    let vs = nn::VarStore::new(Device::Cpu);
    UNet::new_2d(
        &vs.root(),
        &parse::<UNet2DConditionConfig>(&unet_json),
        AttentionNaming::Current,
    )?;
    randomise(&vs, seed, |_, _| None);
    write_model(out, "unet", &unet_json, &vs, &mut files)?;

    let vae_json = vae_config();
    let vs = nn::VarStore::new(Device::Cpu);
    AutoencoderKL::new(
        &vs.root(),
        &parse::<AutoencoderKLConfig>(&vae_json),
        AttentionNaming::Current,
    )?;
    randomise(&vs, seed.wrapping_add(1), |_, _| None);
    write_model(out, "vae", &vae_json, &vs, &mut files)?;

    // SD 2's text encoders (OpenCLIP) use exact GELU
    let mut text_json = text_encoder_config(&vocabulary);
    text_json["hidden_act"] = json!("gelu");
    files.extend(write_text_encoder(
        out,
        seed.wrapping_add(2),
        &vocabulary,
        text_json,
    )?);

    for (name, config) in [
        ("scheduler", scheduler_config()),
        ("low_res_scheduler", low_res_scheduler_config()),
    ] {
        let d = create_dir(out, name)?;
        write_json(&d.join("scheduler_config.json"), &config)?;
        files.push(d.join("scheduler_config.json"));
    }
    write_json(&out.join("model_index.json"), &model_index())?;
    files.push(out.join("model_index.json"));
    Ok(files)
}

//! Parity of `AutoencoderKL` with diffusers on a tiny random VAE (8/16 channels, 16x16
//! images, 8x8 latents).
//!
//! Fixtures: `tests/fixtures/diffusion/vae/`, written by `scripts/fixtures/diffusion.py`
//! with torch 2.13.0, diffusers 0.42.1 and transformers 5.23.0: config.json, the weights in
//! the current attention naming and in the pre-0.14 one (`query`/`key`/`value`/`proj_attn`,
//! which the script checks diffusers loads to the same model), and diffusers' encode mean
//! and std and decode output.
//!
//! Tolerance: relative error `max|rust - torch| / max|torch| <= 1e-4` (f32, DESIGN.md §5).

mod diffusion_fixtures;

use diffusion_fixtures::{assert_close, dir, expected, weights};
use storyreel_nn::{
    DType, DeviceSpec,
    diffusion::vae::{AutoencoderKL, AutoencoderKLConfig},
};

fn config() -> AutoencoderKLConfig {
    AutoencoderKLConfig::from_file(dir("vae").join("config.json")).unwrap()
}

fn check(vae: &AutoencoderKL, what: &str) {
    let dist = vae.encode(&expected("vae", "image")).unwrap();
    assert_close(
        &format!("{what} encode mean"),
        &dist.mean,
        &expected("vae", "latent_mean"),
    );
    assert_close(
        &format!("{what} encode std"),
        &dist.std,
        &expected("vae", "latent_std"),
    );
    let latents = expected("vae", "latents");
    let want = expected("vae", "decoded");
    assert_close(
        &format!("{what} decode"),
        &vae.decode(&latents, 3).unwrap(),
        &want,
    );
    // One image per slice gives the same images.
    assert_close(
        &format!("{what} decode in slices of 1"),
        &vae.decode(&latents, 1).unwrap(),
        &want,
    );
}

#[test]
fn vae_encode_and_decode_match_diffusers() {
    let vae = AutoencoderKL::load(&config(), &[weights("vae")], DeviceSpec::Cpu, DType::F32).unwrap();
    check(&vae, "vae");
}

#[test]
fn vae_loads_the_legacy_attention_names() {
    let legacy = dir("vae").join("diffusion_pytorch_model_legacy.safetensors");
    let vae = AutoencoderKL::load(&config(), &[legacy], DeviceSpec::Cpu, DType::F32).unwrap();
    check(&vae, "vae (legacy names)");
}

#[test]
fn vae_video_decode_runs_frame_slices_and_scales() {
    let vae = AutoencoderKL::load(&config(), &[weights("vae")], DeviceSpec::Cpu, DType::F32).unwrap();
    // (3, 4, 8, 8) latents as one video of 3 frames, scaled as the UNet sees them.
    let latents = expected("vae", "latents");
    let video = vae.scale_latents(&latents).permute([1, 0, 2, 3]).unsqueeze(0);
    let frames = vae.decode_video(&video, 2).unwrap();
    assert_eq!(frames.size(), [1, 3, 3, 16, 16]);
    let want = expected("vae", "decoded").permute([1, 0, 2, 3]).unsqueeze(0);
    assert_close("vae decode_video", &frames, &want);
    let err = vae
        .encode(&expected("vae", "image").narrow(3, 0, 15))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`images`") && err.contains("multiples of 2"),
        "{err}"
    );
}

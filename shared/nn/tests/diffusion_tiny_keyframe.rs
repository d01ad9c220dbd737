//! The default keyframe model that `make models` writes (`storyreel-convert tiny-keyframe
//! --seed 0`, [`write_tiny_keyframe_model`]) is an AnimateDiffPipeline directory that
//! diffusers loads unchanged, and our pipeline on it equals diffusers' run on it.
//!
//! Fixture: `tests/fixtures/diffusion/tiny_keyframe/expected.safetensors`, written by
//! `scripts/fixtures/diffusion.py --only tiny_keyframe --tiny-keyframe DIR` (torch 2.13.0,
//! diffusers 0.42.1, transformers 5.23.0) from the directory this crate's generator wrote:
//! `AnimateDiffPipeline.from_pretrained(DIR)`, 2 steps, guidance 7.5, given noise, latents
//! and their decoded frames. Regenerating the model here and matching them also pins the
//! seeded weights: a change of generator would fail this test.
//!
//! Tolerance: relative error `max|rust - torch| / max|torch| <= 1e-4` (f32, DESIGN.md §5).

mod diffusion_fixtures;

use std::ops::ControlFlow;

use diffusion_fixtures::{assert_close, expected};
use storyreel_nn::{
    DType, DeviceSpec,
    diffusion::{
        pipeline::{PipelinePaths, VideoPipeline, VideoRequest},
        tiny_model::write_tiny_keyframe_model,
        vae::{AutoencoderKL, AutoencoderKLConfig},
    },
};

#[test]
fn tiny_keyframe_model_runs_as_in_diffusers() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_tiny_keyframe_model(tmp.path(), 0).unwrap();
    assert_eq!(files.len(), 12);
    let pipeline =
        VideoPipeline::load(&PipelinePaths::in_dir(tmp.path()), DeviceSpec::Cpu, DType::F32).unwrap();
    assert_eq!(pipeline.prompts.tokenizer.max_length(), 77);

    let noise = expected("tiny_keyframe", "noise");
    let prompts = ["a red fox running through the snow".to_string()];
    let negative = ["blurry, low quality".to_string()];
    let request = VideoRequest {
        prompts: &prompts,
        negative_prompts: &negative,
        seed: 0,
        steps: 2,
        guidance_scale: 7.5,
        frames: 2,
        latent_height: 8,
        latent_width: 8,
        init_latents: None,
        noise: Some(&noise),
    };
    let latents = pipeline
        .generate(&request, &mut |_, _| ControlFlow::Continue(()))
        .unwrap();
    assert_close(
        "tiny keyframe latents",
        &latents,
        &expected("tiny_keyframe", "latents"),
    );

    let vae_dir = tmp.path().join("vae");
    let config = AutoencoderKLConfig::from_file(vae_dir.join("config.json")).unwrap();
    let vae = AutoencoderKL::load(
        &config,
        &[vae_dir.join("diffusion_pytorch_model.safetensors")],
        DeviceSpec::Cpu,
        DType::F32,
    )
    .unwrap();
    assert_eq!(config.downscale(), 8);
    let frames = vae.decode_video(&latents, 1).unwrap();
    assert_close(
        "tiny keyframe frames",
        &frames,
        &expected("tiny_keyframe", "frames"),
    );
}

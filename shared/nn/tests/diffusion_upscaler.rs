//! The x4 upscaler pipeline (`storyreel_nn::diffusion::upscale`) against diffusers'
//! `StableDiffusionUpscalePipeline`:
//!
//! - a tiny random pipeline directory as diffusers' `save_pretrained` writes it loads
//!   strictly, and 2 frames of 16x16 upscale to 64x64 as in diffusers: the latents after
//!   every step and the decoded image in [0, 1] (before 8-bit conversion), with guidance
//!   (DDIM, v-prediction, 3 steps, a negative prompt) and without (Euler, 2 steps);
//! - the tiny default upscaler `storyreel-convert tiny-upscaler --seed 0` writes loads in
//!   diffusers unchanged and runs as there (regenerating it here pins the seeded weights);
//! - tiling, seeds, cancellation and the limits.
//!
//! Fixtures: `tests/fixtures/upscaler/`, written by `scripts/fixtures/upscaler.py`
//! (torch 2.13.0, diffusers 0.42.1, transformers 5.23.0), which records the noise the
//! reference drew from its generator.
//!
//! Tolerance: relative error `max|rust - torch| / max|torch| <= 1e-4` (f32, DESIGN.md §5).

use std::{ops::ControlFlow, path::PathBuf};

use storyreel_nn::{
    DType, DeviceSpec,
    diffusion::{
        DiffusionError,
        schedulers::SchedulerConfig,
        upscale::{
            TileOptions, UpscaleNoise, UpscalePaths, UpscalePipeline, UpscaleProgress, UpscaleRequest,
            tiny::write_tiny_upscaler,
        },
    },
};
use storyreel_test_support::relative_error;
use tch::{Kind, Tensor};

const TOLERANCE: f64 = 1e-4;
const PROMPT: &str = "a red fox running through the snow";
const NEGATIVE: &str = "blurry, low quality";

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/upscaler")
        .join(name)
}

fn expected(file: &str, key: &str) -> Tensor {
    Tensor::read_safetensors(dir(file))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == key)
        .unwrap_or_else(|| panic!("`{key}` missing from {file}"))
        .1
}

fn load(root: &std::path::Path) -> UpscalePipeline {
    UpscalePipeline::load(&UpscalePaths::in_dir(root), DeviceSpec::Cpu, DType::F32).unwrap()
}

fn check(what: &str, got: &Tensor, want: &Tensor) -> f64 {
    let err = relative_error(got, want);
    eprintln!("{what}: relative error {err:.3e}");
    assert!(
        err <= TOLERANCE,
        "{what}: relative error {err:.3e} > {TOLERANCE:e}"
    );
    err
}

/// Runs `name` of `file` and compares every step's latents and the image.
fn compare_run(pipeline: &UpscalePipeline, file: &str, name: &str, request: UpscaleRequest<'_>) -> f64 {
    let frames = expected(file, "frames");
    let (image_noise, latent_noise) = (
        expected(file, &format!("{name}_image_noise")),
        expected(file, &format!("{name}_latent_noise")),
    );
    let request = UpscaleRequest {
        noise: Some(UpscaleNoise {
            image: &image_noise,
            latents: &latent_noise,
        }),
        ..request
    };
    let f = frames.size()[0];
    // per step, the frames' latents in order (frame by frame here, batched in diffusers)
    let mut steps: Vec<Vec<Tensor>> = (0..request.steps).map(|_| Vec::new()).collect();
    let mut seen = Vec::new();
    let image = pipeline
        .upscale_unit(&frames, &request, &mut |p, latents| {
            steps[p.step - 1].push(latents.copy());
            seen.push(p);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen.len(), f as usize * request.steps);
    assert_eq!(seen.last().unwrap().completed(), seen.last().unwrap().total());
    let want = expected(file, &format!("{name}_latents"));
    let mut worst = 0f64;
    for (k, latents) in steps.iter().enumerate() {
        let got = Tensor::cat(latents, 0);
        worst = worst.max(check(
            &format!("{name} step {}", k + 1),
            &got,
            &want.get(k as i64),
        ));
    }
    worst.max(check(
        &format!("{name} image"),
        &image,
        &expected(file, &format!("{name}_image")),
    ))
}

#[test]
fn tiny_pipeline_equals_diffusers_with_and_without_guidance() {
    let pipeline = load(&dir("pipeline"));
    assert_eq!(pipeline.scale(), 4);
    assert_eq!(pipeline.max_noise_level, 350);
    let base = UpscaleRequest {
        prompt: PROMPT,
        negative_prompt: NEGATIVE,
        steps: 3,
        guidance_scale: 7.5,
        noise_level: 20,
        seed: 0,
        scheduler: None,
        tiles: None,
        noise: None,
    };
    let ddim = SchedulerConfig::from_file(dir("scheduler_ddim_cfg/scheduler_config.json")).unwrap();
    let e1 = compare_run(
        &pipeline,
        "expected.safetensors",
        "ddim_cfg",
        UpscaleRequest {
            scheduler: Some(&ddim),
            ..base
        },
    );
    let euler = SchedulerConfig::from_file(dir("scheduler_euler/scheduler_config.json")).unwrap();
    let e2 = compare_run(
        &pipeline,
        "expected.safetensors",
        "euler",
        UpscaleRequest {
            steps: 2,
            guidance_scale: 1.0,
            noise_level: 100,
            scheduler: Some(&euler),
            ..base
        },
    );
    eprintln!("upscaler pipeline: worst relative error {:.3e}", e1.max(e2));
}

#[test]
fn tiny_default_upscaler_runs_as_in_diffusers() {
    let tmp = tempfile::tempdir().unwrap();
    let files = write_tiny_upscaler(tmp.path(), 0).unwrap();
    assert_eq!(files.len(), 11);
    let pipeline = load(tmp.path());
    let request = UpscaleRequest {
        prompt: PROMPT,
        negative_prompt: NEGATIVE,
        steps: 2,
        guidance_scale: 9.0,
        noise_level: 20,
        seed: 0,
        scheduler: None,
        tiles: None,
        noise: None,
    };
    compare_run(&pipeline, "tiny_upscaler/expected.safetensors", "tiny", request);
}

fn seeded_request<'a>() -> UpscaleRequest<'a> {
    UpscaleRequest {
        prompt: PROMPT,
        negative_prompt: "",
        steps: 2,
        guidance_scale: 5.0,
        noise_level: 30,
        seed: 7,
        scheduler: None,
        tiles: None,
        noise: None,
    }
}

#[test]
fn tiles_seeds_and_u8_output() {
    let pipeline = load(&dir("pipeline"));
    let frames = expected("expected.safetensors", "frames");
    let run = |request: &UpscaleRequest<'_>| {
        pipeline
            .upscale(&frames, request, &mut |_, _| ControlFlow::Continue(()))
            .unwrap()
    };
    let whole = run(&seeded_request());
    assert_eq!(whole.size(), [2, 3, 64, 64]);
    assert_eq!(whole.kind(), Kind::Uint8);
    assert!(whole.equal(&run(&seeded_request())), "same seed, same bytes");
    let other = run(&UpscaleRequest {
        seed: 8,
        ..seeded_request()
    });
    assert!(!whole.equal(&other), "another seed, another image");
    // a tile as large as the frame is the whole frame
    let one_tile = run(&UpscaleRequest {
        tiles: Some(TileOptions { tile: 16, overlap: 4 }),
        ..seeded_request()
    });
    assert!(whole.equal(&one_tile));
    // 4 tiles of 8x8 with 2 pixels of blended context: the same size, progress over
    // every tile's steps, deterministic
    let tiled_request = UpscaleRequest {
        tiles: Some(TileOptions { tile: 8, overlap: 2 }),
        ..seeded_request()
    };
    let mut progress: Vec<UpscaleProgress> = Vec::new();
    let tiled = pipeline
        .upscale(&frames, &tiled_request, &mut |p, _| {
            progress.push(p);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(tiled.size(), [2, 3, 64, 64]);
    assert_eq!(progress.len(), 2 * 4 * 2);
    assert_eq!(
        progress.iter().map(|p| p.completed()).collect::<Vec<_>>(),
        (1..=16).collect::<Vec<_>>()
    );
    assert!(progress.iter().all(|p| p.total() == 16 && p.tiles == 4));
    assert!(tiled.equal(&run(&tiled_request)));
}

#[test]
fn cancellation_and_limits() {
    let pipeline = load(&dir("pipeline"));
    let frames = expected("expected.safetensors", "frames");
    let mut calls = 0;
    let err = pipeline
        .upscale(&frames, &seeded_request(), &mut |_, _| {
            calls += 1;
            ControlFlow::Break(())
        })
        .unwrap_err();
    assert_eq!(calls, 1);
    assert!(
        matches!(
            err,
            DiffusionError::Cancelled {
                completed: 1,
                total: 4
            }
        ),
        "{err}"
    );
    let fail = |request: UpscaleRequest<'_>, frames: &Tensor| {
        pipeline
            .upscale(frames, &request, &mut |_, _| ControlFlow::Continue(()))
            .unwrap_err()
            .to_string()
    };
    let err = fail(
        UpscaleRequest {
            noise_level: 351,
            ..seeded_request()
        },
        &frames,
    );
    assert!(err.contains("`noise_level`") && err.contains("0..=350"), "{err}");
    let err = fail(
        UpscaleRequest {
            steps: 0,
            ..seeded_request()
        },
        &frames,
    );
    assert!(err.contains("`steps`"), "{err}");
    let err = fail(seeded_request(), &frames.to_kind(Kind::Float));
    assert!(err.contains("`frames`") && err.contains("u8"), "{err}");
    let err = fail(
        UpscaleRequest {
            tiles: Some(TileOptions { tile: 8, overlap: 8 }),
            ..seeded_request()
        },
        &frames,
    );
    assert!(err.contains("`overlap`"), "{err}");
}

#[test]
fn loading_is_strict() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_upscaler(tmp.path(), 3).unwrap();
    // an extra tensor in the UNet's file is an error naming it
    let unet = tmp.path().join("unet/diffusion_pytorch_model.safetensors");
    let mut tensors = Tensor::read_safetensors(&unet).unwrap();
    tensors.push((
        "extra.weight".into(),
        Tensor::zeros([2], (Kind::Float, tch::Device::Cpu)),
    ));
    Tensor::write_safetensors(&tensors, &unet).unwrap();
    let err = UpscalePipeline::load(&UpscalePaths::in_dir(tmp.path()), DeviceSpec::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("extra.weight"), "{err}");
    // a missing low-res scheduler is an error naming the file
    let tmp = tempfile::tempdir().unwrap();
    write_tiny_upscaler(tmp.path(), 3).unwrap();
    std::fs::remove_dir_all(tmp.path().join("low_res_scheduler")).unwrap();
    let err = UpscalePipeline::load(&UpscalePaths::in_dir(tmp.path()), DeviceSpec::Cpu, DType::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("low_res_scheduler"), "{err}");
}

//! A complete 4-step sampling run equals diffusers' `AnimateDiffPipeline` (tiny models,
//! fixed initial noise supplied as input, two prompts with negative prompts, latents out):
//! with classifier-free guidance under DDIM (7.5) and DPM-Solver++ 2M Karras (5.0), and
//! without guidance under Euler (1.0); a reference-guided start from given latents at a
//! strength equals `AnimateDiffVideoToVideoPipeline` (DDIM at 0.5, DPM++ 2M Karras at 0.75).
//! Also: seeded runs repeat, and the callback reports and cancels.
//!
//! Fixtures: `tests/fixtures/diffusion/pipeline/` (unet/, motion_adapter/,
//! scheduler_NAME/, expected.safetensors) written by `scripts/fixtures/diffusion.py` with
//! torch 2.13.0, diffusers 0.42.1 and transformers 5.23.0; the text encoder and tokenizer
//! are `tests/fixtures/clip_text/` (scripts/fixtures/encoders.py, same versions).
//!
//! Tolerance: relative error `max|rust - torch| / max|torch| <= 1e-4` (f32, DESIGN.md §5).

mod diffusion_fixtures;

use std::{ops::ControlFlow, path::Path};

use diffusion_fixtures::{assert_close, dir, expected};
use storyreel_nn::{
    DType, DeviceSpec,
    clip_text::{ClipTextConfig, ClipTextModel, ClipTokenizer},
    diffusion::{
        DiffusionError,
        motion::MotionAdapterConfig,
        pipeline::{PromptEncoder, StepProgress, VideoPipeline, VideoRequest},
        schedulers::SchedulerConfig,
        unet::{UNet, UNet2DConditionConfig},
    },
};
use tch::Tensor;

const PROMPTS: [&str; 2] = [
    "a painting of a dragon flying over the castle",
    "a photo of a cat",
];
const NEGATIVE: [&str; 2] = ["blurry, low quality", ""];

fn pipeline(scheduler: &str) -> VideoPipeline {
    let clip = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip_text");
    let tokenizer = ClipTokenizer::from_file(clip.join("tokenizer.json"))
        .unwrap()
        .with_max_length(16)
        .unwrap();
    let clip_config = ClipTextConfig::from_file(clip.join("config.json")).unwrap();
    let text_encoder = ClipTextModel::load(
        &clip_config,
        &[clip.join("model.safetensors")],
        DeviceSpec::Cpu,
        DType::F32,
    )
    .unwrap();
    let root = dir("pipeline");
    let unet_config = UNet2DConditionConfig::from_file(root.join("unet/config.json")).unwrap();
    let adapter = MotionAdapterConfig::from_file(root.join("motion_adapter/config.json")).unwrap();
    let unet = UNet::load_motion(
        &unet_config,
        &[root.join("unet/diffusion_pytorch_model.safetensors")],
        &adapter,
        &[root.join("motion_adapter/diffusion_pytorch_model.safetensors")],
        DeviceSpec::Cpu,
        DType::F32,
    )
    .unwrap();
    let scheduler =
        SchedulerConfig::from_file(root.join(format!("scheduler_{scheduler}/scheduler_config.json")))
            .unwrap();
    VideoPipeline {
        prompts: PromptEncoder {
            tokenizer,
            text_encoder,
            clip_skip: 0,
        },
        unet,
        scheduler,
    }
}

fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|s| s.to_string()).collect()
}

fn request<'a>(
    prompts: &'a [String],
    negative: &'a [String],
    noise: Option<&'a Tensor>,
    guidance: f64,
) -> VideoRequest<'a> {
    VideoRequest {
        prompts,
        negative_prompts: negative,
        seed: 0,
        steps: 4,
        guidance_scale: guidance,
        frames: 3,
        latent_height: 8,
        latent_width: 8,
        init_latents: None,
        noise,
    }
}

fn keep_going(_: StepProgress, _: &Tensor) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

#[test]
fn prompt_embeds_equal_transformers() {
    let p = pipeline("ddim");
    let (prompts, negative) = (strings(&PROMPTS), strings(&NEGATIVE));
    let (cond, uncond) = p.prompts.encode_pair(&prompts, &negative).unwrap();
    let want = expected("pipeline", "prompt_embeds");
    assert_close("prompt embeds", &Tensor::cat(&[cond, uncond], 0), &want);
}

#[test]
fn four_step_animatediff_runs_equal_diffusers() {
    let noise = expected("pipeline", "noise");
    let (prompts, negative) = (strings(&PROMPTS), strings(&NEGATIVE));
    for (name, guidance) in [("ddim", 7.5), ("dpmpp_2m_karras", 5.0), ("euler_no_cfg", 1.0)] {
        let p = pipeline(name);
        let mut seen = Vec::new();
        let latents = p
            .generate(
                &request(&prompts, &negative, Some(&noise), guidance),
                &mut |s, _| {
                    seen.push((s.completed, s.total));
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
        assert_close(
            &format!("pipeline {name}"),
            &latents,
            &expected("pipeline", &format!("latents_{name}")),
        );
        assert_eq!(seen, [(1, 4), (2, 4), (3, 4), (4, 4)]);
    }
}

#[test]
fn reference_guided_runs_equal_diffusers_video_to_video() {
    let noise = expected("pipeline", "noise");
    let init = expected("pipeline", "init_latents");
    let (prompts, negative) = (strings(&PROMPTS), strings(&NEGATIVE));
    for (name, guidance, strength, kept) in [("ddim", 7.5, 0.5, 2), ("dpmpp_2m_karras", 5.0, 0.75, 3)] {
        let p = pipeline(name);
        let mut req = request(&prompts, &negative, Some(&noise), guidance);
        req.init_latents = Some((&init, strength));
        let mut runs = 0;
        let latents = p
            .generate(&req, &mut |_, _| {
                runs += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(runs, kept, "{name}: steps run at strength {strength}");
        let want = expected("pipeline", &format!("latents_{name}_strength"));
        assert_close(&format!("pipeline {name} strength {strength}"), &latents, &want);
    }
}

#[test]
fn seeded_runs_repeat_and_strength_and_cancellation_work() {
    let p = pipeline("ddim");
    let (prompts, negative) = (strings(&PROMPTS[..1]), strings(&NEGATIVE[..1]));
    let mut req = request(&prompts, &negative, None, 7.5);
    req.seed = 7;
    let a = p.generate(&req, &mut keep_going).unwrap();
    let b = p.generate(&req, &mut keep_going).unwrap();
    assert!(a.equal(&b), "same seed, different latents");
    assert_eq!(a.size(), [1, 4, 3, 8, 8]);
    req.seed = 8;
    assert!(!a.equal(&p.generate(&req, &mut keep_going).unwrap()));

    // Reference-guided: start from `a` at strength 0.5 -> the last 2 of 4 steps run.
    req.init_latents = Some((&a, 0.5));
    let mut steps = Vec::new();
    let guided = p
        .generate(&req, &mut |s, _| {
            steps.push((s.completed, s.total, s.timestep));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(guided.size(), a.size());
    let timesteps: Vec<f64> = steps.iter().map(|s| s.2).collect();
    assert_eq!(
        steps.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(),
        [(1, 2), (2, 2)]
    );
    // DDIM linspace spacing (diffusers adds steps_offset to `leading` only): 999, 666, 333, 0.
    assert_eq!(timesteps, [333.0, 0.0]);
    req.init_latents = Some((&a, 0.1));
    let err = p.generate(&req, &mut keep_going).unwrap_err().to_string();
    assert!(err.contains("`strength`"), "{err}");

    req.init_latents = None;
    let err = p
        .generate(&req, &mut |s, _| {
            if s.completed == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            DiffusionError::Cancelled {
                completed: 2,
                total: 4
            }
        ),
        "{err}"
    );
}

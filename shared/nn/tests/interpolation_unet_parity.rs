//! The interpolation LDM (Video LDM §3) against a reference PyTorch module: a tiny random
//! masked-conditioning motion UNet with a non-default input layout (masked latents, mask,
//! sample), its noise prediction on two key-frame gaps, and a 2-step DDIM pass that fills
//! 3 frames into each gap (3 key frames -> 9 frames). Also the default tiny model
//! `make models` writes (its layout, T -> 4T -> 16T shapes) and the input checks.
//!
//! Fixture: `tests/fixtures/interp/interp_unet/`, written by `scripts/fixtures/interp.py`
//! (torch 2.13.0, diffusers 0.42.1; `ReferenceInterpolationUNet` is defined there).

use std::{ops::ControlFlow, path::PathBuf};

use storyreel_nn::{
    DType, DeviceSpec,
    diffusion::interpolation::{
        InterpolationModel, InterpolationRequest, tiny::write_tiny_interpolation_model,
    },
};
use tch::{Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interp/interp_unet")
}

fn expected(key: &str) -> Tensor {
    Tensor::read_safetensors(dir().join("expected.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == key)
        .unwrap_or_else(|| panic!("`{key}` missing"))
        .1
}

fn check(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.size(), want.size(), "{what}: shapes");
    let err = (got - want).abs().max().double_value(&[]) / want.abs().max().double_value(&[]);
    eprintln!("{what}: relative error {err:.3e}");
    assert!(
        err <= TOLERANCE,
        "{what}: relative error {err:.3e} > {TOLERANCE:e}"
    );
}

#[test]
fn masked_conditioning_forward_equals_the_reference() {
    let model = InterpolationModel::load(&dir(), DeviceSpec::Cpu, DType::F32).unwrap();
    let keys = expected("key_latents");
    let context = expected("encoder_hidden_states").repeat_interleave_self_int(2, 0, None);
    let out = model
        .forward(&expected("sample"), &keys, &expected("timestep"), &context)
        .unwrap();
    check("noise prediction", &out, &expected("out"));
}

#[test]
fn one_pass_fills_three_frames_per_gap_as_the_reference() {
    let model = InterpolationModel::load(&dir(), DeviceSpec::Cpu, DType::F32).unwrap();
    let keys = expected("key_latents");
    let cond = expected("encoder_hidden_states");
    let noise = expected("noise");
    let request = InterpolationRequest {
        key_latents: &keys,
        cond: &cond,
        uncond: None,
        noise: &noise,
        steps: 2,
        guidance_scale: 1.0,
    };
    let mut steps = 0;
    let out = model
        .interpolate(&request, &mut |_| {
            steps += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(steps, 2);
    check("interpolated", &out, &expected("interpolated"));
    // the key frames come back exactly, every 4th frame
    for (i, k) in [(0, 0), (4, 1), (8, 2)] {
        assert!(
            out.narrow(2, i, 1).equal(&keys.narrow(2, k, 1)),
            "frame {i} is key {k}"
        );
    }
}

#[test]
fn the_default_tiny_model_goes_from_t_to_16t_with_guidance() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_interpolation_model(dir.path(), 0).unwrap();
    let model = InterpolationModel::load(dir.path(), DeviceSpec::Cpu, DType::F32).unwrap();
    let g = |seed: i64, shape: &[i64]| {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Float, tch::Device::Cpu))
    };
    let (cond, uncond) = (g(1, &[1, 3, 64]), g(2, &[1, 3, 64]));
    let mut keys = g(3, &[1, 4, 2, 4, 4]);
    for (pass, frames) in [(0, 5), (1, 17)] {
        let windows = keys.size()[2] - 1;
        let noise = g(10 + pass, &[windows, 4, 5, 4, 4]);
        let request = InterpolationRequest {
            key_latents: &keys,
            cond: &cond,
            uncond: Some(&uncond),
            noise: &noise,
            steps: 1,
            guidance_scale: 3.0,
        };
        keys = model
            .interpolate(&request, &mut |_| ControlFlow::Continue(()))
            .unwrap();
        assert_eq!(keys.size(), [1, 4, frames, 4, 4]);
        assert!(keys.isfinite().all().int64_value(&[]) == 1);
    }
}

#[test]
fn bad_inputs_are_named_and_cancel_stops() {
    let model = InterpolationModel::load(&dir(), DeviceSpec::Cpu, DType::F32).unwrap();
    let keys = expected("key_latents");
    let cond = expected("encoder_hidden_states");
    let noise = expected("noise");
    let one_key = keys.narrow(2, 0, 1);
    let err = model.conditioning(&one_key).unwrap_err().to_string();
    assert!(err.contains("`key_latents`"), "{err}");
    let wrong_noise = noise.narrow(0, 0, 1);
    let request = |noise: &Tensor, guidance: f64| -> String {
        let r = InterpolationRequest {
            key_latents: &keys,
            cond: &cond,
            uncond: None,
            noise,
            steps: 2,
            guidance_scale: guidance,
        };
        model
            .interpolate(&r, &mut |_| ControlFlow::Continue(()))
            .unwrap_err()
            .to_string()
    };
    assert!(request(&wrong_noise, 1.0).contains("`sample`"));
    assert!(request(&noise, 5.0).contains("`negative_prompt_embeds`"));
    let r = InterpolationRequest {
        key_latents: &keys,
        cond: &cond,
        uncond: None,
        noise: &noise,
        steps: 2,
        guidance_scale: 1.0,
    };
    let err = model
        .interpolate(&r, &mut |_| ControlFlow::Break(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("cancelled after 1 of 2"), "{err}");
}

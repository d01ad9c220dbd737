//! The UNet of diffusers' `StableDiffusionUpscalePipeline` (the cascaded DM's x4 upscaler):
//! 7 input channels (the noisy latents and the low-res image concatenated), the noise level
//! as a class embedding, `only_cross_attention` per block.
//!
//! - a tiny random UNet with those options equals diffusers (relative error <= 1e-4);
//! - the published config of stabilityai/stable-diffusion-x4-upscaler declares exactly
//!   the names and shapes diffusers instantiates from it, so the real weights load
//!   unchanged.
//!
//! Fixtures: `tests/fixtures/interp/{upscaler_unet,keysets}/`, written by
//! `scripts/fixtures/interp.py` (torch 2.13.0, diffusers 0.42.1).

use std::{collections::BTreeMap, path::PathBuf};

use storyreel_nn::{
    DType, DeviceSpec,
    diffusion::{
        AttentionNaming,
        unet::{UNet, UNet2DConditionConfig},
    },
    weights::declared_shapes,
};
use tch::{Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interp")
        .join(name)
}

fn expected(key: &str) -> Tensor {
    Tensor::read_safetensors(dir("upscaler_unet").join("expected.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == key)
        .unwrap_or_else(|| panic!("`{key}` missing"))
        .1
}

fn tiny() -> UNet {
    let config = UNet2DConditionConfig::from_file(dir("upscaler_unet").join("config.json")).unwrap();
    let weights = dir("upscaler_unet").join("diffusion_pytorch_model.safetensors");
    UNet::load_2d(&config, &[weights], DeviceSpec::Cpu, DType::F32).unwrap()
}

#[test]
fn tiny_upscaler_unet_equals_diffusers() {
    let unet = tiny();
    let out = unet
        .forward_with_class(
            &expected("sample"),
            &expected("timestep"),
            &expected("encoder_hidden_states"),
            Some(&expected("class_labels")),
        )
        .unwrap();
    let want = expected("out");
    let err = (&out - &want).abs().max().double_value(&[]) / want.abs().max().double_value(&[]);
    eprintln!("upscaler unet: relative error {err:.3e}");
    assert!(err <= TOLERANCE, "relative error {err:.3e} > {TOLERANCE:e}");
}

#[test]
fn noise_level_is_required_and_checked() {
    let unet = tiny();
    let (sample, t, states) = (
        expected("sample"),
        expected("timestep"),
        expected("encoder_hidden_states"),
    );
    let err = unet.forward(&sample, &t, &states).unwrap_err().to_string();
    assert!(
        err.contains("`class_labels`") && err.contains("required"),
        "{err}"
    );
    let too_high = Tensor::from_slice(&[20i64, 400]);
    let err = unet
        .forward_with_class(&sample, &t, &states, Some(&too_high))
        .unwrap_err()
        .to_string();
    assert!(err.contains("0..400"), "{err}");
    let float = Tensor::from_slice(&[0.5f32, 0.5]).to_kind(Kind::Float);
    let err = unet
        .forward_with_class(&sample, &t, &states, Some(&float))
        .unwrap_err()
        .to_string();
    assert!(err.contains("integers"), "{err}");
}

#[test]
fn x4_upscaler_unet_declares_the_published_keys() {
    let text = std::fs::read_to_string(dir("keysets").join("x4_upscaler_unet.json")).unwrap();
    let config: UNet2DConditionConfig = serde_json::from_str(&text).unwrap();
    let ours = declared_shapes(|p| {
        UNet::new_2d(p, &config, AttentionNaming::Current).unwrap();
    });
    let theirs: BTreeMap<String, Vec<i64>> =
        std::fs::read_to_string(dir("keysets").join("x4_upscaler_unet.txt"))
            .unwrap()
            .lines()
            .map(|line| {
                let (key, shape) = line.split_once(' ').unwrap();
                let shape = shape
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(|d| d.parse().unwrap())
                    .collect();
                (key.to_string(), shape)
            })
            .collect();
    let missing: Vec<&String> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    let extra: Vec<&String> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let shapes: Vec<String> = ours
        .iter()
        .filter_map(|(k, s)| {
            theirs
                .get(k)
                .filter(|t| *t != s)
                .map(|t| format!("{k}: ours {s:?}, theirs {t:?}"))
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && shapes.is_empty(),
        "not declared by us {missing:?}; extra {extra:?}; shapes {shapes:?}"
    );
    eprintln!("x4 upscaler unet: {} tensors, names and shapes equal", ours.len());
}

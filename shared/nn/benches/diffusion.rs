//! One motion-UNet step and one VAE decode in tch, timed for `scripts/bench/diffusion.py`,
//! which times diffusers (PyTorch eager) on the same weights, inputs and CPU threads and
//! prints the ratio. Run alone it needs a model directory and an inputs file:
//!
//! ```text
//! cargo bench -p storyreel-nn --bench diffusion -- --what unet --dir DIR \
//!     --inputs FILE --threads 2 --iters 5
//! ```
//!
//! `DIR` is a diffusers AnimateDiff directory (`unet/`, `motion_adapter/`, `vae/`).
//! `FILE` (safetensors) holds `sample` (B, C, F, h, w), `timestep` and
//! `encoder_hidden_states` (B*F, S, D) for `unet`; `latents` (N, C, h, w) and `slice` for
//! `vae`. Prints one JSON line: `{"what", "threads", "times_ms", "median_ms", "malloc"}`.
//! It runs with `storyreel_nn::allocator::keep_freed_memory`, as a diffusion worker does;
//! `--default-malloc` leaves glibc's allocator as it is.
//!
//! Without `--dir` (plain `cargo bench`), it times the tiny default keyframe model
//! (written to a temporary directory) on random inputs of the same shapes as the script:
//! one UNet step on 16 frames of 32x32 latents, one VAE decode of 16 frames.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use clap::Parser;
use storyreel_nn::{
    DType, DeviceSpec,
    diffusion::{
        motion::MotionAdapterConfig,
        pipeline::gaussian_noise,
        tiny_model::write_tiny_keyframe_model,
        unet::{UNet, UNet2DConditionConfig},
        vae::{AutoencoderKL, AutoencoderKLConfig},
    },
};
use tch::Tensor;

#[derive(Parser)]
struct Args {
    /// `unet` or `vae`
    #[arg(long)]
    what: Option<String>,
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    inputs: Option<PathBuf>,
    #[arg(long, default_value_t = 2)]
    threads: i32,
    #[arg(long, default_value_t = 5)]
    iters: usize,
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// glibc's default malloc; without it the bench runs with
    /// `storyreel_nn::allocator::keep_freed_memory`, as a diffusion worker does
    #[arg(long)]
    default_malloc: bool,
    /// passed by `cargo bench`
    #[arg(long, hide = true)]
    bench: bool,
}

fn input(tensors: &[(String, Tensor)], name: &str) -> Tensor {
    tensors
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("`{name}` missing from the inputs file"))
        .1
        .shallow_clone()
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

fn bench(what: &str, dir: &Path, inputs: &[(String, Tensor)], args: &Args, malloc: &str) {
    let weights = |sub: &str| dir.join(sub).join("diffusion_pytorch_model.safetensors");
    let times = match what {
        "unet" => {
            let config = UNet2DConditionConfig::from_file(dir.join("unet/config.json")).unwrap();
            let adapter = MotionAdapterConfig::from_file(dir.join("motion_adapter/config.json")).unwrap();
            let unet = UNet::load_motion(
                &config,
                &[weights("unet")],
                &adapter,
                &[weights("motion_adapter")],
                DeviceSpec::Cpu,
                DType::F32,
            )
            .unwrap();
            let (sample, t, states) = (
                input(inputs, "sample"),
                input(inputs, "timestep"),
                input(inputs, "encoder_hidden_states"),
            );
            time(args.iters, args.warmup, || {
                let _ = unet.forward_video(&sample, &t, &states).unwrap();
            })
        }
        "vae" => {
            let config = AutoencoderKLConfig::from_file(dir.join("vae/config.json")).unwrap();
            let vae = AutoencoderKL::load(&config, &[weights("vae")], DeviceSpec::Cpu, DType::F32).unwrap();
            let latents = input(inputs, "latents");
            let slice = input(inputs, "slice").int64_value(&[]);
            time(args.iters, args.warmup, || {
                let _ = vae.decode(&latents, slice).unwrap();
            })
        }
        other => panic!("--what must be `unet` or `vae`, got `{other}`"),
    };
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    println!(
        "{}",
        serde_json::json!({"what": what, "threads": args.threads, "times_ms": times, "median_ms": median,
            "malloc": malloc})
    );
}

fn main() {
    let args = Args::parse();
    tch::set_num_threads(args.threads);
    tch::set_num_interop_threads(1);
    let malloc = if !args.default_malloc && storyreel_nn::allocator::keep_freed_memory() {
        "keep-freed"
    } else {
        "default"
    };
    match (&args.what, &args.dir, &args.inputs) {
        (Some(what), Some(dir), Some(inputs)) => {
            let inputs = Tensor::read_safetensors(inputs).expect("inputs file");
            bench(what, dir, &inputs, &args, malloc);
        }
        (None, None, None) => {
            let tmp = std::env::temp_dir().join(format!("storyreel-bench-{}", std::process::id()));
            write_tiny_keyframe_model(&tmp, 0).unwrap();
            let noise = |seed, shape: &[i64]| gaussian_noise(seed, shape, tch::Device::Cpu);
            let (b, f) = (1, 16);
            let unet_inputs = vec![
                ("sample".to_string(), noise(1, &[b, 4, f, 32, 32])),
                ("timestep".to_string(), Tensor::from(500i64)),
                ("encoder_hidden_states".to_string(), noise(2, &[b * f, 77, 64])),
            ];
            bench("unet", &tmp, &unet_inputs, &args, malloc);
            let vae_inputs = vec![
                ("latents".to_string(), noise(3, &[f, 4, 32, 32])),
                ("slice".to_string(), Tensor::from(4i64)),
            ];
            bench("vae", &tmp, &vae_inputs, &args, malloc);
            let _ = std::fs::remove_dir_all(&tmp);
        }
        _ => panic!("give all of --what, --dir and --inputs, or none (the tiny default model)"),
    }
}

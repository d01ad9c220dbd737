//! Per-stage time of one scene through the video stages over gRPC (one redis-server, the
//! default models): keyframe Generate (256 x 256, 16 key frames), interpolation 4x in
//! latent space, decode, Real-ESRGAN x2 upsample. For each stage: the call's wall time as
//! the client sees it, the model's time on the worker (`stats.compute_time`), and the share
//! of the call spent outside model compute (validation, the tensor codec, Redis, gRPC).
//!
//! `cargo bench -p storyreel-e2e-tests --bench visual_stages`; `VISUAL_BENCH_STEPS`
//! (default 10) denoising steps for keyframe, `VISUAL_BENCH_ROUNDS` (default 3) runs, the
//! fastest round's figures printed.

use std::time::{Duration, Instant};
use storyreel_e2e_tests::{Mesh, Output};
use storyreel_proto::common::InterpolationSpace;

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seconds(d: Option<&prost_types::Duration>) -> f64 {
    d.map(|d| d.seconds as f64 + d.nanos as f64 / 1e9).unwrap_or(0.0)
}

/// A stage's name, wall time and compute time, in seconds.
type Row = (&'static str, f64, f64);

/// The output and the [`Row`] of one call.
async fn timed<F: std::future::Future<Output = Output>>(stage: &'static str, call: F) -> (Output, Row) {
    let started = Instant::now();
    let output = call.await;
    let wall = started.elapsed().as_secs_f64();
    let compute = seconds(output.1.compute_time.as_ref());
    (output, (stage, wall, compute))
}

fn main() {
    let steps = env("VISUAL_BENCH_STEPS", 10);
    let rounds = env("VISUAL_BENCH_ROUNDS", 3);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut mesh = Mesh::start().await;
        let mut best: Option<(f64, Vec<Row>)> = None;
        for round in 0..rounds {
            let job = format!("bench-{round}");
            let (keys, a) = timed("keyframe", mesh.key_latents(&job, 256, 256, 16, steps)).await;
            let (latents, b) = timed(
                "interpolation",
                mesh.interpolate(&job, keys.0, InterpolationSpace::Latent),
            )
            .await;
            let (frames, c) = timed("decode", mesh.decode(&job, latents.0)).await;
            let (_, d) = timed("upsample", mesh.upsample(&job, frames.0)).await;
            let rows = vec![a, b, c, d];
            let total: f64 = rows.iter().map(|r| r.1).sum();
            if best.as_ref().is_none_or(|(t, _)| total < *t) {
                best = Some((total, rows));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (total, rows) = best.expect("at least one round");
        println!(
            "one scene, 256x256, 16 key frames ({steps} steps) -> 61 frames -> x2; fastest of {rounds} rounds"
        );
        println!(
            "{:<14} {:>9} {:>11} {:>9}",
            "stage", "wall s", "compute s", "outside"
        );
        for (stage, wall, compute) in rows {
            let outside = ((wall - compute) / wall * 100.0).max(0.0);
            println!("{stage:<14} {wall:>9.3} {compute:>11.3} {outside:>8.1}%");
        }
        println!("{:<14} {total:>9.3}", "all stages");
        mesh.shutdown().await;
    });
}

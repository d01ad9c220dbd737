//! Throughput of story-llm on CPU, two parts, each measured side by side in one run:
//!
//! 1. Engine: greedy decoding tokens/s of our SmolLM2 (`storyreel_nn::generation`) at
//!    batch 1 and 8, beside transformers (PyTorch eager) on the same converted weights,
//!    prompt ids, token counts and CPU threads (`scripts/bench/llm_reference.py`, run with
//!    the fixture venv's python when it exists: `STORYREEL_BENCH_PYTHON` overrides it).
//! 2. Service: scenes per minute of `ModelBackedStoryLlm` (the real request path: scene by
//!    scene prompting, sampling, parsing) at 1 and at 8 concurrent requests, and at 8
//!    concurrent requests with batching off (`max_batch_size = 1`): the batching speed-up.
//!    Prefix reuse (the worker's KV cache kept from scene to scene) is on, as by default;
//!    two more rows run with it off (`prefix_cache_mb = 0`) to show what it brings.
//!
//! Run: `make bench` or `cargo bench -p storyreel-story-llm --bench scenes_per_minute`.
//! `STORYREEL_BENCH_THREADS` sets the CPU threads (default: all cores).

use futures::future::join_all;
use serde_json::{Value, json};
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use storyreel_nn::{
    DType, DeviceSpec,
    generation::{GenerationRequest, NoStream, SamplingParams, generate},
    llama::LlamaForCausalLM,
};
use storyreel_story_llm::{ModelBackedStoryLlm, StoryLlm, StoryLlmConfig, StoryRequest, service::SeedOrigin};
use tokenizers::Tokenizer;

const NEW_TOKENS: usize = 48;
const BATCHES: [usize; 2] = [1, 8];
const REPEATS: usize = 3;
const SCENES_PER_STORY: usize = 4;
const TITLES: [&str; 8] = [
    "Eight Great Wonders of the China and World (4 each)",
    "A Lighthouse Keeper and the Storm",
    "The Fox Who Crossed the Frozen River",
    "How the Desert Became a Garden",
    "The Last Train Through the Mountains",
    "A Day in the Life of a Honeybee",
    "The Clockmaker's Apprentice",
    "Whales of the Northern Sea",
];

fn threads() -> usize {
    std::env::var("STORYREEL_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Ours: tokens/s of greedy decoding, `NEW_TOKENS` per row, no stops.
fn engine_ours(dir: &Path, prompt_ids: &[u32]) -> Vec<(usize, f64)> {
    let model = LlamaForCausalLM::load(dir, DeviceSpec::Cpu, DType::F32).expect("loading SmolLM2");
    let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).expect("tokenizer");
    BATCHES
        .iter()
        .map(|&batch| {
            let requests: Vec<GenerationRequest> = (0..batch)
                .map(|_| {
                    GenerationRequest::new(prompt_ids.to_vec(), NEW_TOKENS)
                        .with_sampling(SamplingParams::greedy())
                })
                .collect();
            let mut seconds = vec![];
            for i in 0..=REPEATS {
                let start = Instant::now();
                let out = generate(&model, &tokenizer, &requests, &mut NoStream).expect("generation");
                let elapsed = start.elapsed().as_secs_f64();
                assert!(out.iter().all(|o| o.token_ids.len() == NEW_TOKENS));
                if i > 0 {
                    seconds.push(elapsed);
                }
            }
            (batch, (batch * NEW_TOKENS) as f64 / median(seconds))
        })
        .collect()
}

fn reference_python() -> Option<PathBuf> {
    if let Ok(python) = std::env::var("STORYREEL_BENCH_PYTHON") {
        return Some(PathBuf::from(python));
    }
    let home = std::env::var("HOME").ok()?;
    let python = PathBuf::from(home).join(".cache/storyreel/fixture-venv/bin/python");
    python.is_file().then_some(python)
}

/// transformers: the same measurement, in a child process.
fn engine_reference(dir: &Path, prompt_ids: &[u32], threads: usize) -> Result<Value, String> {
    let python = reference_python().ok_or("no fixture venv (set STORYREEL_BENCH_PYTHON)")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench/llm_reference.py");
    let job = json!({
        "model_dir": dir, "prompt_ids": prompt_ids, "batch_sizes": BATCHES, "new_tokens": NEW_TOKENS,
        "threads": threads, "warmup": 1, "repeats": REPEATS,
    });
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(job.to_string().as_bytes())
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("the reference failed: {}", out.status));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

fn story(title: &str, seed: u64) -> StoryRequest {
    StoryRequest {
        title: title.into(),
        n_scenes: SCENES_PER_STORY,
        style: None,
        language: "en".into(),
        seed,
        seed_origin: SeedOrigin::Request,
        sampling: storyreel_llm::Sampling {
            temperature: 0.7,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.3,
            max_new_tokens: 40,
        },
        deadline: None,
        job: Default::default(),
    }
}

/// Scenes per minute with `concurrency` stories in flight at once.
async fn scenes_per_minute(service: &Arc<ModelBackedStoryLlm>, concurrency: usize) -> (f64, Duration) {
    let start = Instant::now();
    let calls = TITLES[..concurrency].iter().enumerate().map(|(i, title)| {
        let service = service.clone();
        let request = story(title, 100 + i as u64);
        tokio::spawn(async move { service.generate(request).await })
    });
    let mut scenes = 0;
    for result in join_all(calls).await {
        match result.expect("task") {
            Ok(story) => scenes += story.scenes.len(),
            Err(err) => eprintln!("a story failed: {err}"),
        }
    }
    let elapsed = start.elapsed();
    (scenes as f64 * 60.0 / elapsed.as_secs_f64(), elapsed)
}

async fn service_with(max_batch_size: usize, prefix_cache_mb: usize) -> Arc<ModelBackedStoryLlm> {
    let mut config = StoryLlmConfig::default();
    config.batching.max_batch_size = max_batch_size;
    config.batching.prefix_cache_mb = prefix_cache_mb;
    config.batching.max_wait_ms = 20;
    let service = Arc::new(ModelBackedStoryLlm::start(&config).expect("starting story-llm"));
    service.wait_ready().await.expect("the model loads");
    service
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let threads = threads();
    tch::set_num_threads(threads as i32);
    let dir = StoryLlmConfig::default().model_dir;
    assert!(dir.join("model.safetensors").is_file(), "run `make models` first");
    println!("story-llm throughput, {threads} CPU thread(s), SmolLM2-135M-Instruct f32\n");

    let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json")).expect("tokenizer");
    let prompt = "Write the first scene of a short story titled \"The Fox Who Crossed the Frozen River\" \
                  as one vivid sentence that describes what we see.";
    let prompt_ids = tokenizer
        .encode(prompt, false)
        .expect("encoding")
        .get_ids()
        .to_vec();
    let ours = engine_ours(&dir, &prompt_ids);
    let reference = engine_reference(&dir, &prompt_ids, threads);
    println!(
        "engine: greedy decoding, {} prompt tokens + {NEW_TOKENS} new tokens per row",
        prompt_ids.len()
    );
    println!("| batch | ours tokens/s | transformers tokens/s | ours / transformers |");
    println!("|---|---|---|---|");
    for (batch, tps) in &ours {
        let theirs = reference.as_ref().ok().and_then(|r| {
            r["results"]
                .as_array()?
                .iter()
                .find(|x| x["batch"].as_u64() == Some(*batch as u64))?["tokens_per_s"]
                .as_f64()
        });
        match theirs {
            Some(t) => println!("| {batch} | {tps:.1} | {t:.1} | {:.2}x |", tps / t),
            None => println!("| {batch} | {tps:.1} | - | - |"),
        }
    }
    match &reference {
        Ok(r) => println!("reference versions: {}", r["versions"]),
        Err(e) => println!("reference skipped: {e}"),
    }

    println!(
        "\nservice: stories of {SCENES_PER_STORY} scenes, up to 40 tokens each, sampled (t=0.7, top-p 0.9)"
    );
    let reuse_mb = StoryLlmConfig::default().batching.prefix_cache_mb;
    let batched = service_with(8, reuse_mb).await;
    let _ = scenes_per_minute(&batched, 1).await; // warm-up
    let (one, one_t) = scenes_per_minute(&batched, 1).await;
    let (eight, eight_t) = scenes_per_minute(&batched, 8).await;
    drop(batched);
    let unbatched = service_with(1, reuse_mb).await;
    let (eight_unbatched, unbatched_t) = scenes_per_minute(&unbatched, 8).await;
    drop(unbatched);
    let no_reuse = service_with(8, 0).await;
    let (one_no_reuse, one_no_reuse_t) = scenes_per_minute(&no_reuse, 1).await;
    let (eight_no_reuse, eight_no_reuse_t) = scenes_per_minute(&no_reuse, 8).await;
    drop(no_reuse);
    println!("| concurrent requests | batching | prefix reuse | scenes/min | wall |");
    println!("|---|---|---|---|---|");
    let row = |n: usize, batching: &str, reuse: &str, rate: f64, wall: Duration| {
        println!(
            "| {n} | {batching} | {reuse} | {rate:.1} | {:.1} s |",
            wall.as_secs_f64()
        );
    };
    row(1, "max 8", "on", one, one_t);
    row(8, "max 8", "on", eight, eight_t);
    row(8, "off (max 1)", "on", eight_unbatched, unbatched_t);
    row(1, "max 8", "off", one_no_reuse, one_no_reuse_t);
    row(8, "max 8", "off", eight_no_reuse, eight_no_reuse_t);
    println!(
        "\nspeed-up at 8 concurrent requests: {:.2}x over 1 request, {:.2}x over batching off",
        eight / one,
        eight / eight_unbatched
    );
    println!(
        "prefix reuse: {:.2}x at 1 request, {:.2}x at 8",
        one / one_no_reuse,
        eight / eight_no_reuse
    );
}

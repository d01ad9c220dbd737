//! Real-time factor (compute seconds per second of audio; lower is faster) of each voice
//! backend on CPU, `STORYREEL_BENCH_THREADS` threads (default 2), over one paragraph of
//! story text spoken sentence by sentence:
//!
//! - espeak-ng (libespeak-ng, single-threaded by design);
//! - Piper VITS in tch: the model alone on piper's phoneme ids, and the whole voice
//!   (phonemisation + model);
//! - beside it, onnxruntime on the same ONNX voice, ids, scales and threads
//!   (`scripts/bench/piper_reference.py`, run in the fixture venv when it exists;
//!   `STORYREEL_BENCH_PYTHON` overrides the interpreter), and the ratio tch / onnxruntime.
//!
//! Each figure is the fastest of `REPEATS` passes after a warm-up, on both sides, and the
//! Piper model and onnxruntime take turns over `ROUNDS` rounds: on a
//! shared machine the other processes only ever add time, and libtorch's OpenMP threads
//! suffer most from it (a busy core stalls every parallel op).
//!
//! `make bench` runs it twice: as is (idle threads spin on both sides, their defaults) and
//! with `OMP_WAIT_POLICY=PASSIVE` (they sleep on both sides). The process keeps freed
//! memory (`storyreel_nn::allocator::keep_freed_memory`) as the tts service does;
//! `STORYREEL_BENCH_DEFAULT_MALLOC=1` measures glibc's defaults instead.
//!
//! `make bench` runs it; results go to README.md, Performance.

use serde_json::{Value, json};
use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};
use storyreel_nn::piper::Scales;
use storyreel_tts::{
    text::{normalize, split_sentences},
    voice::{SpeechParams, Voice, espeak::EspeakVoice, piper::PiperVoice},
};

const PARAGRAPH: &str = "The little fox ran home through the dark forest. Every tree seemed to whisper \
    his name as he passed. At the river he stopped, drank the cold water, and listened. Far away, an owl \
    called twice. He smiled, because that was his mother's signal. By midnight he was asleep in the warm den.";
const REPEATS: usize = 5;
/// tch, onnxruntime, tch, onnxruntime, ...
const ROUNDS: usize = 3;

fn threads() -> i32 {
    std::env::var("STORYREEL_BENCH_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2)
}

fn fastest(values: Vec<f64>) -> f64 {
    values.into_iter().fold(f64::INFINITY, f64::min)
}

fn cache() -> PathBuf {
    match std::env::var("STORYREEL_CACHE") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/storyreel"),
    }
}

/// The fastest of `REPEATS` passes (after one warm-up), seconds, and the audio seconds of a pass.
fn measure(rate: u32, mut pass: impl FnMut() -> usize) -> (f64, f64) {
    pass();
    let mut seconds = Vec::new();
    let mut samples = 0;
    for _ in 0..REPEATS {
        let start = Instant::now();
        samples = pass();
        seconds.push(start.elapsed().as_secs_f64());
    }
    (fastest(seconds), samples as f64 / rate as f64)
}

/// OMP_WAIT_POLICY=PASSIVE: libtorch's idle OpenMP threads sleep rather than spin; the
/// onnxruntime side then turns its spinning off too.
fn passive_threads() -> bool {
    std::env::var("OMP_WAIT_POLICY").is_ok_and(|v| v.eq_ignore_ascii_case("passive"))
}

fn reference_python() -> Option<PathBuf> {
    if let Ok(python) = std::env::var("STORYREEL_BENCH_PYTHON") {
        return Some(PathBuf::from(python));
    }
    let python = cache().join("fixture-venv/bin/python");
    python.is_file().then_some(python)
}

fn onnxruntime_reference(
    onnx: &Path,
    utterances: &[Vec<i64>],
    scales: Scales,
    rate: u32,
) -> Result<Value, String> {
    let python = reference_python().ok_or("no fixture venv (set STORYREEL_BENCH_PYTHON)")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench/piper_reference.py");
    let job = json!({
        "onnx": onnx, "utterances": utterances, "threads": threads(), "warmup": 1, "repeats": REPEATS,
        "scales": [scales.noise_scale, scales.length_scale, scales.noise_w], "sample_rate": rate,
        "spinning": !passive_threads(),
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
        return Err(format!(
            "the reference failed: {} (is onnxruntime installed?)",
            out.status
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

fn main() {
    // as the service does (`keep_freed_memory = true`)
    let tuned_malloc = std::env::var_os("STORYREEL_BENCH_DEFAULT_MALLOC").is_none()
        && storyreel_nn::allocator::keep_freed_memory();
    tch::set_num_threads(threads());
    let sentences: Vec<String> = split_sentences(PARAGRAPH, 400)
        .iter()
        .map(|s| normalize(s))
        .collect();
    println!(
        "tts rtf: {} sentences, {} thread(s), fastest of {REPEATS} passes, idle threads {}, malloc {}",
        sentences.len(),
        threads(),
        if passive_threads() {
            "sleep (OMP_WAIT_POLICY=PASSIVE)"
        } else {
            "spin (default)"
        },
        if tuned_malloc {
            "keep-freed (as the service)"
        } else {
            "glibc default (STORYREEL_BENCH_DEFAULT_MALLOC)"
        }
    );
    let params = SpeechParams { rate: 1.0, seed: 0 };

    let mut espeak = EspeakVoice::load("en-us").expect("espeak-ng en-us");
    let rate = espeak.description().native_sample_rate;
    let (seconds, audio) = measure(rate, || {
        sentences
            .iter()
            .map(|s| espeak.speak(s, &params).unwrap().samples.len())
            .sum()
    });
    println!(
        "espeak-ng en-us: {seconds:.3} s for {audio:.2} s of audio: RTF {:.4}",
        seconds / audio
    );

    let dir = cache().join("models/piper-en_US-joe-medium");
    let mut piper = match PiperVoice::load(&dir, threads(), "") {
        Ok(piper) => piper,
        Err(err) => {
            println!("piper: skipped ({err}; run `make models`)");
            return;
        }
    };
    let rate = piper.description().native_sample_rate;
    let scales = piper.scales();
    let utterances: Vec<Vec<i64>> = sentences
        .iter()
        .flat_map(|s| piper.phoneme_ids(s).unwrap())
        .collect();
    let onnx = dir.join("en_US-joe-medium.onnx");
    // Rounds alternate tch and onnxruntime so that a noisy stretch of the machine is
    // unlikely to cover all of one side's passes; the fastest pass of each side counts.
    let (mut model_times, mut ort_times, mut audio, mut ort_audio) =
        (Vec::new(), Vec::new(), 0.0, None::<f64>);
    let mut ort_version = Value::Null;
    for round in 0..ROUNDS {
        let (seconds, a) = measure(rate, || {
            utterances
                .iter()
                .map(|ids| piper.model().vits.infer(ids, scales, 0).size()[0] as usize)
                .sum()
        });
        audio = a;
        model_times.push(seconds);
        if round > 0 && ort_audio.is_none() {
            continue;
        }
        match onnxruntime_reference(&onnx, &utterances, scales, rate) {
            Ok(reference) => {
                let seconds: Vec<f64> = serde_json::from_value(reference["seconds"].clone()).unwrap();
                ort_times.push(fastest(seconds));
                ort_audio = reference["audio_seconds"].as_f64();
                ort_version = reference["versions"]["onnxruntime"].clone();
            }
            Err(err) if round == 0 => println!("onnxruntime: skipped ({err})"),
            Err(err) => panic!("onnxruntime failed in round {round}: {err}"),
        }
    }
    let model_s = fastest(model_times.clone());
    let rtf = model_s / audio;
    println!(
        "piper en_US-joe-medium, tch model: {model_s:.3} s for {audio:.2} s of audio: RTF {rtf:.4} \
         (rounds: {:.3?} s)",
        model_times
    );
    let (voice_s, voice_audio) = measure(rate, || {
        sentences
            .iter()
            .map(|s| piper.speak(s, &params).unwrap().samples.len())
            .sum()
    });
    println!(
        "piper en_US-joe-medium, whole voice (phonemes + model): {voice_s:.3} s for {voice_audio:.2} s: RTF {:.4}",
        voice_s / voice_audio
    );
    if let Some(ort_audio) = ort_audio {
        let ort_rtf = fastest(ort_times.clone()) / ort_audio;
        println!(
            "onnxruntime {ort_version}: RTF {ort_rtf:.4} ({ort_audio:.2} s of audio; rounds: {:.3?} s); \
             tch / onnxruntime = {:.2} (target <= 1.2)",
            ort_times,
            rtf / ort_rtf
        );
    }
}

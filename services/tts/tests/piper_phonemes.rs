//! The Piper voice phonemises as piper does: for the five sentences of the parity fixture
//! (`shared/nn/tests/fixtures/piper/`, written by `scripts/fixtures/piper.py` with
//! piper-tts 1.3.0), libespeak-ng 1.51 through `PiperVoice::phoneme_ids` gives piper's
//! own phoneme ids. (piper-tts bundles espeak-ng 1.52, which differs on some other words:
//! README.md, tts.)

use std::path::PathBuf;
use storyreel_tts::voice::piper::PiperVoice;
use tch::Tensor;

#[test]
fn phoneme_ids_equal_pipers() {
    let cache = match std::env::var("STORYREEL_CACHE") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/storyreel"),
    };
    let voice = PiperVoice::load(&cache.join("models/piper-en_US-joe-medium"), 1, "")
        .expect("the Piper voice loads (run `make models`)");
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/nn/tests/fixtures/piper");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("joe_parity.json")).unwrap()).unwrap();
    let tensors = Tensor::read_safetensors(fixtures.join("joe_parity.safetensors")).unwrap();
    let sentences = meta["sentences"].as_array().unwrap();
    assert_eq!(sentences.len(), 5);
    for (i, sentence) in sentences.iter().enumerate() {
        let text = sentence["text"].as_str().unwrap();
        let want: Vec<i64> = tensors
            .iter()
            .find(|(n, _)| *n == format!("ids_{i}"))
            .map(|(_, t)| Vec::try_from(t).unwrap())
            .unwrap();
        let got = voice.phoneme_ids(text).unwrap();
        assert_eq!(
            got,
            vec![want],
            "sentence {i}: {text:?} (piper: {})",
            sentence["phonemes"]
        );
    }
}

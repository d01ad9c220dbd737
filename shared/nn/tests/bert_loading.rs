//! BERT checkpoint layouts and strict loading, on a tiny random model written here (no
//! fixture files, no Python): the optional `bert.` prefix, pooler and `position_ids` buffer
//! are declared exactly when present; any other extra or missing key is an error; the
//! padding mask makes padded and unpadded batches agree; f16/bf16 weights load and run.

use std::path::PathBuf;

use storyreel_nn::{
    DType, DeviceSpec, WeightsError,
    bert::{BertConfig, BertError, BertLayout, BertModel},
};
use tch::{Device, Kind, Tensor, nn};

fn config() -> BertConfig {
    serde_json::from_str(
        r#"{"model_type": "bert", "vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 4, "intermediate_size": 32, "hidden_act": "gelu",
            "max_position_embeddings": 12, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
            "pad_token_id": 0}"#,
    )
    .unwrap()
}

/// Random tensors under the names a model with a pooler and no prefix declares (libtorch's
/// generator is shared by the test threads: the values differ from call to call).
fn checkpoint() -> Vec<(String, Tensor)> {
    let vs = nn::VarStore::new(Device::Cpu);
    let layout = BertLayout {
        pooler: true,
        ..Default::default()
    };
    let _model = BertModel::new(&vs.root(), &config(), &layout);
    let mut tensors: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, Tensor::randn(t.size(), (Kind::Float, Device::Cpu)) * 0.5))
        .collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    tensors
}

fn write(dir: &tempfile::TempDir, tensors: &[(String, Tensor)]) -> PathBuf {
    let path = dir.path().join("model.safetensors");
    Tensor::write_safetensors(tensors, &path).unwrap();
    path
}

fn load(path: &PathBuf, dtype: DType) -> Result<BertModel, BertError> {
    BertModel::load(&config(), &[path], DeviceSpec::Cpu, dtype)
}

fn ids() -> Tensor {
    Tensor::from_slice(&[2i64, 7, 9, 31, 3, 2, 44, 3, 0, 0]).view([2, 5])
}

fn mask() -> Tensor {
    Tensor::from_slice(&[1i64, 1, 1, 1, 1, 1, 1, 1, 0, 0]).view([2, 5])
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn prefixed_and_plain_checkpoints_load_and_agree() {
    let tensors = checkpoint();
    let dir = tempfile::tempdir().unwrap();
    let plain = load(&write(&dir, &tensors), DType::F32).unwrap();
    let out = plain.forward(&ids(), Some(&mask()), None).unwrap();
    assert_eq!(out.last_hidden_state.size(), [2, 5, 16]);
    let pooled = out.pooler_output.expect("the checkpoint has a pooler");

    let dir = tempfile::tempdir().unwrap();
    let prefixed: Vec<_> = tensors
        .into_iter()
        .map(|(n, t)| (format!("bert.{n}"), t))
        .collect();
    let path = write(&dir, &prefixed);
    assert_eq!(
        BertLayout::from_files(&[&path]).unwrap().prefix.as_deref(),
        Some("bert")
    );
    let out2 = load(&path, DType::F32)
        .unwrap()
        .forward(&ids(), Some(&mask()), None)
        .unwrap();
    assert!(out2.last_hidden_state.equal(&out.last_hidden_state));
    assert!(out2.pooler_output.unwrap().equal(&pooled));
}

#[test]
fn the_pooler_and_the_position_ids_buffer_are_optional() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors: Vec<_> = checkpoint()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("pooler."))
        .collect();
    tensors.push((
        "embeddings.position_ids".into(),
        Tensor::arange(12, (Kind::Int64, Device::Cpu)).unsqueeze(0),
    ));
    let model = load(&write(&dir, &tensors), DType::F32).unwrap();
    let out = model.forward(&ids(), None, None).unwrap();
    assert!(out.pooler_output.is_none());
}

#[test]
fn an_extra_or_a_missing_key_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut tensors = checkpoint();
    tensors.push((
        "cls.predictions.bias".into(),
        Tensor::zeros([50], (Kind::Float, Device::Cpu)),
    ));
    let err = load(&write(&dir, &tensors), DType::F32).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            BertError::Weights(WeightsError::KeyMismatch {
                missing_count: 0,
                unexpected_count: 1,
                ..
            })
        ),
        "{msg}"
    );
    assert!(msg.contains("cls.predictions.bias"), "{msg}");

    let dir = tempfile::tempdir().unwrap();
    let tensors: Vec<_> = checkpoint()
        .into_iter()
        .filter(|(n, _)| n != "encoder.layer.1.output.LayerNorm.weight")
        .collect();
    let msg = load(&write(&dir, &tensors), DType::F32).unwrap_err().to_string();
    assert!(msg.contains("[encoder.layer.1.output.LayerNorm.weight]"), "{msg}");
}

#[test]
fn padding_is_masked_out() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&write(&dir, &checkpoint()), DType::F32).unwrap();
    let padded = model.forward(&ids(), Some(&mask()), None).unwrap();
    // The second row alone, unpadded: same states at its three real positions.
    let alone = Tensor::from_slice(&[2i64, 44, 3]).view([1, 3]);
    let single = model.forward(&alone, None, None).unwrap();
    let diff = max_abs_diff(
        &padded.last_hidden_state.get(1).narrow(0, 0, 3),
        &single.last_hidden_state.get(0),
    );
    assert!(diff < 1e-5, "padded vs unpadded differ by {diff:e}");
    // Without the mask the padding is attended, and the states change.
    let unmasked = model.forward(&ids(), None, None).unwrap();
    assert!(
        max_abs_diff(
            &unmasked.last_hidden_state.get(1),
            &padded.last_hidden_state.get(1)
        ) > 1e-3
    );
}

#[test]
fn half_precision_weights_load_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, &checkpoint());
    let reference = load(&path, DType::F32)
        .unwrap()
        .forward(&ids(), Some(&mask()), None)
        .unwrap()
        .last_hidden_state;
    for dtype in [DType::Bf16, DType::F16] {
        let out = load(&path, dtype)
            .unwrap()
            .forward(&ids(), Some(&mask()), None)
            .unwrap()
            .last_hidden_state;
        assert_eq!(out.kind(), dtype.kind());
        let diff = max_abs_diff(&out.to_kind(Kind::Float), &reference);
        assert!(diff < 0.1, "{dtype:?}: differs from f32 by {diff}");
    }
}

#[test]
fn inputs_beyond_the_model_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let model = load(&write(&dir, &checkpoint()), DType::F32).unwrap();
    let too_long = Tensor::zeros([1, 13], (Kind::Int64, Device::Cpu));
    let err = model.forward(&too_long, None, None).unwrap_err().to_string();
    assert!(err.contains("1..=12"), "{err}");
    let out_of_vocab = Tensor::from_slice(&[1i64, 50]).view([1, 2]);
    let err = model.forward(&out_of_vocab, None, None).unwrap_err().to_string();
    assert!(err.contains("`input_ids` must be in 0..50"), "{err}");
    let types = Tensor::from_slice(&[0i64, 2]).view([1, 2]);
    let ok_ids = Tensor::from_slice(&[1i64, 2]).view([1, 2]);
    let err = model
        .forward(&ok_ids, None, Some(&types))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`token_type_ids`"), "{err}");
}

#[test]
fn models_can_move_to_a_worker_thread() {
    fn send<T: Send>() {}
    send::<BertModel>();
    send::<storyreel_nn::bert::SentenceEncoder>();
}

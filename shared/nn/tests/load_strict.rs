//! Strict loading against real libtorch: round trip, and each way a checkpoint can differ.

use storyreel_nn::{WeightsError, load_strict};
use tch::{Device, Kind, Tensor, nn, nn::Module};

fn model(vs: &nn::VarStore) -> nn::Sequential {
    let root = vs.root();
    nn::seq()
        .add(nn::linear(&root / "proj_in", 4, 8, Default::default()))
        .add(nn::linear(&root / "to_out" / 0, 8, 2, Default::default()))
}

fn save(tensors: &[(&str, Tensor)], dir: &tempfile::TempDir, file: &str) -> std::path::PathBuf {
    let path = dir.path().join(file);
    Tensor::write_safetensors(tensors, &path).unwrap();
    path
}

fn checkpoint() -> Vec<(&'static str, Tensor)> {
    let w = |r, c| Tensor::randn([r, c], (Kind::Float, Device::Cpu));
    let b = |n| Tensor::randn([n], (Kind::Float, Device::Cpu));
    vec![
        ("proj_in.weight", w(8, 4)),
        ("proj_in.bias", b(8)),
        ("to_out.0.weight", w(2, 8)),
        ("to_out.0.bias", b(2)),
    ]
}

#[test]
fn loads_every_tensor_and_computes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = checkpoint();
    let path = save(&ckpt, &dir, "model.safetensors");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = model(&vs);
    load_strict(&mut vs, &[&path]).unwrap();

    let x = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
    let expected = x.matmul(&ckpt[0].1.tr()) + &ckpt[1].1;
    let expected = expected.matmul(&ckpt[2].1.tr()) + &ckpt[3].1;
    let got = net.forward(&x);
    assert!(got.allclose(&expected, 1e-5, 1e-6, false));
}

#[test]
fn sharded_files_load_together() {
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = checkpoint();
    let second = ckpt.split_off(2);
    let a = save(&ckpt, &dir, "model-00001-of-00002.safetensors");
    let b = save(&second, &dir, "model-00002-of-00002.safetensors");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _net = model(&vs);
    load_strict(&mut vs, &[a, b]).unwrap();
}

#[test]
fn missing_and_unexpected_keys_are_both_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = checkpoint();
    let _ = ckpt.remove(3); // to_out.0.bias missing
    ckpt.push(("to_out.1.weight", Tensor::zeros([1], (Kind::Float, Device::Cpu))));
    let path = save(&ckpt, &dir, "model.safetensors");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _net = model(&vs);
    let err = load_strict(&mut vs, &[&path]).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(
        err,
        WeightsError::KeyMismatch {
            missing_count: 1,
            unexpected_count: 1,
            ..
        }
    ));
    assert!(
        msg.contains("to_out.0.bias") && msg.contains("to_out.1.weight"),
        "{msg}"
    );
}

#[test]
fn a_wrong_shape_names_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = checkpoint();
    ckpt[1].1 = Tensor::zeros([7], (Kind::Float, Device::Cpu));
    let path = save(&ckpt, &dir, "model.safetensors");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _net = model(&vs);
    let msg = load_strict(&mut vs, &[&path]).unwrap_err().to_string();
    assert!(
        msg.contains("proj_in.bias") && msg.contains("[7]") && msg.contains("[8]"),
        "{msg}"
    );
}

#[test]
fn half_precision_checkpoints_convert_to_the_model_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt: Vec<_> = checkpoint()
        .into_iter()
        .map(|(n, t)| (n, t.to_kind(Kind::Half)))
        .collect();
    let path = save(&ckpt, &dir, "model.safetensors");
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _net = model(&vs);
    load_strict(&mut vs, &[&path]).unwrap();
    let loaded = &vs.variables()["proj_in.weight"];
    assert_eq!(loaded.kind(), Kind::Float);
    assert!(loaded.allclose(&ckpt[0].1.to_kind(Kind::Float), 0.0, 0.0, false));
}

#[test]
fn a_missing_or_corrupt_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let _net = model(&vs);
    let absent = dir.path().join("absent.safetensors");
    assert!(matches!(
        load_strict(&mut vs, &[&absent]),
        Err(WeightsError::Read { .. })
    ));
    let corrupt = dir.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x10\0\0\0\0\0\0\0{not json").unwrap();
    assert!(matches!(
        load_strict(&mut vs, &[&corrupt]),
        Err(WeightsError::Read { .. })
    ));
}

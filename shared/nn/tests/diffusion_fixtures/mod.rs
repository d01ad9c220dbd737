//! Helpers shared by the diffusion parity tests: fixture paths, tensors from
//! `expected.safetensors`, and the relative-error check of DESIGN.md §5.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use tch::Tensor;

/// f32 parity tolerance: `max|rust - reference| / max|reference|` (DESIGN.md §5).
pub const TOLERANCE: f64 = 1e-4;

pub fn dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/diffusion")
        .join(name)
}

pub fn weights(name: &str) -> PathBuf {
    dir(name).join("diffusion_pytorch_model.safetensors")
}

/// Tensor `key` of `tests/fixtures/diffusion/{name}/expected.safetensors`.
pub fn expected(name: &str, key: &str) -> Tensor {
    Tensor::read_safetensors(dir(name).join("expected.safetensors"))
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == key)
        .unwrap_or_else(|| panic!("`{key}` missing from {name}/expected.safetensors"))
        .1
}

/// `max|got - want| / max|want|`, after checking the shapes agree.
pub use storyreel_test_support::relative_error;

/// Asserts the relative error is within [`TOLERANCE`] and prints it (`--nocapture`).
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    let err = relative_error(got, want);
    eprintln!("{what}: relative error {err:.3e}");
    assert!(
        err <= TOLERANCE,
        "{what}: relative error {err:.3e} > {TOLERANCE:e}"
    );
}

/// The tensors of `from` with each name passed through `rename` (dropped on `None`),
/// written to `dir/file`.
pub fn rewritten(
    from: &Path,
    dir: &tempfile::TempDir,
    file: &str,
    rename: impl Fn(&str) -> Option<String>,
) -> PathBuf {
    let tensors: Vec<(String, Tensor)> = Tensor::read_safetensors(from)
        .unwrap()
        .into_iter()
        .filter_map(|(n, t)| rename(&n).map(|n| (n, t)))
        .collect();
    let path = dir.path().join(file);
    Tensor::write_safetensors(&tensors, &path).unwrap();
    path
}

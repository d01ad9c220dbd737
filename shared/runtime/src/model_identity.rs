//! The one policy for a served model's identity ([`ModelInfo`]), which canary routing,
//! model pins, stage-cache keys and metric labels all depend on:
//!
//! - `name`: configured, else the model directory's name;
//! - `version`: configured (`model_version`), else the directory's `.stamp` that
//!   `make models` writes (the pinned package and conversion recipe, whitespace as `+`),
//!   else `sha-` and the first 12 hex digits of the digest;
//! - `weights_sha256`: the SHA-256 of the weight files below the directory (by extension:
//!   [`WEIGHT_EXTENSIONS`]): of the file itself when there is one (what `sha256sum`
//!   prints), else one SHA-256 over all of them in sorted relative-path order, each as its
//!   path and its own SHA-256. Configs and tokenizers are covered by the version: the
//!   stamp names the package and the conversion recipe;
//! - a composite model (a pipeline of several) has its parts as `components`, and a digest
//!   over theirs.

use crate::model::{ModelInfo, sha256_file};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The configured parts of an identity: both optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityOverrides<'a> {
    pub name: Option<&'a str>,
    pub version: Option<&'a str>,
}

/// A model directory that cannot be identified.
#[derive(Debug, thiserror::Error)]
#[error(
    "reading the model directory {path}: {source} (run `make models`, or point the config at a converted model)"
)]
pub struct ModelDirError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The identity of the model in `dir` (see the module docs).
pub fn identify_model_dir(dir: &Path, overrides: IdentityOverrides<'_>) -> Result<ModelInfo, ModelDirError> {
    let digest = dir_digest(dir)?;
    let name = match overrides.name {
        Some(name) => name.to_string(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into()),
    };
    let version = match overrides.version.filter(|v| !v.is_empty()) {
        Some(version) => version.to_string(),
        None => stamp_version(dir).unwrap_or_else(|| format!("sha-{}", &digest[..12])),
    };
    Ok(ModelInfo {
        name,
        version,
        weights_sha256: digest,
        components: Vec::new(),
        random_init: is_random_init(dir),
    })
}

/// The file whose presence marks a model directory's weights as random-initialised.
pub const RANDOM_INIT_MARKER: &str = ".random-init";

/// True when `dir`, or the pipeline directory holding it, carries [`RANDOM_INIT_MARKER`].
pub fn is_random_init(dir: &Path) -> bool {
    dir.join(RANDOM_INIT_MARKER).is_file()
        || dir
            .parent()
            .is_some_and(|parent| parent.join(RANDOM_INIT_MARKER).is_file())
}

/// A model made of `components` (in a fixed order): version configured, else the
/// components' versions joined by `/`; digest over the components' digests.
pub fn composite(name: &str, version: Option<&str>, components: Vec<ModelInfo>) -> ModelInfo {
    let mut hasher = Sha256::new();
    for part in &components {
        hasher.update(part.name.as_bytes());
        hasher.update([0]);
        hasher.update(part.weights_sha256.as_bytes());
        hasher.update([b'\n']);
    }
    let version = match version.filter(|v| !v.is_empty()) {
        Some(v) => v.to_string(),
        None => components
            .iter()
            .map(|c| c.version.as_str())
            .collect::<Vec<_>>()
            .join("/"),
    };
    ModelInfo {
        name: name.to_string(),
        version,
        weights_sha256: hex::encode(hasher.finalize()),
        random_init: components.iter().any(|c| c.random_init),
        components,
    }
}

/// The version of the model in `dir` by the policy, without a digest to fall back on:
/// `configured` when non-empty, else the directory's stamp.
pub fn configured_or_stamped(dir: &Path, configured: Option<&str>) -> Option<String> {
    match configured.filter(|v| !v.is_empty()) {
        Some(version) => Some(version.to_string()),
        None => stamp_version(dir),
    }
}

/// The first line of `dir/.stamp`, whitespace runs as `+`.
fn stamp_version(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(".stamp")).ok()?;
    let line = text
        .lines()
        .next()?
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("+");
    (!line.is_empty()).then_some(line)
}

/// What counts as a weight file.
pub const WEIGHT_EXTENSIONS: &[&str] = &[
    "safetensors",
    "bin",
    "pt",
    "pth",
    "ckpt",
    "onnx",
    "gguf",
    "pkl",
    "param",
    "h5",
    "msgpack",
];

/// The weights digest of `dir`: see the module docs.
pub fn dir_digest(dir: &Path) -> Result<String, ModelDirError> {
    let error = |path: &Path, source| ModelDirError {
        path: path.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    collect_files(dir, Path::new(""), &mut files).map_err(|e| error(dir, e))?;
    if files.is_empty() {
        return Err(error(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no weight files in it"),
        ));
    }
    if let [only] = files.as_slice() {
        let path = dir.join(only);
        return sha256_file(&path).map_err(|e| error(&path, e));
    }
    files.sort();
    let mut hasher = Sha256::new();
    for relative in files {
        let path = dir.join(&relative);
        let digest = sha256_file(&path).map_err(|e| error(&path, e))?;
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(digest.as_bytes());
        hasher.update([b'\n']);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn collect_files(root: &Path, relative: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str.starts_with('.') || name_str == "sha256sums" {
            continue;
        }
        let path = relative.join(&name);
        // follows links: a model directory may link its weights from a shared cache
        let meta = std::fs::metadata(root.join(&path))?;
        if meta.is_dir() {
            collect_files(root, &path, out)?;
        } else if meta.is_file()
            && path
                .extension()
                .is_some_and(|x| WEIGHT_EXTENSIONS.iter().any(|w| x == *w))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.safetensors"), b"weights").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/config.json"), b"{}").unwrap();
        dir
    }

    #[test]
    fn the_version_comes_from_config_then_stamp_then_digest() {
        let dir = model_dir();
        let plain = identify_model_dir(dir.path(), IdentityOverrides::default()).unwrap();
        assert_eq!(plain.version, format!("sha-{}", &plain.weights_sha256[..12]));
        std::fs::write(dir.path().join(".stamp"), "pkg==1.0 recipe=2\n").unwrap();
        let stamped = identify_model_dir(dir.path(), IdentityOverrides::default()).unwrap();
        assert_eq!(stamped.version, "pkg==1.0+recipe=2");
        // the stamp is not part of the digest
        assert_eq!(stamped.weights_sha256, plain.weights_sha256);
        let configured = identify_model_dir(
            dir.path(),
            IdentityOverrides {
                name: Some("m"),
                version: Some("canary-7"),
            },
        )
        .unwrap();
        assert_eq!(
            (configured.name.as_str(), configured.version.as_str()),
            ("m", "canary-7")
        );
    }

    #[test]
    fn the_digest_is_the_weight_file_s_or_covers_every_weight_file() {
        let dir = model_dir();
        let single = dir_digest(dir.path()).unwrap();
        assert_eq!(
            single,
            sha256_file(&dir.path().join("model.safetensors")).unwrap()
        );
        std::fs::write(dir.path().join("sub/config.json"), b"{\"a\":1}").unwrap();
        assert_eq!(dir_digest(dir.path()).unwrap(), single);
        std::fs::write(dir.path().join("sub/extra.bin"), b"more").unwrap();
        let both = dir_digest(dir.path()).unwrap();
        assert_ne!(both, single);
        std::fs::write(dir.path().join("sub/extra.bin"), b"other").unwrap();
        assert_ne!(dir_digest(dir.path()).unwrap(), both);
    }

    #[test]
    fn a_missing_directory_names_the_path_and_the_fix() {
        let err =
            identify_model_dir(Path::new("/nonexistent/model"), IdentityOverrides::default()).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("/nonexistent/model") && message.contains("make models"),
            "{message}"
        );
    }

    #[test]
    fn a_composite_lists_its_parts() {
        let part = |name: &str, version: &str| ModelInfo {
            name: name.into(),
            version: version.into(),
            weights_sha256: "0".repeat(64),
            components: Vec::new(),
            random_init: false,
        };
        let whole = composite("keyframe", None, vec![part("unet", "a"), part("vae", "b")]);
        assert_eq!(whole.version, "a/b");
        assert_eq!(whole.components.len(), 2);
        assert_eq!(whole.weights_sha256.len(), 64);
    }
}

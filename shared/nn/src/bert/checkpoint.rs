//! What a BERT checkpoint holds besides the encoder proper.
//!
//! Published BERT checkpoints differ in a few optional parts: a `bert.` prefix (files saved
//! from `BertFor*` heads), the pooler (`pooler.dense`, present in all-MiniLM-L6-v2), and the
//! `embeddings.position_ids` / `embeddings.token_type_ids` buffers that transformers 4.x
//! saved (all-MiniLM-L6-v2 has `position_ids`, int64 `[1, 512]`). [`BertLayout`] reads the
//! tensor names from the safetensors headers and the model declares exactly those parts, so
//! that [`crate::weights::load_strict`] still rejects anything else (a masked-LM head, a
//! renamed layer) by name.

use std::{collections::BTreeSet, path::Path};

use super::BertError;
use crate::weights::safetensors_names;

/// The optional parts of a BERT checkpoint; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BertLayout {
    /// `Some("bert")` when the tensor names start with `bert.`.
    pub prefix: Option<String>,
    /// The checkpoint has `pooler.dense.{weight,bias}`.
    pub pooler: bool,
    /// The checkpoint has the `embeddings.position_ids` buffer. Its values are not used:
    /// positions are `0..seq_len`, as transformers 5 computes them.
    pub position_ids: bool,
    /// The checkpoint has the `embeddings.token_type_ids` buffer (not used either).
    pub token_type_ids: bool,
}

impl BertLayout {
    /// The layout of a checkpoint with these tensor names.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let names: BTreeSet<&str> = names.into_iter().collect();
        let prefix = names
            .iter()
            .any(|n| n.starts_with("bert."))
            .then(|| "bert".to_string());
        let p = prefix.as_deref().map(|p| format!("{p}.")).unwrap_or_default();
        let has = |name: &str| names.contains(format!("{p}{name}").as_str());
        BertLayout {
            pooler: has("pooler.dense.weight"),
            position_ids: has("embeddings.position_ids"),
            token_type_ids: has("embeddings.token_type_ids"),
            prefix,
        }
    }

    /// The layout of the checkpoint in these safetensors files (headers only are read).
    pub fn from_files(files: &[impl AsRef<Path>]) -> Result<Self, BertError> {
        let mut names = Vec::new();
        for file in files {
            names.extend(
                safetensors_names(file.as_ref())
                    .map_err(|(path, message)| BertError::Safetensors { path, message })?,
            );
        }
        Ok(Self::from_names(names.iter().map(String::as_str)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_prefix_pooler_and_buffers() {
        let plain = BertLayout::from_names([
            "embeddings.word_embeddings.weight",
            "embeddings.position_ids",
            "pooler.dense.weight",
            "pooler.dense.bias",
        ]);
        assert_eq!(
            plain,
            BertLayout {
                prefix: None,
                pooler: true,
                position_ids: true,
                token_type_ids: false,
            }
        );
        let prefixed = BertLayout::from_names([
            "bert.embeddings.word_embeddings.weight",
            "bert.embeddings.token_type_ids",
            "cls.predictions.bias",
        ]);
        assert_eq!(prefixed.prefix.as_deref(), Some("bert"));
        assert!(!prefixed.pooler && !prefixed.position_ids && prefixed.token_type_ids);
    }

    #[test]
    fn a_truncated_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.safetensors");
        std::fs::write(&path, [200u8, 0, 0, 0, 0, 0, 0, 0, b'{']).unwrap();
        let (p, message) = safetensors_names(&path).unwrap_err();
        assert_eq!(p, path);
        assert!(message.contains("200-byte header"), "{message}");
    }
}

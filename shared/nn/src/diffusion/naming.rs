//! The two attention key namings found in diffusers checkpoints.
//!
//! Current files name an attention's projections `to_q`, `to_k`, `to_v` and `to_out.0`.
//! Files written before diffusers 0.14 use `query`, `key`, `value` and `proj_attn` for the
//! attention blocks of the VAE and of the mid blocks (diffusers renames them on load,
//! `_convert_deprecated_attention_blocks`). We read which one a file uses from its header
//! and declare exactly those names, so that loading stays strict.

use std::path::Path;

use super::DiffusionError;
use crate::weights::safetensors_names;

/// Which names an attention's projections carry in the checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AttentionNaming {
    /// `to_q`, `to_k`, `to_v`, `to_out.0`.
    #[default]
    Current,
    /// `query`, `key`, `value`, `proj_attn`.
    Legacy,
}

impl AttentionNaming {
    /// `Legacy` when any name ends in a legacy projection name, else `Current`.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let legacy = names.into_iter().any(|n| {
            [
                ".query.weight",
                ".key.weight",
                ".value.weight",
                ".proj_attn.weight",
            ]
            .iter()
            .any(|suffix| n.ends_with(suffix))
        });
        if legacy {
            AttentionNaming::Legacy
        } else {
            AttentionNaming::Current
        }
    }

    /// The naming of the checkpoint in these safetensors files (headers only are read).
    pub fn from_files(files: &[impl AsRef<Path>]) -> Result<Self, DiffusionError> {
        let mut names = Vec::new();
        for file in files {
            names.extend(
                safetensors_names(file.as_ref())
                    .map_err(|(path, message)| DiffusionError::Safetensors { path, message })?,
            );
        }
        Ok(Self::from_names(names.iter().map(String::as_str)))
    }

    /// The path segments of the query, key, value and output projections.
    pub(crate) fn segments(self) -> [&'static [&'static str]; 4] {
        match self {
            AttentionNaming::Current => [&["to_q"], &["to_k"], &["to_v"], &["to_out", "0"]],
            AttentionNaming::Legacy => [&["query"], &["key"], &["value"], &["proj_attn"]],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_either_naming() {
        let current = [
            "mid_block.attentions.0.to_q.weight",
            "mid_block.attentions.0.to_out.0.weight",
        ];
        assert_eq!(AttentionNaming::from_names(current), AttentionNaming::Current);
        let legacy = [
            "mid_block.attentions.0.query.weight",
            "mid_block.attentions.0.proj_attn.bias",
        ];
        assert_eq!(AttentionNaming::from_names(legacy), AttentionNaming::Legacy);
    }
}

//! Paths in config files: `${NAME}` environment references, expanded when the config is
//! loaded. `${STORYREEL_CACHE}` falls back to `$HOME/.cache/storyreel`, as in the
//! Makefile, so defaults such as `${STORYREEL_CACHE}/models/<name>` point where
//! `make models` puts the weights.

use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// A path field with `${NAME}` expanded at load (`#[serde(deserialize_with = ...)]`).
pub fn deserialize_expanded_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let raw = String::deserialize(d)?;
    expand_vars(&raw, env_lookup)
        .map(PathBuf::from)
        .map_err(serde::de::Error::custom)
}

/// A built-in default path, expanded now. Defaults must only name variables that always
/// resolve (`STORYREEL_CACHE`, `HOME`); one that does not is kept unexpanded, so loading
/// does not fail before the config names the path.
pub fn expanded_default(template: &str) -> PathBuf {
    PathBuf::from(expand_vars(template, env_lookup).unwrap_or_else(|_| template.into()))
}

/// The process environment, with the cache default of the Makefile.
pub fn env_lookup(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if name == "STORYREEL_CACHE" => std::env::var("HOME")
            .ok()
            .map(|home| format!("{home}/.cache/storyreel")),
        _ => None,
    }
}

/// Replaces every `${NAME}` in `text` with `lookup(NAME)`; an unset variable or an
/// unterminated `${` is an error naming it.
pub fn expand_vars(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in `{text}`"))?;
        let name = &after[..end];
        if name.is_empty() {
            return Err(format!("empty `${{}}` in `{text}`"));
        }
        let value = lookup(name)
            .ok_or_else(|| format!("environment variable `{name}` (used in `{text}`) is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_variables() {
        let lookup = |name: &str| match name {
            "A" => Some("/a".to_string()),
            "B" => Some("b".to_string()),
            _ => None,
        };
        assert_eq!(expand_vars("${A}/x/${B}", lookup).unwrap(), "/a/x/b");
        assert_eq!(expand_vars("plain/path", lookup).unwrap(), "plain/path");
        assert!(expand_vars("${C}/x", lookup).unwrap_err().contains("`C`"));
        assert!(expand_vars("${A", lookup).unwrap_err().contains("unterminated"));
        assert!(expand_vars("${}", lookup).unwrap_err().contains("empty"));
    }

    #[test]
    fn the_cache_default_resolves() {
        let path = expanded_default("${STORYREEL_CACHE}/models/x");
        assert!(!path.to_string_lossy().contains("${"), "{path:?}");
    }
}

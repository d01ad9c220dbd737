//! The key schema of DESIGN.md §4.
//!
//! - scene tensors: `{prefix}:{job}:{stage}:{scene}:{name}`
//! - cache manifests: `{prefix}:cache:{sha256 hex}` (see [`crate::cache_key`])
//! - cache tensors: `{prefix}:cache:{sha256 hex}:{name}:{xxh3 hex}`
//!
//! Every component is 1-128 characters of `[A-Za-z0-9_.-]`, so no input can smuggle a `:`
//! and forge another job's key. The job ids `cache` and `job` are reserved: `cache` holds
//! the content-addressed entries and `job` the gateway's job state (`{prefix}:job:{id}`).

use std::fmt;

use crate::codec::CHECKSUM_PREFIX;
use crate::error::{Error, Result};

/// Default first component of every key.
pub const DEFAULT_PREFIX: &str = "storyreel";
/// Longest allowed component.
pub const MAX_COMPONENT_LEN: usize = 128;
/// Job ids that would collide with other namespaces under the prefix.
pub const RESERVED_JOB_IDS: [&str; 2] = ["cache", "job"];

pub(crate) const CACHE_SEGMENT: &str = "cache";

/// Builds and parses keys under one prefix. Each store has one (`TensorStore::keys`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeySchema {
    prefix: String,
}

/// A validated key of a stored tensor (a scene tensor or a cache tensor).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorKey(String);

impl KeySchema {
    /// A schema under `prefix` (itself a component: no `:`).
    pub fn new(prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        validate_component("key_prefix", &prefix)?;
        Ok(KeySchema { prefix })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}:{job}:{stage}:{scene}:{name}`; `scene` may be an index (`3`) or a label
    /// (`ref`).
    pub fn tensor(&self, job: &str, stage: &str, scene: impl fmt::Display, name: &str) -> Result<TensorKey> {
        validate_component("job", job)?;
        if RESERVED_JOB_IDS.contains(&job) {
            return Err(Error::invalid(
                "job",
                format!("{job:?} is reserved (reserved ids: {RESERVED_JOB_IDS:?})"),
            ));
        }
        validate_component("stage", stage)?;
        let scene = scene.to_string();
        validate_component("scene", &scene)?;
        validate_component("name", name)?;
        Ok(TensorKey(format!("{}:{job}:{stage}:{scene}:{name}", self.prefix)))
    }

    /// Parse a key that came from outside (a `TensorRef.key` in a request): it must be a
    /// scene tensor key or a cache tensor key under this prefix.
    pub fn parse(&self, key: &str) -> Result<TensorKey> {
        let bad = |reason: String| Error::invalid("key", format!("{key:?} {reason}"));
        let rest = key
            .strip_prefix(self.prefix.as_str())
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(|| bad(format!("does not start with \"{}:\"", self.prefix)))?;
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() != 4 {
            return Err(bad(format!(
                "has {} components after the prefix, expected 4",
                parts.len()
            )));
        }
        for (field, part) in ["job", "stage", "scene", "name"].into_iter().zip(&parts) {
            validate_component(field, part)?;
        }
        let job = parts[0];
        let cache_ok = is_lower_hex(parts[1], 64) && is_lower_hex(parts[3], 32);
        if job == CACHE_SEGMENT && !cache_ok {
            return Err(bad(
                "is not a cache tensor key (cache:<64 hex>:<name>:<32 hex>)".to_string()
            ));
        }
        if job != CACHE_SEGMENT && RESERVED_JOB_IDS.contains(&job) {
            return Err(bad(format!("uses the reserved job id {job:?}")));
        }
        Ok(TensorKey(key.to_string()))
    }

    /// Key of a cache tensor: named by its content so a losing writer never overwrites the
    /// winner's bytes.
    pub(crate) fn cache_tensor(&self, digest: &str, name: &str, checksum: &str) -> Result<TensorKey> {
        validate_component("name", name)?;
        let hash = checksum.strip_prefix(CHECKSUM_PREFIX).unwrap_or(checksum);
        Ok(TensorKey(format!(
            "{}:{CACHE_SEGMENT}:{digest}:{name}:{hash}",
            self.prefix
        )))
    }

    /// Check that `key` was made under this prefix (keys from another schema are refused).
    pub(crate) fn owns(&self, key: &TensorKey) -> Result<()> {
        let ok = key
            .0
            .strip_prefix(self.prefix.as_str())
            .is_some_and(|r| r.starts_with(':'));
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "key",
                format!("{} is not under this store's prefix \"{}\"", key, self.prefix),
            ))
        }
    }
}

impl Default for KeySchema {
    fn default() -> Self {
        KeySchema {
            prefix: DEFAULT_PREFIX.to_string(),
        }
    }
}

impl TensorKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for TensorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TensorKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Non-empty, at most [`MAX_COMPONENT_LEN`] characters of `[A-Za-z0-9_.-]`.
pub fn validate_component(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_COMPONENT_LEN {
        return Err(Error::invalid(
            field,
            format!(
                "is {} characters, over the limit of {MAX_COMPONENT_LEN}",
                value.len()
            ),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Error::invalid(
            field,
            format!("{value:?} contains {c:?}; allowed: A-Z a-z 0-9 _ . -"),
        ));
    }
    Ok(())
}

pub(crate) fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k() -> KeySchema {
        KeySchema::default()
    }

    #[test]
    fn builds_the_documented_layout() {
        let key = k().tensor("job-42", "keyframe", 3, "latents").unwrap();
        assert_eq!(key.as_str(), "storyreel:job-42:keyframe:3:latents");
        let other = KeySchema::new("sr-test").unwrap();
        let key = other.tensor("j", "s", "ref", "x.y_z").unwrap();
        assert_eq!(key.to_string(), "sr-test:j:s:ref:x.y_z");
        assert_eq!(other.parse(key.as_str()).unwrap(), key);
    }

    #[test]
    fn rejects_bad_components() {
        let long = "a".repeat(MAX_COMPONENT_LEN + 1);
        let cases: [(&str, &str, &str, &str, &str); 7] = [
            ("", "s", "0", "n", "invalid job: must not be empty"),
            ("j:x", "s", "0", "n", "invalid job: \"j:x\" contains ':'"),
            ("j", "s/t", "0", "n", "invalid stage"),
            ("j", "s", "0 ", "n", "invalid scene"),
            ("j", "s", "0", "é", "invalid name"),
            ("j", "s", "0", &long, "is 129 characters, over the limit of 128"),
            ("cache", "s", "0", "n", "invalid job: \"cache\" is reserved"),
        ];
        for (job, stage, scene, name, msg) in cases {
            let e = k().tensor(job, stage, scene, name).unwrap_err();
            assert!(e.to_string().contains(msg), "{e} lacks {msg}");
            assert_eq!(e.code(), crate::ErrorCode::Validation);
        }
        assert!(k().tensor("job", "s", "0", "n").is_err());
        assert!(KeySchema::new("a:b").is_err());
        assert!(KeySchema::new("").is_err());
    }

    #[test]
    fn parse_refuses_foreign_and_forged_keys() {
        let s = k();
        for bad in [
            "other:j:s:0:n",
            "storyreel:j:s:0",
            "storyreel:j:s:0:n:extra",
            "storyreel:j:s::n",
            "storyreel:job:s:0:n",
            "storyreel:cache:abc:n:def",
            "storyreelx:j:s:0:n",
            "storyreel",
            "",
        ] {
            assert!(s.parse(bad).is_err(), "{bad} parsed");
        }
        let digest = "0".repeat(64);
        let sum = format!("xxh3-128:{}", "a".repeat(32));
        let key = s.cache_tensor(&digest, "frames", &sum).unwrap();
        assert_eq!(
            key.as_str(),
            format!("storyreel:cache:{digest}:frames:{}", "a".repeat(32))
        );
        assert_eq!(s.parse(key.as_str()).unwrap(), key);
    }

    #[test]
    fn owns_checks_the_prefix() {
        let a = KeySchema::new("a").unwrap();
        let ab = KeySchema::new("ab").unwrap();
        let key = ab.tensor("j", "s", 0, "n").unwrap();
        assert!(ab.owns(&key).is_ok());
        assert!(a.owns(&key).is_err());
    }
}

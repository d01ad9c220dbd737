//! API keys: a caller sends `authorization: Bearer <key>`; the gateway knows only the
//! keys' SHA-256 digests (config `[[gateway.api_keys]]`), hashes what it is sent and
//! compares it with every digest in constant time, so neither the stored keys nor the
//! timing of a comparison reveal a key. The digest is the caller's identity: jobs are
//! owned by it, and quotas count by it.

use crate::gateway_config::ApiKeyConfig;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// SHA-256 of the key, hex: the owner of the caller's jobs.
    pub owner: String,
    /// The key's name in the config (logs, metrics).
    pub name: String,
    pub max_concurrent_jobs: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing `authorization: Bearer <API key>` metadata")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
}

/// The configured keys.
#[derive(Debug, Clone)]
pub struct ApiKeys {
    keys: Vec<([u8; 32], ApiKeyConfig)>,
}

/// SHA-256 of a key, hex (what the config stores).
pub fn key_digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeys {
    pub fn new(configs: &[ApiKeyConfig]) -> Self {
        let keys = configs
            .iter()
            .filter_map(|c| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(&c.sha256, &mut digest).ok()?;
                Some((digest, c.clone()))
            })
            .collect();
        Self { keys }
    }

    /// The caller of an `authorization` value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let key = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::Missing)?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every configured key is compared, whatever matches, in constant time.
        let mut found = None;
        for (stored, config) in &self.keys {
            if bool::from(stored.ct_eq(&digest)) {
                found = Some(config);
            }
        }
        let config = found.ok_or(AuthError::Invalid)?;
        Ok(Caller {
            owner: config.sha256.to_ascii_lowercase(),
            name: config.name.clone(),
            max_concurrent_jobs: config.max_concurrent_jobs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_key_authenticates() {
        let keys = ApiKeys::new(&[ApiKeyConfig {
            name: "batch".into(),
            sha256: key_digest("s3cret"),
            max_concurrent_jobs: 2,
        }]);
        let caller = keys.authenticate(Some("Bearer s3cret")).unwrap();
        assert_eq!(caller.owner, key_digest("s3cret"));
        assert_eq!(caller.max_concurrent_jobs, 2);
        assert_eq!(keys.authenticate(None), Err(AuthError::Missing));
        assert_eq!(keys.authenticate(Some("s3cret")), Err(AuthError::Missing));
        assert_eq!(keys.authenticate(Some("Bearer ")), Err(AuthError::Missing));
        assert_eq!(keys.authenticate(Some("Bearer other")), Err(AuthError::Invalid));
    }
}

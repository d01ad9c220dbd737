//! Store configuration (the `[tensors]` table of a service config) and its validation.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{DEFAULT_PREFIX, validate_component};

/// Longest accepted TTL: 30 days. Tensors are intermediate results, not an archive.
pub const MAX_TTL_SECS: u64 = 30 * 24 * 3600;
/// Redis refuses bulk strings over 512 MiB (`proto-max-bulk-len`).
pub const MAX_VALUE_BYTES_LIMIT: usize = 512 << 20;

/// Which backend [`crate::open_store`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Redis (mesh and cluster modes).
    Redis,
    /// A process-local map (embedded mode, tests).
    Memory,
}

/// Settings shared by both backends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: Backend,
    /// First component of every key.
    pub key_prefix: String,
    /// TTL of a put without an explicit one (default 24 h).
    pub default_ttl_secs: u64,
    /// Largest encoded tensor accepted by put (default 256 MiB).
    pub max_value_bytes: usize,
    pub redis: RedisConfig,
}

/// Redis connection settings.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port/db` (or `rediss://` for TLS).
    pub url: String,
    /// ACL user for AUTH (Redis 6+); none means the default user.
    pub username: Option<String>,
    /// AUTH password; none means no AUTH.
    pub password: Option<String>,
    /// Connect with TLS (needs the crate feature `tls`); turns `redis://` into `rediss://`.
    pub tls: bool,
    /// PEM file of the CA that signed the server's certificate; none uses the system roots.
    pub ca_file: Option<PathBuf>,
    /// Bound on establishing the connection, AUTH and the first PING.
    pub connect_timeout_ms: u64,
    /// Bound on one command's reply (large values need time).
    pub response_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            backend: Backend::Redis,
            key_prefix: DEFAULT_PREFIX.to_string(),
            default_ttl_secs: 24 * 3600,
            max_value_bytes: 256 << 20,
            redis: RedisConfig::default(),
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".to_string(),
            username: None,
            password: None,
            tls: false,
            ca_file: None,
            connect_timeout_ms: 5_000,
            response_timeout_ms: 30_000,
        }
    }
}

// Hand-written so passwords never reach a log line.
impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = if self.url.contains('@') {
            "<redacted: has credentials>"
        } else {
            self.url.as_str()
        };
        f.debug_struct("RedisConfig")
            .field("url", &url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("ca_file", &self.ca_file)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("response_timeout_ms", &self.response_timeout_ms)
            .finish()
    }
}

impl StoreConfig {
    /// A memory-backend config with defaults (embedded mode, tests).
    pub fn memory() -> Self {
        StoreConfig {
            backend: Backend::Memory,
            ..StoreConfig::default()
        }
    }

    /// A Redis-backend config for `url` with defaults.
    pub fn redis(url: impl Into<String>) -> Self {
        let mut cfg = StoreConfig::default();
        cfg.redis.url = url.into();
        cfg
    }

    pub fn default_ttl(&self) -> Duration {
        Duration::from_secs(self.default_ttl_secs)
    }

    /// Check every field; messages name the field and its limit.
    pub fn validate(&self) -> Result<()> {
        validate_component("key_prefix", &self.key_prefix)?;
        in_range("default_ttl_secs", self.default_ttl_secs, 1, MAX_TTL_SECS)?;
        in_range(
            "max_value_bytes",
            self.max_value_bytes as u64,
            1,
            MAX_VALUE_BYTES_LIMIT as u64,
        )?;
        if self.backend == Backend::Redis {
            self.redis.validate()?;
        }
        Ok(())
    }
}

impl RedisConfig {
    pub fn validate(&self) -> Result<()> {
        let schemes = ["redis://", "rediss://", "unix://", "redis+unix://"];
        if !schemes.iter().any(|s| self.url.starts_with(s)) {
            return Err(Error::invalid(
                "redis.url",
                format!("must start with one of {schemes:?}"),
            ));
        }
        in_range("redis.connect_timeout_ms", self.connect_timeout_ms, 1, 120_000)?;
        in_range("redis.response_timeout_ms", self.response_timeout_ms, 1, 600_000)?;
        if self.username.is_some() && self.password.is_none() {
            return Err(Error::invalid(
                "redis.username",
                "is set but redis.password is not (AUTH needs both)",
            ));
        }
        let wants_tls = self.tls || self.url.starts_with("rediss://");
        if wants_tls && !cfg!(feature = "tls") {
            return Err(Error::invalid(
                "redis.tls",
                "needs storyreel-tensors built with the cargo feature \"tls\"",
            ));
        }
        if self.ca_file.is_some() && !wants_tls {
            return Err(Error::invalid(
                "redis.ca_file",
                "is set but TLS is off (set redis.tls = true)",
            ));
        }
        Ok(())
    }

    /// The URL to connect to, with `rediss://` when `tls` is set.
    pub(crate) fn effective_url(&self) -> String {
        match (self.tls, self.url.strip_prefix("redis://")) {
            (true, Some(rest)) => format!("rediss://{rest}"),
            _ => self.url.clone(),
        }
    }
}

fn in_range(field: &'static str, value: u64, min: u64, max: u64) -> Result<()> {
    if value < min || value > max {
        return Err(Error::invalid(
            field,
            format!("{value} is outside the allowed range {min}..={max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let c = StoreConfig::default();
        c.validate().unwrap();
        assert_eq!(c.default_ttl(), Duration::from_secs(86_400));
        assert_eq!(c.key_prefix, "storyreel");
        StoreConfig::memory().validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = serde_json::from_str::<StoreConfig>(r#"{"default_ttl": 5}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `default_ttl`"), "{e}");
        let e = serde_json::from_str::<StoreConfig>(r#"{"redis": {"pasword": "x"}}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `pasword`"), "{e}");
        let c: StoreConfig =
            serde_json::from_str(r#"{"backend": "memory", "redis": {"password": "x"}}"#).unwrap();
        assert_eq!(c.backend, Backend::Memory);
        assert_eq!(c.redis.password.as_deref(), Some("x"));
    }

    #[test]
    fn validation_names_field_and_limit() {
        let c = StoreConfig {
            default_ttl_secs: 0,
            ..StoreConfig::default()
        };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "invalid default_ttl_secs: 0 is outside the allowed range 1..=2592000"
        );
        let c = StoreConfig {
            max_value_bytes: MAX_VALUE_BYTES_LIMIT + 1,
            ..StoreConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("max_value_bytes"));
        let mut c = StoreConfig::default();
        c.redis.url = "http://x".into();
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("invalid redis.url")
        );
        let mut c = StoreConfig::default();
        c.redis.connect_timeout_ms = 0;
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("redis.connect_timeout_ms")
        );
        let mut c = StoreConfig::default();
        c.redis.username = Some("u".into());
        assert!(c.validate().unwrap_err().to_string().contains("redis.password"));
        let c = StoreConfig {
            key_prefix: "a:b".into(),
            ..StoreConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .starts_with("invalid key_prefix")
        );
    }

    #[test]
    fn tls_needs_the_feature_and_rewrites_the_scheme() {
        let mut c = StoreConfig::default();
        c.redis.tls = true;
        assert_eq!(c.redis.effective_url(), "rediss://127.0.0.1:6379");
        assert_eq!(c.validate().is_ok(), cfg!(feature = "tls"));
        let mut c = StoreConfig::default();
        c.redis.ca_file = Some("/ca.pem".into());
        assert!(c.validate().unwrap_err().to_string().contains("redis.ca_file"));
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = RedisConfig {
            password: Some("hunter2".into()),
            url: "redis://:hunter2@host:6379".into(),
            ..RedisConfig::default()
        };
        let s = format!("{c:?}");
        assert!(!s.contains("hunter2"), "{s}");
    }
}

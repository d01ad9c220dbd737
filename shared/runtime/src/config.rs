//! Layered configuration (DESIGN.md §4), lowest to highest precedence:
//!
//! 1. built-in defaults: the service config's `Default` / serde defaults;
//! 2. `{dir}/default.toml`, table `[<service>]`;
//! 3. `{dir}/{profile}.toml`, table `[<service>]` (profile from `STORYREEL_PROFILE`);
//! 4. environment `STORYREEL_<SERVICE>__<KEY>[__<SUBKEY>]`, e.g.
//!    `STORYREEL_KEYFRAME__SERVER__LISTEN=0.0.0.0:50051`.
//!
//! Service configs use `#[serde(deny_unknown_fields)]`, so a misspelt key is an error
//! rather than a silently ignored setting. After loading, [`Validate::validate`] checks
//! ranges and names the field and its limit.

use serde::de::DeserializeOwned;
use std::path::PathBuf;

/// Environment variable prefix shared by all services.
pub const ENV_PREFIX: &str = "STORYREEL";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration for `{service}`: {source}")]
    Load {
        service: String,
        source: config::ConfigError,
    },
    #[error("configuration for `{service}`: `{field}`: {message}")]
    Parse {
        service: String,
        field: String,
        message: String,
    },
    #[error("configuration for `{service}`: {source}")]
    Invalid {
        service: String,
        source: ValidationError,
    },
    #[error("configuration profile `{profile}` has no file {path}")]
    MissingProfile { profile: String, path: PathBuf },
}

/// A config or request value outside its allowed range. `field` is the dotted path of the
/// key. As a request error it is INVALID_ARGUMENT.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field with the name of the table it sits in (`server.` + `listen`).
    pub fn within(mut self, table: &str) -> Self {
        self.field = format!("{table}.{}", self.field);
        self
    }
}

impl crate::HasErrorCode for ValidationError {
    fn error_code(&self) -> crate::ErrorCode {
        crate::ErrorCode::Validation
    }
}

/// Range checks on a loaded config.
pub trait Validate {
    fn validate(&self) -> Result<(), ValidationError>;
}

/// `field` must lie in `[min, max]`.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ValidationError> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    // NaN compares as neither: it is outside every range.
    let within = matches!(value.partial_cmp(&min), Some(Greater | Equal))
        && matches!(value.partial_cmp(&max), Some(Less | Equal));
    if !within {
        return Err(ValidationError::new(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

/// Where the layers come from; [`Sources::from_env`] is what binaries use.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Directory holding `default.toml` and `{profile}.toml`.
    pub dir: PathBuf,
    /// Optional profile name (`dev`, `prod`, `ci` ...).
    pub profile: Option<String>,
    /// Environment variables to read; `None` reads the process environment.
    pub env: Option<Vec<(String, String)>>,
}

impl Sources {
    /// `STORYREEL_CONFIG_DIR` (default `config`) and `STORYREEL_PROFILE`.
    pub fn from_env() -> Self {
        Self {
            dir: std::env::var_os("STORYREEL_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| "config".into()),
            profile: std::env::var("STORYREEL_PROFILE").ok().filter(|p| !p.is_empty()),
            env: None,
        }
    }
}

/// Loads the `[service]` table of every layer into `T` and validates it.
/// `service` is the snake_case service name (`story_llm`, `keyframe`).
pub fn load<T>(service: &str, sources: &Sources) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Default + serde::Serialize + Validate,
{
    let load_err = |source| ConfigError::Load {
        service: service.to_string(),
        source,
    };
    // Layer 1: the defaults, serialised so later layers override them key by key.
    let defaults = config::Config::try_from(&Wrapped {
        service,
        value: T::default(),
    })
    .map_err(load_err)?;
    let mut builder = config::Config::builder().add_source(defaults);
    builder = builder.add_source(config::File::from(sources.dir.join("default.toml")).required(false));
    if let Some(profile) = &sources.profile {
        let path = sources.dir.join(format!("{profile}.toml"));
        if !path.exists() {
            return Err(ConfigError::MissingProfile {
                profile: profile.clone(),
                path,
            });
        }
        builder = builder.add_source(config::File::from(path));
    }
    let mut env = config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true);
    if let Some(vars) = &sources.env {
        env = env.source(Some(vars.iter().cloned().collect()));
    }
    let merged = builder.add_source(env).build().map_err(load_err)?;
    // Deserialise through serde_path_to_error so a type error names the exact key.
    let table: config::Value = merged.get(service).map_err(load_err)?;
    let value: T = serde_path_to_error::deserialize(table).map_err(|e| ConfigError::Parse {
        service: service.to_string(),
        field: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    value.validate().map_err(|source| ConfigError::Invalid {
        service: service.to_string(),
        source,
    })?;
    Ok(value)
}

/// `{ <service>: value }`, the shape every layer has.
struct Wrapped<'a, T> {
    service: &'a str,
    value: T,
}

impl<T: serde::Serialize> serde::Serialize for Wrapped<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.service, &self.value)?;
        map.end()
    }
}

/// A secret config value (API key, password): its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

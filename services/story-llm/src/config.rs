//! The `[story_llm]` configuration table (DESIGN.md §4): built-in defaults here, overridden
//! by `config/default.toml`, `config/{profile}.toml` and `STORYREEL_STORY_LLM__<KEY>`.
//!
//! `model_dir` may name environment variables as `${NAME}`; they are expanded when the
//! config is loaded (deserialised). `${STORYREEL_CACHE}` falls back to
//! `$HOME/.cache/storyreel`, as in the Makefile, so the default
//! `${STORYREEL_CACHE}/models/smollm2-135m-instruct` is where `make models` puts SmolLM2.

use serde::{Deserialize, Deserializer, Serialize};
use std::path::PathBuf;
use storyreel_runtime::{
    ServerConfig, Validate, ValidationError, config::check_range, telemetry::TelemetryConfig,
};

/// Where `model_dir` points unless configured; `${STORYREEL_CACHE}` is expanded at load.
pub const DEFAULT_MODEL_DIR: &str = "${STORYREEL_CACHE}/models/smollm2-135m-instruct";

/// The whole `[story_llm]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoryLlmConfig {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// Directory of the converted model (config.json, model.safetensors, tokenizer.json,
    /// tokenizer_config.json). `${NAME}` environment references are expanded at load.
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub model_dir: PathBuf,
    /// `cpu`, `cuda`, `cuda:<index>` or `mps`.
    pub device: String,
    /// `f32`, `f16` or `bf16`.
    pub dtype: String,
    pub batching: BatchingConfig,
    /// Server defaults for the sampling fields a request leaves unset.
    pub generation: GenerationDefaults,
    /// Generation attempts per request, the first included: a reply that does not parse
    /// into `n_scenes` usable scenes is regenerated with a changed seed until this many
    /// attempts were made.
    pub max_attempts: u32,
}

impl Default for StoryLlmConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            telemetry: TelemetryConfig::default(),
            model_dir: default_model_dir(),
            device: "cpu".into(),
            dtype: "f32".into(),
            batching: BatchingConfig::default(),
            generation: GenerationDefaults::default(),
            max_attempts: 3,
        }
    }
}

/// Static batching on the model worker: a batch starts when `max_batch_size` requests are
/// waiting or `max_wait_ms` after the first one arrived, whichever comes first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchingConfig {
    /// Most requests decoded together, 1-32.
    pub max_batch_size: usize,
    /// Longest wait for a batch to fill, in milliseconds, 0-10000.
    pub max_wait_ms: u64,
    /// Requests waiting for the model worker before new ones are refused with
    /// RESOURCE_EXHAUSTED; at least `max_batch_size`.
    pub queue_capacity: usize,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 8,
            max_wait_ms: 20,
            queue_capacity: 64,
        }
    }
}

/// Server defaults of `storyreel.common.v1.SamplingParams`; the limits are the proto's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationDefaults {
    /// 0.0-2.0; 0 is greedy.
    pub temperature: f32,
    /// (0.0, 1.0].
    pub top_p: f32,
    /// 0-1000; 0 disables.
    pub top_k: u32,
    /// 1.0-2.0; 1.0 disables.
    pub repetition_penalty: f32,
    /// Tokens generated per scene at most, 1-1024.
    pub max_new_tokens_per_scene: u32,
}

impl Default for GenerationDefaults {
    /// Temperature, top-p and repetition penalty are the values that give SmolLM2-135M
    /// distinct scenes (DESIGN.md §9) and the proto's documented defaults; top-k 0 and
    /// 128 new tokens are the proto's documented defaults too.
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.3,
            max_new_tokens_per_scene: 128,
        }
    }
}

/// Limits shared by the config defaults and request validation (common.proto
/// `SamplingParams`).
pub mod limits {
    pub const TEMPERATURE_MAX: f32 = 2.0;
    pub const TOP_K_MAX: u32 = 1000;
    pub const REPETITION_PENALTY_MIN: f32 = 1.0;
    pub const REPETITION_PENALTY_MAX: f32 = 2.0;
    pub const MAX_NEW_TOKENS_MAX: u32 = 1024;
    pub const MAX_BATCH_SIZE: usize = 32;
    pub const MAX_ATTEMPTS: u32 = 10;
}

impl Validate for StoryLlmConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.server.validate().map_err(|e| e.within("server"))?;
        self.telemetry.validate().map_err(|e| e.within("telemetry"))?;
        if self.model_dir.as_os_str().is_empty() {
            return Err(ValidationError::new("model_dir", "must not be empty"));
        }
        validate_device(&self.device)?;
        if !matches!(self.dtype.as_str(), "f32" | "f16" | "bf16") {
            return Err(ValidationError::new(
                "dtype",
                format!("must be `f32`, `f16` or `bf16`, got `{}`", self.dtype),
            ));
        }
        self.batching.validate().map_err(|e| e.within("batching"))?;
        self.generation.validate().map_err(|e| e.within("generation"))?;
        check_range("max_attempts", self.max_attempts, 1, limits::MAX_ATTEMPTS)
    }
}

impl BatchingConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("max_batch_size", self.max_batch_size, 1, limits::MAX_BATCH_SIZE)?;
        check_range("max_wait_ms", self.max_wait_ms, 0, 10_000)?;
        if self.queue_capacity < self.max_batch_size {
            return Err(ValidationError::new(
                "queue_capacity",
                format!(
                    "must be at least `max_batch_size` ({}), got {}",
                    self.max_batch_size, self.queue_capacity
                ),
            ));
        }
        check_range("queue_capacity", self.queue_capacity, 1, 100_000)
    }
}

impl GenerationDefaults {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_float("temperature", self.temperature, 0.0, limits::TEMPERATURE_MAX)?;
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ValidationError::new(
                "top_p",
                format!("must be > 0 and <= 1, got {}", self.top_p),
            ));
        }
        check_range("top_k", self.top_k, 0, limits::TOP_K_MAX)?;
        check_float(
            "repetition_penalty",
            self.repetition_penalty,
            limits::REPETITION_PENALTY_MIN,
            limits::REPETITION_PENALTY_MAX,
        )?;
        check_range(
            "max_new_tokens_per_scene",
            self.max_new_tokens_per_scene,
            1,
            limits::MAX_NEW_TOKENS_MAX,
        )
    }
}

/// `[min, max]`, rejecting NaN (which `check_range` would let through).
pub(crate) fn check_float(field: &str, value: f32, min: f32, max: f32) -> Result<(), ValidationError> {
    if !(min..=max).contains(&value) {
        return Err(ValidationError::new(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

fn validate_device(device: &str) -> Result<(), ValidationError> {
    let ok = match device {
        "cpu" | "cuda" | "mps" => true,
        _ => device
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<u8>().ok())
            .is_some_and(|i| i < 64),
    };
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "device",
            format!("must be `cpu`, `cuda`, `cuda:<index 0-63>` or `mps`, got `{device}`"),
        ))
    }
}

fn default_model_dir() -> PathBuf {
    // Only `${STORYREEL_CACHE}` appears in the default and it always resolves.
    PathBuf::from(expand_vars(DEFAULT_MODEL_DIR, env_lookup).unwrap_or_else(|_| DEFAULT_MODEL_DIR.into()))
}

fn deserialize_expanded_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let raw = String::deserialize(d)?;
    expand_vars(&raw, env_lookup)
        .map(PathBuf::from)
        .map_err(serde::de::Error::custom)
}

/// The process environment, with the cache default of the Makefile.
fn env_lookup(name: &str) -> Option<String> {
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
    use storyreel_runtime::config::{Sources, load};

    fn sources(dir: &std::path::Path, env: &[(&str, &str)]) -> Sources {
        Sources {
            dir: dir.to_path_buf(),
            profile: None,
            env: Some(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        }
    }

    #[test]
    fn defaults_are_valid_and_documented() {
        let config = StoryLlmConfig::default();
        config.validate().unwrap();
        assert_eq!(config.batching.max_batch_size, 8);
        assert_eq!(config.batching.max_wait_ms, 20);
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.generation.temperature, 0.7);
        assert_eq!(config.generation.top_p, 0.9);
        assert_eq!(config.generation.repetition_penalty, 1.3);
        assert!(
            config.model_dir.ends_with("models/smollm2-135m-instruct"),
            "{:?}",
            config.model_dir
        );
        assert!(!config.model_dir.to_string_lossy().contains("${"));
    }

    #[test]
    fn loads_through_every_layer_and_expands_the_model_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join("default.toml"),
            "[story_llm]\nmodel_dir = \"${HOME}/m\"\n[story_llm.batching]\nmax_batch_size = 4\n",
        )
        .unwrap();
        let config: StoryLlmConfig = load(
            "story_llm",
            &sources(dir, &[("STORYREEL_STORY_LLM__GENERATION__TEMPERATURE", "0.2")]),
        )
        .unwrap();
        let home = std::env::var("HOME").unwrap();
        assert_eq!(config.model_dir, PathBuf::from(format!("{home}/m")));
        assert_eq!(config.batching.max_batch_size, 4);
        assert_eq!(config.batching.max_wait_ms, 20);
        assert_eq!(config.generation.temperature, 0.2);
        assert_eq!(config.generation.top_p, 0.9);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_field() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("default.toml"), "[story_llm.batching]\nmax_batch = 4\n").unwrap();
        let err = load::<StoryLlmConfig>("story_llm", &sources(dir, &[])).unwrap_err();
        assert!(err.to_string().contains("max_batch"), "{err}");

        std::fs::write(
            dir.join("default.toml"),
            "[story_llm.batching]\nmax_batch_size = 33\n",
        )
        .unwrap();
        let err = load::<StoryLlmConfig>("story_llm", &sources(dir, &[])).unwrap_err();
        assert!(
            err.to_string()
                .contains("`batching.max_batch_size` must be between 1 and 32, got 33"),
            "{err}"
        );
    }

    #[test]
    fn validation_names_field_and_limit() {
        type Case = (fn(&mut StoryLlmConfig), &'static str);
        let cases: Vec<Case> = vec![
            (
                |c| c.batching.max_batch_size = 0,
                "`batching.max_batch_size` must be between 1 and 32, got 0",
            ),
            (
                |c| c.batching.max_wait_ms = 10_001,
                "`batching.max_wait_ms` must be between 0 and 10000, got 10001",
            ),
            (
                |c| c.batching.queue_capacity = 4,
                "`batching.queue_capacity` must be at least `max_batch_size` (8), got 4",
            ),
            (
                |c| c.generation.temperature = 2.5,
                "`generation.temperature` must be between 0 and 2, got 2.5",
            ),
            (
                |c| c.generation.temperature = f32::NAN,
                "`generation.temperature` must be between 0 and 2, got NaN",
            ),
            (
                |c| c.generation.top_p = 0.0,
                "`generation.top_p` must be > 0 and <= 1, got 0",
            ),
            (
                |c| c.generation.top_k = 1001,
                "`generation.top_k` must be between 0 and 1000, got 1001",
            ),
            (
                |c| c.generation.repetition_penalty = 0.9,
                "`generation.repetition_penalty` must be between 1 and 2, got 0.9",
            ),
            (
                |c| c.generation.max_new_tokens_per_scene = 0,
                "`generation.max_new_tokens_per_scene` must be between 1 and 1024, got 0",
            ),
            (
                |c| c.max_attempts = 0,
                "`max_attempts` must be between 1 and 10, got 0",
            ),
            (
                |c| c.device = "tpu".into(),
                "`device` must be `cpu`, `cuda`, `cuda:<index 0-63>` or `mps`, got `tpu`",
            ),
            (
                |c| c.dtype = "f64".into(),
                "`dtype` must be `f32`, `f16` or `bf16`, got `f64`",
            ),
            (|c| c.model_dir = PathBuf::new(), "`model_dir` must not be empty"),
            (
                |c| c.server.concurrency_limit = 0,
                "`server.concurrency_limit` must be between 1 and 100000, got 0",
            ),
        ];
        for (change, expected) in cases {
            let mut config = StoryLlmConfig::default();
            change(&mut config);
            assert_eq!(config.validate().unwrap_err().to_string(), expected);
        }
        for device in ["cpu", "cuda", "cuda:0", "cuda:7", "mps"] {
            let config = StoryLlmConfig {
                device: device.into(),
                ..Default::default()
            };
            config.validate().unwrap();
        }
    }

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
}

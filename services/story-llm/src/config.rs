//! The `[story_llm]` configuration table (DESIGN.md §4): built-in defaults here, overridden
//! by `config/default.toml`, `config/{profile}.toml` and `STORYREEL_STORY_LLM__<KEY>`.
//!
//! `model_dir` may name environment variables as `${NAME}`; they are expanded when the
//! config is loaded (deserialised). `${STORYREEL_CACHE}` falls back to
//! `$HOME/.cache/storyreel`, as in the Makefile, so the default
//! `${STORYREEL_CACHE}/models/smollm2-135m-instruct` is where `make models` puts SmolLM2.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
pub use storyreel_llm::{BatchingConfig, GenerationDefaults, worker_config::DEFAULT_MODEL_DIR};
use storyreel_llm::{WorkerSettings, worker_config::validate_model_fields};
use storyreel_runtime::{
    ServerConfig, Validate, ValidationError,
    config::check_range,
    paths::{deserialize_expanded_path, expanded_default},
    telemetry::TelemetryConfig,
};
use storyreel_stage::serve::StageConfig;
use storyreel_tensors::StoreConfig;

/// The whole `[story_llm]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoryLlmConfig {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// The tensor store of the stage cache (Redis in the mesh).
    pub tensors: StoreConfig,
    /// Keep finished stories of seeded requests in the stage cache (DESIGN.md §4): the
    /// same request on the same model is answered without decoding again.
    /// `context.bypass_cache` skips it per call.
    pub cache_outputs: bool,
    /// Directory of the converted model (config.json, model.safetensors, tokenizer.json,
    /// tokenizer_config.json). `${NAME}` environment references are expanded at load.
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub model_dir: PathBuf,
    /// `cpu`, `cuda`, `cuda:<index>` or `mps`.
    pub device: String,
    /// `f32`, `f16` or `bf16`.
    pub dtype: String,
    /// The served model version (model pins, canary routing, metric labels); empty: the
    /// model directory's `make models` stamp, else a digest prefix.
    pub model_version: String,
    pub batching: BatchingConfig,
    /// Server defaults for the sampling fields a request leaves unset.
    pub generation: GenerationDefaults,
    /// Generation attempts per request, the first included: a story with a scene none of
    /// whose candidates is usable is regenerated with a changed seed until this many
    /// attempts were made.
    pub max_attempts: u32,
    /// Candidates decoded per scene, in one batch, the best kept (`crate::scoring`): more
    /// candidates, better scenes, more compute per scene (a batch of 4 costs well under 4
    /// single decodes).
    pub candidates: u32,
    /// A sentence-transformers directory (unit-length embeddings) whose cosine of a
    /// candidate to the title is a term of the score (`crate::relevance`); empty: scenes
    /// are scored without it. `${NAME}` references are expanded at load.
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub relevance_encoder_dir: PathBuf,
}

impl Default for StoryLlmConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            telemetry: TelemetryConfig::default(),
            tensors: StoreConfig::default(),
            cache_outputs: true,
            model_dir: expanded_default(DEFAULT_MODEL_DIR),
            device: "cpu".into(),
            dtype: "f32".into(),
            model_version: String::new(),
            batching: BatchingConfig::default(),
            generation: default_generation(),
            max_attempts: 3,
            candidates: 4,
            relevance_encoder_dir: expanded_default(DEFAULT_RELEVANCE_ENCODER_DIR),
        }
    }
}

/// Where `make models` puts all-MiniLM-L6-v2, which retrieval uses too.
pub const DEFAULT_RELEVANCE_ENCODER_DIR: &str = "${STORYREEL_CACHE}/models/all-minilm-l6-v2";

/// The sampling defaults of story-llm, measured by `make eval` (README, "Quality"):
/// temperature 0.7 and top-p 0.9 keep the candidates of a scene apart; no repetition
/// penalty, because it also penalises every word of the prompt and its worked example and
/// pushes a 135M model off common words into fused strings; 48 new tokens hold a
/// 20-word sentence with room to spare (decoding stops at the sentence end).
pub fn default_generation() -> GenerationDefaults {
    GenerationDefaults {
        temperature: 0.7,
        top_p: 0.9,
        top_k: 0,
        repetition_penalty: 1.0,
        max_new_tokens: 48,
    }
}

/// Limits of this table.
pub mod limits {
    pub const MAX_ATTEMPTS: u32 = 10;
    pub const MAX_CANDIDATES: u32 = 16;
}

impl StoryLlmConfig {
    /// What the model worker needs.
    pub fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings::new(
            "story-llm",
            self.model_dir.clone(),
            &self.device,
            &self.dtype,
            &self.batching,
        )
        .with_model_version(&self.model_version)
    }
}

impl Validate for StoryLlmConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.validate_stage_tables()?;
        self.tensors
            .validate()
            .map_err(|e| ValidationError::new("tensors", e.to_string()))?;
        validate_model_fields(&self.model_dir, &self.device, &self.dtype)?;
        self.batching.validate().map_err(|e| e.within("batching"))?;
        self.generation.validate().map_err(|e| e.within("generation"))?;
        check_range("max_attempts", self.max_attempts, 1, limits::MAX_ATTEMPTS)?;
        check_range("candidates", self.candidates, 1, limits::MAX_CANDIDATES)
    }
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
        assert_eq!(config.generation.repetition_penalty, 1.0);
        assert_eq!(config.generation.max_new_tokens, 48);
        assert_eq!(config.candidates, 4);
        assert!(config.relevance_encoder_dir.ends_with("models/all-minilm-l6-v2"));
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
                |c| c.generation.max_new_tokens = 0,
                "`generation.max_new_tokens` must be between 1 and 1024, got 0",
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
}

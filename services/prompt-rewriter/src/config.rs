//! The `[prompt_rewriter]` configuration table (DESIGN.md §4): built-in defaults here,
//! overridden by `config/default.toml`, `config/{profile}.toml` and
//! `STORYREEL_PROMPT_REWRITER__<KEY>`. Paths may name `${VAR}`s, expanded at load.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use storyreel_llm::{
    BatchingConfig, GenerationDefaults, WorkerSettings,
    worker_config::{DEFAULT_MODEL_DIR, validate_model_fields},
};
use storyreel_runtime::{
    ServerConfig, Validate, ValidationError,
    config::check_range,
    paths::{deserialize_expanded_path, expanded_default},
    telemetry::TelemetryConfig,
};
use storyreel_stage::serve::StageConfig;
use storyreel_tensors::StoreConfig;

/// Where `clip_tokenizer` points unless configured: the CLIP tokenizer `make models` writes.
pub const DEFAULT_CLIP_TOKENIZER: &str = "${STORYREEL_CACHE}/models/clip-tokenizer/tokenizer.json";

/// The negative prompt every scene gets unless configured: the artefacts text-to-video
/// models are commonly steered away from.
pub const DEFAULT_NEGATIVE_PROMPT: &str = "blurry, low quality, low resolution, distorted, deformed, \
     disfigured, watermark, text, logo, signature, jpeg artifacts, cropped, out of frame, flickering";

/// Limits of this table.
pub mod limits {
    pub const MAX_ATTEMPTS: u32 = 10;
    pub const NEGATIVE_PROMPT_MAX_CHARS: usize = 1000;
}

/// The whole `[prompt_rewriter]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptRewriterConfig {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// The tensor store of the stage cache (Redis in the mesh).
    pub tensors: StoreConfig,
    /// Keep the results of seeded Rewrite and Keywords calls in the stage cache
    /// (DESIGN.md §4): the same call on the same model is answered without decoding again.
    /// `context.bypass_cache` skips it per call.
    pub cache_outputs: bool,
    /// Directory of the converted language model (config.json, model.safetensors,
    /// tokenizer.json, tokenizer_config.json).
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub model_dir: PathBuf,
    /// `cpu`, `cuda`, `cuda:<index>` or `mps`.
    pub device: String,
    /// `f32`, `f16` or `bf16`.
    pub dtype: String,
    /// The served model version (model pins, canary routing, metric labels); empty: the
    /// model directory's `make models` stamp, else a digest prefix.
    pub model_version: String,
    /// The CLIP `tokenizer.json` prompts are counted with: the tokenizer of the keyframe
    /// stage's text encoder.
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub clip_tokenizer: PathBuf,
    pub batching: BatchingConfig,
    /// Server defaults for the sampling fields a request leaves unset; `max_new_tokens`
    /// bounds each generated field (a description, an attribute list, a keyword list).
    pub generation: GenerationDefaults,
    /// Generations per field, the first included: a field whose output is unusable (no
    /// description, no keyword) is regenerated with a changed seed until this many.
    pub max_attempts: u32,
    /// The negative prompt of every scene, cut to the request's CLIP token budget.
    pub negative_prompt: String,
}

impl Default for PromptRewriterConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                listen: "127.0.0.1:50053".parse().expect("a valid address"),
                ..ServerConfig::default()
            },
            telemetry: TelemetryConfig::default(),
            tensors: StoreConfig::default(),
            cache_outputs: true,
            model_dir: expanded_default(DEFAULT_MODEL_DIR),
            device: "cpu".into(),
            dtype: "f32".into(),
            model_version: String::new(),
            clip_tokenizer: expanded_default(DEFAULT_CLIP_TOKENIZER),
            batching: BatchingConfig::default(),
            generation: GenerationDefaults {
                // Extraction, not invention: SmolLM2-135M keeps to the scene and to the list
                // format at a low temperature and a mild repetition penalty (story-llm's
                // 0.7 / 1.3 make it wander). Fields are short: a sentence, a few phrases.
                temperature: 0.2,
                top_p: 0.9,
                top_k: 0,
                repetition_penalty: 1.1,
                max_new_tokens: 32,
            },
            max_attempts: 3,
            negative_prompt: DEFAULT_NEGATIVE_PROMPT.into(),
        }
    }
}

impl PromptRewriterConfig {
    /// What the model worker needs.
    pub fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings::new(
            "prompt-rewriter",
            self.model_dir.clone(),
            &self.device,
            &self.dtype,
            &self.batching,
        )
        .with_model_version(&self.model_version)
    }
}

impl Validate for PromptRewriterConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.validate_stage_tables()?;
        self.tensors
            .validate()
            .map_err(|e| ValidationError::new("tensors", e.to_string()))?;
        validate_model_fields(&self.model_dir, &self.device, &self.dtype)?;
        if self.clip_tokenizer.as_os_str().is_empty() {
            return Err(ValidationError::new("clip_tokenizer", "must not be empty"));
        }
        self.batching.validate().map_err(|e| e.within("batching"))?;
        self.generation.validate().map_err(|e| e.within("generation"))?;
        check_range("max_attempts", self.max_attempts, 1, limits::MAX_ATTEMPTS)?;
        storyreel_runtime::text::check_max_chars(
            "negative_prompt",
            &self.negative_prompt,
            limits::NEGATIVE_PROMPT_MAX_CHARS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyreel_runtime::config::{Sources, load};

    #[test]
    fn defaults_are_valid() {
        let config = PromptRewriterConfig::default();
        config.validate().unwrap();
        assert!(
            config
                .clip_tokenizer
                .ends_with("models/clip-tokenizer/tokenizer.json")
        );
        assert!(config.model_dir.ends_with("models/smollm2-135m-instruct"));
        assert_eq!(config.generation.max_new_tokens, 32);
        assert_eq!(config.generation.temperature, 0.2);
    }

    #[test]
    fn loads_from_files_and_env_and_names_bad_fields() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("default.toml"),
            "[prompt_rewriter]\nclip_tokenizer = \"${HOME}/t.json\"\nmax_attempts = 2\n",
        )
        .unwrap();
        let sources = |env: &[(&str, &str)]| Sources {
            dir: tmp.path().to_path_buf(),
            profile: None,
            env: Some(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        };
        let config: PromptRewriterConfig = load(
            "prompt_rewriter",
            &sources(&[("STORYREEL_PROMPT_REWRITER__BATCHING__MAX_BATCH_SIZE", "4")]),
        )
        .unwrap();
        assert_eq!(config.max_attempts, 2);
        assert_eq!(config.batching.max_batch_size, 4);
        assert!(!config.clip_tokenizer.to_string_lossy().contains("${"));

        let err = load::<PromptRewriterConfig>(
            "prompt_rewriter",
            &sources(&[("STORYREEL_PROMPT_REWRITER__MAX_ATTEMPTS", "0")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_attempts"), "{err}");
    }
}

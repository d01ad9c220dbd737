//! The `[tts]` configuration table (DESIGN.md §4): built-in defaults here, overridden by
//! `config/default.toml`, `config/{profile}.toml` and `STORYREEL_TTS__<KEY>`.
//!
//! `piper.model_dir` may name environment variables as `${NAME}`, expanded at load;
//! `${STORYREEL_CACHE}` falls back to `$HOME/.cache/storyreel` as in the Makefile, so the
//! default is where `make models` puts the converted Piper voice.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use storyreel_runtime::{
    ServerConfig, Validate, ValidationError,
    config::check_range,
    paths::{deserialize_expanded_path, expanded_default},
    telemetry::TelemetryConfig,
};
use storyreel_stage::serve::StageConfig;
use storyreel_tensors::StoreConfig;

pub const DEFAULT_PIPER_DIR: &str = "${STORYREEL_CACHE}/models/piper-en_US-joe-medium";

/// The whole `[tts]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsConfig {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// Where each scene's audio is put (Redis in the mesh).
    pub tensors: StoreConfig,
    /// Voice id used when a request names none. `"auto"` (the default): the Piper voice
    /// when `piper.enabled` and its files are installed (`make models`), else
    /// `espeak-ng:en-us` (the first of `espeak_voices` if en-us is not served), chosen at
    /// start; a missing Piper voice is then left out, not an error. Any other value names
    /// the voice exactly (`espeak-ng:en-gb`, `piper:en_US-joe-medium`), and a voice so named
    /// that is not served fails the start (see [`crate::default_voice`]).
    pub default_voice: String,
    /// espeak-ng voices served, by espeak-ng name (`en-us`, `en-gb`, `de`, ...).
    pub espeak_voices: Vec<String>,
    pub piper: PiperConfig,
    /// Longest scene text, in characters (the proto allows 1-5000).
    pub max_text_chars: usize,
    /// Sentences longer than this are cut at a clause break or space, 50-1000 characters.
    pub max_sentence_chars: usize,
    /// Silence between two sentences of a scene, 0-2000 ms.
    pub sentence_pause_ms: u32,
    /// Requests waiting for the synthesis worker before RESOURCE_EXHAUSTED, 1-1024.
    pub queue_capacity: usize,
    /// Keep Synthesize's outputs in content-addressed cache entries of the tensor store
    /// (DESIGN.md §4), so a repeated request is answered without speaking again; its audio
    /// refs then point into the entry. Off: every call speaks and stores under the job's
    /// keys, as a call with `context.bypass_cache` does.
    pub cache_outputs: bool,
    /// Tune glibc's malloc at start to keep freed memory for reuse
    /// (`storyreel_nn::allocator::keep_freed_memory`, process-wide): the Piper vocoder's
    /// activations are then not faulted in and zeroed by the kernel again for every
    /// sentence. The process keeps its peak heap.
    pub keep_freed_memory: bool,
    /// Failed jobs in a row (a panic or an error in a voice) after which the worker is
    /// taken for broken and the service reports NOT_SERVING, 1-1000.
    pub max_consecutive_failures: u32,
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            telemetry: TelemetryConfig::default(),
            tensors: StoreConfig::default(),
            default_voice: crate::default_voice::AUTO.into(),
            espeak_voices: vec!["en-us".into(), "en-gb".into()],
            piper: PiperConfig::default(),
            max_text_chars: limits::MAX_TEXT_CHARS,
            max_sentence_chars: 400,
            sentence_pause_ms: 250,
            queue_capacity: 32,
            cache_outputs: true,
            keep_freed_memory: true,
            max_consecutive_failures: 3,
        }
    }
}

impl TtsConfig {
    /// The synthesis worker's settings: one job at a time.
    pub fn worker(&self) -> storyreel_stage::WorkerConfig {
        storyreel_stage::WorkerConfig {
            queue_capacity: self.queue_capacity,
            max_batch_size: 1,
            max_wait_ms: 0,
            threads: self.piper.threads as usize,
            keep_freed_memory: self.keep_freed_memory,
            max_consecutive_failures: self.max_consecutive_failures,
        }
    }
}

/// The Piper voice (converted by `make models`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiperConfig {
    /// Serve the Piper voice. With `default_voice = "auto"` it is served when its files
    /// exist; with any other `default_voice` they must exist: a missing voice fails the
    /// start.
    pub enabled: bool,
    /// The converted voice: `model.safetensors`, `config.json` (VITS hyperparameters) and
    /// the voice's `<name>.onnx.json` (phoneme id map, sample rate, noise scales).
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub model_dir: PathBuf,
    /// libtorch intra-op threads of the worker, 1-64.
    pub threads: i32,
    /// The voice's served version (model pins, cache keys, metric labels); empty: the
    /// voice directory's `make models` stamp, else a digest prefix.
    pub model_version: String,
}

impl Default for PiperConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model_dir: expanded_default(DEFAULT_PIPER_DIR),
            threads: 2,
            model_version: String::new(),
        }
    }
}

pub mod limits {
    /// The proto's limit of a scene text.
    pub const MAX_TEXT_CHARS: usize = 5000;
}

impl Validate for TtsConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.validate_stage_tables()?;
        self.tensors
            .validate()
            .map_err(|e| ValidationError::new("tensors", e.to_string()))?;
        if self.default_voice.is_empty() {
            return Err(ValidationError::new("default_voice", "must not be empty"));
        }
        if self.espeak_voices.is_empty() {
            return Err(ValidationError::new(
                "espeak_voices",
                "must name at least one espeak-ng voice (the always-available backend)",
            ));
        }
        check_range("piper.threads", self.piper.threads, 1, 64)?;
        if self.piper.enabled && self.piper.model_dir.as_os_str().is_empty() {
            return Err(ValidationError::new(
                "piper.model_dir",
                "must not be empty when `piper.enabled`",
            ));
        }
        check_range("max_text_chars", self.max_text_chars, 1, limits::MAX_TEXT_CHARS)?;
        check_range("max_sentence_chars", self.max_sentence_chars, 50, 1000)?;
        check_range("sentence_pause_ms", self.sentence_pause_ms, 0, 2000)?;
        check_range("queue_capacity", self.queue_capacity, 1, 1024)?;
        check_range("max_consecutive_failures", self.max_consecutive_failures, 1, 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = TtsConfig::default();
        config.validate().unwrap();
        assert!(config.piper.model_dir.ends_with("models/piper-en_US-joe-medium"));
    }

    #[test]
    fn validation_names_field_and_limit() {
        type Case = (fn(&mut TtsConfig), &'static str);
        let cases: Vec<Case> = vec![
            (
                |c| c.max_text_chars = 6000,
                "`max_text_chars` must be between 1 and 5000, got 6000",
            ),
            (
                |c| c.max_sentence_chars = 10,
                "`max_sentence_chars` must be between 50 and 1000, got 10",
            ),
            (
                |c| c.queue_capacity = 0,
                "`queue_capacity` must be between 1 and 1024, got 0",
            ),
            (
                |c| c.piper.threads = 0,
                "`piper.threads` must be between 1 and 64, got 0",
            ),
            (
                |c| c.espeak_voices.clear(),
                "`espeak_voices` must name at least one espeak-ng voice (the always-available backend)",
            ),
        ];
        for (change, expected) in cases {
            let mut config = TtsConfig::default();
            change(&mut config);
            assert_eq!(config.validate().unwrap_err().to_string(), expected);
        }
    }
}

//! Configuration of a language-model worker: where the model is, on which device and in
//! which dtype, and how requests are batched. Services keep these as flat keys of their
//! own table (`[story_llm] model_dir = ...`, `[story_llm.batching]`) and hand them to
//! [`crate::ModelWorker::spawn`] as [`WorkerSettings`].

use serde::{Deserialize, Serialize};
use std::{path::PathBuf, time::Duration};
use storyreel_runtime::{ValidationError, config::check_range};

/// Where `model_dir` points unless configured: the SmolLM2 that `make models` converts.
pub const DEFAULT_MODEL_DIR: &str = "${STORYREEL_CACHE}/models/smollm2-135m-instruct";
/// The largest batch a worker may run.
pub const MAX_BATCH_SIZE: usize = 32;

/// Static batching on the model worker: a batch starts when `max_batch_size` requests are
/// waiting or `max_wait_ms` after the first one arrived, whichever comes first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchingConfig {
    /// Most sequences decoded together, 1-32.
    pub max_batch_size: usize,
    /// Longest wait for a batch to fill, in milliseconds, 0-10000.
    pub max_wait_ms: u64,
    /// Sequences waiting for the model worker before new ones are refused with
    /// RESOURCE_EXHAUSTED; at least `max_batch_size`.
    pub queue_capacity: usize,
    /// Memory for KV caches kept between the items of a request (prefix reuse), in MiB,
    /// 0-65536; 0 turns reuse off.
    pub prefix_cache_mb: usize,
    /// Failed batches in a row (a panic or an error in model code) after which the model
    /// is taken for broken and the service reports NOT_SERVING, 1-1000.
    pub max_consecutive_failures: u32,
}

impl Default for BatchingConfig {
    fn default() -> Self {
        Self {
            max_batch_size: 8,
            max_wait_ms: 20,
            queue_capacity: 64,
            prefix_cache_mb: 256,
            max_consecutive_failures: 3,
        }
    }
}

impl BatchingConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("max_batch_size", self.max_batch_size, 1, MAX_BATCH_SIZE)?;
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
        check_range("queue_capacity", self.queue_capacity, 1, 100_000)?;
        check_range("prefix_cache_mb", self.prefix_cache_mb, 0, 65_536)?;
        check_range("max_consecutive_failures", self.max_consecutive_failures, 1, 1000)
    }
}

pub use storyreel_runtime::model::validate_model_fields;

/// What [`crate::ModelWorker::spawn`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSettings {
    /// Names the worker thread and labels its metrics (`worker="story-llm"`).
    pub service: &'static str,
    /// config.json, model.safetensors, tokenizer.json, tokenizer_config.json.
    pub model_dir: PathBuf,
    pub device: String,
    pub dtype: String,
    pub max_batch_size: usize,
    pub max_wait: Duration,
    pub queue_capacity: usize,
    /// Byte budget of the [`crate::prefix_store::PrefixStore`]; 0: no reuse.
    pub prefix_cache_bytes: usize,
    pub max_consecutive_failures: u32,
    /// The served version when configured; else the model directory's stamp
    /// (`storyreel_runtime::model_identity`).
    pub model_version: Option<String>,
}

impl WorkerSettings {
    pub fn new(
        service: &'static str,
        model_dir: PathBuf,
        device: &str,
        dtype: &str,
        batching: &BatchingConfig,
    ) -> Self {
        Self {
            service,
            model_dir,
            device: device.to_string(),
            dtype: dtype.to_string(),
            max_batch_size: batching.max_batch_size,
            max_wait: Duration::from_millis(batching.max_wait_ms),
            queue_capacity: batching.queue_capacity,
            prefix_cache_bytes: batching.prefix_cache_mb << 20,
            max_consecutive_failures: batching.max_consecutive_failures,
            model_version: None,
        }
    }

    /// Serves `version` (a configured `model_version`; empty: the directory's stamp).
    pub fn with_model_version(mut self, version: &str) -> Self {
        self.model_version = (!version.is_empty()).then(|| version.to_string());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_dtypes() {
        let dir = std::path::Path::new("/m");
        for device in ["cpu", "cuda", "cuda:0", "cuda:63", "mps"] {
            validate_model_fields(dir, device, "f32").unwrap();
        }
        for device in ["gpu", "cuda:64", "cuda:x", ""] {
            assert_eq!(
                validate_model_fields(dir, device, "f32").unwrap_err().field,
                "device"
            );
        }
        assert_eq!(
            validate_model_fields(dir, "cpu", "f64").unwrap_err().field,
            "dtype"
        );
        assert_eq!(
            validate_model_fields(std::path::Path::new(""), "cpu", "f32")
                .unwrap_err()
                .field,
            "model_dir"
        );
    }

    #[test]
    fn the_queue_holds_at_least_one_batch() {
        let batching = BatchingConfig {
            max_batch_size: 8,
            queue_capacity: 4,
            ..Default::default()
        };
        assert_eq!(batching.validate().unwrap_err().field, "queue_capacity");
        BatchingConfig::default().validate().unwrap();
    }
}

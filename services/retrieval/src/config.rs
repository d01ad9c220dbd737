//! The `[retrieval]` configuration table (DESIGN.md §4): built-in defaults here, overridden
//! by `config/default.toml`, `config/{profile}.toml` and `STORYREEL_RETRIEVAL__<KEY>`.
//!
//! Paths may name environment variables as `${NAME}`, expanded when the config is loaded
//! (`storyreel_runtime::paths`); `${STORYREEL_CACHE}` falls back to
//! `$HOME/.cache/storyreel` as in the Makefile, so the defaults point where `make models`
//! puts MiniLM and the demo catalog.

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

use crate::catalog::ann::AnnParams;

pub const DEFAULT_MODEL_DIR: &str = "${STORYREEL_CACHE}/models/all-minilm-l6-v2";
pub const DEFAULT_CATALOG_DIR: &str = "${STORYREEL_CACHE}/catalog";

/// The whole `[retrieval]` table.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrievalConfig {
    pub server: ServerConfig,
    pub telemetry: TelemetryConfig,
    /// Where the winning clip's frames are put (Redis in the mesh).
    pub tensors: StoreConfig,
    pub catalog: CatalogConfig,
    pub encoder: EncoderConfig,
    pub search: SearchConfig,
    pub ingest: IngestConfig,
}

/// The on-disk catalog: tantivy index, embedding side store, stored frames.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Catalog directory (`index/`, `embeddings.f32`, `frames/`); created when missing.
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub dir: PathBuf,
    /// The only directory Ingest reads videos from: a `video_uri` is a path relative to
    /// it, or an absolute path or `file://` URI inside it; `..`, other schemes and symbolic
    /// links leading out of it are refused (UNSUPPORTED_URI). Empty (the default): no
    /// media root, and Ingest refuses every clip until one is set. Must not be `/`.
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub media_root: PathBuf,
    /// tantivy writer memory budget in MiB, 15-4096 (split over the writer threads).
    pub writer_memory_mb: usize,
    /// tantivy indexing threads, 1-16.
    pub writer_threads: usize,
    /// Neighbours per point and layer of the HNSW graph of caption embeddings (HNSW's M),
    /// 4-64. More: better recall, slower build, more memory.
    pub ann_connections: usize,
    /// Candidates explored per insertion into the graph (efConstruction), 16-2048 and at
    /// least `ann_connections`. More: a better graph, slower build.
    pub ann_ef_construction: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            dir: expanded_default(DEFAULT_CATALOG_DIR),
            media_root: PathBuf::new(),
            writer_memory_mb: 64,
            writer_threads: 1,
            ann_connections: AnnParams::default().connections,
            ann_ef_construction: AnnParams::default().ef_construction,
        }
    }
}

/// The sentence encoder (all-MiniLM-L6-v2) on its worker thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    /// sentence-transformers directory (modules.json, model.safetensors, tokenizer.json).
    #[serde(deserialize_with = "deserialize_expanded_path")]
    pub model_dir: PathBuf,
    /// `cpu`, `cuda`, `cuda:<index>`.
    pub device: String,
    /// Texts per forward pass, 1-256.
    pub batch_size: usize,
    /// Requests waiting for the worker before new ones get RESOURCE_EXHAUSTED, 1-65536.
    pub queue_capacity: usize,
    /// libtorch intra-op threads on the worker; 0 keeps libtorch's default (all cores).
    /// Default 1: a query is one short text, and on a CPU shared with other work two
    /// intra-op threads made the query embedding's p99 ~50x worse (README.md).
    pub threads: usize,
    /// Failed batches in a row (a panic or an error in the encoder) after which the model
    /// is taken for broken and the service reports NOT_SERVING, 1-1000.
    pub max_consecutive_failures: u32,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            model_dir: expanded_default(DEFAULT_MODEL_DIR),
            device: "cpu".into(),
            batch_size: 32,
            queue_capacity: 256,
            threads: 1,
            max_consecutive_failures: 3,
        }
    }
}

/// Ranking: BM25 query boosts and the fusion weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Boost of keyword matches in the caption, 0-100.
    pub caption_boost: f32,
    /// Boost of keyword matches in the tags, 0-100.
    pub tags_boost: f32,
    /// Weight of the min-max normalised BM25 score in the fused score, 0-1.
    pub bm25_weight: f32,
    /// Weight of the prompt-caption cosine in the fused score, 0-1.
    pub embedding_weight: f32,
    /// Server default of `k`, 1-50.
    pub default_k: u32,
    /// Server default of `candidates` (BM25), 1-1000.
    pub default_candidates: u32,
    /// Clips nearest to the prompt embedding (from the HNSW graph) merged with the BM25
    /// candidates, 0-1000 (at least `k` are used; 0: BM25 candidates only, and a query
    /// that no caption matches lexically returns nothing).
    pub dense_candidates: u32,
    /// Candidate list of the graph search (HNSW's ef), 16-4096; at least
    /// `dense_candidates` is used. More: better recall, slower search.
    pub ef_search: u32,
    /// Server defaults of `FrameSpec`.
    pub default_frame_width: u32,
    pub default_frame_height: u32,
    pub default_frame_count: u32,
    /// Concurrent searches on the CPU pool before RESOURCE_EXHAUSTED, 1-4096.
    pub max_concurrent: usize,
    /// Keep the reference-frame tensors of a Search in content-addressed cache entries of
    /// the tensor store (DESIGN.md §4): the same clip (as last ingested) at the same frame
    /// size and count is not decoded and scaled again. Off: every Search stores its frames
    /// under the job's key, as a call with `context.bypass_cache` does.
    pub cache_outputs: bool,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            caption_boost: 1.0,
            tags_boost: 1.5,
            bm25_weight: 0.3,
            embedding_weight: 0.7,
            default_k: 5,
            default_candidates: 100,
            dense_candidates: 32,
            ef_search: 128,
            default_frame_width: 512,
            default_frame_height: 512,
            default_frame_count: 16,
            max_concurrent: 64,
            cache_outputs: true,
        }
    }
}

/// Clip validation and frame sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub ffprobe: String,
    pub ffmpeg: String,
    /// Server default of `IngestOptions.frames_per_clip`, 1-64.
    pub default_frames_per_clip: u32,
    /// Clips shorter than this are skipped (TOO_SHORT), seconds, 0-3600.
    pub min_duration_s: f64,
    /// Stored frames are scaled so that their longer side is at most this, 64-4096.
    pub max_frame_side: u32,
    /// Kill ffprobe/ffmpeg after this many seconds, 1-3600.
    pub tool_timeout_s: u64,
    /// Commit the index after this many indexed clips (and at the end of a batch), 1-100000.
    pub commit_every: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            ffprobe: "ffprobe".into(),
            ffmpeg: "ffmpeg".into(),
            default_frames_per_clip: 16,
            min_duration_s: 0.5,
            max_frame_side: 640,
            tool_timeout_s: 60,
            commit_every: 256,
        }
    }
}

impl Validate for RetrievalConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.validate_stage_tables()?;
        self.catalog.validate().map_err(|e| e.within("catalog"))?;
        self.encoder.validate().map_err(|e| e.within("encoder"))?;
        self.search.validate().map_err(|e| e.within("search"))?;
        self.ingest.validate().map_err(|e| e.within("ingest"))
    }
}

impl Validate for CatalogConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ValidationError::new("dir", "must not be empty"));
        }
        // Empty is allowed (Ingest then reads nothing); the file-system root would let
        // Ingest read any file the service can open.
        if self.media_root.has_root() && self.media_root.parent().is_none() {
            return Err(ValidationError::new(
                "media_root",
                "must not be the file-system root `/` (Ingest would read any file); name \
                 the directory that holds the videos, or leave it empty to refuse every clip",
            ));
        }
        check_range("writer_memory_mb", self.writer_memory_mb, 15, 4096)?;
        check_range("writer_threads", self.writer_threads, 1, 16)?;
        check_range("ann_connections", self.ann_connections, 4, 64)?;
        check_range(
            "ann_ef_construction",
            self.ann_ef_construction,
            self.ann_connections.max(16),
            2048,
        )
    }
}

impl Validate for EncoderConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.model_dir.as_os_str().is_empty() {
            return Err(ValidationError::new("model_dir", "must not be empty"));
        }
        self.device
            .parse::<storyreel_nn::DeviceSpec>()
            .map_err(|e| ValidationError::new("device", e.to_string()))?;
        check_range("batch_size", self.batch_size, 1, 256)?;
        check_range("queue_capacity", self.queue_capacity, 1, 65_536)?;
        check_range("threads", self.threads, 0, 256)?;
        check_range("max_consecutive_failures", self.max_consecutive_failures, 1, 1000)
    }
}

impl Validate for SearchConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        check_float("caption_boost", self.caption_boost, 0.0, 100.0)?;
        check_float("tags_boost", self.tags_boost, 0.0, 100.0)?;
        if self.caption_boost + self.tags_boost <= 0.0 {
            return Err(ValidationError::new(
                "caption_boost",
                "and `tags_boost` must not both be 0",
            ));
        }
        check_float("bm25_weight", self.bm25_weight, 0.0, 1.0)?;
        check_float("embedding_weight", self.embedding_weight, 0.0, 1.0)?;
        if self.bm25_weight + self.embedding_weight <= 0.0 {
            return Err(ValidationError::new(
                "bm25_weight",
                "and `embedding_weight` must not both be 0",
            ));
        }
        check_range("default_k", self.default_k, 1, crate::validation::K_MAX)?;
        check_range(
            "default_candidates",
            self.default_candidates,
            self.default_k,
            crate::validation::CANDIDATES_MAX,
        )?;
        check_range(
            "dense_candidates",
            self.dense_candidates,
            0,
            crate::validation::CANDIDATES_MAX,
        )?;
        check_range("ef_search", self.ef_search, 16, 4096)?;
        for (field, value) in [
            ("default_frame_width", self.default_frame_width),
            ("default_frame_height", self.default_frame_height),
        ] {
            crate::validation::check_frame_side(field, value)?;
        }
        check_range(
            "default_frame_count",
            self.default_frame_count,
            1,
            crate::validation::FRAME_COUNT_MAX,
        )?;
        check_range("max_concurrent", self.max_concurrent, 1, 4096)
    }
}

impl CatalogConfig {
    /// The HNSW graph's construction parameters.
    pub fn ann(&self) -> AnnParams {
        AnnParams {
            connections: self.ann_connections,
            ef_construction: self.ann_ef_construction,
        }
    }
}

impl SearchConfig {
    /// The dense candidates' parameters.
    pub fn dense(&self) -> crate::search::DenseParams {
        crate::search::DenseParams {
            candidates: self.dense_candidates as usize,
            ef_search: self.ef_search as usize,
        }
    }
}

impl Validate for IngestConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.ffprobe.is_empty() {
            return Err(ValidationError::new("ffprobe", "must not be empty"));
        }
        if self.ffmpeg.is_empty() {
            return Err(ValidationError::new("ffmpeg", "must not be empty"));
        }
        check_range(
            "default_frames_per_clip",
            self.default_frames_per_clip,
            1,
            crate::validation::FRAME_COUNT_MAX,
        )?;
        if !(0.0..=3600.0).contains(&self.min_duration_s) {
            return Err(ValidationError::new(
                "min_duration_s",
                format!("must be between 0 and 3600, got {}", self.min_duration_s),
            ));
        }
        check_range("max_frame_side", self.max_frame_side, 64, 4096)?;
        check_range("tool_timeout_s", self.tool_timeout_s, 1, 3600)?;
        check_range("commit_every", self.commit_every, 1, 100_000)
    }
}

fn check_float(field: &str, value: f32, min: f32, max: f32) -> Result<(), ValidationError> {
    if !value.is_finite() || value < min || value > max {
        return Err(ValidationError::new(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        RetrievalConfig::default().validate().unwrap();
    }

    #[test]
    fn limits_are_named() {
        let mut config = RetrievalConfig::default();
        config.search.bm25_weight = 1.5;
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "search.bm25_weight");
        assert!(err.message.contains("between 0 and 1"), "{err}");

        let mut config = RetrievalConfig::default();
        config.search.default_frame_width = 100;
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "search.default_frame_width");
        assert!(err.message.contains("multiple of 8"), "{err}");

        let mut config = RetrievalConfig::default();
        config.encoder.device = "tpu".into();
        assert_eq!(config.validate().unwrap_err().field, "encoder.device");

        let mut config = RetrievalConfig::default();
        config.catalog.media_root = "/".into();
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "catalog.media_root");
        assert!(err.message.contains("file-system root"), "{err}");
        config.catalog.media_root = "/srv/media".into();
        config.validate().unwrap();
    }

    #[test]
    fn dense_search_limits_are_named() {
        let mut config = RetrievalConfig::default();
        config.search.dense_candidates = 1001;
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "search.dense_candidates");
        assert!(err.message.contains("1000"), "{err}");

        let mut config = RetrievalConfig::default();
        config.search.ef_search = 8;
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "search.ef_search");
        assert!(err.message.contains("16"), "{err}");

        let mut config = RetrievalConfig::default();
        config.catalog.ann_connections = 100;
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "catalog.ann_connections");
        assert!(err.message.contains("64"), "{err}");

        let mut config = RetrievalConfig::default();
        config.catalog.ann_ef_construction = 8;
        assert_eq!(
            config.validate().unwrap_err().field,
            "catalog.ann_ef_construction"
        );

        // 0 turns dense candidates off.
        let mut config = RetrievalConfig::default();
        config.search.dense_candidates = 0;
        config.validate().unwrap();
    }
}

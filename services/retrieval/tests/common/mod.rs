//! Helpers of the retrieval integration tests: the real MiniLM encoder (`make models`),
//! temporary catalogs, and small real videos made with ffmpeg.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};
use storyreel_retrieval::{
    catalog::{Catalog, CatalogOptions},
    config::{EncoderConfig, IngestConfig},
    encoder::{Embedder, EncoderWorker},
    ingest::{ClipSpec, IngestEvent, IngestOptions, IngestSummary, Ingestor},
};
use tokio::sync::mpsc;

pub fn cache_dir() -> PathBuf {
    match std::env::var("STORYREEL_CACHE") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/storyreel"),
    }
}

pub fn encoder_config() -> EncoderConfig {
    let config = EncoderConfig {
        model_dir: cache_dir().join("models/all-minilm-l6-v2"),
        ..EncoderConfig::default()
    };
    assert!(
        config.model_dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 is missing from {}: run `make models`",
        config.model_dir.display()
    );
    config
}

pub fn encoder() -> Arc<dyn Embedder> {
    Arc::new(EncoderWorker::start(&encoder_config()).expect("the encoder loads"))
}

pub fn open_catalog(dir: &Path, encoder: &Arc<dyn Embedder>) -> Arc<Catalog> {
    Catalog::open(
        dir,
        CatalogOptions {
            embedding_model: encoder.model().clone(),
            embedding_dim: encoder.dimension(),
            writer_memory_bytes: 20 << 20,
            writer_threads: 1,
            ann: Default::default(),
        },
    )
    .expect("the catalog opens")
}

pub fn ingest_config() -> IngestConfig {
    IngestConfig {
        default_frames_per_clip: 4,
        max_frame_side: 160,
        ..IngestConfig::default()
    }
}

/// A real H.264 clip of `seconds` at 160x90 from one of ffmpeg's test sources.
pub fn make_clip(dir: &Path, name: &str, source: &str, seconds: f64) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i"])
        .arg(format!("{source}=size=160x90:rate=12"))
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg made {}", path.display());
    path
}

pub fn clip(id: &str, caption: &str, video: &Path) -> ClipSpec {
    ClipSpec {
        clip_id: id.into(),
        caption: caption.into(),
        tags: vec![],
        video_uri: video.display().to_string(),
        licence: "CC0-1.0".into(),
        source_uri: "ffmpeg lavfi".into(),
    }
}

/// Runs one ingest batch; returns its events and summary.
pub async fn ingest(
    ingestor: &Arc<Ingestor>,
    options: IngestOptions,
    clips: Vec<ClipSpec>,
) -> (Vec<IngestEvent>, IngestSummary) {
    let (tx, mut rx) = mpsc::channel(1024);
    let stream = futures::stream::iter(clips.into_iter().map(Ok));
    let summary = ingestor.run(options, stream, tx).await.expect("the batch runs");
    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (events, summary)
}

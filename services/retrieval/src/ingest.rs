//! Ingest: a stream of clips -> probed, sampled, embedded and indexed clips, with one
//! outcome per clip, progress, and a summary last.
//!
//! Per clip: validate the fields (skip INVALID_FIELD), refuse a repeated id in the batch
//! (DUPLICATE_IN_BATCH), leave an existing id alone unless `replace_existing`
//! (UNCHANGED), resolve the URI to a file below the media root ([`crate::media_root::resolve_video_uri`]: a
//! relative path, or an absolute path or `file://` URI inside the root; anything else,
//! `..` and symbolic links leading out included, is UNSUPPORTED_URI, and so is every URI
//! when no media root is configured), check it can be read (UNREADABLE), ffprobe it
//! (INVALID_VIDEO, TOO_SHORT), sample its frames with ffmpeg (INVALID_VIDEO when none
//! decode), embed the caption on the encoder worker, and upsert it (delete-then-add by
//! clip id). A bad clip is reported and skipped; only a failure of the catalog itself
//! ends the batch. The index is committed every `commit_every` clips and at the end, so
//! searches running meanwhile see the clips in batches. Blocking work (tools, tantivy)
//! runs on the blocking pool.

use crate::{
    catalog::{Catalog, CatalogWriter, schema::ClipRecord},
    config::IngestConfig,
    encoder::Embedder,
    error::RetrievalError,
    frames,
    media::{MediaError, Tools},
    media_root::resolve_video_uri,
    validation,
};
use futures::{Stream, StreamExt};
use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};
use tokio::sync::{Mutex, mpsc};

/// A clip as the client sent it (validated here, per clip, so a bad one is skipped).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClipSpec {
    pub clip_id: String,
    pub caption: String,
    pub tags: Vec<String>,
    pub video_uri: String,
    pub licence: String,
    pub source_uri: String,
}

/// Batch options (validated by the caller).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestOptions {
    pub replace_existing: bool,
    pub frames_per_clip: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    InvalidField,
    UnsupportedUri,
    Unreadable,
    InvalidVideo,
    TooShort,
    DuplicateInBatch,
    Internal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Indexed,
    Unchanged,
    Skipped(SkipReason),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClipResult {
    pub clip_id: String,
    pub outcome: Outcome,
    /// Why it was skipped (at most 1024 characters); empty otherwise.
    pub detail: String,
    /// Set for INDEXED and UNCHANGED.
    pub metadata: Option<ClipRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IngestSummary {
    pub received: u32,
    pub indexed: u32,
    pub unchanged: u32,
    pub skipped: u32,
    pub catalog_clips: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IngestEvent {
    Clip(ClipResult),
    /// Clips done so far.
    Progress {
        done: u32,
    },
    Summary(IngestSummary),
}

/// Everything ingest needs; one per process, batches run one at a time.
pub struct Ingestor {
    pub catalog: Arc<Catalog>,
    pub embedder: Arc<dyn Embedder>,
    pub tools: Tools,
    pub config: IngestConfig,
    /// Videos are read only below this directory ([`crate::media_root::resolve_video_uri`]); empty: none are.
    pub media_root: PathBuf,
    batch: Mutex<()>,
}

impl Ingestor {
    pub fn new(
        catalog: Arc<Catalog>,
        embedder: Arc<dyn Embedder>,
        config: IngestConfig,
        media_root: PathBuf,
    ) -> Self {
        let tools = Tools {
            ffprobe: config.ffprobe.clone(),
            ffmpeg: config.ffmpeg.clone(),
            timeout: std::time::Duration::from_secs(config.tool_timeout_s),
        };
        Ingestor {
            catalog,
            embedder,
            tools,
            config,
            media_root,
            batch: Mutex::new(()),
        }
    }

    /// Ingests `clips`, sending each event to `events` (a closed receiver stops nothing:
    /// the batch still completes and commits). Returns the summary, also sent last. An
    /// error of the clip stream ends the batch after committing what was indexed.
    pub async fn run<S>(
        self: &Arc<Self>,
        options: IngestOptions,
        clips: S,
        events: mpsc::Sender<IngestEvent>,
    ) -> Result<IngestSummary, RetrievalError>
    where
        S: Stream<Item = Result<ClipSpec, RetrievalError>> + Send,
    {
        let _batch = self.batch.lock().await;
        let catalog = self.catalog.clone();
        let mut writer = Some(blocking(move || catalog.writer()).await?);
        let mut summary = IngestSummary::default();
        let mut seen = HashSet::new();
        let mut clips = std::pin::pin!(clips);
        let mut stream_error = None;
        while let Some(item) = clips.next().await {
            let spec = match item {
                Ok(spec) => spec,
                Err(e) => {
                    stream_error = Some(e);
                    break;
                }
            };
            summary.received += 1;
            let result = self.one(&spec, options, &mut seen, &mut writer).await?;
            let outcome = match &result.outcome {
                Outcome::Indexed => "indexed",
                Outcome::Unchanged => "unchanged",
                Outcome::Skipped(_) => "skipped",
            };
            metrics::counter!("storyreel_retrieval_ingest_clips_total", "outcome" => outcome).increment(1);
            match &result.outcome {
                Outcome::Indexed => summary.indexed += 1,
                Outcome::Unchanged => summary.unchanged += 1,
                Outcome::Skipped(reason) => {
                    summary.skipped += 1;
                    tracing::warn!(clip_id = %result.clip_id, ?reason, detail = %result.detail, "clip skipped");
                }
            }
            let _ = events.send(IngestEvent::Clip(result)).await;
            let _ = events
                .send(IngestEvent::Progress {
                    done: summary.received,
                })
                .await;
            let pending = writer.as_ref().map_or(0, CatalogWriter::pending);
            if pending >= self.config.commit_every {
                let mut w = writer.take().expect("writer present");
                writer = Some(
                    blocking(move || {
                        w.commit()?;
                        Ok(w)
                    })
                    .await?,
                );
            }
        }
        let w = writer.take().expect("writer present");
        blocking(move || w.finish()).await?;
        summary.catalog_clips = self.catalog.snapshot().num_clips();
        tracing::info!(
            received = summary.received,
            indexed = summary.indexed,
            unchanged = summary.unchanged,
            skipped = summary.skipped,
            catalog_clips = summary.catalog_clips,
            "ingest batch committed"
        );
        if let Some(e) = stream_error {
            return Err(e);
        }
        let _ = events.send(IngestEvent::Summary(summary)).await;
        Ok(summary)
    }

    /// One clip. `Err` only for failures of the catalog (the batch cannot go on).
    async fn one(
        self: &Arc<Self>,
        spec: &ClipSpec,
        options: IngestOptions,
        seen: &mut HashSet<String>,
        writer: &mut Option<CatalogWriter>,
    ) -> Result<ClipResult, RetrievalError> {
        let skip = |reason, detail: String| ClipResult {
            clip_id: spec.clip_id.clone(),
            outcome: Outcome::Skipped(reason),
            detail: truncate(&detail, 1024),
            metadata: None,
        };
        let clip = match validation::validate_clip(spec) {
            Ok(clip) => clip,
            Err(e) => return Ok(skip(SkipReason::InvalidField, e.to_string())),
        };
        if !seen.insert(clip.clip_id.clone()) {
            return Ok(skip(
                SkipReason::DuplicateInBatch,
                format!("clip id `{}` appeared earlier in this batch", clip.clip_id),
            ));
        }
        if !options.replace_existing {
            let catalog = self.catalog.clone();
            let id = clip.clip_id.clone();
            if let Some(existing) = blocking(move || catalog.snapshot().find(&id)).await? {
                return Ok(ClipResult {
                    clip_id: clip.clip_id.clone(),
                    outcome: Outcome::Unchanged,
                    detail: String::new(),
                    metadata: Some(existing),
                });
            }
        }
        let path = match resolve_video_uri(&self.media_root, &clip.video_uri) {
            Ok(path) => path,
            Err(e) => return Ok(skip(e.skip_reason(), e.to_string())),
        };
        if let Err(e) = std::fs::File::open(&path) {
            return Ok(skip(
                SkipReason::Unreadable,
                format!("`video_uri` `{}` cannot be read: {e}", clip.video_uri),
            ));
        }
        if !path.is_file() {
            return Ok(skip(
                SkipReason::Unreadable,
                format!("`video_uri` `{}` is not a file", clip.video_uri),
            ));
        }

        let this = self.clone();
        let id = clip.clip_id.clone();
        let sampled =
            blocking(move || Ok(this.probe_and_sample(&id, &path, options.frames_per_clip))).await?;
        let (info, meta) = match sampled {
            Ok(found) => found,
            Err(MediaError::InvalidVideo(d)) => return Ok(skip(SkipReason::InvalidVideo, d)),
            Err(MediaError::TooShort(d)) => return Ok(skip(SkipReason::TooShort, d)),
            Err(MediaError::Tool(d)) => return Ok(skip(SkipReason::Internal, d)),
        };
        let embedding = match self.embedder.embed(vec![clip.caption.clone()]).await {
            Ok(mut rows) if rows.len() == 1 => rows.remove(0),
            Ok(rows) => {
                return Ok(skip(
                    SkipReason::Internal,
                    format!("the encoder returned {} embeddings for 1 caption", rows.len()),
                ));
            }
            Err(e) => return Ok(skip(SkipReason::Internal, format!("embedding the caption: {e}"))),
        };
        let record = ClipRecord {
            clip_id: clip.clip_id.clone(),
            caption: clip.caption.clone(),
            tags: clip.tags.clone(),
            duration_s: info.duration_s,
            fps: info.fps,
            width: info.width,
            height: info.height,
            licence: clip.licence.clone(),
            source_uri: clip.source_uri.clone(),
            ingest_time: SystemTime::now(),
            frame_count: meta.count,
        };
        let mut w = writer.take().expect("writer present");
        let to_index = record.clone();
        let (w, upserted) = blocking(move || {
            let r = w.upsert(&to_index, &embedding);
            Ok((w, r))
        })
        .await?;
        *writer = Some(w);
        upserted?;
        Ok(ClipResult {
            clip_id: record.clip_id.clone(),
            outcome: Outcome::Indexed,
            detail: String::new(),
            metadata: Some(record),
        })
    }

    fn probe_and_sample(
        &self,
        clip_id: &str,
        path: &Path,
        frames_per_clip: u32,
    ) -> Result<(crate::media::VideoInfo, frames::FramesMeta), MediaError> {
        let info = self.tools.probe(path)?;
        if info.duration_s < self.config.min_duration_s {
            return Err(MediaError::TooShort(format!(
                "the video lasts {:.3} s, the minimum is {} s",
                info.duration_s, self.config.min_duration_s
            )));
        }
        let meta = frames::store_clip_frames(
            &self.tools,
            &self.catalog.frames_dir(),
            clip_id,
            path,
            info.duration_s,
            frames_per_clip,
            self.config.max_frame_side,
        )?;
        Ok((info, meta))
    }
}

/// Runs `f` on the blocking pool; a panic there is an internal error.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, RetrievalError>
where
    F: FnOnce() -> Result<T, RetrievalError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RetrievalError::Internal(format!("a blocking task failed: {e}")))?
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}

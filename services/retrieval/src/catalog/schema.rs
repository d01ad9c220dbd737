//! The tantivy schema of the clip catalog and the clip record it stores.
//!
//! Captions and tags are analysed with tantivy's `en_stem` analyser (simple tokenizer,
//! long-token removal, lowercasing, English Porter stemming), so the keyword "mountains"
//! matches the caption "a mountain". `clip_id` and `licence` are raw terms (exact match:
//! the clip id is the delete-then-add key, the licence a filter). `duration_s` and
//! `aspect` are indexed f64 (range filters), `slot` a u64 fast field: the clip's row in
//! the embedding side store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tantivy::{
    TantivyDocument,
    schema::{
        FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
        Value,
    },
};

pub const CLIP_ID: &str = "clip_id";
pub const CAPTION: &str = "caption";
pub const TAGS: &str = "tags";
pub const DURATION: &str = "duration_s";
pub const ASPECT: &str = "aspect";
pub const FPS: &str = "fps";
pub const WIDTH: &str = "width";
pub const HEIGHT: &str = "height";
pub const LICENCE: &str = "licence";
pub const SOURCE_URI: &str = "source_uri";
pub const INGEST_TIME: &str = "ingest_time_us";
pub const FRAME_COUNT: &str = "frame_count";
pub const SLOT: &str = "slot";

/// The analyser of captions and tags (registered by tantivy by default).
pub const TEXT_ANALYZER: &str = "en_stem";

/// The schema's fields, resolved once.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    pub clip_id: Field,
    pub caption: Field,
    pub tags: Field,
    pub duration: Field,
    pub aspect: Field,
    pub fps: Field,
    pub width: Field,
    pub height: Field,
    pub licence: Field,
    pub source_uri: Field,
    pub ingest_time: Field,
    pub frame_count: Field,
    pub slot: Field,
}

pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_stored().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        clip_id: b.add_text_field(CLIP_ID, STRING | STORED),
        caption: b.add_text_field(CAPTION, text.clone()),
        tags: b.add_text_field(TAGS, text),
        duration: b.add_f64_field(DURATION, INDEXED | STORED | FAST),
        aspect: b.add_f64_field(ASPECT, INDEXED | FAST),
        fps: b.add_f64_field(FPS, STORED),
        width: b.add_u64_field(WIDTH, STORED),
        height: b.add_u64_field(HEIGHT, STORED),
        licence: b.add_text_field(LICENCE, STRING | STORED),
        source_uri: b.add_text_field(SOURCE_URI, STORED),
        ingest_time: b.add_i64_field(INGEST_TIME, STORED),
        frame_count: b.add_u64_field(FRAME_COUNT, STORED),
        slot: b.add_u64_field(SLOT, FAST | STORED),
    };
    (b.build(), fields)
}

/// A catalog entry as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipRecord {
    pub clip_id: String,
    pub caption: String,
    /// Lowercase.
    pub tags: Vec<String>,
    pub duration_s: f64,
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    pub licence: String,
    pub source_uri: String,
    pub ingest_time: SystemTime,
    /// Frames stored for the clip (see [`crate::frames`]).
    pub frame_count: u32,
}

impl ClipRecord {
    pub fn aspect_ratio(&self) -> f64 {
        self.width as f64 / self.height.max(1) as f64
    }

    pub(crate) fn to_document(&self, f: &Fields, slot: u64) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(f.clip_id, &self.clip_id);
        doc.add_text(f.caption, &self.caption);
        for tag in &self.tags {
            doc.add_text(f.tags, tag);
        }
        doc.add_f64(f.duration, self.duration_s);
        doc.add_f64(f.aspect, self.aspect_ratio());
        doc.add_f64(f.fps, self.fps);
        doc.add_u64(f.width, self.width as u64);
        doc.add_u64(f.height, self.height as u64);
        doc.add_text(f.licence, &self.licence);
        doc.add_text(f.source_uri, &self.source_uri);
        let micros = self
            .ingest_time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros() as i64;
        doc.add_i64(f.ingest_time, micros);
        doc.add_u64(f.frame_count, self.frame_count as u64);
        doc.add_u64(f.slot, slot);
        doc
    }

    pub(crate) fn from_document(doc: &TantivyDocument, f: &Fields) -> ClipRecord {
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let float = |field| doc.get_first(field).and_then(|v| v.as_f64()).unwrap_or(0.0);
        let int = |field| doc.get_first(field).and_then(|v| v.as_u64()).unwrap_or(0);
        let micros = doc
            .get_first(f.ingest_time)
            .and_then(|v| v.as_i64())
            .unwrap_or(0)
            .max(0) as u64;
        ClipRecord {
            clip_id: text(f.clip_id),
            caption: text(f.caption),
            tags: doc
                .get_all(f.tags)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            duration_s: float(f.duration),
            fps: float(f.fps),
            width: int(f.width) as u32,
            height: int(f.height) as u32,
            licence: text(f.licence),
            source_uri: text(f.source_uri),
            ingest_time: UNIX_EPOCH + Duration::from_micros(micros),
            frame_count: int(f.frame_count) as u32,
        }
    }
}

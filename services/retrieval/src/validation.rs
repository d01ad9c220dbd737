//! Wire requests -> typed, validated requests, with the limits and defaults of
//! `retrieval.proto`. Every error names the field and its limit.

use crate::{
    catalog::Filters,
    config::SearchConfig,
    ingest::{ClipSpec, IngestOptions},
    service::{FrameSpec, SearchRequest},
};
use storyreel_proto::retrieval::{self as wire};
use storyreel_runtime::{
    ValidationError,
    job::validate_context,
    text::{check_char_len, check_max_chars, check_no_control_chars, check_trimmed_len, excerpt},
};

pub const KEYWORDS_MAX: usize = 32;
pub const KEYWORD_MAX_CHARS: usize = 64;
pub const PROMPT_MAX_CHARS: usize = 2000;
pub const K_MAX: u32 = 50;
pub const CANDIDATES_MAX: u32 = 1000;
pub const FRAME_SIDE_MIN: u32 = 64;
pub const FRAME_SIDE_MAX: u32 = 1024;
pub const FRAME_COUNT_MAX: u32 = 64;
pub const LICENCES_MAX: usize = 16;
pub const CLIP_ID_MAX_CHARS: usize = 128;
pub const CAPTION_MAX_CHARS: usize = 2000;
pub const TAGS_MAX: usize = 32;
pub const TAG_MAX_CHARS: usize = 64;
pub const LICENCE_MAX_CHARS: usize = 64;
pub const SOURCE_URI_MAX_CHARS: usize = 1024;

/// A frame side: 64-1024, a multiple of 8 (the VAE's factor).
pub fn check_frame_side(field: &str, value: u32) -> Result<(), ValidationError> {
    if !(FRAME_SIDE_MIN..=FRAME_SIDE_MAX).contains(&value) || !value.is_multiple_of(8) {
        return Err(ValidationError::new(
            field,
            format!("must be a multiple of 8 between {FRAME_SIDE_MIN} and {FRAME_SIDE_MAX}, got {value}"),
        ));
    }
    Ok(())
}

/// `SearchRequest` -> [`SearchRequest`], unset fields taking the configured defaults.
pub fn validate_search(
    request: wire::SearchRequest,
    defaults: &SearchConfig,
) -> Result<SearchRequest, ValidationError> {
    let wire::SearchRequest {
        context,
        keywords,
        prompt,
        k,
        candidates,
        filters,
        frames,
        skip_frames,
        frames_clip_id,
    } = request;
    let (job, deadline) = validate_context(context)?;

    if keywords.is_empty() || keywords.len() > KEYWORDS_MAX {
        return Err(ValidationError::new(
            "keywords",
            format!("must hold 1-{KEYWORDS_MAX} entries, got {}", keywords.len()),
        ));
    }
    let mut cleaned = Vec::with_capacity(keywords.len());
    for (i, keyword) in keywords.into_iter().enumerate() {
        let field = format!("keywords[{i}]");
        let keyword = check_trimmed_len(&field, &keyword, 1, KEYWORD_MAX_CHARS)?.to_string();
        check_no_control_chars(&field, &keyword)?;
        cleaned.push(keyword);
    }

    let prompt = prompt.trim().to_string();
    check_max_chars("prompt", &prompt, PROMPT_MAX_CHARS)?;
    check_no_control_chars("prompt", &prompt)?;

    let k = k.unwrap_or(defaults.default_k);
    if !(1..=K_MAX).contains(&k) {
        return Err(ValidationError::new(
            "k",
            format!("must be between 1 and {K_MAX}, got {k}"),
        ));
    }
    let candidates = candidates.unwrap_or(defaults.default_candidates.max(k));
    if !(k..=CANDIDATES_MAX).contains(&candidates) {
        return Err(ValidationError::new(
            "candidates",
            format!("must be between k ({k}) and {CANDIDATES_MAX}, got {candidates}"),
        ));
    }

    let filters = validate_filters(filters.unwrap_or_default())?;
    let frames = frames.unwrap_or_default();
    let width = frames.width.unwrap_or(defaults.default_frame_width);
    let height = frames.height.unwrap_or(defaults.default_frame_height);
    let count = frames.count.unwrap_or(defaults.default_frame_count);
    check_frame_side("frames.width", width)?;
    check_frame_side("frames.height", height)?;
    if !(1..=FRAME_COUNT_MAX).contains(&count) {
        return Err(ValidationError::new(
            "frames.count",
            format!("must be between 1 and {FRAME_COUNT_MAX}, got {count}"),
        ));
    }
    let frames_clip_id = frames_clip_id.trim().to_string();
    check_max_chars("frames_clip_id", &frames_clip_id, CLIP_ID_MAX_CHARS)?;
    check_no_control_chars("frames_clip_id", &frames_clip_id)?;
    Ok(SearchRequest {
        job,
        deadline,
        frames_clip_id: (!frames_clip_id.is_empty()).then_some(frames_clip_id),
        keywords: cleaned,
        prompt,
        k,
        candidates,
        filters,
        frames: FrameSpec { width, height, count },
        skip_frames,
    })
}

fn validate_filters(filters: wire::SearchFilters) -> Result<Filters, ValidationError> {
    let wire::SearchFilters {
        min_duration_s,
        max_duration_s,
        min_aspect_ratio,
        max_aspect_ratio,
        licences,
    } = filters;
    let finite = |field: &str, v: Option<f64>| -> Result<(), ValidationError> {
        match v {
            Some(v) if !v.is_finite() => Err(ValidationError::new(field, format!("must be finite, got {v}"))),
            _ => Ok(()),
        }
    };
    for (field, v) in [
        ("filters.min_duration_s", min_duration_s),
        ("filters.max_duration_s", max_duration_s),
        ("filters.min_aspect_ratio", min_aspect_ratio),
        ("filters.max_aspect_ratio", max_aspect_ratio),
    ] {
        finite(field, v)?;
    }
    if let Some(v) = min_duration_s.filter(|v| *v < 0.0) {
        return Err(ValidationError::new(
            "filters.min_duration_s",
            format!("must be >= 0, got {v}"),
        ));
    }
    if let Some(v) = max_duration_s {
        let min = min_duration_s.unwrap_or(0.0);
        if v <= 0.0 || v < min {
            return Err(ValidationError::new(
                "filters.max_duration_s",
                format!("must be > 0 and >= min_duration_s ({min}), got {v}"),
            ));
        }
    }
    if let Some(v) = min_aspect_ratio.filter(|v| *v <= 0.0) {
        return Err(ValidationError::new(
            "filters.min_aspect_ratio",
            format!("must be > 0, got {v}"),
        ));
    }
    if let Some(v) = max_aspect_ratio {
        let min = min_aspect_ratio.unwrap_or(0.0);
        if v <= 0.0 || v < min {
            return Err(ValidationError::new(
                "filters.max_aspect_ratio",
                format!("must be > 0 and >= min_aspect_ratio ({min}), got {v}"),
            ));
        }
    }
    if licences.len() > LICENCES_MAX {
        return Err(ValidationError::new(
            "filters.licences",
            format!("must hold at most {LICENCES_MAX} entries, got {}", licences.len()),
        ));
    }
    for (i, licence) in licences.iter().enumerate() {
        check_char_len(&format!("filters.licences[{i}]"), licence, 1, LICENCE_MAX_CHARS)?;
    }
    Ok(Filters {
        min_duration_s,
        max_duration_s,
        min_aspect_ratio,
        max_aspect_ratio,
        licences,
    })
}

/// `IngestOptions` -> [`IngestOptions`].
pub fn validate_ingest_options(
    options: Option<wire::IngestOptions>,
    default_frames: u32,
) -> Result<IngestOptions, ValidationError> {
    let options = options.unwrap_or_default();
    let frames_per_clip = options.frames_per_clip.unwrap_or(default_frames);
    if !(1..=FRAME_COUNT_MAX).contains(&frames_per_clip) {
        return Err(ValidationError::new(
            "options.frames_per_clip",
            format!("must be between 1 and {FRAME_COUNT_MAX}, got {frames_per_clip}"),
        ));
    }
    Ok(IngestOptions {
        replace_existing: options.replace_existing,
        frames_per_clip,
    })
}

/// A clip's fields (ingest skips a clip that fails with INVALID_FIELD and this detail).
/// Tags are lowercased and trimmed; the caption trimmed.
pub fn validate_clip(spec: &ClipSpec) -> Result<ClipSpec, ValidationError> {
    let id = &spec.clip_id;
    let id_ok = !id.is_empty()
        && id.len() <= CLIP_ID_MAX_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.bytes().all(|b| b == b'.');
    if !id_ok {
        return Err(ValidationError::new(
            "clip.clip_id",
            format!(
                "must be 1-{CLIP_ID_MAX_CHARS} characters of [A-Za-z0-9._-], not only dots, got {:?}",
                excerpt(id, 80)
            ),
        ));
    }
    let caption = check_trimmed_len("clip.caption", &spec.caption, 1, CAPTION_MAX_CHARS)?.to_string();
    check_no_control_chars("clip.caption", &caption)?;
    if spec.tags.len() > TAGS_MAX {
        return Err(ValidationError::new(
            "clip.tags",
            format!("must hold at most {TAGS_MAX} entries, got {}", spec.tags.len()),
        ));
    }
    let mut tags = Vec::with_capacity(spec.tags.len());
    for (i, tag) in spec.tags.iter().enumerate() {
        let field = format!("clip.tags[{i}]");
        let tag = check_trimmed_len(&field, tag, 1, TAG_MAX_CHARS)?.to_lowercase();
        check_no_control_chars(&field, &tag)?;
        tags.push(tag);
    }
    if spec.video_uri.is_empty() {
        return Err(ValidationError::new("clip.video_uri", "must not be empty"));
    }
    check_char_len("clip.licence", &spec.licence, 1, LICENCE_MAX_CHARS)?;
    check_max_chars("clip.source_uri", &spec.source_uri, SOURCE_URI_MAX_CHARS)?;
    Ok(ClipSpec {
        clip_id: id.clone(),
        caption,
        tags,
        video_uri: spec.video_uri.clone(),
        licence: spec.licence.clone(),
        source_uri: spec.source_uri.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyreel_proto::common::JobContext;

    fn valid() -> wire::SearchRequest {
        wire::SearchRequest {
            keywords: vec!["forest".into(), "path".into()],
            prompt: "a path through a pine forest".into(),
            ..Default::default()
        }
    }

    fn error_of(request: wire::SearchRequest) -> String {
        validate_search(request, &SearchConfig::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unset_fields_take_the_defaults() {
        let r = validate_search(valid(), &SearchConfig::default()).unwrap();
        assert_eq!(r.k, 5);
        assert_eq!(r.candidates, 100);
        assert_eq!(
            r.frames,
            FrameSpec {
                width: 512,
                height: 512,
                count: 16
            }
        );
        assert_eq!(r.filters, Filters::default());
        assert!(r.job.job_id.is_none());
        assert!(!r.skip_frames);
    }

    #[test]
    fn each_limit_is_named() {
        type Mutation = Box<dyn Fn(&mut wire::SearchRequest)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (
                Box::new(|r| r.keywords.clear()),
                "`keywords` must hold 1-32 entries, got 0",
            ),
            (
                Box::new(|r| r.keywords = vec!["x".into(); 33]),
                "`keywords` must hold 1-32 entries, got 33",
            ),
            (
                Box::new(|r| r.keywords[1] = "  ".into()),
                "`keywords[1]` must be 1-64 characters (after trimming), got empty",
            ),
            (
                Box::new(|r| r.keywords[0] = "y".repeat(65)),
                "`keywords[0]` must be 1-64 characters (after trimming), got 65 characters",
            ),
            (
                Box::new(|r| r.prompt = "p".repeat(2001)),
                "`prompt` must be at most 2000 characters, got 2001",
            ),
            (Box::new(|r| r.k = Some(0)), "`k` must be between 1 and 50, got 0"),
            (
                Box::new(|r| r.k = Some(51)),
                "`k` must be between 1 and 50, got 51",
            ),
            (
                Box::new(|r| {
                    r.k = Some(10);
                    r.candidates = Some(5)
                }),
                "`candidates` must be between k (10) and 1000, got 5",
            ),
            (
                Box::new(|r| r.candidates = Some(1001)),
                "`candidates` must be between k (5) and 1000, got 1001",
            ),
            (
                Box::new(|r| {
                    r.frames = Some(wire::FrameSpec {
                        width: Some(100),
                        ..Default::default()
                    })
                }),
                "`frames.width` must be a multiple of 8 between 64 and 1024, got 100",
            ),
            (
                Box::new(|r| {
                    r.frames = Some(wire::FrameSpec {
                        height: Some(2048),
                        ..Default::default()
                    })
                }),
                "`frames.height` must be a multiple of 8 between 64 and 1024, got 2048",
            ),
            (
                Box::new(|r| {
                    r.frames = Some(wire::FrameSpec {
                        count: Some(0),
                        ..Default::default()
                    })
                }),
                "`frames.count` must be between 1 and 64, got 0",
            ),
            (
                Box::new(|r| {
                    r.filters = Some(wire::SearchFilters {
                        min_duration_s: Some(-1.0),
                        ..Default::default()
                    })
                }),
                "`filters.min_duration_s` must be >= 0, got -1",
            ),
            (
                Box::new(|r| {
                    r.filters = Some(wire::SearchFilters {
                        min_duration_s: Some(3.0),
                        max_duration_s: Some(2.0),
                        ..Default::default()
                    })
                }),
                "`filters.max_duration_s` must be > 0 and >= min_duration_s (3), got 2",
            ),
            (
                Box::new(|r| {
                    r.filters = Some(wire::SearchFilters {
                        min_aspect_ratio: Some(0.0),
                        ..Default::default()
                    })
                }),
                "`filters.min_aspect_ratio` must be > 0, got 0",
            ),
            (
                Box::new(|r| {
                    r.filters = Some(wire::SearchFilters {
                        licences: vec!["x".into(); 17],
                        ..Default::default()
                    })
                }),
                "`filters.licences` must hold at most 16 entries, got 17",
            ),
            (
                Box::new(|r| {
                    r.context = Some(JobContext {
                        job_id: "a b".into(),
                        ..Default::default()
                    })
                }),
                "`context.job_id` must be 1-64 characters of [A-Za-z0-9_-] (or empty), got \"a b\"",
            ),
            (
                Box::new(|r| {
                    r.context = Some(JobContext {
                        scene_index: Some(8),
                        ..Default::default()
                    })
                }),
                "`context.scene_index` must be between 0 and 7, got 8",
            ),
        ];
        for (mutate, expected) in cases {
            let mut r = valid();
            mutate(&mut r);
            assert_eq!(error_of(r), expected);
        }
    }

    #[test]
    fn clips_are_checked_field_by_field() {
        let ok = ClipSpec {
            clip_id: "forest-path_01.a".into(),
            caption: " A path through a pine forest ".into(),
            tags: vec![" Forest ".into()],
            video_uri: "clips/a.mp4".into(),
            licence: "CC-BY-4.0".into(),
            source_uri: "debian:lomiri-wallpapers".into(),
        };
        let clean = validate_clip(&ok).unwrap();
        assert_eq!(clean.caption, "A path through a pine forest");
        assert_eq!(clean.tags, vec!["forest"]);
        let bad = |f: fn(&mut ClipSpec)| {
            let mut c = ok.clone();
            f(&mut c);
            validate_clip(&c).unwrap_err().field
        };
        assert_eq!(bad(|c| c.clip_id = "..".into()), "clip.clip_id");
        assert_eq!(bad(|c| c.clip_id = "a/b".into()), "clip.clip_id");
        assert_eq!(bad(|c| c.caption = " ".into()), "clip.caption");
        assert_eq!(bad(|c| c.tags = vec!["".into()]), "clip.tags[0]");
        assert_eq!(bad(|c| c.video_uri.clear()), "clip.video_uri");
        assert_eq!(bad(|c| c.licence.clear()), "clip.licence");
    }

    #[test]
    fn ingest_options() {
        assert_eq!(validate_ingest_options(None, 16).unwrap().frames_per_clip, 16);
        let err = validate_ingest_options(
            Some(wire::IngestOptions {
                frames_per_clip: Some(65),
                replace_existing: false,
            }),
            16,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`options.frames_per_clip` must be between 1 and 64, got 65"
        );
    }
}

//! `GET /v1/jobs/{job_id}/artifacts/{name}`: an artifact's bytes with HTTP range requests
//! (a video element seeks, a download resumes), its SHA-256 as the ETag, and
//! `?download=1` for a save-as. `subtitles.vtt` is the job's SRT as WebVTT, the format a
//! browser's `<track>` reads.

use super::{
    RestState,
    auth::Authed,
    error::{HttpError, invalid},
};
use crate::api::service::ApiError;
use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::sync::Arc;

/// Bytes read from the store per piece of the body.
const PIECE: u64 = 1 << 20;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactQuery {
    /// Answer with `Content-Disposition: attachment`: `true` or `1`.
    #[serde(default)]
    download: Option<String>,
}

/// A query flag: `true`/`1`, `false`/`0`.
fn flag(field: &str, value: Option<&str>) -> Result<bool, HttpError> {
    match value {
        None | Some("false" | "0") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(invalid(
            field,
            format!("must be true, false, 1 or 0, got `{other}`"),
        )),
    }
}

/// What a `Range` header asks of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    All,
    /// Inclusive byte range.
    Part(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range (`a-b`, `a-`, `-n`); anything else (several ranges, other units)
/// is answered whole, as RFC 9110 allows.
fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::All;
    };
    if spec.contains(',') {
        return Wanted::All;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Wanted::All;
    };
    let (first, last) = (first.trim(), last.trim());
    let parsed = match (first.is_empty(), last.is_empty()) {
        (true, false) => last
            .parse::<u64>()
            .ok()
            .map(|n| (size.saturating_sub(n), size.saturating_sub(1), n > 0)),
        (false, true) => first
            .parse::<u64>()
            .ok()
            .map(|a| (a, size.saturating_sub(1), true)),
        (false, false) => match (first.parse::<u64>(), last.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => Some((a, b.min(size.saturating_sub(1)), true)),
            _ => None,
        },
        (true, true) => None,
    };
    match parsed {
        None => Wanted::All,
        Some((a, b, nonempty)) if nonempty && size > 0 && a < size && a <= b => Wanted::Part(a, b),
        Some(_) => Wanted::Unsatisfiable,
    }
}

/// SRT as WebVTT: a header, and `.` for `,` in the cue timings.
fn srt_to_vtt(srt: &str) -> String {
    let mut vtt = String::from("WEBVTT\n\n");
    for line in srt.lines() {
        if line.contains("-->") {
            vtt.push_str(&line.replace(',', "."));
        } else {
            vtt.push_str(line);
        }
        vtt.push('\n');
    }
    vtt
}

pub async fn get_artifact(
    State(state): State<Arc<RestState>>,
    Authed(caller): Authed,
    Path((job_id, name)): Path<(String, String)>,
    query: Result<Query<ArtifactQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let Query(query) = query.map_err(|e| invalid("query", e.body_text()))?;
    let download = flag("download", query.download.as_deref())?;
    let service = &state.service;
    if name == "subtitles.vtt" {
        let srt = service.artifact(&caller, &job_id, "subtitles.srt").await?;
        let bytes = service
            .artifacts()
            .read(&job_id, &srt.name, 0..srt.size_bytes)
            .await
            .map_err(ApiError::from)?;
        let vtt = srt_to_vtt(&String::from_utf8_lossy(&bytes));
        return Ok(([(header::CONTENT_TYPE, "text/vtt; charset=utf-8")], vtt).into_response());
    }
    let artifact = service.artifact(&caller, &job_id, &name).await?;
    let size = artifact.size_bytes;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, first, last) = match wanted(range, size) {
        Wanted::All => (StatusCode::OK, 0, size.saturating_sub(1)),
        Wanted::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b),
        Wanted::Unsatisfiable => {
            let mut response = super::error::HttpError(ApiError::OutOfRange(format!(
                "`range` must lie within the artifact's {size} bytes, got `{}`",
                range.unwrap_or_default()
            )))
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return Ok(response);
        }
    };
    let length = if size == 0 { 0 } else { last - first + 1 };
    let store = service.artifacts().clone();
    let (job, file) = (job_id.clone(), artifact.name.clone());
    let pieces = futures::stream::unfold(first, move |at| {
        let (store, job, file) = (store.clone(), job.clone(), file.clone());
        async move {
            if length == 0 || at > last {
                return None;
            }
            let end = (at + PIECE).min(last + 1);
            let piece = store
                .read(&job, &file, at..end)
                .await
                .map_err(std::io::Error::other);
            Some((piece, end))
        }
    });
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, &artifact.content_type)
        .header(header::CONTENT_LENGTH, length)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{}\"", artifact.sha256))
        .header(header::CACHE_CONTROL, "private, max-age=3600");
    if status == StatusCode::PARTIAL_CONTENT {
        response = response.header(header::CONTENT_RANGE, format!("bytes {first}-{last}/{size}"));
    }
    if download {
        response = response.header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{job_id}-{}\"", artifact.name),
        );
    }
    response
        .body(Body::from_stream(pieces))
        .map_err(|e| HttpError(ApiError::Internal(format!("an artifact response: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_rfc_9110_says() {
        assert_eq!(wanted(None, 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-9"), 100), Wanted::Part(0, 9));
        assert_eq!(wanted(Some("bytes=90-"), 100), Wanted::Part(90, 99));
        assert_eq!(wanted(Some("bytes=-10"), 100), Wanted::Part(90, 99));
        assert_eq!(wanted(Some("bytes=-500"), 100), Wanted::Part(0, 99));
        assert_eq!(wanted(Some("bytes=50-500"), 100), Wanted::Part(50, 99));
        assert_eq!(wanted(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,5-6"), 100), Wanted::All);
        assert_eq!(wanted(Some("items=0-1"), 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=9-2"), 100), Wanted::All);
        assert_eq!(wanted(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
    }

    #[test]
    fn srt_becomes_webvtt() {
        let srt = "1\n00:00:00,000 --> 00:00:02,500\nHello, world.\n\n";
        let vtt = srt_to_vtt(srt);
        assert!(vtt.starts_with("WEBVTT\n\n1\n00:00:00.000 --> 00:00:02.500\nHello, world.\n"));
    }
}

//! JSONL clip manifests: one JSON object per line,
//!
//! ```json
//! {"clip_id": "forest-path", "caption": "a dirt path through a pine forest",
//!  "tags": ["forest", "path"], "video": "clips/forest-path.mp4",
//!  "licence": "LGPL-3.0-only", "source_uri": "debian:plasma-workspace-wallpapers"}
//! ```
//!
//! `video` (a path, relative to the manifest's directory, or a `file://` URI) and
//! `clip_id`, `caption`, `licence` are required; `tags` and `source_uri` are optional.
//! Blank lines and lines starting with `#` are skipped. Ingest reads a video only below
//! its media root (`crate::ingest::resolve_video_uri`: no `..`, no symbolic link leading
//! out); `storyreel-ingest` uses the manifest's directory unless given `--media-root`.

use crate::ingest::ClipSpec;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    clip_id: String,
    caption: String,
    #[serde(default)]
    tags: Vec<String>,
    video: String,
    licence: String,
    #[serde(default)]
    source_uri: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Line {
        path: String,
        line: usize,
        message: String,
    },
}

/// Reads the manifest at `path`; relative `video` paths are resolved against its directory
/// ([`directory`]), so they become absolute paths.
pub fn read(path: &Path) -> Result<Vec<ClipSpec>, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let base = directory(path).map_err(|source| ManifestError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &base).map_err(|(line, message)| ManifestError::Line {
        path: path.display().to_string(),
        line,
        message,
    })
}

/// The absolute directory of the manifest at `path` (symbolic links kept): the base of
/// its relative `video` paths, and `storyreel-ingest`'s default media root.
pub fn directory(path: &Path) -> std::io::Result<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::path::absolute(parent)
}

/// Parses manifest text; errors are `(1-based line, message)`.
pub fn parse(text: &str, base: &Path) -> Result<Vec<ClipSpec>, (usize, String)> {
    let mut clips = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let line: Line = serde_json::from_str(trimmed).map_err(|e| (i + 1, e.to_string()))?;
        let video = if line.video.contains("://") || Path::new(&line.video).is_absolute() {
            line.video
        } else {
            base.join(&line.video).display().to_string()
        };
        clips.push(ClipSpec {
            clip_id: line.clip_id,
            caption: line.caption,
            tags: line.tags,
            video_uri: video,
            licence: line.licence,
            source_uri: line.source_uri,
        });
    }
    Ok(clips)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_clips() {
        let text = r#"
# the demo
{"clip_id": "a", "caption": "a kite", "tags": ["sky"], "video": "clips/a.mp4", "licence": "MIT"}
{"clip_id": "b", "caption": "a boat", "video": "/abs/b.mp4", "licence": "MIT", "source_uri": "debian:x"}
"#;
        let clips = parse(text, Path::new("/m")).unwrap();
        assert_eq!(clips.len(), 2);
        assert_eq!(clips[0].video_uri, "/m/clips/a.mp4");
        assert_eq!(clips[0].tags, vec!["sky"]);
        assert_eq!(clips[1].video_uri, "/abs/b.mp4");
        assert_eq!(clips[1].source_uri, "debian:x");
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(directory(Path::new("m.jsonl")).unwrap(), cwd);
        assert_eq!(directory(Path::new("sub/m.jsonl")).unwrap(), cwd.join("sub"));
        assert_eq!(directory(Path::new("/m/x.jsonl")).unwrap(), Path::new("/m"));
        let err = parse(r#"{"clip_id": "a"}"#, Path::new("/m")).unwrap_err();
        assert_eq!(err.0, 1);
        assert!(err.1.contains("caption"), "{}", err.1);
    }
}

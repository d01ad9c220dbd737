//! Where Ingest may read videos: a clip's `video_uri` resolved to a file below the
//! configured media root, or refused with the rule it breaks ([`resolve_video_uri`]).

use crate::ingest::SkipReason;
use std::path::{Path, PathBuf};

/// Why a clip's `video_uri` was not resolved to a file below the media root. Each message
/// names the field and the rule broken; none reveals where the media root is.
#[derive(Debug, thiserror::Error)]
pub enum VideoUriError {
    #[error(
        "`video_uri`: no media root is configured, so Ingest reads no file; the operator must \
         set `catalog.media_root` to the directory that holds the videos"
    )]
    NoMediaRoot,
    #[error("`video_uri` must not be empty")]
    Empty,
    #[error("`video_uri` must not contain a NUL byte")]
    NulByte,
    #[error(
        "`video_uri`: `{scheme}://` URIs are not fetched; give a path relative to the media \
         root, or a file:// URI inside it"
    )]
    Scheme { scheme: String },
    #[error("`video_uri` `{uri}`: a file:// URI must hold an absolute path (file:///...)")]
    FileUriNotAbsolute { uri: String },
    #[error("`video_uri` `{uri}` must not contain a `..` component")]
    ParentDir { uri: String },
    #[error("`video_uri` `{uri}` is outside the media root; only files below it are read")]
    OutsideRoot { uri: String },
    #[error(
        "`video_uri` `{uri}` leads outside the media root through a symbolic link; only files \
         below it are read"
    )]
    SymlinkEscape { uri: String },
    #[error("`video_uri` `{uri}` cannot be read: {source}")]
    Unreadable {
        uri: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`video_uri`: the media root (`catalog.media_root`) cannot be opened: {source}")]
    RootUnavailable {
        #[source]
        source: std::io::Error,
    },
}

impl VideoUriError {
    /// The skip reason a clip gets for this error: a refused URI is UNSUPPORTED_URI, a file
    /// (or media root) that is not there or cannot be opened is UNREADABLE.
    pub fn skip_reason(&self) -> SkipReason {
        match self {
            VideoUriError::Unreadable { .. } | VideoUriError::RootUnavailable { .. } => {
                SkipReason::Unreadable
            }
            _ => SkipReason::UnsupportedUri,
        }
    }
}

/// Resolves a clip's `video_uri` to the canonical path of a file below `media_root`, or
/// says why not. Accepted: a relative path (joined to the media root), an absolute path
/// inside the media root, or a `file://` URI holding such an absolute path (taken
/// literally, no percent-decoding). Refused: an empty `media_root` (none configured),
/// an empty URI, NUL bytes, other schemes, any `..` component, an absolute path outside
/// the media root, and a path that symbolic links lead outside it: the joined path and
/// the media root are canonicalized and the former must lie below the latter. Whether
/// the file exists outside the media root is never looked at: an absolute path is
/// checked against the root before anything is opened.
pub fn resolve_video_uri(media_root: &Path, uri: &str) -> Result<PathBuf, VideoUriError> {
    if media_root.as_os_str().is_empty() {
        return Err(VideoUriError::NoMediaRoot);
    }
    if uri.is_empty() {
        return Err(VideoUriError::Empty);
    }
    if uri.contains('\0') {
        return Err(VideoUriError::NulByte);
    }
    let path = if let Some(rest) = uri.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(VideoUriError::FileUriNotAbsolute { uri: uri.into() });
        }
        Path::new(rest)
    } else if let Some((scheme, _)) = uri.split_once("://") {
        return Err(VideoUriError::Scheme {
            scheme: scheme.chars().take(32).collect(),
        });
    } else {
        Path::new(uri)
    };
    if path.as_os_str().is_empty() {
        return Err(VideoUriError::Empty);
    }
    if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(VideoUriError::ParentDir { uri: uri.into() });
    }
    let root = media_root
        .canonicalize()
        .map_err(|source| VideoUriError::RootUnavailable { source })?;
    let joined = if path.is_absolute() {
        // Lexically first, against the root as configured and as canonicalized: a path
        // outside it is refused without touching the file system.
        let configured = std::path::absolute(media_root).unwrap_or_else(|_| root.clone());
        if !path.starts_with(&configured) && !path.starts_with(&root) {
            return Err(VideoUriError::OutsideRoot { uri: uri.into() });
        }
        path.to_path_buf()
    } else {
        root.join(path)
    };
    let canonical = joined
        .canonicalize()
        .map_err(|source| VideoUriError::Unreadable {
            uri: uri.into(),
            source,
        })?;
    if !canonical.starts_with(&root) {
        return Err(VideoUriError::SymlinkEscape { uri: uri.into() });
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A media root holding `clips/good.mp4`, a symbolic link to a file outside it, a
    /// symbolic link to a directory outside it, and that outside file next to it.
    struct Fixture {
        dir: tempfile::TempDir,
        root: PathBuf,
        outside: PathBuf,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("media");
        std::fs::create_dir_all(root.join("clips")).unwrap();
        std::fs::write(root.join("clips/good.mp4"), b"video").unwrap();
        let outside = dir.path().join("secret.mp4");
        std::fs::write(&outside, b"not yours").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("escape.mp4")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("up")).unwrap();
        std::os::unix::fs::symlink("clips/good.mp4", root.join("inside.mp4")).unwrap();
        Fixture { dir, root, outside }
    }

    fn refused(root: &Path, uri: &str) -> (SkipReason, String) {
        let err = resolve_video_uri(root, uri).expect_err(uri);
        let detail = err.to_string();
        assert!(detail.contains("`video_uri`"), "{uri}: {detail} names the field");
        (err.skip_reason(), detail)
    }

    #[test]
    fn paths_below_the_media_root_are_accepted() {
        let f = fixture();
        let good = f.root.join("clips/good.mp4").canonicalize().unwrap();
        assert_eq!(resolve_video_uri(&f.root, "clips/good.mp4").unwrap(), good);
        assert_eq!(resolve_video_uri(&f.root, "./clips/good.mp4").unwrap(), good);
        let absolute = f.root.join("clips/good.mp4");
        let uri = absolute.display().to_string();
        assert_eq!(resolve_video_uri(&f.root, &uri).unwrap(), good);
        assert_eq!(
            resolve_video_uri(&f.root, &format!("file://{uri}")).unwrap(),
            good
        );
        // A symbolic link that stays inside the root is followed.
        assert_eq!(resolve_video_uri(&f.root, "inside.mp4").unwrap(), good);
        // A media root configured through a symbolic link works the same.
        let linked_root = f.dir.path().join("media-link");
        std::os::unix::fs::symlink(&f.root, &linked_root).unwrap();
        assert_eq!(resolve_video_uri(&linked_root, "clips/good.mp4").unwrap(), good);
        let via_link = linked_root.join("clips/good.mp4").display().to_string();
        assert_eq!(resolve_video_uri(&linked_root, &via_link).unwrap(), good);
    }

    #[test]
    fn escapes_are_refused_as_unsupported_uris() {
        let f = fixture();
        let outside = f.outside.display().to_string();
        for (uri, rule) in [
            (outside.as_str(), "outside the media root"),
            ("/etc/passwd", "outside the media root"),
            ("file:///etc/passwd", "outside the media root"),
            ("../x.mp4", "`..`"),
            ("a/../../x.mp4", "`..`"),
            ("clips/../clips/good.mp4", "`..`"),
            ("file:///../etc/passwd", "`..`"),
            ("escape.mp4", "symbolic link"),
            ("up/secret.mp4", "symbolic link"),
            ("", "must not be empty"),
            ("file://", "absolute path"),
            ("clips/good.mp4\0", "NUL"),
            ("file://etc/passwd", "absolute path"),
            ("https://example.invalid/a.mp4", "`https://`"),
            ("s3://bucket/a.mp4", "`s3://`"),
        ] {
            let (reason, detail) = refused(&f.root, uri);
            assert_eq!(reason, SkipReason::UnsupportedUri, "{uri:?}: {detail}");
            assert!(detail.contains(rule), "{uri:?}: {detail:?} should say {rule:?}");
        }
        // The media root itself is not revealed.
        let (_, detail) = refused(&f.root, "escape.mp4");
        assert!(!detail.contains(&*f.root.display().to_string()), "{detail}");
    }

    #[test]
    fn a_missing_file_is_unreadable_not_an_escape() {
        let f = fixture();
        let (reason, detail) = refused(&f.root, "clips/missing.mp4");
        assert_eq!(reason, SkipReason::Unreadable, "{detail}");
        assert!(detail.contains("clips/missing.mp4"), "{detail}");
        // Outside the root, whether the file exists is not looked at: both are refused.
        let missing_outside = f.dir.path().join("nope.mp4").display().to_string();
        let (reason, _) = refused(&f.root, &missing_outside);
        assert_eq!(reason, SkipReason::UnsupportedUri);
        // A missing media root: every clip is unreadable, and the setting is named.
        let (reason, detail) = refused(&f.dir.path().join("no-such-root"), "a.mp4");
        assert_eq!(reason, SkipReason::Unreadable);
        assert!(detail.contains("catalog.media_root"), "{detail}");
    }

    #[test]
    fn without_a_media_root_nothing_is_read() {
        let f = fixture();
        let good = f.root.join("clips/good.mp4").display().to_string();
        for uri in [good.as_str(), "clips/good.mp4", "/etc/passwd"] {
            let (reason, detail) = refused(Path::new(""), uri);
            assert_eq!(reason, SkipReason::UnsupportedUri);
            assert!(detail.contains("set `catalog.media_root`"), "{detail}");
        }
    }
}

//! A job's artifacts (the MP4, the .srt and the JSON report) in an object store, through
//! the `object_store` crate: a local directory by default, S3 (or any S3-compatible
//! store) in a cluster, so that any replica serves any job's files. Objects live at
//! `jobs/{job_id}/{name}`; both parts are checked against their alphabets before they
//! become a path, so no request names a file outside a job's own prefix.

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, path::Path};
use std::{ops::Range, sync::Arc};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("`{field}` must be {rule}, got `{value}`")]
    BadName {
        field: &'static str,
        rule: &'static str,
        value: String,
    },
    #[error("artifact `{0}` not found")]
    NotFound(String),
    #[error("artifact store `{url}`: {source}")]
    Open {
        url: String,
        source: object_store::Error,
    },
    #[error("artifact store: {0}")]
    Store(#[from] object_store::Error),
}

/// 1-128 characters of `[A-Za-z0-9._-]`, not starting with a dot.
pub fn check_name(name: &str) -> Result<(), ArtifactError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ArtifactError::BadName {
            field: "name",
            rule: "1-128 characters of [A-Za-z0-9._-], not starting with a dot",
            value: name.chars().take(140).collect(),
        })
    }
}

/// 1-64 characters of `[A-Za-z0-9_-]`.
pub fn check_job_id(job_id: &str) -> Result<(), ArtifactError> {
    let ok = !job_id.is_empty()
        && job_id.len() <= 64
        && job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ArtifactError::BadName {
            field: "job_id",
            rule: "1-64 characters of [A-Za-z0-9_-]",
            value: job_id.chars().take(80).collect(),
        })
    }
}

#[derive(Clone)]
pub struct ArtifactStore {
    store: Arc<dyn ObjectStore>,
}

impl ArtifactStore {
    /// Opens `url`: `file:///abs/dir` (created if missing) or `s3://bucket/prefix`.
    pub fn open(url: &str) -> Result<Self, ArtifactError> {
        let open_err = |source| ArtifactError::Open {
            url: url.to_string(),
            source,
        };
        let parsed = url::Url::parse(url).map_err(|e| {
            open_err(object_store::Error::Generic {
                store: "url",
                source: Box::new(e),
            })
        })?;
        if parsed.scheme() == "file" {
            let dir = parsed.to_file_path().map_err(|()| {
                open_err(object_store::Error::Generic {
                    store: "url",
                    source: "a file:// URL needs an absolute path".into(),
                })
            })?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                open_err(object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(e),
                })
            })?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(open_err)?;
            return Ok(Self {
                store: Arc::new(local),
            });
        }
        let (store, prefix) = object_store::parse_url_opts(&parsed, std::env::vars()).map_err(open_err)?;
        let store: Arc<dyn ObjectStore> = if prefix.as_ref().is_empty() {
            Arc::from(store)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(store, prefix))
        };
        Ok(Self { store })
    }

    fn path(job_id: &str, name: &str) -> Result<Path, ArtifactError> {
        check_job_id(job_id)?;
        check_name(name)?;
        Ok(Path::from_iter(["jobs", job_id, name]))
    }

    pub async fn put(&self, job_id: &str, name: &str, bytes: Bytes) -> Result<(), ArtifactError> {
        self.store
            .put(&Self::path(job_id, name)?, PutPayload::from_bytes(bytes))
            .await?;
        Ok(())
    }

    /// The artifact's size.
    pub async fn size(&self, job_id: &str, name: &str) -> Result<u64, ArtifactError> {
        match self.store.head(&Self::path(job_id, name)?).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(ArtifactError::NotFound(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// The bytes of `range`.
    pub async fn read(&self, job_id: &str, name: &str, range: Range<u64>) -> Result<Bytes, ArtifactError> {
        match self.store.get_range(&Self::path(job_id, name)?, range).await {
            Ok(bytes) => Ok(bytes),
            Err(object_store::Error::NotFound { .. }) => Err(ArtifactError::NotFound(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_leave_the_job_prefix() {
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "x\0y",
            "name with space",
            &"a".repeat(129),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["video.mp4", "subtitles.srt", "job.json", "a-b_c.1"] {
            check_name(good).unwrap();
        }
        assert!(check_job_id("../etc").is_err());
        assert!(ArtifactStore::path("job-1", "..").is_err());
    }

    #[tokio::test]
    async fn a_local_store_serves_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let url = url::Url::from_directory_path(dir.path()).unwrap();
        let store = ArtifactStore::open(url.as_str()).unwrap();
        store
            .put("job-1", "video.mp4", Bytes::from_static(b"0123456789"))
            .await
            .unwrap();
        assert_eq!(store.size("job-1", "video.mp4").await.unwrap(), 10);
        assert_eq!(
            &store.read("job-1", "video.mp4", 3..7).await.unwrap()[..],
            b"3456"
        );
        assert!(matches!(
            store.size("job-1", "job.json").await,
            Err(ArtifactError::NotFound(_))
        ));
        assert!(dir.path().join("jobs/job-1/video.mp4").is_file());
    }
}

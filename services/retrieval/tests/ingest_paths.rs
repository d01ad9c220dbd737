//! Ingest reads videos only below its media root: one batch through the real ingest path
//! (MiniLM encoder, ffprobe/ffmpeg) where every way out of the root is skipped as
//! UNSUPPORTED_URI and a relative path inside it is indexed. The resolver's rules one by
//! one are unit tests in `src/ingest.rs`.

mod common;

use common::*;
use std::sync::Arc;
use storyreel_retrieval::ingest::{IngestEvent, IngestOptions, Ingestor, Outcome, SkipReason};

const OPTIONS: IngestOptions = IngestOptions {
    replace_existing: false,
    frames_per_clip: 2,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_reads_only_below_the_media_root() {
    let top = tempfile::tempdir().unwrap();
    let media = top.path().join("media");
    std::fs::create_dir(&media).unwrap();
    // A real video outside the media root, reachable from inside only by a symbolic link.
    let outside = make_clip(top.path(), "outside.mp4", "testsrc2", 1.0);
    std::os::unix::fs::symlink(&outside, media.join("link-out.mp4")).unwrap();
    make_clip(&media, "inside.mp4", "testsrc2", 1.0);

    let catalog_dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    let catalog = open_catalog(catalog_dir.path(), &encoder);
    let ingestor = Arc::new(Ingestor::new(
        catalog.clone(),
        encoder,
        ingest_config(),
        media.clone(),
    ));
    let with_uri = |id: &str, uri: &str| {
        let mut c = clip(id, "a test pattern", &outside);
        c.video_uri = uri.into();
        c
    };
    let clips = vec![
        with_uri("absolute-outside", &outside.display().to_string()),
        with_uri("passwd", "file:///etc/passwd"),
        with_uri("parent", "../outside.mp4"),
        with_uri("nested-parent", "a/../../outside.mp4"),
        with_uri("symlink", "link-out.mp4"),
        with_uri("good", "inside.mp4"),
    ];
    let (events, summary) = ingest(&ingestor, OPTIONS, clips).await;
    assert_eq!((summary.indexed, summary.skipped), (1, 5), "{events:#?}");

    let outcome = |id: &str| {
        events
            .iter()
            .find_map(|e| match e {
                IngestEvent::Clip(c) if c.clip_id == id => Some((c.outcome.clone(), c.detail.clone())),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no outcome for {id}"))
    };
    for (id, rule) in [
        ("absolute-outside", "outside the media root"),
        ("passwd", "outside the media root"),
        ("parent", "`..`"),
        ("nested-parent", "`..`"),
        ("symlink", "symbolic link"),
    ] {
        let (got, detail) = outcome(id);
        assert_eq!(
            got,
            Outcome::Skipped(SkipReason::UnsupportedUri),
            "{id}: {detail}"
        );
        assert!(
            detail.contains("`video_uri`") && detail.contains(rule),
            "{id}: {detail:?} should name `video_uri` and say {rule:?}"
        );
    }
    assert_eq!(outcome("good").0, Outcome::Indexed);
    let snapshot = catalog.snapshot();
    assert!(snapshot.find("good").unwrap().is_some());
    assert!(snapshot.find("symlink").unwrap().is_none());
}

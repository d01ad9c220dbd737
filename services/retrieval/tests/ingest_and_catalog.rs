//! Ingest and the catalog with real parts: ffprobe/ffmpeg on small real clips, the MiniLM
//! encoder, a tantivy catalog in a temporary directory.

mod common;

use common::*;
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use storyreel_retrieval::{
    catalog::{Boosts, Filters},
    frames,
    ingest::{IngestEvent, IngestOptions, Ingestor, Outcome, SkipReason},
    search::{RankQuery, Weights, rank},
};

const OPTIONS: IngestOptions = IngestOptions {
    replace_existing: false,
    frames_per_clip: 4,
};

fn query<'a>(keywords: &'a [String], filters: &'a Filters) -> RankQuery<'a> {
    RankQuery {
        keywords,
        prompt_embedding: None,
        filters,
        k: 5,
        candidates: 100,
        dense: storyreel_retrieval::config::SearchConfig::default().dense(),
        boosts: Boosts {
            caption: 1.0,
            tags: 1.5,
        },
        weights: Weights {
            bm25: 0.4,
            embedding: 0.6,
        },
    }
}

fn outcome_of(events: &[IngestEvent], id: &str) -> (Outcome, String) {
    events
        .iter()
        .find_map(|e| match e {
            IngestEvent::Clip(c) if c.clip_id == id => Some((c.outcome.clone(), c.detail.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no outcome for {id}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clips_are_skipped_with_a_reason_and_the_batch_goes_on() {
    let media = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    let catalog = open_catalog(dir.path(), &encoder);
    let ingestor = Arc::new(Ingestor::new(
        catalog.clone(),
        encoder,
        ingest_config(),
        media.path().to_path_buf(),
    ));
    let good = make_clip(media.path(), "good.mp4", "testsrc2", 2.0);
    let short = make_clip(media.path(), "short.mp4", "testsrc2", 0.25);
    // A corrupt "video": an MP4 header's worth of noise.
    let corrupt = media.path().join("corrupt.mp4");
    std::fs::write(
        &corrupt,
        (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    // A real video truncated to a tenth: the container is broken.
    let truncated = media.path().join("truncated.mp4");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 10]).unwrap();

    let clips = vec![
        clip("corrupt", "noise", &corrupt),
        clip("good", "a test pattern of colour bars", &good),
        clip("truncated", "half a file", &truncated),
        clip("missing", "nothing", &media.path().join("nope.mp4")),
        {
            let mut c = clip("remote", "somewhere else", &good);
            c.video_uri = "https://example.invalid/a.mp4".into();
            c
        },
        clip("short", "a flash", &short),
        clip("good", "the same id again", &good),
        clip("bad/id", "a slash in the id", &good),
        {
            // Relative paths resolve under the media root.
            let mut c = clip("relative", "a test pattern by a relative path", &good);
            c.video_uri = "good.mp4".into();
            c
        },
    ];
    let (events, summary) = ingest(&ingestor, OPTIONS, clips).await;
    assert_eq!(summary.received, 9);
    assert_eq!(summary.indexed, 2, "{events:#?}");
    assert_eq!(summary.skipped, 7);
    assert_eq!(summary.catalog_clips, 2);

    let expect = [
        ("corrupt", SkipReason::InvalidVideo, "ffprobe"),
        ("truncated", SkipReason::InvalidVideo, ""),
        ("missing", SkipReason::Unreadable, "nope.mp4"),
        ("remote", SkipReason::UnsupportedUri, "https://"),
        ("short", SkipReason::TooShort, "minimum"),
        ("bad/id", SkipReason::InvalidField, "clip.clip_id"),
    ];
    for (id, reason, detail) in expect {
        let (outcome, text) = outcome_of(&events, id);
        assert_eq!(outcome, Outcome::Skipped(reason), "{id}: {text}");
        assert!(text.contains(detail), "{id}: {text:?} should mention {detail:?}");
        assert!(!text.is_empty(), "{id} has a reason");
    }
    let duplicate = events.iter().filter_map(|e| match e {
        IngestEvent::Clip(c) if c.clip_id == "good" => Some(c.outcome.clone()),
        _ => None,
    });
    assert_eq!(
        duplicate.collect::<Vec<_>>(),
        vec![Outcome::Indexed, Outcome::Skipped(SkipReason::DuplicateInBatch)]
    );
    // Progress after every clip, the summary last.
    let progress: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            IngestEvent::Progress { done } => Some(*done),
            _ => None,
        })
        .collect();
    assert_eq!(progress, (1..=9).collect::<Vec<_>>());
    assert!(matches!(events.last(), Some(IngestEvent::Summary(_))));

    // The good clip is searchable, with probed metadata and 4 stored frames.
    let hit = catalog.snapshot().find("good").unwrap().unwrap();
    assert_eq!((hit.width, hit.height), (160, 90));
    assert!((hit.duration_s - 2.0).abs() < 0.1, "{}", hit.duration_s);
    assert!((hit.fps - 12.0).abs() < 0.01);
    assert_eq!(hit.frame_count, 4);
    let meta = frames::read_meta(&catalog.frames_dir(), "good").unwrap();
    assert_eq!(meta.count, 4);
    assert_eq!(meta.times_s, vec![0.0, 0.5, 1.0, 1.5]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_survives_a_restart_and_ingest_is_idempotent() {
    let media = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bars = make_clip(media.path(), "bars.mp4", "smptebars", 1.5);
    let mandel = make_clip(media.path(), "mandel.mp4", "mandelbrot", 1.5);
    {
        let encoder = encoder();
        let catalog = open_catalog(dir.path(), &encoder);
        let ingestor = Arc::new(Ingestor::new(
            catalog,
            encoder,
            ingest_config(),
            media.path().to_path_buf(),
        ));
        let clips = vec![
            clip("bars", "television colour bars test card", &bars),
            clip("fractal", "a zoom into a colourful fractal", &mandel),
        ];
        let (_, summary) = ingest(&ingestor, OPTIONS, clips).await;
        assert_eq!(summary.indexed, 2);
    }
    // Everything dropped: reopen from disk.
    let encoder = encoder();
    let catalog = open_catalog(dir.path(), &encoder);
    let stats = catalog.stats().unwrap();
    assert_eq!(stats.clip_count, 2);
    assert_eq!(stats.embedding_rows, 2);
    assert!(stats.last_commit_time.is_some());
    assert!(stats.frame_bytes > 0 && stats.index_bytes > 0);
    let keywords = vec!["fractal".to_string()];
    let ranking = rank(&catalog.snapshot(), &query(&keywords, &Filters::default())).unwrap();
    assert_eq!(ranking.hits[0].record.clip_id, "fractal");
    assert_eq!(ranking.hits[0].record.caption, "a zoom into a colourful fractal");

    // Same ids again: unchanged; with replace_existing: re-indexed, still two clips.
    let ingestor = Arc::new(Ingestor::new(
        catalog.clone(),
        encoder,
        ingest_config(),
        media.path().to_path_buf(),
    ));
    let again = vec![clip("bars", "television colour bars test card", &bars)];
    let (events, summary) = ingest(&ingestor, OPTIONS, again).await;
    assert_eq!((summary.unchanged, summary.indexed), (1, 0));
    assert_eq!(outcome_of(&events, "bars").0, Outcome::Unchanged);
    let replaced = vec![clip(
        "bars",
        "vertical stripes of colour, a broadcast test signal",
        &bars,
    )];
    let options = IngestOptions {
        replace_existing: true,
        ..OPTIONS
    };
    let (_, summary) = ingest(&ingestor, options, replaced).await;
    assert_eq!((summary.indexed, summary.catalog_clips), (1, 2));
    let record = catalog.snapshot().find("bars").unwrap().unwrap();
    assert_eq!(
        record.caption,
        "vertical stripes of colour, a broadcast test signal"
    );
    let keywords = vec!["television".to_string()];
    let old_words = rank(&catalog.snapshot(), &query(&keywords, &Filters::default())).unwrap();
    assert!(
        old_words.hits.is_empty(),
        "the old caption is gone: {:?}",
        old_words.hits
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_sees_another_writers_commits_without_a_restart() {
    let media = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    // The service's catalog: open before the clip exists.
    let service_catalog = open_catalog(dir.path(), &encoder);
    assert_eq!(service_catalog.snapshot().num_clips(), 0);
    // Another handle, as `storyreel-ingest` would open it, writes.
    let writer_catalog = open_catalog(dir.path(), &encoder);
    let ingestor = Arc::new(Ingestor::new(
        writer_catalog,
        encoder,
        ingest_config(),
        media.path().to_path_buf(),
    ));
    let video = make_clip(media.path(), "rgb.mp4", "rgbtestsrc", 1.0);
    ingest(
        &ingestor,
        OPTIONS,
        vec![clip("rgb", "red green and blue stripes", &video)],
    )
    .await;

    let keywords = vec!["stripes".to_string()];
    let filters = Filters::default();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ranking = rank(&service_catalog.snapshot(), &query(&keywords, &filters)).unwrap();
        if let Some(hit) = ranking.hits.first() {
            assert_eq!(hit.record.clip_id, "rgb");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the commit never became visible to the reader"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_restrict_the_candidates() {
    let media = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    let catalog = open_catalog(dir.path(), &encoder);
    let ingestor = Arc::new(Ingestor::new(
        catalog.clone(),
        encoder,
        ingest_config(),
        media.path().to_path_buf(),
    ));
    let long = make_clip(media.path(), "long.mp4", "testsrc", 3.0);
    let brief = make_clip(media.path(), "brief.mp4", "testsrc", 1.0);
    let mut a = clip("long", "a test pattern with a counter", &long);
    a.licence = "MIT".into();
    let b = clip("brief", "a test pattern with a counter", &brief);
    ingest(&ingestor, OPTIONS, vec![a, b]).await;
    let keywords = vec!["pattern".to_string()];
    let ids = |filters: Filters| {
        let ranking = rank(&catalog.snapshot(), &query(&keywords, &filters)).unwrap();
        let mut ids: Vec<String> = ranking.hits.into_iter().map(|h| h.record.clip_id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(Filters::default()), vec!["brief", "long"]);
    let min2 = Filters {
        min_duration_s: Some(2.0),
        ..Default::default()
    };
    assert_eq!(ids(min2), vec!["long"]);
    let max2 = Filters {
        max_duration_s: Some(2.0),
        ..Default::default()
    };
    assert_eq!(ids(max2), vec!["brief"]);
    let cc0 = Filters {
        licences: vec!["CC0-1.0".into()],
        ..Default::default()
    };
    assert_eq!(ids(cc0), vec!["brief"]);
    let portrait = Filters {
        max_aspect_ratio: Some(1.0),
        ..Default::default()
    };
    assert!(ids(portrait).is_empty());
}

#[test]
fn one_writer_at_a_time_and_a_catalog_keeps_its_encoder() {
    use storyreel_retrieval::{
        RetrievalError,
        catalog::{Catalog, CatalogOptions, EmbeddingModel},
    };
    let dir = tempfile::tempdir().unwrap();
    let options = |sha: &str| CatalogOptions {
        embedding_model: EmbeddingModel {
            name: "all-minilm-l6-v2".into(),
            version: "test".into(),
            weights_sha256: sha.into(),
        },
        embedding_dim: 4,
        writer_memory_bytes: 20 << 20,
        writer_threads: 1,
        ann: Default::default(),
    };
    let a = Catalog::open(dir.path(), options("aaaa")).unwrap();
    let b = Catalog::open(dir.path(), options("aaaa")).unwrap();
    let writer = a.writer().unwrap();
    let second = b.writer().err().expect("the lock is held");
    assert!(matches!(second, RetrievalError::CatalogBusy { .. }), "{second}");
    drop(writer);
    b.writer().expect("free again once the first writer is gone");

    let err = Catalog::open(dir.path(), options("bbbb"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("embedding model") && err.contains("bbbb"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_run_while_a_batch_is_ingested() {
    let media = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    let catalog = open_catalog(dir.path(), &encoder);
    let config = storyreel_retrieval::config::IngestConfig {
        commit_every: 1,
        ..ingest_config()
    };
    let ingestor = Arc::new(Ingestor::new(
        catalog.clone(),
        encoder,
        config,
        media.path().to_path_buf(),
    ));
    let video = make_clip(media.path(), "pattern.mp4", "testsrc2", 1.0);
    let clips: Vec<_> = (0..6)
        .map(|i| {
            clip(
                &format!("pattern-{i}"),
                &format!("test pattern number {i}"),
                &video,
            )
        })
        .collect();
    let batch = tokio::spawn({
        let ingestor = ingestor.clone();
        async move { ingest(&ingestor, OPTIONS, clips).await }
    });
    // Searches keep answering during the batch, and see the clips arrive commit by commit.
    let keywords = vec!["pattern".to_string()];
    let filters = Filters::default();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !batch.is_finished() {
        assert!(Instant::now() < deadline, "the batch did not finish");
        let catalog = catalog.clone();
        let (keywords, filters) = (keywords.clone(), filters.clone());
        let found = tokio::task::spawn_blocking(move || {
            let mut q = query(&keywords, &filters);
            q.k = 50;
            rank(&catalog.snapshot(), &q).map(|r| r.hits.len())
        })
        .await
        .unwrap()
        .unwrap();
        seen.push(found);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, summary) = batch.await.unwrap();
    assert_eq!(summary.indexed, 6);
    assert!(
        seen.len() > 3,
        "only {} searches ran during the batch",
        seen.len()
    );
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        seen.iter().any(|&n| n > 0 && n < 6),
        "no intermediate commit seen: {seen:?}"
    );
    let final_hits = rank(&catalog.snapshot(), &query(&keywords, &filters)).unwrap();
    assert_eq!(final_hits.hits.len(), 5);
}

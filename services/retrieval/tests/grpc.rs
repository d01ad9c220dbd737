//! The retrieval service over gRPC on 127.0.0.1:0 with a real redis-server (the tensor
//! store), the real encoder and a temporary catalog: ingest over the stream, search with
//! frames read back from Redis, catalog stats, and INVALID_ARGUMENT for bad input.

mod common;

use common::*;
use futures::StreamExt;
use std::sync::Arc;
use storyreel_proto::{
    common::JobContext,
    retrieval::{
        ClipSpec, FrameSpec, GetCatalogStatsRequest, IngestOptions, IngestOutcome, IngestRequest,
        SearchRequest, SkipReason, ingest_request::Item, ingest_response::Event,
        retrieval_service_client::RetrievalServiceClient,
    },
};
use storyreel_retrieval::{CatalogRetrieval, Retrieval, RetrievalConfig, RetrievalStage};
use storyreel_tensors::{DType, TensorStore, testing::RedisServer};
use storyreel_test_support::TestServer;
use tonic::{Code, transport::Channel};

struct Running {
    client: RetrievalServiceClient<Channel>,
    store: Arc<dyn TensorStore>,
    server: TestServer,
    _redis: RedisServer,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn start() -> Running {
    let redis = RedisServer::start().expect("redis-server starts (apt-get install redis-server)");
    let catalog_dir = tempfile::tempdir().unwrap();
    let media_dir = tempfile::tempdir().unwrap();
    let mut config = RetrievalConfig {
        tensors: redis.store_config(),
        encoder: encoder_config(),
        ingest: ingest_config(),
        ..RetrievalConfig::default()
    };
    config.catalog.dir = catalog_dir.path().to_path_buf();
    config.catalog.media_root = media_dir.path().to_path_buf();
    let store = storyreel_tensors::open_store(&config.tensors).await.unwrap();
    let encoder = encoder();
    let catalog = open_catalog(catalog_dir.path(), &encoder);
    let service = Arc::new(CatalogRetrieval::new(
        catalog,
        encoder,
        store.clone(),
        config.search.clone(),
        config.ingest.clone(),
        config.catalog.media_root.clone(),
    ));
    let server = TestServer::stage::<RetrievalStage>(config, service as Arc<dyn Retrieval>).await;
    let client = RetrievalServiceClient::new(server.channel().await);
    Running {
        client,
        store,
        server,
        _redis: redis,
        _dirs: (catalog_dir, media_dir),
    }
}

impl Running {
    fn media(&self) -> &std::path::Path {
        self._dirs.1.path()
    }

    async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

fn wire_clip(id: &str, caption: &str, video: &str) -> IngestRequest {
    IngestRequest {
        item: Some(Item::Clip(ClipSpec {
            clip_id: id.into(),
            caption: caption.into(),
            tags: vec!["test".into()],
            video_uri: video.into(),
            licence: "CC0-1.0".into(),
            source_uri: "ffmpeg lavfi".into(),
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_search_and_frames_over_grpc() {
    let mut running = start().await;
    make_clip(running.media(), "bars.mp4", "smptebars", 2.0);
    make_clip(running.media(), "fractal.mp4", "mandelbrot", 2.0);
    std::fs::write(running.media().join("broken.mp4"), b"not a video at all").unwrap();

    let requests = vec![
        IngestRequest {
            item: Some(Item::Options(IngestOptions {
                replace_existing: false,
                frames_per_clip: Some(6),
            })),
        },
        wire_clip(
            "bars",
            "television colour bars, a broadcast test card",
            "bars.mp4",
        ),
        wire_clip("fractal", "a slow zoom into a colourful fractal", "fractal.mp4"),
        wire_clip("broken", "a broken file", "broken.mp4"),
    ];
    let mut events = running
        .client
        .ingest(futures::stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut results = Vec::new();
    let mut summary = None;
    while let Some(message) = events.next().await {
        match message.unwrap().event.unwrap() {
            Event::Clip(c) => results.push(c),
            Event::Progress(p) => assert!(p.step >= 1),
            Event::Summary(s) => summary = Some(s),
        }
    }
    let summary = summary.expect("a summary last");
    assert_eq!((summary.received, summary.indexed, summary.skipped), (3, 2, 1));
    assert_eq!(summary.catalog_clips, 2);
    let broken = results.iter().find(|c| c.clip_id == "broken").unwrap();
    assert_eq!(broken.outcome(), IngestOutcome::Skipped);
    assert_eq!(broken.skip_reason(), SkipReason::InvalidVideo);
    assert!(!broken.detail.is_empty());
    let bars = results.iter().find(|c| c.clip_id == "bars").unwrap();
    assert_eq!(bars.outcome(), IngestOutcome::Indexed);
    assert_eq!(bars.metadata.as_ref().unwrap().width, 160);

    let search = |bypass_cache: bool| SearchRequest {
        context: Some(JobContext {
            job_id: "job-1".into(),
            scene_index: Some(2),
            bypass_cache,
            ..Default::default()
        }),
        keywords: vec!["fractal".into(), "zoom".into()],
        prompt: "zooming into a fractal".into(),
        k: Some(2),
        frames: Some(FrameSpec {
            width: Some(64),
            height: Some(96),
            count: Some(3),
        }),
        ..Default::default()
    };
    let response = running.client.search(search(false)).await.unwrap().into_inner();
    assert_eq!(response.hits[0].clip_id, "fractal");
    assert_eq!(response.hits[0].rank, 1);
    assert!(response.hits[0].embedding_score > 0.3, "{:?}", response.hits[0]);
    // The BM25 match and, found by the prompt alone, the catalog's other clip.
    assert_eq!(response.candidates_considered, 2);
    assert_eq!(response.hits.len(), 2);
    assert_eq!(response.hits[1].bm25_score, 0.0);
    assert!(response.hits[1].embedding_score < response.hits[0].embedding_score);
    assert_eq!(response.model.as_ref().unwrap().name, "all-minilm-l6-v2");
    assert_eq!(response.frame_times_s.len(), 3);
    assert!(!response.stats.as_ref().unwrap().cache_hit);
    let frames = response.frames.expect("frames of the best clip");
    // the stage cache keeps them under a content-addressed entry
    assert!(frames.key.starts_with("storyreel:cache:"), "{}", frames.key);
    assert_eq!(frames.shape, vec![3, 3, 96, 64]);
    let stored = running
        .store
        .get(&storyreel_runtime::tensor_ref::from_wire("frames", &frames).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.dtype(), DType::U8);
    assert_eq!(stored.shape(), &[3, 3, 96, 64]);
    // A real picture, not a blank buffer.
    let bytes = stored.as_bytes();
    let distinct: std::collections::HashSet<u8> = bytes.iter().copied().collect();
    assert!(distinct.len() > 32, "{} distinct byte values", distinct.len());

    // The same search again: the frames are a cache hit, the same entry and times.
    let again = running.client.search(search(false)).await.unwrap().into_inner();
    assert!(again.stats.as_ref().unwrap().cache_hit);
    assert_eq!(again.frames.as_ref().unwrap().key, frames.key);
    assert_eq!(again.frame_times_s, response.frame_times_s);
    // Bypassing the cache decodes again and stores under the job.
    let bypassed = running.client.search(search(true)).await.unwrap().into_inner();
    assert!(!bypassed.stats.as_ref().unwrap().cache_hit);
    let bypassed_frames = bypassed.frames.unwrap();
    assert_eq!(bypassed_frames.key, "storyreel:job-1:retrieval:2:frames");
    assert_eq!(bypassed_frames.checksum, frames.checksum);

    // Rank only: no frames.
    let rank_only = running
        .client
        .search(SearchRequest {
            keywords: vec!["colour".into()],
            skip_frames: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rank_only.frames.is_none());
    assert_eq!(rank_only.hits.len(), 2);
    assert_eq!(rank_only.hits[0].embedding_score, 0.0);

    let stats = running
        .client
        .get_catalog_stats(GetCatalogStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.clip_count, 2);
    assert_eq!(stats.embedding_dim, 384);
    assert!(stats.frame_bytes > 0);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let mut running = start().await;
    let valid = || SearchRequest {
        keywords: vec!["forest".into()],
        ..Default::default()
    };
    let cases: Vec<(SearchRequest, &str)> = vec![
        (
            SearchRequest {
                keywords: vec![],
                ..valid()
            },
            "`keywords` must hold 1-32 entries, got 0",
        ),
        (
            SearchRequest {
                k: Some(0),
                ..valid()
            },
            "`k` must be between 1 and 50, got 0",
        ),
        (
            SearchRequest {
                frames: Some(FrameSpec {
                    width: Some(100),
                    ..Default::default()
                }),
                ..valid()
            },
            "`frames.width` must be a multiple of 8 between 64 and 1024, got 100",
        ),
        (
            SearchRequest {
                prompt: "x".repeat(2001),
                ..valid()
            },
            "`prompt` must be at most 2000 characters, got 2001",
        ),
    ];
    for (request, message) in cases {
        let status = running.client.search(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), message);
    }

    // A call pinned to another encoder version: FAILED_PRECONDITION naming both.
    let pinned = SearchRequest {
        context: Some(JobContext {
            model_pin: Some(storyreel_proto::common::ModelPin {
                version: "some-other-version".into(),
                endpoint_group: "canary".into(),
            }),
            ..Default::default()
        }),
        ..valid()
    };
    let status = running.client.search(pinned).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("some-other-version"),
        "{}",
        status.message()
    );

    // Ingest: options out of range, and options after a clip.
    let status = running
        .client
        .ingest(futures::stream::iter(vec![IngestRequest {
            item: Some(Item::Options(IngestOptions {
                replace_existing: false,
                frames_per_clip: Some(0),
            })),
        }]))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "`options.frames_per_clip` must be between 1 and 64, got 0"
    );

    let late_options = vec![
        wire_clip("a", "a clip", "missing.mp4"),
        IngestRequest {
            item: Some(Item::Options(IngestOptions::default())),
        },
    ];
    let mut events = running
        .client
        .ingest(futures::stream::iter(late_options))
        .await
        .unwrap()
        .into_inner();
    let mut error = None;
    while let Some(message) = events.next().await {
        if let Err(status) = message {
            error = Some(status);
            break;
        }
    }
    let status = error.expect("the stream ends with an error");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("`options`"), "{}", status.message());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_and_describes_the_service() {
    let running = start().await;
    let endpoint = running.server.endpoint.clone();
    storyreel_test_support::check_reflection(
        &endpoint,
        storyreel_retrieval::SERVICE_NAME,
        &["Search", "Ingest", "GetCatalogStats"],
    )
    .await;
    running.shutdown().await;
}

//! The embedding re-rank fixes an order BM25 alone gets wrong: real MiniLM embeddings,
//! a real tantivy catalog, the default fusion weights.

mod common;

use common::*;
use std::time::SystemTime;
use storyreel_retrieval::{
    catalog::{Boosts, Filters, schema::ClipRecord},
    config::SearchConfig,
    search::{RankQuery, Weights, rank},
};

fn record(id: &str, caption: &str) -> ClipRecord {
    ClipRecord {
        clip_id: id.into(),
        caption: caption.into(),
        tags: vec![],
        duration_s: 2.5,
        fps: 24.0,
        width: 640,
        height: 360,
        licence: "CC0-1.0".into(),
        source_uri: String::new(),
        ingest_time: SystemTime::now(),
        frame_count: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_embedding_overturns_a_wrong_bm25_order() {
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    let catalog = open_catalog(dir.path(), &encoder);
    // "bat" is ambiguous; the scene wants the animal. The short caption of the sports bat
    // wins BM25 (same term frequency, shorter field); the longer captions score lower.
    let clips = [
        ("baseball-bat", "a baseball bat"),
        ("cave-bat", "a small bat flying out of a dark cave at dusk"),
        (
            "cricket-bat",
            "an old wooden cricket bat leaning against the wall of a cluttered garden shed in the rain",
        ),
        (
            "bat-sign",
            "a faded sign for a bat and ball game painted on the brick wall of a closed sports club in town",
        ),
        (
            "bat-toy",
            "a plastic toy bat hanging from the ceiling of a children's bedroom decorated with paper stars and moons",
        ),
    ];
    let captions: Vec<String> = clips.iter().map(|(_, c)| c.to_string()).collect();
    let embeddings = encoder.embed(captions).await.unwrap();
    let mut writer = catalog.writer().unwrap();
    for ((id, caption), embedding) in clips.iter().zip(&embeddings) {
        writer.upsert(&record(id, caption), embedding).unwrap();
    }
    writer.finish().unwrap();

    let defaults = SearchConfig::default();
    let keywords = vec!["bat".to_string()];
    let prompt = encoder
        .embed(vec!["a bat flying out of a cave at night".into()])
        .await
        .unwrap()
        .remove(0);
    let filters = Filters::default();
    let query = |prompt_embedding| RankQuery {
        keywords: &keywords,
        prompt_embedding,
        filters: &filters,
        k: 5,
        candidates: 100,
        dense: defaults.dense(),
        boosts: Boosts {
            caption: defaults.caption_boost,
            tags: defaults.tags_boost,
        },
        weights: Weights {
            bm25: defaults.bm25_weight,
            embedding: defaults.embedding_weight,
        },
    };
    let snapshot = catalog.snapshot();

    let bm25_only = rank(&snapshot, &query(None)).unwrap();
    assert_eq!(bm25_only.candidates_considered, 5);
    assert_eq!(
        bm25_only.hits[0].record.clip_id, "baseball-bat",
        "{:#?}",
        bm25_only.hits
    );
    assert_eq!(bm25_only.hits[0].fused_score, 1.0);
    assert!(bm25_only.hits.iter().all(|h| h.embedding_score == 0.0));

    let reranked = rank(&snapshot, &query(Some(&prompt))).unwrap();
    let order: Vec<&str> = reranked.hits.iter().map(|h| h.record.clip_id.as_str()).collect();
    assert_eq!(order[0], "cave-bat", "{:#?}", reranked.hits);
    let score = |id: &str| {
        reranked
            .hits
            .iter()
            .find(|h| h.record.clip_id == id)
            .unwrap()
            .clone()
    };
    let (cave, baseball) = (score("cave-bat"), score("baseball-bat"));
    // Each stage's score is reported: BM25 preferred the wrong clip, the cosine the right one.
    assert!(baseball.bm25_score > cave.bm25_score);
    assert!(
        cave.embedding_score > baseball.embedding_score + 0.2,
        "{cave:?} {baseball:?}"
    );
    assert!(cave.fused_score > baseball.fused_score);
    // Ranks are 1-based and fused scores descend.
    assert_eq!(
        reranked.hits.iter().map(|h| h.rank).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert!(
        reranked
            .hits
            .windows(2)
            .all(|w| w[0].fused_score >= w[1].fused_score)
    );
}

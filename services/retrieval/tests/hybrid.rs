//! Hybrid candidates: clips nearest to the prompt embedding (HNSW) merged with the BM25
//! candidates, on real MiniLM embeddings and a real tantivy catalog: a query that no
//! caption matches lexically still returns the k nearest clips, each clip is a candidate
//! once, the filters apply to dense candidates, and the graph follows the catalog as clips
//! are replaced or added by another writer.

mod common;

use common::*;
use std::{sync::Arc, time::SystemTime};
use storyreel_retrieval::{
    catalog::{Boosts, Catalog, Filters, schema::ClipRecord},
    config::SearchConfig,
    encoder::Embedder,
    search::{RankQuery, Ranking, Weights, rank},
};

const CLIPS: [(&str, &str, f64, &str); 10] = [
    ("forest-path", "a dirt path through a pine forest", 2.5, "CC0-1.0"),
    (
        "snowy-peaks",
        "snow-covered mountain peaks under a blue sky",
        4.0,
        "CC0-1.0",
    ),
    (
        "city-night",
        "a busy city street at night with neon lights",
        2.5,
        "CC-BY-4.0",
    ),
    (
        "tropical-fish",
        "colourful fish swimming in clear blue sea water",
        6.0,
        "CC-BY-4.0",
    ),
    (
        "sea-turtle",
        "a turtle gliding over the sandy ocean floor",
        3.0,
        "CC0-1.0",
    ),
    (
        "desert-dunes",
        "wind blowing sand over desert dunes",
        2.5,
        "CC0-1.0",
    ),
    (
        "wheat-field",
        "a golden wheat field swaying in the wind",
        2.5,
        "CC-BY-4.0",
    ),
    (
        "kitchen",
        "a person chopping vegetables in a kitchen",
        2.5,
        "CC0-1.0",
    ),
    (
        "diver",
        "a scuba diver exploring an underwater cave",
        5.0,
        "CC-BY-4.0",
    ),
    (
        "harbour",
        "fishing boats moored in a small harbour",
        2.5,
        "CC0-1.0",
    ),
];

fn record(id: &str, caption: &str, duration_s: f64, licence: &str) -> ClipRecord {
    ClipRecord {
        clip_id: id.into(),
        caption: caption.into(),
        tags: vec![],
        duration_s,
        fps: 24.0,
        width: 640,
        height: 360,
        licence: licence.into(),
        source_uri: String::new(),
        ingest_time: SystemTime::now(),
        frame_count: 0,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    encoder: Arc<dyn Embedder>,
    catalog: Arc<Catalog>,
    /// Each clip's caption embedding, in `CLIPS` order.
    embeddings: Vec<Vec<f32>>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    let catalog = open_catalog(dir.path(), &encoder);
    let captions: Vec<String> = CLIPS.iter().map(|c| c.1.to_string()).collect();
    let embeddings = encoder.embed(captions).await.unwrap();
    let mut writer = catalog.writer().unwrap();
    for ((id, caption, duration, licence), embedding) in CLIPS.iter().zip(&embeddings) {
        writer
            .upsert(&record(id, caption, *duration, licence), embedding)
            .unwrap();
    }
    writer.finish().unwrap();
    Fixture {
        _dir: dir,
        encoder,
        catalog,
        embeddings,
    }
}

impl Fixture {
    async fn embed(&self, prompt: &str) -> Vec<f32> {
        self.encoder.embed(vec![prompt.into()]).await.unwrap().remove(0)
    }

    /// The clips of `CLIPS` passing `keep`, nearest to `prompt` first, by exact cosine.
    fn exact(&self, prompt: &[f32], keep: impl Fn(&(&str, &str, f64, &str)) -> bool) -> Vec<(String, f32)> {
        let mut scored: Vec<(String, f32)> = CLIPS
            .iter()
            .zip(&self.embeddings)
            .filter(|(clip, _)| keep(clip))
            .map(|(clip, e)| (clip.0.to_string(), e.iter().zip(prompt).map(|(a, b)| a * b).sum()))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1));
        scored
    }
}

fn search(catalog: &Arc<Catalog>, keywords: &[&str], prompt: &[f32], k: usize, filters: &Filters) -> Ranking {
    let defaults = SearchConfig::default();
    let keywords: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
    rank(
        &catalog.snapshot(),
        &RankQuery {
            keywords: &keywords,
            prompt_embedding: Some(prompt),
            filters,
            k,
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
        },
    )
    .unwrap()
}

fn ids(ranking: &Ranking) -> Vec<&str> {
    ranking.hits.iter().map(|h| h.record.clip_id.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_without_lexical_match_returns_the_k_nearest_clips() {
    let f = fixture().await;
    let prompt = f.embed("tropical fish over a coral reef").await;
    // No caption holds "coral" or "reef": BM25 alone finds nothing.
    let bm25 = f
        .catalog
        .snapshot()
        .bm25(
            &["coral".into(), "reef".into()],
            Boosts {
                caption: 1.0,
                tags: 1.5,
            },
            &Filters::default(),
            100,
        )
        .unwrap();
    assert!(bm25.is_empty(), "{bm25:?}");

    let ranking = search(&f.catalog, &["coral", "reef"], &prompt, 4, &Filters::default());
    let exact = f.exact(&prompt, |_| true);
    let wanted: Vec<&str> = exact[..4].iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids(&ranking), wanted, "{:#?}", ranking.hits);
    assert_eq!(ranking.hits[0].record.clip_id, "tropical-fish");
    let weights = SearchConfig::default();
    for (hit, (_, cosine)) in ranking.hits.iter().zip(&exact) {
        assert_eq!(hit.bm25_score, 0.0);
        assert!((hit.embedding_score - cosine).abs() < 1e-4, "{hit:?} {cosine}");
        // No lexical evidence: the normalised BM25 is 0 and the cosine alone ranks.
        assert!(
            (hit.fused_score - weights.embedding_weight * cosine).abs() < 1e-4,
            "{hit:?}"
        );
    }
    assert_eq!(
        ranking.hits.iter().map(|h| h.rank).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dense_and_bm25_candidates_are_merged_once() {
    let f = fixture().await;
    let prompt = f.embed("a diver swimming with fish in the sea").await;
    let ranking = search(&f.catalog, &["fish", "sea"], &prompt, 10, &Filters::default());
    // Every clip is a dense candidate (`dense_candidates` >= 10 clips) and two are BM25
    // ones too.
    assert_eq!(ranking.candidates_considered as usize, CLIPS.len());
    let mut seen = ids(&ranking);
    assert_eq!(seen.len(), CLIPS.len());
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen.len(),
        CLIPS.len(),
        "a clip was returned twice: {:#?}",
        ranking.hits
    );
    for hit in &ranking.hits {
        let lexical = ["tropical-fish", "harbour"].contains(&hit.record.clip_id.as_str());
        // "fishing" stems to "fish": the harbour clip matches lexically as well.
        assert_eq!(hit.bm25_score > 0.0, lexical, "{hit:?}");
    }
    assert_eq!(
        ranking.hits[0].record.clip_id, "tropical-fish",
        "{:#?}",
        ranking.hits
    );
    assert!(
        ranking
            .hits
            .windows(2)
            .all(|w| w[0].fused_score >= w[1].fused_score)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_apply_to_dense_candidates() {
    let f = fixture().await;
    let prompt = f.embed("tropical fish over a coral reef").await;
    let licensed = Filters {
        licences: vec!["CC0-1.0".into()],
        ..Filters::default()
    };
    let ranking = search(&f.catalog, &["coral"], &prompt, 3, &licensed);
    let exact = f.exact(&prompt, |c| c.3 == "CC0-1.0");
    let wanted: Vec<&str> = exact[..3].iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids(&ranking), wanted);
    assert!(ranking.hits.iter().all(|h| h.record.licence == "CC0-1.0"));
    assert!(!ids(&ranking).contains(&"tropical-fish"));

    let long = Filters {
        min_duration_s: Some(3.5),
        ..Filters::default()
    };
    let ranking = search(&f.catalog, &["coral"], &prompt, 10, &long);
    let exact = f.exact(&prompt, |c| c.2 >= 3.5);
    let wanted: Vec<&str> = exact.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids(&ranking), wanted, "{:#?}", ranking.hits);
    assert_eq!(ranking.candidates_considered as usize, wanted.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_follows_replaced_clips_and_another_writers_commits() {
    let f = fixture().await;
    f.catalog.build_dense_index().unwrap();
    let prompt = f.embed("an astronaut floating in space").await;
    let before = search(&f.catalog, &["astronaut"], &prompt, 3, &Filters::default());
    assert!(!ids(&before).contains(&"kitchen"));

    // The kitchen clip is re-captioned: its new row replaces the old one in the results.
    let new_caption = "an astronaut floating inside a space station";
    let embedding = f.embed(new_caption).await;
    let mut writer = f.catalog.writer().unwrap();
    writer
        .upsert(&record("kitchen", new_caption, 2.5, "CC0-1.0"), &embedding)
        .unwrap();
    writer.finish().unwrap();
    let after = search(&f.catalog, &["orbit"], &prompt, 3, &Filters::default());
    assert_eq!(after.hits[0].record.clip_id, "kitchen", "{:#?}", after.hits);
    assert_eq!(after.hits[0].record.caption, new_caption);
    assert_eq!(ids(&after).iter().filter(|id| **id == "kitchen").count(), 1);
    assert_eq!(
        f.catalog.dense_points(),
        CLIPS.len() + 1,
        "the old row stays in the graph"
    );

    // Another writer (as `storyreel-ingest` in another process) adds a clip.
    let other = open_catalog(f.catalog.dir(), &f.encoder);
    let caption = "a rocket lifting off from its launch pad";
    let embedding = f.embed(caption).await;
    let mut writer = other.writer().unwrap();
    writer
        .upsert(&record("rocket", caption, 2.5, "CC0-1.0"), &embedding)
        .unwrap();
    writer.finish().unwrap();
    f.catalog.reload().unwrap();
    let rocket = f.embed("a rocket launch").await;
    let found = search(&f.catalog, &["launch"], &rocket, 1, &Filters::default());
    assert_eq!(ids(&found), vec!["rocket"]);
    let found = search(&f.catalog, &["countdown"], &rocket, 1, &Filters::default());
    assert_eq!(ids(&found), vec!["rocket"], "found by the embedding alone");
}

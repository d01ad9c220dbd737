//! The HNSW graph's recall against exact search, with the default settings, on a catalog
//! of random unit vectors (a fixed seed): random high-dimensional points have no structure
//! to exploit, a harder case than caption embeddings. Also: a filter that passes few clips
//! still gets its exact nearest clips.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::{sync::Arc, time::SystemTime};
use storyreel_retrieval::{
    catalog::{
        Catalog, CatalogOptions, EmbeddingModel, Filters, ann::dot, dense::DenseCandidate, schema::ClipRecord,
    },
    config::{CatalogConfig, SearchConfig},
    synthetic::pseudo_embedding,
};

const DIM: usize = 384;
const CLIPS: usize = 2000;
const QUERIES: usize = 50;
/// The k of the recall.
const K: usize = 10;
/// Clips with the rare licence (every RARE_EVERY-th: 20 clips).
const RARE_EVERY: usize = 100;

fn catalog(dir: &std::path::Path) -> (Arc<Catalog>, Vec<Vec<f32>>) {
    let catalog = Catalog::open(
        dir,
        CatalogOptions {
            embedding_model: EmbeddingModel {
                name: "random".into(),
                ..Default::default()
            },
            embedding_dim: DIM,
            writer_memory_bytes: 50 << 20,
            writer_threads: 1,
            ann: CatalogConfig::default().ann(),
        },
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let vectors: Vec<Vec<f32>> = (0..CLIPS).map(|_| pseudo_embedding(&mut rng, DIM)).collect();
    let mut writer = catalog.writer().unwrap();
    for (i, vector) in vectors.iter().enumerate() {
        let record = ClipRecord {
            clip_id: format!("clip-{i}"),
            caption: format!("clip number {i}"),
            tags: vec![],
            duration_s: 2.5,
            fps: 24.0,
            width: 640,
            height: 360,
            licence: if i % RARE_EVERY == 0 { "rare" } else { "CC0-1.0" }.into(),
            source_uri: String::new(),
            ingest_time: SystemTime::now(),
            frame_count: 0,
        };
        writer.upsert(&record, vector).unwrap();
    }
    writer.finish().unwrap();
    catalog.build_dense_index().unwrap();
    (catalog, vectors)
}

/// The `n` nearest clip numbers to `query` among those `keep` accepts, by exact cosine.
fn exact(vectors: &[Vec<f32>], query: &[f32], n: usize, keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut scored: Vec<(usize, f32)> = vectors
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, v)| (i, dot(v, query)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    scored.into_iter().take(n).map(|(i, _)| i).collect()
}

fn clip_number(catalog: &Arc<Catalog>, address: tantivy::DocAddress) -> usize {
    let record = catalog.snapshot().record(address).unwrap();
    record.clip_id.trim_start_matches("clip-").parse().unwrap()
}

#[test]
fn ann_recall_against_exact_search_is_at_least_0_95_and_filters_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, vectors) = catalog(dir.path());
    assert_eq!(catalog.dense_points(), CLIPS);
    let snapshot = catalog.snapshot();
    let number = |c: &DenseCandidate| clip_number(&catalog, c.address);

    // As a search does it: `dense_candidates` clips from a graph search of `ef_search`.
    let search = SearchConfig::default();
    let params = search.dense();
    let n = params.count_for(K);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut found_k, mut found_n) = (0usize, 0usize);
    for _ in 0..QUERIES {
        let query = pseudo_embedding(&mut rng, DIM);
        let exact = exact(&vectors, &query, n, |_| true);
        let dense = snapshot
            .dense(&query, n, params.ef_search, &Filters::default())
            .unwrap();
        assert_eq!(dense.len(), n);
        let got: Vec<usize> = dense.iter().map(number).collect();
        found_k += exact[..K].iter().filter(|i| got[..K].contains(i)).count();
        found_n += exact.iter().filter(|i| got.contains(i)).count();
    }
    let recall_k = found_k as f64 / (QUERIES * K) as f64;
    let recall_n = found_n as f64 / (QUERIES * n) as f64;
    println!("recall@{K} = {recall_k:.4}, recall@{n} = {recall_n:.4}");
    assert!(recall_k >= 0.95, "recall@{K} = {recall_k:.4}");
    assert!(recall_n >= 0.95, "recall@{n} = {recall_n:.4}");

    // A filter that passes few clips: the nearest among them, exactly.
    let rare = Filters {
        licences: vec!["rare".into()],
        ..Filters::default()
    };
    for _ in 0..5 {
        let query = pseudo_embedding(&mut rng, DIM);
        let dense = snapshot.dense(&query, K, params.ef_search, &rare).unwrap();
        let got: Vec<usize> = dense.iter().map(number).collect();
        assert_eq!(got, exact(&vectors, &query, K, |i| i % RARE_EVERY == 0));
        assert!(dense.windows(2).all(|w| w[0].cosine >= w[1].cosine));
    }
}

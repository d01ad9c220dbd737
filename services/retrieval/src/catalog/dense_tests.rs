//! The exact scoring that takes over from the graph when a filter passes few clips.

use super::{Catalog, CatalogOptions, EmbeddingModel, Filters, ann::dot, schema::ClipRecord};
use crate::synthetic::pseudo_embedding;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::time::SystemTime;

const DIM: usize = 16;

#[test]
fn exact_scoring_of_filtered_clips_skips_replaced_ones_and_ranks_by_cosine() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(
        dir.path(),
        CatalogOptions {
            embedding_model: EmbeddingModel::default(),
            embedding_dim: DIM,
            writer_memory_bytes: 20 << 20,
            writer_threads: 1,
            ann: Default::default(),
        },
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let record = |i: usize, licence: &str| ClipRecord {
        clip_id: format!("clip-{i}"),
        caption: String::new(),
        tags: vec![],
        duration_s: 2.5,
        fps: 24.0,
        width: 640,
        height: 360,
        licence: licence.into(),
        source_uri: String::new(),
        ingest_time: SystemTime::now(),
        frame_count: 0,
    };
    let mut vectors = Vec::new();
    let mut writer = catalog.writer().unwrap();
    for i in 0..60 {
        let v = pseudo_embedding(&mut rng, DIM);
        writer
            .upsert(&record(i, if i % 3 == 0 { "rare" } else { "CC0-1.0" }), &v)
            .unwrap();
        vectors.push(v);
    }
    writer.commit().unwrap();
    // clip-0 is replaced by a common-licence version: its old row must not come back.
    writer.upsert(&record(0, "CC0-1.0"), &vectors[0]).unwrap();
    writer.finish().unwrap();

    let snapshot = catalog.snapshot();
    let live = catalog
        .dense
        .sync(&snapshot.searcher, &catalog.embeddings)
        .unwrap();
    assert_eq!(live.len(), 60);
    let filter = catalog
        .filter_query(&Filters {
            licences: vec!["rare".into()],
            ..Filters::default()
        })
        .unwrap();
    let query = vectors[0].clone();
    let found = snapshot
        .exact_dense(&live, &query, 5, Some(filter.as_ref()))
        .unwrap();
    let ids: Vec<String> = found
        .iter()
        .map(|c| snapshot.record(c.address).unwrap().clip_id)
        .collect();
    let mut wanted: Vec<(usize, f32)> = (3..60)
        .step_by(3)
        .map(|i| (i, dot(&vectors[i], &query)))
        .collect();
    wanted.sort_by(|a, b| b.1.total_cmp(&a.1));
    let wanted: Vec<String> = wanted[..5].iter().map(|(i, _)| format!("clip-{i}")).collect();
    assert_eq!(ids, wanted);
    assert!(found.windows(2).all(|w| w[0].cosine >= w[1].cosine));

    // Unfiltered, the replaced clip is found once, at its new row.
    let all = snapshot.exact_dense(&live, &query, 60, None).unwrap();
    assert_eq!(all.len(), 60);
    assert_eq!(snapshot.record(all[0].address).unwrap().clip_id, "clip-0");
}

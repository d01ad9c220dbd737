//! Recall@5 on the demo catalog (`make models` builds it in `$STORYREEL_CACHE/catalog`
//! from scripts/demo-catalog.tsv): 30 labelled queries, each a prompt-rewriter style
//! keyword list plus a prompt that paraphrases the clip rather than quoting its caption.
//! The catalog is opened read-only in effect (searches do not write).

mod common;

use common::*;
use storyreel_retrieval::{
    catalog::{Boosts, Filters},
    config::SearchConfig,
    search::{RankQuery, Weights, rank},
};

/// (keywords, prompt, the clip that shows it)
const QUERIES: [(&[&str], &str, &str); 30] = [
    (
        &["kite", "sky"],
        "a kite flying in the sky on a sunny day",
        "kite-blue-sky",
    ),
    (
        &["dogs", "window"],
        "two dogs peeking out of a house",
        "dogs-at-window",
    ),
    (
        &["boats", "lake", "sunset"],
        "rowboats on a lakeshore in the evening",
        "rowing-boats-sunset",
    ),
    (
        &["forest", "path"],
        "a trail winding through a dark woodland",
        "forest-path",
    ),
    (
        &["stream", "forest"],
        "water running over rocks in the woods",
        "forest-stream",
    ),
    (
        &["mountains", "snow"],
        "a hiking path below snowy peaks",
        "mountain-trail-snow",
    ),
    (&["clock"], "a clock on the wall showing the time", "wall-clock"),
    (
        &["ladybird", "flowers"],
        "a ladybug climbing a stem among blue flowers",
        "ladybird-forget-me-nots",
    ),
    (
        &["dragonfly"],
        "an insect with transparent wings resting on a branch",
        "dragonfly-twig",
    ),
    (
        &["bird", "tree"],
        "a small bird climbing up a tree trunk",
        "nuthatch-tree",
    ),
    (
        &["storm", "road"],
        "driving on the motorway under thunder clouds",
        "storm-over-highway",
    ),
    (
        &["fog", "pier"],
        "a jetty disappearing into the mist",
        "foggy-pier",
    ),
    (
        &["sunset", "hills"],
        "the sun going down behind the hills, seen from a mountain top",
        "summit-sunset",
    ),
    (
        &["dandelion", "meadow"],
        "dandelion clocks in a field at golden hour",
        "dandelion-meadow",
    ),
    (
        &["wine", "drum"],
        "a cosy room with a bottle of wine and a drum",
        "wine-and-drum",
    ),
    (&["fig", "fruit"], "a halved fig in a bowl", "fig-red-bowl"),
    (
        &["paint", "brushes"],
        "an artist's brushes covered in colourful paint",
        "paint-brushes",
    ),
    (
        &["water", "drop"],
        "a droplet splashing into water",
        "water-drop-splash",
    ),
    (
        &["dune", "sea"],
        "beach grass on sand dunes by the ocean",
        "dune-grass-sea",
    ),
    (
        &["marigold", "garden"],
        "a marigold blooming in the garden",
        "marigold-garden",
    ),
    (
        &["grass", "green"],
        "fresh green grass growing densely",
        "grass-blades",
    ),
    (
        &["raindrops", "grass"],
        "wet grass covered in rain drops",
        "raindrops-on-grass",
    ),
    (
        &["dragon", "cartoon"],
        "a cartoon dragon flying in the sky",
        "flying-dragon-illustration",
    ),
    (
        &["rocket", "hill"],
        "a spaceship that has landed on a hill",
        "rocket-hill-illustration",
    ),
    (&["goldfish"], "a fish swimming", "goldfish-illustration"),
    (
        &["beach", "waves"],
        "waves reaching the sand, seen from above",
        "beach-waves-illustration",
    ),
    (
        &["leaf", "autumn"],
        "a fallen maple leaf in autumn",
        "autumn-maple-leaf",
    ),
    (
        &["lake", "mist"],
        "a foggy lake at twilight with trees reflected in it",
        "misty-blue-lake",
    ),
    (
        &["bridge", "cables"],
        "the cables of a bridge against the sky",
        "bridge-cables-bay",
    ),
    (
        &["cups"],
        "many colourful plastic cups seen from above",
        "colourful-cups",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recall_at_5_is_one_on_the_demo_catalog() {
    let dir = cache_dir().join("catalog");
    assert!(
        dir.join("catalog.json").is_file(),
        "the demo catalog is missing from {}: run `make models`",
        dir.display()
    );
    let encoder = encoder();
    let catalog = open_catalog(&dir, &encoder);
    let snapshot = catalog.snapshot();
    assert!(
        snapshot.num_clips() >= 40,
        "the demo catalog holds {} clips",
        snapshot.num_clips()
    );

    let defaults = SearchConfig::default();
    let prompts: Vec<String> = QUERIES.iter().map(|(_, p, _)| p.to_string()).collect();
    let embeddings = encoder.embed(prompts).await.unwrap();
    let filters = Filters::default();
    let mut misses = Vec::new();
    let mut reciprocal_ranks = 0.0;
    for ((keywords, prompt, expected), embedding) in QUERIES.iter().zip(&embeddings) {
        let keywords: Vec<String> = keywords.iter().map(|k| k.to_string()).collect();
        let ranking = rank(
            &snapshot,
            &RankQuery {
                keywords: &keywords,
                prompt_embedding: Some(embedding),
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
            },
        )
        .unwrap();
        let ids: Vec<&str> = ranking.hits.iter().map(|h| h.record.clip_id.as_str()).collect();
        match ids.iter().position(|id| id == expected) {
            Some(i) => reciprocal_ranks += 1.0 / (i + 1) as f64,
            None => misses.push(format!(
                "{prompt:?} ({keywords:?}): wanted {expected}, got {ids:?}"
            )),
        }
    }
    let recall = (QUERIES.len() - misses.len()) as f64 / QUERIES.len() as f64;
    println!(
        "recall@5 = {recall:.3}, MRR = {:.3}",
        reciprocal_ranks / QUERIES.len() as f64
    );
    assert!(
        misses.is_empty(),
        "recall@5 = {recall:.3}; misses:\n{}",
        misses.join("\n")
    );
}

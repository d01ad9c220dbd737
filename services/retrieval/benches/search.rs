//! Search latency and index build rate at scale: synthetic captions
//! (`storyreel_retrieval::synthetic`); BM25 top-100 alone, the dense top-100 from the HNSW
//! graph alone, and the hybrid search (both merged, embedding re-rank, fusion) with and
//! without the query embedding (MiniLM on its worker thread): p50/p99 and QPS; index build
//! rate in clips/s without video, the HNSW build time, and the graph's recall against
//! exact search. Run with `make bench` or
//! `cargo bench -p storyreel-retrieval --bench search`.
//!
//! Environment:
//! - `RETRIEVAL_BENCH_SIZES` (default `10000,100000`): catalog sizes, e.g. add `1000000`;
//! - `RETRIEVAL_BENCH_QUERIES` (default 300): timed queries per mode;
//! - `RETRIEVAL_BENCH_THREADS` (default 2): tokio workers and tantivy indexing threads;
//! - `RETRIEVAL_BENCH_RECALL_QUERIES` (default 20): queries scored exactly for the recall;
//! - `RETRIEVAL_BENCH_EMBEDDINGS` (default `composed`): the catalog's vectors, `composed`
//!   (each caption's parts embedded by MiniLM and summed,
//!   `storyreel_retrieval::synthetic_embeddings`: the structure of real caption
//!   embeddings, and how close they come to them is printed) or `random` (unit vectors
//!   without structure, the graph's worst case);
//! - `RETRIEVAL_BENCH_REAL_CLIPS` (default 5000; 0: off): synthetic captions embedded by
//!   MiniLM for the graph's recall and search time on real embeddings;
//! - `RETRIEVAL_BENCH_TORCH_THREADS` (default 1): libtorch intra-op threads of the encoder
//!   worker. One thread for the model and one for tantivy is the "2 threads" set-up; with 2
//!   intra-op threads on a CPU shared with other processes the query embedding's p99
//!   grows tenfold (OpenMP stragglers), see services/retrieval/README.md.
//!
//! Catalog embeddings are not MiniLM's own (embedding 1M captions on 2 cores takes over
//! half an hour): composed from MiniLM's vectors of the captions' parts, or random. The re-rank's
//! cost does not depend on the values; the graph's does, hence the composed default and
//! the side-by-side figures on real embeddings. The MiniLM embedding rate is measured
//! separately, so the build rate with real caption embeddings follows from the two
//! figures.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};
use storyreel_retrieval::{
    catalog::{Boosts, Catalog, CatalogOptions, EmbeddingModel, Filters, ann::dot, schema::ClipRecord},
    config::{CatalogConfig, EncoderConfig, SearchConfig},
    encoder::{Embedder, EncoderWorker},
    search::{RankQuery, Weights, dense_candidates, rank, rerank},
    synthetic::{CaptionGenerator, SyntheticClip, pseudo_embedding, query_keywords, vocabulary},
    synthetic_embeddings::ComposedEmbeddings,
};

const DIM: usize = 384;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The process's anonymous resident memory (Linux `RssAnon`: not the mapped files); 0
/// where it cannot be read.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Row {
    size: usize,
    mode: &'static str,
    p50: Duration,
    p99: Duration,
    qps: f64,
    candidates: f64,
}

fn main() {
    let threads: usize = env_or("RETRIEVAL_BENCH_THREADS", 2);
    let queries: usize = env_or("RETRIEVAL_BENCH_QUERIES", 300);
    let torch_threads: usize = env_or("RETRIEVAL_BENCH_TORCH_THREADS", 1);
    let recall_queries: usize = env_or("RETRIEVAL_BENCH_RECALL_QUERIES", 20);
    let sizes: Vec<usize> = std::env::var("RETRIEVAL_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();

    let cache = std::env::var("STORYREEL_CACHE")
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/storyreel"));
    let encoder_config = EncoderConfig {
        model_dir: cache.join("models/all-minilm-l6-v2"),
        threads: torch_threads,
        ..EncoderConfig::default()
    };
    let composed = match std::env::var("RETRIEVAL_BENCH_EMBEDDINGS").as_deref() {
        Ok("random") => false,
        Ok("composed") | Err(_) => true,
        Ok(other) => panic!("RETRIEVAL_BENCH_EMBEDDINGS must be composed or random, got {other:?}"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    let encoder: Arc<dyn Embedder> =
        Arc::new(EncoderWorker::start(&encoder_config).expect("run `make models`"));

    // MiniLM caption throughput (what a real ingest pays per clip on top of the index).
    let captions: Vec<String> = CaptionGenerator::new(99).take(512).map(|c| c.caption).collect();
    runtime.block_on(encoder.embed(captions[..32].to_vec())).unwrap();
    let t = Instant::now();
    runtime.block_on(encoder.embed(captions.clone())).unwrap();
    let embed_rate = captions.len() as f64 / t.elapsed().as_secs_f64();
    let vectors_of = if composed {
        let parts = vocabulary();
        let vectors = runtime
            .block_on(encoder.embed(parts.iter().map(|p| p.to_string()).collect()))
            .unwrap();
        let composer = ComposedEmbeddings::new(parts.into_iter().zip(vectors)).unwrap();
        let clips: Vec<SyntheticClip> = CaptionGenerator::new(99).take(512).collect();
        let real = runtime
            .block_on(encoder.embed(clips.iter().map(|c| c.caption.clone()).collect()))
            .unwrap();
        let fidelity = composer
            .fidelity(&clips, &real, &mut ChaCha8Rng::seed_from_u64(3))
            .unwrap();
        eprintln!("composed embeddings: mean cosine {fidelity:.3} with MiniLM's own");
        VectorSource::Composed { composer, fidelity }
    } else {
        VectorSource::Random
    };

    let search = SearchConfig::default();
    let boosts = Boosts {
        caption: search.caption_boost,
        tags: search.tags_boost,
    };
    let weights = Weights {
        bm25: search.bm25_weight,
        embedding: search.embedding_weight,
    };
    let dense = search.dense();
    let filters = Filters::default();
    let mut rows = Vec::new();
    let mut builds = Vec::new();
    let mut graphs = Vec::new();
    for &size in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(
            dir.path(),
            CatalogOptions {
                embedding_model: EmbeddingModel {
                    name: "pseudo".into(),
                    ..Default::default()
                },
                embedding_dim: DIM,
                writer_memory_bytes: 256 << 20,
                writer_threads: threads,
                ann: CatalogConfig::default().ann(),
            },
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(size as u64);
        // Kept for the exact search of the recall figure.
        let mut vectors: Vec<f32> = Vec::with_capacity(size * DIM);
        let t = Instant::now();
        let mut writer = catalog.writer().unwrap();
        for clip in CaptionGenerator::new(1).take(size) {
            let vector = vectors_of.vector(&clip, &mut rng);
            let record = ClipRecord {
                clip_id: clip.clip_id,
                caption: clip.caption,
                tags: clip.tags,
                duration_s: 2.5,
                fps: 24.0,
                width: 640,
                height: 360,
                licence: "CC0-1.0".into(),
                source_uri: String::new(),
                ingest_time: SystemTime::now(),
                frame_count: 0,
            };
            writer.upsert(&record, &vector).unwrap();
            vectors.extend_from_slice(&vector);
        }
        writer.finish().unwrap();
        let build = t.elapsed();
        let stats = catalog.stats().unwrap();
        builds.push((size, build, stats.index_bytes, stats.segment_count));
        eprintln!("built {size} clips in {:.1} s", build.as_secs_f64());
        let rss_before = resident_bytes();
        let t = Instant::now();
        catalog.build_dense_index().unwrap();
        let graph_build = t.elapsed();
        let graph_bytes = resident_bytes().saturating_sub(rss_before);
        eprintln!(
            "built the HNSW graph of {size} clips in {:.1} s",
            graph_build.as_secs_f64()
        );

        let mut qrng = ChaCha8Rng::seed_from_u64(7);
        let prompts: Vec<String> = CaptionGenerator::new(12345)
            .take(queries)
            .map(|c| c.caption)
            .collect();
        let keyword_sets: Vec<Vec<String>> = (0..queries).map(|_| query_keywords(&mut qrng)).collect();
        let prompt_vectors: Vec<Vec<f32>> = runtime.block_on(encoder.embed(prompts.clone())).unwrap();

        // The graph's recall against exact search: for MiniLM prompts over composed
        // vectors; for random unit queries over random vectors (a MiniLM prompt is nearly
        // orthogonal to every random vector, so its exact top list would be noise).
        let snapshot = catalog.snapshot();
        let (mut found, mut wanted) = (0usize, 0usize);
        let mut recall_rng = ChaCha8Rng::seed_from_u64(99);
        for i in 0..recall_queries {
            let query = match vectors_of {
                VectorSource::Composed { .. } => prompt_vectors[i % prompt_vectors.len()].clone(),
                VectorSource::Random => pseudo_embedding(&mut recall_rng, DIM),
            };
            let n = dense.count_for(5);
            let mut exact: Vec<(usize, f32)> = vectors
                .chunks_exact(DIM)
                .enumerate()
                .map(|(i, v)| (i, dot(v, &query)))
                .collect();
            exact.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1));
            // Rows are slots: one row per clip, appended in clip order.
            let exact: std::collections::HashSet<u64> = exact[..n].iter().map(|(i, _)| *i as u64).collect();
            let got = snapshot.dense(&query, n, dense.ef_search, &filters).unwrap();
            found += got.iter().filter(|c| exact.contains(&c.slot)).count();
            wanted += n;
        }
        drop(snapshot);
        drop(vectors);
        let recall = found as f64 / wanted.max(1) as f64;
        graphs.push((size, graph_build, recall, graph_bytes));

        for mode in [
            "bm25 only",
            "dense only",
            "hybrid + rerank",
            "hybrid + rerank + query embedding",
        ] {
            // warm-up
            for i in 0..20.min(queries) {
                let snapshot = catalog.snapshot();
                let q = RankQuery {
                    keywords: &keyword_sets[i],
                    prompt_embedding: (mode != "bm25 only").then_some(prompt_vectors[i].as_slice()),
                    filters: &filters,
                    k: 5,
                    candidates: 100,
                    dense,
                    boosts,
                    weights,
                };
                rank(&snapshot, &q).unwrap();
            }
            let mut latencies = Vec::with_capacity(queries);
            let mut considered = 0u64;
            let started = Instant::now();
            for i in 0..queries {
                let t = Instant::now();
                let considered_now = if mode == "hybrid + rerank + query embedding" {
                    // As the service does it: BM25 here while the worker embeds the prompt,
                    // then the dense candidates and the re-rank.
                    let embedding = runtime.spawn({
                        let encoder = encoder.clone();
                        let prompt = prompts[i].clone();
                        async move { encoder.embed(vec![prompt]).await }
                    });
                    let snapshot = catalog.snapshot();
                    let found = snapshot.bm25(&keyword_sets[i], boosts, &filters, 100).unwrap();
                    let embedded = runtime.block_on(embedding).unwrap().unwrap().remove(0);
                    let near = dense_candidates(&snapshot, Some(&embedded), &filters, 5, dense).unwrap();
                    rerank(&snapshot, found, near, Some(&embedded), 5, weights)
                        .unwrap()
                        .candidates_considered
                } else if mode == "dense only" {
                    let snapshot = catalog.snapshot();
                    dense_candidates(&snapshot, Some(&prompt_vectors[i]), &filters, 5, dense)
                        .unwrap()
                        .len() as u32
                } else {
                    let prompt_embedding =
                        (mode == "hybrid + rerank").then_some(prompt_vectors[i].as_slice());
                    let snapshot = catalog.snapshot();
                    rank(
                        &snapshot,
                        &RankQuery {
                            keywords: &keyword_sets[i],
                            prompt_embedding,
                            filters: &filters,
                            k: 5,
                            candidates: 100,
                            dense,
                            boosts,
                            weights,
                        },
                    )
                    .unwrap()
                    .candidates_considered
                };
                considered += considered_now as u64;
                latencies.push(t.elapsed());
            }
            let total = started.elapsed();
            latencies.sort();
            rows.push(Row {
                size,
                mode,
                p50: percentile(&latencies, 0.5),
                p99: percentile(&latencies, 0.99),
                qps: queries as f64 / total.as_secs_f64(),
                candidates: considered as f64 / queries as f64,
            });
        }
    }

    println!(
        "\nretrieval search benchmark: {threads} tokio/tantivy threads, {torch_threads} libtorch thread(s), \
         {queries} queries per row, k=5, BM25 top-100, dense top-{} (HNSW M={}, ef_construction={}, ef_search={})",
        dense.count_for(5),
        CatalogConfig::default().ann_connections,
        CatalogConfig::default().ann_ef_construction,
        dense.ef_search
    );
    println!("\n| clips | mode | p50 ms | p99 ms | QPS (1 client) | mean candidates |");
    println!("|---:|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.0} | {:.0} |",
            r.size,
            r.mode,
            ms(r.p50),
            ms(r.p99),
            r.qps,
            r.candidates
        );
    }
    println!(
        "\n| clips | index build (no video, {} embeddings) | clips/s | index + embeddings on disk | segments |",
        vectors_of.name()
    );
    println!("|---:|---:|---:|---:|---:|");
    for (size, build, bytes, segments) in &builds {
        println!(
            "| {size} | {:.1} s | {:.0} | {:.1} MiB | {segments} |",
            build.as_secs_f64(),
            *size as f64 / build.as_secs_f64(),
            *bytes as f64 / (1 << 20) as f64
        );
    }
    println!(
        "\n| clips | HNSW build ({} embeddings) | points/s | resident memory added | dense recall@{} vs exact ({recall_queries} {} queries) |",
        vectors_of.name(),
        dense.count_for(5),
        match vectors_of {
            VectorSource::Composed { .. } => "MiniLM prompt",
            VectorSource::Random => "random",
        }
    );
    println!("|---:|---:|---:|---:|---:|");
    for (size, build, recall, bytes) in &graphs {
        println!(
            "| {size} | {:.1} s | {:.0} | {:.0} MiB | {recall:.3} |",
            build.as_secs_f64(),
            *size as f64 / build.as_secs_f64(),
            *bytes as f64 / (1 << 20) as f64
        );
    }
    println!("\nMiniLM caption embedding on the worker (batch 32): {embed_rate:.0} captions/s");
    if let VectorSource::Composed { fidelity, .. } = &vectors_of {
        println!(
            "composed caption embeddings: mean cosine {fidelity:.3} with MiniLM's embedding of the whole caption (512 captions)"
        );
    }

    let real: usize = env_or("RETRIEVAL_BENCH_REAL_CLIPS", 5000);
    if real > 0 {
        let (recall, p50, p99) =
            real_recall(&runtime, &encoder, real, recall_queries.max(200), dense, threads);
        println!(
            "\nHNSW on {real} synthetic captions embedded by MiniLM, MiniLM prompts: recall@{} vs exact {recall:.3}, \
             graph search p50 {:.2} ms, p99 {:.2} ms",
            dense.count_for(5),
            ms(p50),
            ms(p99)
        );
    }
}

/// The graph's recall and search time on real caption embeddings: `size` synthetic
/// captions embedded by MiniLM, queried with MiniLM embeddings of other synthetic captions.
fn real_recall(
    runtime: &tokio::runtime::Runtime,
    encoder: &Arc<dyn Embedder>,
    size: usize,
    queries: usize,
    dense: storyreel_retrieval::search::DenseParams,
    threads: usize,
) -> (f64, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Catalog::open(
        dir.path(),
        CatalogOptions {
            embedding_model: encoder.model().clone(),
            embedding_dim: DIM,
            writer_memory_bytes: 64 << 20,
            writer_threads: threads,
            ann: CatalogConfig::default().ann(),
        },
    )
    .unwrap();
    let clips: Vec<_> = CaptionGenerator::new(5).take(size).collect();
    let t = Instant::now();
    let vectors = runtime
        .block_on(encoder.embed(clips.iter().map(|c| c.caption.clone()).collect()))
        .unwrap();
    eprintln!("embedded {size} captions in {:.1} s", t.elapsed().as_secs_f64());
    let mut writer = catalog.writer().unwrap();
    for (clip, vector) in clips.into_iter().zip(&vectors) {
        let record = ClipRecord {
            clip_id: clip.clip_id,
            caption: clip.caption,
            tags: clip.tags,
            duration_s: 2.5,
            fps: 24.0,
            width: 640,
            height: 360,
            licence: "CC0-1.0".into(),
            source_uri: String::new(),
            ingest_time: SystemTime::now(),
            frame_count: 0,
        };
        writer.upsert(&record, vector).unwrap();
    }
    writer.finish().unwrap();
    catalog.build_dense_index().unwrap();
    let prompts: Vec<String> = CaptionGenerator::new(777)
        .take(queries)
        .map(|c| c.caption)
        .collect();
    let prompts = runtime.block_on(encoder.embed(prompts)).unwrap();
    let snapshot = catalog.snapshot();
    let n = dense.count_for(5);
    let (mut found, mut wanted) = (0usize, 0usize);
    let mut latencies = Vec::with_capacity(prompts.len());
    for prompt in &prompts {
        let mut exact: Vec<(u64, f32)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64, dot(v, prompt)))
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        let exact: std::collections::HashSet<u64> = exact[..n].iter().map(|(i, _)| *i).collect();
        let t = Instant::now();
        let got = snapshot
            .dense(prompt, n, dense.ef_search, &Filters::default())
            .unwrap();
        latencies.push(t.elapsed());
        found += got.iter().filter(|c| exact.contains(&c.slot)).count();
        wanted += n;
    }
    latencies.sort();
    (
        found as f64 / wanted.max(1) as f64,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    )
}

/// Where the catalog's vectors come from (`RETRIEVAL_BENCH_EMBEDDINGS`).
enum VectorSource {
    /// MiniLM's vectors of the caption's parts, summed ([`ComposedEmbeddings`]).
    Composed {
        composer: ComposedEmbeddings,
        fidelity: f32,
    },
    /// Random unit vectors.
    Random,
}

impl VectorSource {
    fn vector(&self, clip: &SyntheticClip, rng: &mut ChaCha8Rng) -> Vec<f32> {
        match self {
            VectorSource::Composed { composer, .. } => composer.embed(clip, rng).unwrap(),
            VectorSource::Random => pseudo_embedding(rng, DIM),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            VectorSource::Composed { .. } => "composed",
            VectorSource::Random => "random",
        }
    }
}

//! The approximate-nearest-neighbour graph over caption embeddings: HNSW (`hnsw_rs`), one
//! point per embedding slot.
//!
//! Why `hnsw_rs`: it is pure Rust (no C++ toolchain, unlike `usearch`), maintained, and
//! inserts into a live graph while searches read it, which a catalog that grows a commit at
//! a time needs; bulk insertion runs on all cores. `instant-distance` builds only from a
//! complete point set (every commit would rebuild it), and `arroy` keeps its trees in LMDB,
//! a second on-disk store to keep in step with tantivy and `embeddings.f32`.
//!
//! The graph holds points, never deletions: a replaced or deleted clip's old slot stays in
//! it and still helps navigation, and [`super::dense`] drops it from results because no
//! visible document references it (as the embedding store keeps its row).

use hnsw_rs::{anndists::dist::distances::Distance, hnsw::Hnsw};
use std::{collections::HashSet, sync::RwLock};

/// Graph construction parameters (config `catalog.ann_connections`,
/// `catalog.ann_ef_construction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnParams {
    /// Neighbours kept per point and layer (HNSW's M; the bottom layer keeps 2M).
    pub connections: usize,
    /// Candidates explored per insertion (HNSW's efConstruction).
    pub ef_construction: usize,
}

impl AnnParams {
    /// Limits of the graph library (hnsw_rs ends the process above 256 connections), for
    /// options that did not come through the validated config.
    pub fn check(&self) -> Result<(), String> {
        if !(2..=256).contains(&self.connections) {
            return Err(format!("ANN connections must be 2-256, got {}", self.connections));
        }
        if self.ef_construction == 0 {
            return Err("ANN ef_construction must be at least 1".into());
        }
        Ok(())
    }
}

impl Default for AnnParams {
    fn default() -> Self {
        AnnParams {
            connections: 16,
            ef_construction: 100,
        }
    }
}

/// HNSW's layer count cap (hnsw_rs allows at most 16); 16 layers of M >= 4 hold far more
/// points than a catalog.
const MAX_LAYERS: usize = 16;

/// Below this many new points a bulk insertion runs on the calling thread: rayon's
/// fan-out does not pay for a handful of points.
const PARALLEL_INSERT_MIN: usize = 256;

/// The cosine distance of unit vectors, `1 - a.b`, clamped at 0: hnsw_rs requires
/// distances >= 0 and rounding can make a vector's dot with itself exceed 1.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitCosineDistance;

impl Distance<f32> for UnitCosineDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// Dot product with eight independent sums, so the compiler vectorises it (a single
/// running f32 sum must be kept in order and is not).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0f32; 8];
    let (a_blocks, b_blocks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a_blocks.zip(b_blocks) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

/// The HNSW graph and the slots it holds.
pub struct AnnIndex {
    graph: Hnsw<'static, f32, UnitCosineDistance>,
    slots: RwLock<HashSet<u64>>,
    params: AnnParams,
}

impl AnnIndex {
    /// An empty graph; `capacity` is a sizing hint (the expected number of points).
    pub fn new(params: AnnParams, capacity: usize) -> Self {
        AnnIndex {
            graph: Hnsw::new(
                params.connections,
                capacity.max(1024),
                MAX_LAYERS,
                params.ef_construction,
                UnitCosineDistance,
            ),
            slots: RwLock::new(HashSet::with_capacity(capacity)),
            params,
        }
    }

    pub fn params(&self) -> AnnParams {
        self.params
    }

    /// Points in the graph (replaced clips' old slots included).
    pub fn len(&self) -> usize {
        self.slots.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, slot: u64) -> bool {
        self.slots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&slot)
    }

    /// Inserts `rows` (slot, unit vector), skipping slots already in the graph. Callers
    /// serialise insertions (one catch-up at a time); searches may run meanwhile.
    pub fn insert(&self, rows: &[(u64, &[f32])]) {
        let fresh: Vec<(&[f32], usize)> = {
            let held = self.slots.read().unwrap_or_else(|e| e.into_inner());
            rows.iter()
                .filter(|(slot, _)| !held.contains(slot))
                .map(|&(slot, row)| (row, slot as usize))
                .collect()
        };
        if fresh.len() >= PARALLEL_INSERT_MIN {
            self.graph.parallel_insert_slice(&fresh);
        } else {
            for &point in &fresh {
                self.graph.insert_slice(point);
            }
        }
        let mut held = self.slots.write().unwrap_or_else(|e| e.into_inner());
        held.extend(fresh.iter().map(|&(_, slot)| slot as u64));
    }

    /// The (about) `n` nearest points to the unit vector `query`, nearest first, as
    /// (slot, cosine). `ef` is the search's candidate list (at least `n` is used).
    pub fn nearest(&self, query: &[f32], n: usize, ef: usize) -> Vec<(u64, f32)> {
        if n == 0 {
            return Vec::new();
        }
        self.graph
            .search(query, n, ef.max(n))
            .into_iter()
            .map(|neighbour| (neighbour.d_id as u64, 1.0 - neighbour.distance))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum_for_any_length() {
        for len in [0, 1, 7, 8, 9, 384] {
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "{len}");
        }
    }

    #[test]
    fn params_beyond_the_library_limits_are_refused() {
        AnnParams::default().check().unwrap();
        let wide = AnnParams {
            connections: 300,
            ..AnnParams::default()
        };
        assert!(wide.check().unwrap_err().contains("2-256"));
    }

    #[test]
    fn the_distance_is_never_negative() {
        let v = [0.6f32, 0.8];
        assert_eq!(UnitCosineDistance.eval(&v, &v), 0.0);
        assert!((UnitCosineDistance.eval(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn insertion_is_idempotent_per_slot_and_search_finds_the_point() {
        let index = AnnIndex::new(AnnParams::default(), 8);
        let rows: Vec<[f32; 2]> = vec![[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]];
        let batch: Vec<(u64, &[f32])> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u64 + 10, &r[..]))
            .collect();
        index.insert(&batch);
        index.insert(&batch[..1]);
        assert_eq!(index.len(), 3);
        assert!(index.contains(12) && !index.contains(0));
        let found = index.nearest(&[0.0, 1.0], 1, 16);
        assert_eq!(found[0].0, 11);
        assert!((found[0].1 - 1.0).abs() < 1e-6);
        assert!(index.nearest(&[0.0, 1.0], 0, 16).is_empty());
    }
}

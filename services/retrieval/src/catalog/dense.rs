//! Dense candidates: the visible clips nearest to a prompt embedding, from the HNSW graph
//! ([`super::ann`]) kept in step with the catalog.
//!
//! Consistency: the graph is keyed by embedding slot, and each searcher generation of
//! tantivy gets a [`LiveSlots`] view (slot -> the visible document holding it). Before a
//! generation's first dense search the graph is extended with the rows of its visible
//! slots that it lacks, read from the embedding store (which every visible document's row
//! has reached, rows being flushed before commits). So clips ingested by this process
//! (extended at its commit) or by another one (`storyreel-ingest`, extended when the
//! reader picks up its commit) are found; a replaced or deleted clip's old slot has no
//! document in the view and is dropped from results. Nothing is persisted: the service
//! builds the graph from `embeddings.f32` before serving ([`super::Catalog::build_dense_index`];
//! the README's benchmark has the build times).
//!
//! Filters apply to dense candidates as to BM25 ones (the same tantivy filter query).
//! The graph is searched for more points than asked, to leave room for dropped slots and
//! filtered-out clips, widening the search fourfold while too few remain; past
//! [`WIDEST_SEARCH`] points (a filter that passes few clips) the visible clips that pass
//! the filter are scored exactly instead.

use super::{
    ann::{AnnIndex, AnnParams},
    embeddings::{self, EmbeddingStore},
};
use crate::error::RetrievalError;
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};
use tantivy::{DocAddress, Searcher};

/// Widest graph search before exact scoring of the filtered clips takes over.
pub const WIDEST_SEARCH: usize = 4096;

/// Rows decoded from the embedding store per insertion batch (bounds the copy's memory).
const INSERT_BATCH: usize = 65_536;

const NO_DOCUMENT: u64 = u64::MAX;

/// A clip near the prompt embedding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseCandidate {
    pub slot: u64,
    pub address: DocAddress,
    /// Cosine between the prompt and the caption embedding.
    pub cosine: f32,
}

/// Which visible document holds each embedding slot, for one searcher generation.
pub struct LiveSlots {
    generation: u64,
    /// Indexed by slot: the packed (segment ordinal, doc id) or [`NO_DOCUMENT`].
    by_slot: Vec<u64>,
    count: usize,
}

impl LiveSlots {
    fn of(searcher: &Searcher) -> Result<Self, tantivy::TantivyError> {
        let mut by_slot = Vec::new();
        let mut count = 0;
        for (segment_ord, reader) in searcher.segment_readers().iter().enumerate() {
            let column = reader.fast_fields().u64(super::schema::SLOT)?;
            for doc in reader.doc_ids_alive() {
                let Some(slot) = column.first(doc) else { continue };
                let slot = slot as usize;
                if slot >= by_slot.len() {
                    by_slot.resize(slot + 1, NO_DOCUMENT);
                }
                by_slot[slot] = ((segment_ord as u64) << 32) | doc as u64;
                count += 1;
            }
        }
        Ok(LiveSlots {
            generation: searcher.generation().generation_id(),
            by_slot,
            count,
        })
    }

    /// The visible document holding `slot`, if any.
    pub fn address(&self, slot: u64) -> Option<DocAddress> {
        let packed = *self.by_slot.get(usize::try_from(slot).ok()?)?;
        (packed != NO_DOCUMENT).then(|| DocAddress::new((packed >> 32) as u32, packed as u32))
    }

    /// Visible clips.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The visible (slot, document) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (u64, DocAddress)> + '_ {
        (0..self.by_slot.len() as u64).filter_map(|slot| self.address(slot).map(|a| (slot, a)))
    }
}

/// The graph and the view of the generation it was last brought up to.
pub struct DenseIndex {
    ann: AnnIndex,
    view: Mutex<Option<Arc<LiveSlots>>>,
    /// One catch-up at a time; searches of an already synced generation do not wait.
    sync_lock: Mutex<()>,
    /// Set once the graph has been built from the catalog: from then on commits extend it.
    built: AtomicBool,
}

impl DenseIndex {
    pub fn new(params: AnnParams) -> Self {
        DenseIndex {
            ann: AnnIndex::new(params, 0),
            view: Mutex::new(None),
            sync_lock: Mutex::new(()),
            built: AtomicBool::new(false),
        }
    }

    pub fn ann(&self) -> &AnnIndex {
        &self.ann
    }

    pub fn is_built(&self) -> bool {
        self.built.load(Ordering::Acquire)
    }

    /// The view of `searcher`'s generation, the graph first extended by the visible slots
    /// it lacks.
    pub fn sync(
        &self,
        searcher: &Searcher,
        store: &EmbeddingStore,
    ) -> Result<Arc<LiveSlots>, RetrievalError> {
        let generation = searcher.generation().generation_id();
        if let Some(view) = self.cached(generation) {
            return Ok(view);
        }
        let _one_at_a_time = self.sync_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(view) = self.cached(generation) {
            return Ok(view);
        }
        let live = Arc::new(LiveSlots::of(searcher).map_err(|e| {
            RetrievalError::Internal(format!("reading the embedding slots of the visible clips: {e}"))
        })?);
        let missing: Vec<u64> = live
            .iter()
            .map(|(slot, _)| slot)
            .filter(|&slot| !self.ann.contains(slot))
            .collect();
        if let Some(&last) = missing.last() {
            let map = store.mapping_for(last)?;
            let dim = store.dim();
            for batch in missing.chunks(INSERT_BATCH) {
                let rows = batch
                    .iter()
                    .map(|&slot| {
                        embeddings::row(&map, dim, slot)
                            .map(|row| (slot, row.collect::<Vec<f32>>()))
                            .ok_or_else(|| {
                                RetrievalError::Internal(format!(
                                    "embedding slot {slot} is not in the side store"
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let borrowed: Vec<(u64, &[f32])> = rows.iter().map(|(s, r)| (*s, r.as_slice())).collect();
                self.ann.insert(&borrowed);
            }
        }
        self.built.store(true, Ordering::Release);
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = Some(live.clone());
        Ok(live)
    }

    fn cached(&self, generation: u64) -> Option<Arc<LiveSlots>> {
        self.view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|view| view.generation == generation)
            .cloned()
    }

    /// Up to `n` visible clips nearest to `query` by the graph (about `fetch` points
    /// searched, candidate list `ef`), as the view maps them; and whether the graph had
    /// fewer points than asked for (widening the search cannot find more).
    pub fn nearest_visible(
        &self,
        live: &LiveSlots,
        query: &[f32],
        fetch: usize,
        ef: usize,
    ) -> (Vec<DenseCandidate>, bool) {
        let found = self.ann.nearest(query, fetch, ef);
        let exhausted = found.len() < fetch;
        let visible = found
            .into_iter()
            .filter_map(|(slot, cosine)| {
                live.address(slot).map(|address| DenseCandidate {
                    slot,
                    address,
                    cosine,
                })
            })
            .collect();
        (visible, exhausted)
    }
}

/// Exact scoring: the `n` candidates of `pool` nearest to `query`, best first.
pub fn exact_nearest(
    store: &EmbeddingStore,
    pool: impl Iterator<Item = (u64, DocAddress)>,
    query: &[f32],
    n: usize,
) -> Result<Vec<DenseCandidate>, RetrievalError> {
    let pool: Vec<(u64, DocAddress)> = pool.collect();
    let Some(max_slot) = pool.iter().map(|(slot, _)| *slot).max() else {
        return Ok(Vec::new());
    };
    let map = store.mapping_for(max_slot)?;
    let dim = store.dim();
    let mut scored = pool
        .into_iter()
        .map(|(slot, address)| {
            let cosine = embeddings::dot(&map, dim, slot, query).ok_or_else(|| {
                RetrievalError::Internal(format!("embedding slot {slot} is not in the side store"))
            })?;
            Ok(DenseCandidate {
                slot,
                address,
                cosine,
            })
        })
        .collect::<Result<Vec<_>, RetrievalError>>()?;
    by_cosine(&mut scored);
    scored.truncate(n);
    Ok(scored)
}

/// Sorts best first; equal cosines by slot, so results do not depend on visiting order.
pub fn by_cosine(candidates: &mut [DenseCandidate]) {
    candidates.sort_by(|a, b| b.cosine.total_cmp(&a.cosine).then(a.slot.cmp(&b.slot)));
}

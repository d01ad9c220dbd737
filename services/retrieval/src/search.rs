//! Ranking: hybrid candidates, re-ranked by the cosine between the prompt's embedding and
//! each candidate's caption embedding, fused with configured weights.
//!
//! Candidates are the BM25 top-N from tantivy (keywords) merged with the dense top-M, the
//! visible clips nearest to the prompt embedding in the HNSW graph
//! ([`crate::catalog::dense`]), each clip once; both within the filters. A clip that no
//! keyword matches has `bm25_score` 0, so a query without any lexical match still
//! returns the clips nearest to its prompt.
//!
//! `fused = bm25_weight * norm(bm25) + embedding_weight * cosine`, where `norm` is the
//! min-max normalisation over the merged candidates (1.0 when they all score alike above
//! 0; 0 when none matches lexically). Without a prompt embedding there are no dense
//! candidates and the cosine is not computed: `embedding_score` is 0 and
//! `fused = norm(bm25)` (search.proto). Ties keep the BM25 order, then the dense order.
//! Everything here is synchronous CPU work: callers run it on the blocking pool, never on
//! the async runtime.

use crate::{
    catalog::{Boosts, Candidate, Filters, Snapshot, dense::DenseCandidate, embeddings, schema::ClipRecord},
    error::RetrievalError,
};
use std::collections::{HashMap, HashSet};

/// Fusion weights (config `search.bm25_weight`, `search.embedding_weight`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    pub bm25: f32,
    pub embedding: f32,
}

/// Dense candidates per search (config `search.dense_candidates`, `search.ef_search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseParams {
    /// Clips nearest to the prompt merged with the BM25 candidates (at least `k`; 0: none).
    pub candidates: usize,
    /// The graph search's candidate list (at least `candidates` is used).
    pub ef_search: usize,
}

impl DenseParams {
    /// The dense candidates of a search for `k` clips: at least `k`, unless turned off.
    pub fn count_for(&self, k: usize) -> usize {
        if self.candidates == 0 {
            0
        } else {
            self.candidates.max(k)
        }
    }
}

/// What to rank.
#[derive(Debug, Clone)]
pub struct RankQuery<'a> {
    pub keywords: &'a [String],
    /// Unit-length prompt embedding; `None` ranks by BM25 only.
    pub prompt_embedding: Option<&'a [f32]>,
    pub filters: &'a Filters,
    pub k: usize,
    /// BM25 candidates.
    pub candidates: usize,
    pub dense: DenseParams,
    pub boosts: Boosts,
    pub weights: Weights,
}

/// One ranked clip with each stage's score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub rank: u32,
    pub record: ClipRecord,
    pub bm25_score: f32,
    pub embedding_score: f32,
    pub fused_score: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    pub hits: Vec<Hit>,
    /// Candidates (BM25 and dense, each clip once) that passed the filters and were
    /// re-ranked.
    pub candidates_considered: u32,
}

/// A candidate's scores before the stored record is loaded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub candidate: Candidate,
    pub embedding: f32,
    pub fused: f32,
}

/// Ranks `query` against `snapshot`: BM25 top-N and dense top-M, re-rank, fusion, top-k
/// records.
pub fn rank(snapshot: &Snapshot, query: &RankQuery<'_>) -> Result<Ranking, RetrievalError> {
    let candidates = snapshot.bm25(query.keywords, query.boosts, query.filters, query.candidates)?;
    let dense = dense_candidates(
        snapshot,
        query.prompt_embedding,
        query.filters,
        query.k,
        query.dense,
    )?;
    rerank(
        snapshot,
        candidates,
        dense,
        query.prompt_embedding,
        query.k,
        query.weights,
    )
}

/// The dense candidates of a search: none without a prompt embedding.
pub fn dense_candidates(
    snapshot: &Snapshot,
    prompt_embedding: Option<&[f32]>,
    filters: &Filters,
    k: usize,
    params: DenseParams,
) -> Result<Vec<DenseCandidate>, RetrievalError> {
    match prompt_embedding {
        Some(prompt) => snapshot.dense(prompt, params.count_for(k), params.ef_search, filters),
        None => Ok(Vec::new()),
    }
}

/// The second stage of [`rank`], for callers that fetch the BM25 candidates
/// ([`Snapshot::bm25`]) while the prompt is being embedded: merge with the dense
/// candidates (each clip once), cosines, fusion, top-k records.
pub fn rerank(
    snapshot: &Snapshot,
    bm25: Vec<Candidate>,
    dense: Vec<DenseCandidate>,
    prompt_embedding: Option<&[f32]>,
    k: usize,
    weights: Weights,
) -> Result<Ranking, RetrievalError> {
    let (candidates, known) = merge(bm25, &dense);
    let considered = candidates.len() as u32;
    let cosines = match prompt_embedding {
        Some(prompt) if !candidates.is_empty() => {
            let map = snapshot.embeddings_for(&candidates)?;
            let dim = prompt.len();
            candidates
                .iter()
                .zip(&known)
                .map(|(c, known)| match known {
                    Some(cosine) => Ok(*cosine),
                    None => embeddings::dot(&map, dim, c.slot, prompt).ok_or_else(|| {
                        RetrievalError::Internal(format!(
                            "embedding slot {} is not in the side store",
                            c.slot
                        ))
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)?
        }
        _ => None,
    };
    let mut scored = fuse(&candidates, cosines.as_deref(), weights);
    scored.truncate(k);
    let hits = scored
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(Hit {
                rank: i as u32 + 1,
                record: snapshot.record(s.candidate.address)?,
                bm25_score: s.candidate.bm25,
                embedding_score: s.embedding,
                fused_score: s.fused,
            })
        })
        .collect::<Result<Vec<_>, RetrievalError>>()?;
    Ok(Ranking {
        hits,
        candidates_considered: considered,
    })
}

/// The BM25 candidates (their order) then the dense ones no keyword found (bm25 0, their
/// order), each document once; beside each, its cosine when the dense search computed it.
pub fn merge(bm25: Vec<Candidate>, dense: &[DenseCandidate]) -> (Vec<Candidate>, Vec<Option<f32>>) {
    let cosine_of: HashMap<_, f32> = dense.iter().map(|d| (d.address, d.cosine)).collect();
    let mut seen: HashSet<_> = HashSet::with_capacity(bm25.len() + dense.len());
    let mut merged = Vec::with_capacity(bm25.len() + dense.len());
    let mut known = Vec::with_capacity(bm25.len() + dense.len());
    let lexical = bm25.into_iter();
    let semantic_only = dense.iter().map(|d| Candidate {
        bm25: 0.0,
        slot: d.slot,
        address: d.address,
    });
    for candidate in lexical.chain(semantic_only) {
        if seen.insert(candidate.address) {
            known.push(cosine_of.get(&candidate.address).copied());
            merged.push(candidate);
        }
    }
    (merged, known)
}

/// Fuses BM25 scores (best first, as tantivy returns them; 0 for a clip no keyword
/// matched) with the cosines (same order; `None`: no prompt), best first. Stable: equal
/// fused scores keep the candidates' order.
pub fn fuse(candidates: &[Candidate], cosines: Option<&[f32]>, weights: Weights) -> Vec<Scored> {
    let (min, max) = candidates
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c.bm25), hi.max(c.bm25))
        });
    // Alike scores are all 1 when they are lexical matches, all 0 when none is.
    let norm = |s: f32| {
        if max > min {
            (s - min) / (max - min)
        } else if max > 0.0 {
            1.0
        } else {
            0.0
        }
    };
    let mut scored: Vec<Scored> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| match cosines {
            Some(cos) => Scored {
                candidate: *c,
                embedding: cos[i],
                fused: weights.bm25 * norm(c.bm25) + weights.embedding * cos[i],
            },
            None => Scored {
                candidate: *c,
                embedding: 0.0,
                fused: norm(c.bm25),
            },
        })
        .collect();
    scored.sort_by(|a, b| b.fused.total_cmp(&a.fused));
    scored
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::DocAddress;

    fn candidate(bm25: f32, doc: u32) -> Candidate {
        Candidate {
            bm25,
            slot: doc as u64,
            address: DocAddress::new(0, doc),
        }
    }

    const WEIGHTS: Weights = Weights {
        bm25: 0.4,
        embedding: 0.6,
    };

    #[test]
    fn bm25_only_normalises_and_keeps_the_order() {
        let c = [candidate(6.0, 0), candidate(4.0, 1), candidate(2.0, 2)];
        let s = fuse(&c, None, WEIGHTS);
        let fused: Vec<f32> = s.iter().map(|s| s.fused).collect();
        assert_eq!(fused, vec![1.0, 0.5, 0.0]);
        assert!(s.iter().all(|s| s.embedding == 0.0));
    }

    #[test]
    fn the_cosine_can_overturn_bm25() {
        let c = [candidate(6.0, 0), candidate(5.0, 1)];
        // The second candidate's caption is much closer to the prompt.
        let s = fuse(&c, Some(&[0.1, 0.9]), WEIGHTS);
        assert_eq!(s[0].candidate.address.doc_id, 1);
        assert!((s[0].fused - (0.4 * 0.0 + 0.6 * 0.9)).abs() < 1e-6);
        assert!((s[1].fused - (0.4 * 1.0 + 0.6 * 0.1)).abs() < 1e-6);
    }

    #[test]
    fn merging_keeps_each_clip_once_and_its_dense_cosine() {
        let dense = |doc: u32, cosine: f32| DenseCandidate {
            slot: doc as u64,
            address: DocAddress::new(0, doc),
            cosine,
        };
        let (merged, known) = merge(
            vec![candidate(5.0, 1), candidate(2.0, 2)],
            &[dense(2, 0.9), dense(3, 0.8), dense(3, 0.8)],
        );
        let docs: Vec<u32> = merged.iter().map(|c| c.address.doc_id).collect();
        assert_eq!(docs, vec![1, 2, 3]);
        assert_eq!(merged[2].bm25, 0.0);
        assert_eq!(known, vec![None, Some(0.9), Some(0.8)]);
    }

    #[test]
    fn without_any_lexical_match_the_cosine_alone_ranks() {
        let c = [candidate(0.0, 0), candidate(0.0, 1)];
        let s = fuse(&c, Some(&[0.2, 0.5]), WEIGHTS);
        assert_eq!(s[0].candidate.address.doc_id, 1);
        assert!((s[0].fused - 0.6 * 0.5).abs() < 1e-6);
    }

    #[test]
    fn equal_scores_keep_the_bm25_order_and_a_single_candidate_scores_one() {
        let c = [candidate(3.0, 7), candidate(3.0, 2)];
        let s = fuse(&c, None, WEIGHTS);
        assert_eq!(s[0].candidate.address.doc_id, 7);
        assert_eq!(s[0].fused, 1.0);
        assert!(fuse(&[], None, WEIGHTS).is_empty());
    }
}

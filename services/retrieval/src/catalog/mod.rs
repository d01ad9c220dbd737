//! The clip catalog on disk:
//!
//! ```text
//! <dir>/catalog.json     format, embedding model and dimension (checked at open)
//! <dir>/index/           tantivy index (schema in [`schema`])
//! <dir>/embeddings.f32   caption embeddings, memory-mapped ([`embeddings`])
//!                        (in memory: their HNSW graph, [`ann`] and [`dense`])
//! <dir>/frames/<id>/     sampled frames of each clip ([`crate::frames`])
//! ```
//!
//! Readers reload on their own when another process commits (tantivy watches
//! `meta.json`: [`ReloadPolicy::OnCommitWithDelay`]), and this process's own commits are
//! made visible at once by [`CatalogWriter::commit`]. Writing takes tantivy's directory
//! lock, so one process writes at a time; the service takes the writer for the length of
//! an Ingest batch only, so `storyreel-ingest` can add clips between batches.

pub mod ann;
pub mod dense;
#[cfg(test)]
mod dense_tests;
pub mod embeddings;
pub mod schema;

use crate::error::RetrievalError;
use ann::AnnParams;
use dense::{DenseCandidate, DenseIndex, LiveSlots};
use embeddings::{EmbeddingAppender, EmbeddingStore};
use memmap2::Mmap;
use schema::{ClipRecord, Fields};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeSet, HashMap},
    ops::Bound,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
    collector::TopDocs,
    directory::MmapDirectory,
    query::{BooleanQuery, BoostQuery, ConstScoreQuery, EnableScoring, Occur, Query, RangeQuery, TermQuery},
    schema::IndexRecordOption,
    tokenizer::{TextAnalyzer, TokenStream},
};

/// Which embedding model a catalog's vectors come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EmbeddingModel {
    pub name: String,
    pub version: String,
    pub weights_sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CatalogMeta {
    format: u32,
    embedding_model: EmbeddingModel,
    embedding_dim: usize,
}

const FORMAT: u32 = 1;

/// How to open a catalog.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    pub embedding_model: EmbeddingModel,
    pub embedding_dim: usize,
    pub writer_memory_bytes: usize,
    pub writer_threads: usize,
    /// The HNSW graph's construction parameters.
    pub ann: AnnParams,
}

/// Catalog filters (SearchFilters); `None` and empty do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub min_duration_s: Option<f64>,
    pub max_duration_s: Option<f64>,
    pub min_aspect_ratio: Option<f64>,
    pub max_aspect_ratio: Option<f64>,
    pub licences: Vec<String>,
}

/// Boosts of the BM25 query per field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Boosts {
    pub caption: f32,
    pub tags: f32,
}

/// A BM25 candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub bm25: f32,
    pub slot: u64,
    pub address: DocAddress,
}

/// Size and state of a catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogStats {
    pub clip_count: u64,
    pub segment_count: u32,
    pub index_bytes: u64,
    pub frame_bytes: u64,
    pub embedding_rows: u64,
    pub last_commit_time: Option<SystemTime>,
}

pub struct Catalog {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    embeddings: EmbeddingStore,
    dense: DenseIndex,
    options: CatalogOptions,
}

impl Catalog {
    /// Opens the catalog in `dir`, creating an empty one when there is none. A catalog
    /// made with another embedding model or dimension is refused (its vectors would not
    /// be comparable with the queries').
    pub fn open(dir: &Path, options: CatalogOptions) -> Result<Arc<Self>, RetrievalError> {
        options.ann.check().map_err(|message| RetrievalError::Catalog {
            dir: dir.to_path_buf(),
            message,
        })?;
        let index_dir = dir.join("index");
        std::fs::create_dir_all(&index_dir).map_err(|e| RetrievalError::io("creating", &index_dir, e))?;
        std::fs::create_dir_all(dir.join("frames"))
            .map_err(|e| RetrievalError::io("creating", dir.join("frames"), e))?;
        check_meta(dir, &options)?;
        let index_err = |source| RetrievalError::Index {
            dir: index_dir.clone(),
            source,
        };
        let (schema, fields) = schema::schema();
        let directory = MmapDirectory::open(&index_dir).map_err(|e| index_err(e.into()))?;
        let index = Index::open_or_create(directory, schema).map_err(index_err)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(index_err)?;
        let analyzer = index.tokenizer_for_field(fields.caption).map_err(index_err)?;
        let embeddings = EmbeddingStore::open(&dir.join("embeddings.f32"), options.embedding_dim)?;
        Ok(Arc::new(Catalog {
            dir: dir.to_path_buf(),
            index,
            reader,
            fields,
            analyzer,
            embeddings,
            dense: DenseIndex::new(options.ann),
            options,
        }))
    }

    /// Builds the HNSW graph of the visible clips now (on all cores) rather than at the
    /// first search with a prompt; from then on each commit of this process extends it.
    /// The service does this at start; `storyreel-ingest`, which never searches, does not.
    pub fn build_dense_index(&self) -> Result<(), RetrievalError> {
        self.dense
            .sync(&self.reader.searcher(), &self.embeddings)
            .map(drop)
    }

    /// Points in the HNSW graph (replaced clips' old slots included).
    pub fn dense_points(&self) -> usize {
        self.dense.ann().len()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn frames_dir(&self) -> PathBuf {
        self.dir.join("frames")
    }

    pub fn embedding_model(&self) -> &EmbeddingModel {
        &self.options.embedding_model
    }

    pub fn embedding_dim(&self) -> usize {
        self.options.embedding_dim
    }

    /// A consistent view for one search: the current tantivy searcher.
    pub fn snapshot(self: &Arc<Self>) -> Snapshot {
        Snapshot {
            catalog: self.clone(),
            searcher: self.reader.searcher(),
        }
    }

    /// Takes the index writer (tantivy's directory lock): errors when another process
    /// (or another batch of this one) writes.
    pub fn writer(self: &Arc<Self>) -> Result<CatalogWriter, RetrievalError> {
        let writer: IndexWriter = self
            .index
            .writer_with_num_threads(self.options.writer_threads, self.options.writer_memory_bytes)
            .map_err(|source| match source {
                tantivy::TantivyError::LockFailure(..) => RetrievalError::CatalogBusy {
                    dir: self.dir.clone(),
                },
                source => self.index_err(source),
            })?;
        let appender = EmbeddingAppender::open(self.embeddings.path(), self.options.embedding_dim)?;
        Ok(CatalogWriter {
            catalog: self.clone(),
            writer,
            appender,
            pending: 0,
        })
    }

    /// Picks up commits made by another process now rather than at the next poll.
    pub fn reload(&self) -> Result<(), RetrievalError> {
        self.reader.reload().map_err(|e| self.index_err(e))?;
        self.embeddings.refresh()
    }

    pub fn stats(&self) -> Result<CatalogStats, RetrievalError> {
        let searcher = self.reader.searcher();
        let clip_count = searcher.num_docs();
        let meta_path = self.dir.join("index").join("meta.json");
        let last_commit_time = if clip_count > 0 {
            std::fs::metadata(&meta_path).and_then(|m| m.modified()).ok()
        } else {
            None
        };
        Ok(CatalogStats {
            clip_count,
            segment_count: searcher.segment_readers().len() as u32,
            index_bytes: dir_bytes(&self.dir.join("index")) + dir_bytes(self.embeddings.path()),
            frame_bytes: dir_bytes(&self.frames_dir()),
            embedding_rows: self.embeddings.rows(),
            last_commit_time,
        })
    }

    fn index_err(&self, source: tantivy::TantivyError) -> RetrievalError {
        RetrievalError::Index {
            dir: self.dir.join("index"),
            source,
        }
    }

    /// The BM25 query of `keywords`: each analysed token once, as a SHOULD clause per
    /// field with the field's boost. `None` when no keyword yields a token.
    pub fn text_query(&self, keywords: &[String], boosts: Boosts) -> Option<Box<dyn Query>> {
        let mut analyzer = self.analyzer.clone();
        let mut tokens = BTreeSet::new();
        for keyword in keywords {
            let mut stream = analyzer.token_stream(keyword);
            while stream.advance() {
                tokens.insert(stream.token().text.clone());
            }
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for token in &tokens {
            for (field, boost) in [
                (self.fields.caption, boosts.caption),
                (self.fields.tags, boosts.tags),
            ] {
                if boost <= 0.0 {
                    continue;
                }
                let term = TermQuery::new(Term::from_field_text(field, token), IndexRecordOption::WithFreqs);
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(term), boost))));
            }
        }
        (!clauses.is_empty()).then(|| Box::new(BooleanQuery::new(clauses)) as Box<dyn Query>)
    }

    /// `text` restricted by `filters`; the filters score 0, so scores stay BM25.
    fn filtered(&self, text: Box<dyn Query>, filters: &Filters) -> Box<dyn Query> {
        match self.filter_query(filters) {
            None => text,
            Some(filter) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text),
                (Occur::Must, Box::new(ConstScoreQuery::new(filter, 0.0))),
            ])),
        }
    }

    /// The clips that pass `filters` (every clause a MUST); `None` when nothing filters.
    fn filter_query(&self, filters: &Filters) -> Option<Box<dyn Query>> {
        let f = &self.fields;
        let mut must: Vec<Box<dyn Query>> = Vec::new();
        let range = |field, min: Option<f64>, max: Option<f64>| -> Option<Box<dyn Query>> {
            if min.is_none() && max.is_none() {
                return None;
            }
            let bound = |v: Option<f64>| match v {
                Some(v) => Bound::Included(Term::from_field_f64(field, v)),
                None => Bound::Unbounded,
            };
            Some(Box::new(RangeQuery::new(bound(min), bound(max))))
        };
        must.extend(range(f.duration, filters.min_duration_s, filters.max_duration_s));
        must.extend(range(
            f.aspect,
            filters.min_aspect_ratio,
            filters.max_aspect_ratio,
        ));
        if !filters.licences.is_empty() {
            let any: Vec<(Occur, Box<dyn Query>)> = filters
                .licences
                .iter()
                .map(|l| {
                    let q = TermQuery::new(Term::from_field_text(f.licence, l), IndexRecordOption::Basic);
                    (Occur::Should, Box::new(q) as Box<dyn Query>)
                })
                .collect();
            must.push(Box::new(BooleanQuery::new(any)));
        }
        (!must.is_empty()).then(|| {
            Box::new(BooleanQuery::new(
                must.into_iter().map(|q| (Occur::Must, q)).collect(),
            )) as Box<dyn Query>
        })
    }
}

/// One search's view of the catalog.
pub struct Snapshot {
    catalog: Arc<Catalog>,
    searcher: Searcher,
}

impl Snapshot {
    pub fn num_clips(&self) -> u64 {
        self.searcher.num_docs()
    }

    /// The top `n` clips by BM25 for `keywords` within `filters`, best first.
    pub fn bm25(
        &self,
        keywords: &[String],
        boosts: Boosts,
        filters: &Filters,
        n: usize,
    ) -> Result<Vec<Candidate>, RetrievalError> {
        let catalog = &self.catalog;
        let Some(text) = catalog.text_query(keywords, boosts) else {
            return Ok(Vec::new());
        };
        let query = catalog.filtered(text, filters);
        let top = self
            .searcher
            .search(&query, &TopDocs::with_limit(n.max(1)).order_by_score())
            .map_err(|e| catalog.index_err(e))?;
        let mut columns = HashMap::new();
        let mut out = Vec::with_capacity(top.len());
        for (score, address) in top {
            let column = match columns.entry(address.segment_ord) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    self.searcher
                        .segment_reader(address.segment_ord)
                        .fast_fields()
                        .u64(schema::SLOT)
                        .map_err(|e| catalog.index_err(e))?,
                ),
            };
            let slot = column.first(address.doc_id).ok_or_else(|| {
                RetrievalError::Internal(format!("document {address:?} has no embedding slot"))
            })?;
            out.push(Candidate {
                bm25: score,
                slot,
                address,
            });
        }
        Ok(out)
    }

    /// Up to `n` visible clips within `filters` nearest to the unit vector `query`, best
    /// first (see [`dense`]); `ef` is the graph search's candidate list.
    pub fn dense(
        &self,
        query: &[f32],
        n: usize,
        ef: usize,
        filters: &Filters,
    ) -> Result<Vec<DenseCandidate>, RetrievalError> {
        let catalog = &self.catalog;
        if n == 0 {
            return Ok(Vec::new());
        }
        let live = catalog.dense.sync(&self.searcher, &catalog.embeddings)?;
        let filter = catalog.filter_query(filters);
        // Headroom for old slots of replaced clips, and more when a filter drops clips.
        let mut fetch = match filter {
            None => n + n / 4 + 16,
            Some(_) => (4 * n).max(256),
        };
        loop {
            let (mut found, exhausted) = catalog.dense.nearest_visible(&live, query, fetch, ef);
            if let Some(filter) = &filter {
                found = self.passing(filter.as_ref(), found)?;
            }
            if found.len() >= n || exhausted {
                found.truncate(n);
                return Ok(found);
            }
            if fetch >= dense::WIDEST_SEARCH {
                return self.exact_dense(&live, query, n, filter.as_deref());
            }
            fetch = (fetch * 4).min(dense::WIDEST_SEARCH);
        }
    }

    /// Every visible clip within `filter` scored exactly: the `n` nearest.
    fn exact_dense(
        &self,
        live: &LiveSlots,
        query: &[f32],
        n: usize,
        filter: Option<&dyn Query>,
    ) -> Result<Vec<DenseCandidate>, RetrievalError> {
        let pool: Vec<(u64, DocAddress)> = match filter {
            None => live.iter().collect(),
            Some(filter) => self.matching(filter)?,
        };
        dense::exact_nearest(&self.catalog.embeddings, pool.into_iter(), query, n)
    }

    /// The visible clips that `filter` matches, as (slot, document): one walk of the
    /// filter's matches per segment.
    fn matching(&self, filter: &dyn Query) -> Result<Vec<(u64, DocAddress)>, RetrievalError> {
        let catalog = &self.catalog;
        let index_err = |e| catalog.index_err(e);
        let weight = filter
            .weight(EnableScoring::disabled_from_searcher(&self.searcher))
            .map_err(index_err)?;
        let mut out = Vec::new();
        for (segment_ord, reader) in self.searcher.segment_readers().iter().enumerate() {
            let slots = reader.fast_fields().u64(schema::SLOT).map_err(index_err)?;
            let mut matches = weight.scorer(reader, 1.0).map_err(index_err)?;
            let mut doc = matches.doc();
            while doc != tantivy::TERMINATED {
                if !reader.is_deleted(doc)
                    && let Some(slot) = slots.first(doc)
                {
                    out.push((slot, DocAddress::new(segment_ord as u32, doc)));
                }
                doc = matches.advance();
            }
        }
        Ok(out)
    }

    /// The candidates that `filter` matches, in their given order.
    fn passing(
        &self,
        filter: &dyn Query,
        candidates: Vec<DenseCandidate>,
    ) -> Result<Vec<DenseCandidate>, RetrievalError> {
        let catalog = &self.catalog;
        let weight = filter
            .weight(EnableScoring::disabled_from_searcher(&self.searcher))
            .map_err(|e| catalog.index_err(e))?;
        // Doc ids ascending per segment: each segment's matches are walked forward once.
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by_key(|&i| candidates[i].address);
        let mut keep = vec![false; candidates.len()];
        let mut segment = None;
        let mut scorer = None;
        for i in order {
            let address = candidates[i].address;
            if segment != Some(address.segment_ord) {
                let reader = self.searcher.segment_reader(address.segment_ord);
                scorer = Some(weight.scorer(reader, 1.0).map_err(|e| catalog.index_err(e))?);
                segment = Some(address.segment_ord);
            }
            let Some(matches) = scorer.as_mut() else { continue };
            // `seek` may only move forward; a scorer already past the doc does not match it.
            keep[i] = matches.doc() <= address.doc_id && matches.seek(address.doc_id) == address.doc_id;
        }
        Ok(candidates
            .into_iter()
            .zip(keep)
            .filter_map(|(c, keep)| keep.then_some(c))
            .collect())
    }

    /// The embedding rows, remapped when a candidate's slot is newer than the mapping.
    pub fn embeddings_for(&self, candidates: &[Candidate]) -> Result<Arc<Mmap>, RetrievalError> {
        let max_slot = candidates.iter().map(|c| c.slot).max().unwrap_or(0);
        self.catalog.embeddings.mapping_for(max_slot)
    }

    pub fn record(&self, address: DocAddress) -> Result<ClipRecord, RetrievalError> {
        let doc: TantivyDocument = self
            .searcher
            .doc(address)
            .map_err(|e| self.catalog.index_err(e))?;
        Ok(ClipRecord::from_document(&doc, &self.catalog.fields))
    }

    /// The record of `clip_id`, if the catalog holds it.
    pub fn find(&self, clip_id: &str) -> Result<Option<ClipRecord>, RetrievalError> {
        let term = Term::from_field_text(self.catalog.fields.clip_id, clip_id);
        let query = TermQuery::new(term, IndexRecordOption::Basic);
        let top = self
            .searcher
            .search(&query, &TopDocs::with_limit(1).order_by_score())
            .map_err(|e| self.catalog.index_err(e))?;
        top.first().map(|(_, address)| self.record(*address)).transpose()
    }
}

/// The writer of one ingest batch (or of `storyreel-ingest`).
pub struct CatalogWriter {
    catalog: Arc<Catalog>,
    writer: IndexWriter,
    appender: EmbeddingAppender,
    pending: usize,
}

impl CatalogWriter {
    /// Adds `record`, replacing any clip with its id (delete-then-add, one commit).
    pub fn upsert(&mut self, record: &ClipRecord, embedding: &[f32]) -> Result<(), RetrievalError> {
        let slot = self.appender.append(embedding)?;
        let fields = &self.catalog.fields;
        self.writer
            .delete_term(Term::from_field_text(fields.clip_id, &record.clip_id));
        self.writer
            .add_document(record.to_document(fields, slot))
            .map_err(|e| self.catalog.index_err(e))?;
        self.pending += 1;
        Ok(())
    }

    /// Clips added since the last commit.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Flushes the embeddings, commits the index and makes both visible to this process.
    pub fn commit(&mut self) -> Result<(), RetrievalError> {
        self.appender.sync()?;
        self.writer.commit().map_err(|e| self.catalog.index_err(e))?;
        self.pending = 0;
        self.catalog.reload()?;
        // The writer's batch pays for extending the graph, not the next search.
        if self.catalog.dense.is_built() {
            self.catalog.build_dense_index()?;
        }
        Ok(())
    }

    /// Commits and waits for tantivy's merges, releasing the lock.
    pub fn finish(mut self) -> Result<(), RetrievalError> {
        self.commit()?;
        let catalog = self.catalog.clone();
        self.writer
            .wait_merging_threads()
            .map_err(|e| catalog.index_err(e))?;
        catalog.reload()
    }
}

fn check_meta(dir: &Path, options: &CatalogOptions) -> Result<(), RetrievalError> {
    let path = dir.join("catalog.json");
    let wanted = CatalogMeta {
        format: FORMAT,
        embedding_model: options.embedding_model.clone(),
        embedding_dim: options.embedding_dim,
    };
    if !path.exists() {
        let json = serde_json::to_vec_pretty(&wanted).expect("serialisable");
        return std::fs::write(&path, json).map_err(|e| RetrievalError::io("writing", &path, e));
    }
    let bytes = std::fs::read(&path).map_err(|e| RetrievalError::io("reading", &path, e))?;
    let found: CatalogMeta = serde_json::from_slice(&bytes).map_err(|e| RetrievalError::Catalog {
        dir: dir.to_path_buf(),
        message: format!("catalog.json: {e}"),
    })?;
    let mismatch = |what: &str, found: String, wanted: String| RetrievalError::Catalog {
        dir: dir.to_path_buf(),
        message: format!(
            "its {what} is {found}, the service's is {wanted}; re-ingest into a new catalog directory"
        ),
    };
    if found.format != FORMAT {
        return Err(mismatch("format", found.format.to_string(), FORMAT.to_string()));
    }
    if found.embedding_dim != wanted.embedding_dim {
        return Err(mismatch(
            "embedding dimension",
            found.embedding_dim.to_string(),
            wanted.embedding_dim.to_string(),
        ));
    }
    let (a, b) = (&found.embedding_model, &wanted.embedding_model);
    if a.name != b.name || a.weights_sha256 != b.weights_sha256 {
        return Err(mismatch(
            "embedding model",
            format!("{} ({})", a.name, a.weights_sha256),
            format!("{} ({})", b.name, b.weights_sha256),
        ));
    }
    Ok(())
}

/// Bytes of the files under `path` (a file or a directory).
fn dir_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if meta.is_file() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| dir_bytes(&e.path())).sum())
        .unwrap_or(0)
}

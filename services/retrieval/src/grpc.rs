//! The thin gRPC adapter: per call it takes the request, validates it (INVALID_ARGUMENT
//! naming the field and limit), begins the call's context (`storyreel_stage::CallContext`:
//! one deadline from the job, the gRPC deadline and the server's request timeout, for
//! Ingest's whole stream too; a span; the latency metric), calls [`Retrieval`] under it,
//! and converts the answer or the error (through `storyreel_runtime::to_status`).

use crate::{
    RetrievalStage,
    error::RetrievalError,
    ingest::{ClipResult, ClipSpec, IngestEvent, IngestSummary, Outcome, SkipReason},
    search::Hit,
    service::{SearchResult, ServiceStats},
    validation::{validate_ingest_options, validate_search},
};
use futures::StreamExt;
use std::time::Duration;
use storyreel_proto::{
    common,
    retrieval::{
        self as wire, GetCatalogStatsRequest, GetCatalogStatsResponse, IngestRequest, IngestResponse,
        SearchResponse, ingest_request::Item, ingest_response::Event,
        retrieval_service_server::RetrievalService,
    },
};
use storyreel_runtime::{JobInfo, ValidationError, tensor_ref, to_status};
use storyreel_stage::Adapter;
use tonic::{Request, Response, Status, Streaming};

/// The tonic service over any [`crate::Retrieval`].
#[derive(Clone)]
pub struct RetrievalGrpc(pub Adapter<RetrievalStage>);

fn status(err: RetrievalError) -> Status {
    tracing::debug!(error = %err, "retrieval request failed");
    to_status(&err)
}

#[tonic::async_trait]
impl RetrievalService for RetrievalGrpc {
    async fn search(
        &self,
        request: Request<wire::SearchRequest>,
    ) -> Result<Response<SearchResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let adapter = &self.0;
        let mut request = validate_search(message, &adapter.config.search).map_err(|e| status(e.into()))?;
        let context =
            adapter
                .calls
                .begin_request("search", &metadata, &request.job, &mut request.deadline)?;
        let result = context.unary(adapter.service.search(request)).await?;
        Ok(Response::new(result.into()))
    }

    type IngestStream = futures::stream::BoxStream<'static, Result<IngestResponse, Status>>;

    async fn ingest(
        &self,
        request: Request<Streaming<IngestRequest>>,
    ) -> Result<Response<Self::IngestStream>, Status> {
        let (metadata, _, mut incoming) = request.into_parts();
        let adapter = &self.0;
        let context = adapter
            .calls
            .begin("ingest", &metadata, JobInfo::default(), None)?;
        let first = incoming.message().await?;
        let (options, first_clip) = match first.and_then(|m| m.item) {
            Some(Item::Options(o)) => (Some(o), None),
            Some(Item::Clip(c)) => (None, Some(Ok(clip_spec(c)))),
            None => (None, None),
        };
        let options = validate_ingest_options(options, adapter.config.ingest.default_frames_per_clip)
            .map_err(|e| status(e.into()))?;
        let rest = incoming.map(|message| match message {
            Ok(IngestRequest {
                item: Some(Item::Clip(c)),
            }) => Ok(clip_spec(c)),
            Ok(IngestRequest {
                item: Some(Item::Options(_)),
            }) => Err(RetrievalError::from(ValidationError::new(
                "options",
                "must be the first message of the stream, if sent",
            ))),
            Ok(IngestRequest { item: None }) => Err(RetrievalError::from(ValidationError::new(
                "item",
                "must be set (options or clip)",
            ))),
            Err(s) => Err(RetrievalError::Internal(format!("the client stream failed: {s}"))),
        });
        let clips = futures::stream::iter(first_clip).chain(rest).boxed();
        let events = adapter
            .service
            .ingest(options, clips)
            .map(|event| event.map(IngestResponse::from));
        Ok(Response::new(context.stream(events)))
    }

    async fn get_catalog_stats(
        &self,
        request: Request<GetCatalogStatsRequest>,
    ) -> Result<Response<GetCatalogStatsResponse>, Status> {
        let adapter = &self.0;
        let context =
            adapter
                .calls
                .begin("get_catalog_stats", request.metadata(), JobInfo::default(), None)?;
        let stats = context.unary(adapter.service.stats()).await?;
        Ok(Response::new(stats.into()))
    }
}

fn clip_spec(c: wire::ClipSpec) -> ClipSpec {
    ClipSpec {
        clip_id: c.clip_id,
        caption: c.caption,
        tags: c.tags,
        video_uri: c.video_uri,
        licence: c.licence,
        source_uri: c.source_uri,
    }
}

fn timestamp(t: std::time::SystemTime) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp::from(t))
}

fn model_info(m: &crate::catalog::EmbeddingModel) -> common::ModelInfo {
    common::ModelInfo {
        name: m.name.clone(),
        version: m.version.clone(),
        weights_sha256: m.weights_sha256.clone(),
        components: Vec::new(),
        random_init: false,
    }
}

fn metadata(r: &crate::catalog::schema::ClipRecord) -> wire::ClipMetadata {
    wire::ClipMetadata {
        duration_s: r.duration_s,
        fps: r.fps,
        width: r.width,
        height: r.height,
        licence: r.licence.clone(),
        source_uri: r.source_uri.clone(),
        tags: r.tags.clone(),
        ingest_time: timestamp(r.ingest_time),
    }
}

impl From<&Hit> for wire::ClipHit {
    fn from(h: &Hit) -> Self {
        wire::ClipHit {
            rank: h.rank,
            clip_id: h.record.clip_id.clone(),
            caption: h.record.caption.clone(),
            bm25_score: h.bm25_score,
            embedding_score: h.embedding_score,
            fused_score: h.fused_score,
            metadata: Some(metadata(&h.record)),
        }
    }
}

impl From<SearchResult> for SearchResponse {
    fn from(r: SearchResult) -> Self {
        let duration = |d: Duration| prost_types::Duration::try_from(d).ok();
        SearchResponse {
            hits: r.hits.iter().map(wire::ClipHit::from).collect(),
            frames: r.frames.as_ref().map(tensor_ref::to_wire),
            frame_times_s: r.frame_times_s,
            model: Some(model_info(&r.model)),
            candidates_considered: r.candidates_considered,
            stats: Some(common::StageStats {
                cache_hit: r.cache_hit,
                queue_time: duration(r.queue_time),
                compute_time: duration(r.compute_time),
            }),
        }
    }
}

impl From<SkipReason> for wire::SkipReason {
    fn from(r: SkipReason) -> Self {
        match r {
            SkipReason::InvalidField => wire::SkipReason::InvalidField,
            SkipReason::UnsupportedUri => wire::SkipReason::UnsupportedUri,
            SkipReason::Unreadable => wire::SkipReason::Unreadable,
            SkipReason::InvalidVideo => wire::SkipReason::InvalidVideo,
            SkipReason::TooShort => wire::SkipReason::TooShort,
            SkipReason::DuplicateInBatch => wire::SkipReason::DuplicateInBatch,
            SkipReason::Internal => wire::SkipReason::Internal,
        }
    }
}

impl From<ClipResult> for wire::ClipResult {
    fn from(c: ClipResult) -> Self {
        let (outcome, reason) = match c.outcome {
            Outcome::Indexed => (wire::IngestOutcome::Indexed, wire::SkipReason::Unspecified),
            Outcome::Unchanged => (wire::IngestOutcome::Unchanged, wire::SkipReason::Unspecified),
            Outcome::Skipped(r) => (wire::IngestOutcome::Skipped, r.into()),
        };
        wire::ClipResult {
            clip_id: c.clip_id,
            outcome: outcome as i32,
            skip_reason: reason as i32,
            detail: c.detail,
            metadata: c.metadata.as_ref().map(metadata),
        }
    }
}

impl From<IngestSummary> for wire::IngestSummary {
    fn from(s: IngestSummary) -> Self {
        wire::IngestSummary {
            received: s.received,
            indexed: s.indexed,
            unchanged: s.unchanged,
            skipped: s.skipped,
            catalog_clips: s.catalog_clips,
        }
    }
}

impl From<IngestEvent> for IngestResponse {
    fn from(e: IngestEvent) -> Self {
        let event = match e {
            IngestEvent::Clip(c) => Event::Clip(c.into()),
            IngestEvent::Progress { done } => Event::Progress(common::Progress {
                stage: common::Stage::Retrieval as i32,
                step: done,
                total_steps: 0,
                message: "ingesting clips".into(),
                fraction: 0.0,
                scene_index: None,
            }),
            IngestEvent::Summary(s) => Event::Summary(s.into()),
        };
        IngestResponse { event: Some(event) }
    }
}

impl From<ServiceStats> for GetCatalogStatsResponse {
    fn from(s: ServiceStats) -> Self {
        GetCatalogStatsResponse {
            clip_count: s.catalog.clip_count,
            segment_count: s.catalog.segment_count,
            index_bytes: s.catalog.index_bytes,
            frame_bytes: s.catalog.frame_bytes,
            last_commit_time: s.catalog.last_commit_time.and_then(timestamp),
            embedding_model: Some(model_info(&s.embedding_model)),
            embedding_dim: s.embedding_dim as u32,
        }
    }
}

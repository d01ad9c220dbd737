//! The thin gRPC adapter: per call it validates the request, sets its deadline (the
//! earliest of `context.deadline`, `grpc-timeout` and the server's `request_timeout_ms`),
//! calls [`PromptRewriter`] under that deadline, and converts the answer or the error
//! (through `storyreel_runtime::to_status`). A client that cancels drops the call's
//! future, which cancels decoding.

use crate::{
    config::PromptRewriterConfig,
    error::PromptRewriterError,
    service::{Keywords, PromptRewriter, Rewrite, SceneAttributes, SceneKeywords, ScenePrompt},
    validation::{validate_keywords, validate_rewrite},
};
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};
use storyreel_llm::GenerationDefaults;
use storyreel_proto::prompt_rewriter::{
    self as wire,
    prompt_rewriter_service_server::{PromptRewriterService, PromptRewriterServiceServer},
};
use storyreel_runtime::{JobInfo, ServerConfig, job::grpc_deadline, to_status, with_message_limits};
use tonic::{Request, Response, Status, metadata::MetadataMap};
use tracing::Instrument;

/// The tonic service over any [`PromptRewriter`].
#[derive(Clone)]
pub struct PromptRewriterGrpc {
    service: Arc<dyn PromptRewriter>,
    defaults: GenerationDefaults,
    request_timeout: Duration,
}

impl PromptRewriterGrpc {
    pub fn new(service: Arc<dyn PromptRewriter>, config: &PromptRewriterConfig) -> Self {
        Self {
            service,
            defaults: config.generation.clone(),
            request_timeout: config.server.request_timeout(),
        }
    }

    /// The generated tonic server, with the configured message-size limits.
    pub fn into_server(self, server: &ServerConfig) -> PromptRewriterServiceServer<Self> {
        with_message_limits!(PromptRewriterServiceServer::new(self), server)
    }

    /// The call's deadline; an error if it has already passed.
    fn deadline(&self, requested: Option<Instant>, metadata: &MetadataMap) -> Result<Instant, Status> {
        let now = Instant::now();
        let deadline = [
            requested,
            grpc_deadline(metadata, now),
            now.checked_add(self.request_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + self.request_timeout);
        if deadline <= now {
            return Err(status(PromptRewriterError::DeadlineExceeded));
        }
        Ok(deadline)
    }
}

fn status(err: PromptRewriterError) -> Status {
    tracing::debug!(error = %err, "prompt-rewriter request failed");
    to_status(&err)
}

fn span(job: &JobInfo, method: &'static str, items: usize, seed: u64) -> tracing::Span {
    tracing::info_span!(
        "prompt_rewriter",
        method,
        job_id = job.job_id.as_deref().unwrap_or(""),
        request_id = job.request_id.as_deref().unwrap_or(""),
        items,
        seed,
    )
}

/// Runs `call` until `deadline`.
async fn within<T>(
    deadline: Instant,
    call: impl Future<Output = Result<T, PromptRewriterError>>,
) -> Result<T, Status> {
    tokio::time::timeout_at(deadline.into(), call)
        .await
        .map_err(|_| PromptRewriterError::DeadlineExceeded)
        .and_then(|result| result)
        .map_err(status)
}

#[tonic::async_trait]
impl PromptRewriterService for PromptRewriterGrpc {
    async fn rewrite(
        &self,
        request: Request<wire::RewriteRequest>,
    ) -> Result<Response<wire::RewriteResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut request = validate_rewrite(message, &self.defaults).map_err(|e| status(e.into()))?;
        let deadline = self.deadline(request.deadline, &metadata)?;
        request.deadline = Some(deadline);
        let span = span(&request.job, "rewrite", request.scenes.len(), request.seed);
        let rewrite = within(deadline, self.service.rewrite(request).instrument(span)).await?;
        Ok(Response::new(rewrite.into()))
    }

    async fn keywords(
        &self,
        request: Request<wire::KeywordsRequest>,
    ) -> Result<Response<wire::KeywordsResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut request = validate_keywords(message, &self.defaults).map_err(|e| status(e.into()))?;
        let deadline = self.deadline(request.deadline, &metadata)?;
        request.deadline = Some(deadline);
        let span = span(&request.job, "keywords", request.prompts.len(), request.seed);
        let keywords = within(deadline, self.service.keywords(request).instrument(span)).await?;
        Ok(Response::new(keywords.into()))
    }
}

impl From<SceneAttributes> for wire::SceneAttributes {
    fn from(a: SceneAttributes) -> Self {
        wire::SceneAttributes {
            visual_elements: a.visual_elements,
            colour_scheme: a.colour_scheme,
            shapes: a.shapes,
            categories: a.categories,
        }
    }
}

impl From<ScenePrompt> for wire::ScenePrompt {
    fn from(p: ScenePrompt) -> Self {
        wire::ScenePrompt {
            scene_index: p.scene_index,
            prompt: p.prompt,
            prompt_clip_tokens: p.prompt_clip_tokens,
            negative_prompt: p.negative_prompt,
            negative_prompt_clip_tokens: p.negative_prompt_clip_tokens,
            attributes: Some(p.attributes.into()),
        }
    }
}

impl From<Rewrite> for wire::RewriteResponse {
    fn from(r: Rewrite) -> Self {
        wire::RewriteResponse {
            prompts: r.prompts.into_iter().map(Into::into).collect(),
            model: Some(r.model.into()),
            usage: Some(r.usage.into()),
            seed: r.seed,
            stats: Some(r.stats.into()),
        }
    }
}

impl From<SceneKeywords> for wire::SceneKeywords {
    fn from(k: SceneKeywords) -> Self {
        wire::SceneKeywords {
            scene_index: k.scene_index,
            keywords: k.keywords,
        }
    }
}

impl From<Keywords> for wire::KeywordsResponse {
    fn from(k: Keywords) -> Self {
        wire::KeywordsResponse {
            keywords: k.keywords.into_iter().map(Into::into).collect(),
            model: Some(k.model.into()),
            usage: Some(k.usage.into()),
            seed: k.seed,
            stats: Some(k.stats.into()),
        }
    }
}

//! The thin gRPC adapter: per call it validates the request, begins the call's context
//! (`storyreel_stage::CallContext`: one deadline from `context.deadline`, `grpc-timeout`
//! and `request_timeout_ms`, a span, the latency metric), calls [`PromptRewriter`] under
//! it, and converts the answer or the error (through `storyreel_runtime::to_status`). A
//! client that cancels drops the call's future, which cancels decoding.

use crate::{
    PromptRewriterStage,
    service::{Keywords, Rewrite, SceneAttributes, SceneKeywords, ScenePrompt},
    validation::{validate_keywords, validate_rewrite},
};
use storyreel_proto::prompt_rewriter::{self as wire, prompt_rewriter_service_server::PromptRewriterService};
use storyreel_runtime::to_status;
use storyreel_stage::Adapter;
use tonic::{Request, Response, Status};

/// The tonic service over any [`crate::PromptRewriter`].
#[derive(Clone)]
pub struct PromptRewriterGrpc(pub Adapter<PromptRewriterStage>);

#[tonic::async_trait]
impl PromptRewriterService for PromptRewriterGrpc {
    async fn rewrite(
        &self,
        request: Request<wire::RewriteRequest>,
    ) -> Result<Response<wire::RewriteResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let adapter = &self.0;
        let mut request = validate_rewrite(message, &adapter.config.generation).map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("rewrite", &metadata, &request.job, &mut request.deadline)?;
        let rewrite = context.unary(adapter.service.rewrite(request)).await?;
        Ok(Response::new(rewrite.into()))
    }

    async fn keywords(
        &self,
        request: Request<wire::KeywordsRequest>,
    ) -> Result<Response<wire::KeywordsResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let adapter = &self.0;
        let mut request =
            validate_keywords(message, &adapter.config.generation).map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("keywords", &metadata, &request.job, &mut request.deadline)?;
        let keywords = context.unary(adapter.service.keywords(request)).await?;
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

//! The embedded mode: every stage service in this process, sharing one tensor store,
//! reached through its own gRPC adapter called as a plain Rust trait (no network, no
//! HTTP/2): requests are validated, timed and answered exactly as over gRPC. It is the
//! [`StageExecutor`] `storyreel generate` runs the pipeline on.

use crate::config::PipelineConfig;
use futures::StreamExt;
use std::sync::Arc;
use storyreel_decoder::{DecoderStage, grpc::DecoderGrpc};
use storyreel_interpolation::{InterpolationStage, grpc::InterpolationGrpc};
use storyreel_keyframe::{KeyframeStage, grpc::KeyframeGrpc};
use storyreel_pipeline::executor::{Events, StageExecutor};
use storyreel_prompt_rewriter::{PromptRewriterStage, grpc::PromptRewriterGrpc};
use storyreel_proto::{
    decoder::{self, decoder_service_server::DecoderService},
    interpolation::{self, interpolation_service_server::InterpolationService},
    keyframe::{self, keyframe_service_server::KeyframeService},
    prompt_rewriter::{self, prompt_rewriter_service_server::PromptRewriterService},
    retrieval::{self, retrieval_service_server::RetrievalService},
    story_llm::{self, story_llm_service_server::StoryLlmService},
    tts::{self, tts_service_server::TtsService},
};
use storyreel_retrieval::{RetrievalStage, grpc::RetrievalGrpc};
use storyreel_runtime::{ModelInfo, config::Sources};
use storyreel_stage::{Adapter, Stage};
use storyreel_story_llm::{StoryLlmStage, grpc::StoryLlmGrpc};
use storyreel_tensors::TensorStore;
use storyreel_tts::{TtsStage, grpc::TtsGrpc};
use tonic::{Request, Status};

/// The seven stages in process.
pub struct Embedded {
    store: Arc<dyn TensorStore>,
    story: StoryLlmGrpc,
    rewriter: PromptRewriterGrpc,
    retrieval: RetrievalGrpc,
    tts: TtsGrpc,
    keyframe: KeyframeGrpc,
    interpolation: InterpolationGrpc,
    decoder: DecoderGrpc,
}

/// A stage that could not start, named.
#[derive(Debug, thiserror::Error)]
#[error("starting the {stage} stage: {source:#}")]
pub struct StartError {
    pub stage: &'static str,
    #[source]
    pub source: anyhow::Error,
}

async fn adapter<S: Stage>(
    sources: &Sources,
    store: &Arc<dyn TensorStore>,
) -> Result<Adapter<S>, StartError> {
    let fail = |source: anyhow::Error| StartError {
        stage: S::NAME,
        source,
    };
    let config: S::Config =
        storyreel_runtime::config::load(S::CONFIG_TABLE, sources).map_err(|e| fail(e.into()))?;
    let service = S::start_with_store(&config, store.clone()).await.map_err(fail)?;
    Ok(Adapter::new(service, &config))
}

impl Embedded {
    /// Starts every stage with its config table from `sources`, all on the store of
    /// `pipeline.tensors`. Models load in the background; calls wait or answer
    /// UNAVAILABLE as their services do.
    pub async fn start(sources: &Sources, pipeline: &PipelineConfig) -> Result<Self, StartError> {
        let store = storyreel_tensors::open_store(&pipeline.tensors)
            .await
            .map_err(|e| StartError {
                stage: "tensor store",
                source: e.into(),
            })?;
        Ok(Embedded {
            story: StoryLlmGrpc(adapter::<StoryLlmStage>(sources, &store).await?),
            rewriter: PromptRewriterGrpc(adapter::<PromptRewriterStage>(sources, &store).await?),
            retrieval: RetrievalGrpc(adapter::<RetrievalStage>(sources, &store).await?),
            tts: TtsGrpc(adapter::<TtsStage>(sources, &store).await?),
            keyframe: KeyframeGrpc(adapter::<KeyframeStage>(sources, &store).await?),
            interpolation: InterpolationGrpc(adapter::<InterpolationStage>(sources, &store).await?),
            decoder: DecoderGrpc(adapter::<DecoderStage>(sources, &store).await?),
            store,
        })
    }

    /// Waits until every stage's model has loaded; the first failure, named.
    pub async fn wait_ready(&self) -> Result<(), StartError> {
        let states = [
            ("story-llm", StoryLlmStage::model_state(&*self.story.0.service)),
            (
                "prompt-rewriter",
                PromptRewriterStage::model_state(&*self.rewriter.0.service),
            ),
            (
                "retrieval",
                RetrievalStage::model_state(&*self.retrieval.0.service),
            ),
            ("tts", TtsStage::model_state(&*self.tts.0.service)),
            ("keyframe", KeyframeStage::model_state(&*self.keyframe.0.service)),
            (
                "interpolation",
                InterpolationStage::model_state(&*self.interpolation.0.service),
            ),
            ("decoder", DecoderStage::model_state(&*self.decoder.0.service)),
        ];
        for (stage, state) in states {
            storyreel_runtime::model::wait_ready(state)
                .await
                .map_err(|reason| StartError {
                    stage,
                    source: anyhow::anyhow!(reason),
                })?;
        }
        Ok(())
    }
}

fn events<T, S>(response: tonic::Response<S>) -> Events<T>
where
    S: futures::Stream<Item = Result<T, Status>> + Send + 'static,
{
    response.into_inner().boxed()
}

#[async_trait::async_trait(?Send)]
impl StageExecutor for Embedded {
    async fn story(
        &self,
        request: story_llm::GenerateStreamRequest,
    ) -> Result<Events<story_llm::GenerateStreamResponse>, Status> {
        Ok(events(self.story.generate_stream(Request::new(request)).await?))
    }

    async fn rewrite(
        &self,
        request: prompt_rewriter::RewriteRequest,
    ) -> Result<prompt_rewriter::RewriteResponse, Status> {
        Ok(self.rewriter.rewrite(Request::new(request)).await?.into_inner())
    }

    async fn keywords(
        &self,
        request: prompt_rewriter::KeywordsRequest,
    ) -> Result<prompt_rewriter::KeywordsResponse, Status> {
        Ok(self.rewriter.keywords(Request::new(request)).await?.into_inner())
    }

    async fn search(&self, request: retrieval::SearchRequest) -> Result<retrieval::SearchResponse, Status> {
        Ok(self.retrieval.search(Request::new(request)).await?.into_inner())
    }

    async fn encode(&self, request: decoder::EncodeRequest) -> Result<decoder::EncodeResponse, Status> {
        Ok(self.decoder.encode(Request::new(request)).await?.into_inner())
    }

    async fn keyframe(
        &self,
        request: keyframe::GenerateRequest,
    ) -> Result<Events<keyframe::GenerateResponse>, Status> {
        Ok(events(self.keyframe.generate(Request::new(request)).await?))
    }

    async fn interpolate(
        &self,
        request: interpolation::InterpolateRequest,
    ) -> Result<Events<interpolation::InterpolateResponse>, Status> {
        Ok(events(
            self.interpolation.interpolate(Request::new(request)).await?,
        ))
    }

    async fn decode(
        &self,
        request: decoder::DecodeRequest,
    ) -> Result<Events<decoder::DecodeResponse>, Status> {
        Ok(events(self.decoder.decode(Request::new(request)).await?))
    }

    async fn upsample(
        &self,
        request: decoder::UpsampleRequest,
    ) -> Result<Events<decoder::UpsampleResponse>, Status> {
        Ok(events(self.decoder.upsample(Request::new(request)).await?))
    }

    async fn synthesize(&self, request: tts::SynthesizeRequest) -> Result<tts::SynthesizeResponse, Status> {
        Ok(self.tts.synthesize(Request::new(request)).await?.into_inner())
    }

    async fn keyframe_model(&self) -> Result<ModelInfo, Status> {
        let state = KeyframeStage::model_state(&*self.keyframe.0.service);
        storyreel_runtime::model::wait_ready(state)
            .await
            .map_err(|reason| Status::unavailable(format!("the keyframe model did not load: {reason}")))
    }
}

impl Embedded {
    /// The tensor store every stage writes to: the assembly reads frames and audio here.
    pub fn store(&self) -> Arc<dyn TensorStore> {
        self.store.clone()
    }
}

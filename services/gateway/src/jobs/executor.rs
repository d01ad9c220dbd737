//! The DAG's [`StageExecutor`] inside a job's workflow: every stage call is an activity
//! (per-stage timeout, heartbeat timeout, retries with backoff on UNAVAILABLE and
//! DEADLINE_EXCEEDED only), routed to the endpoint group the job drew for that stage. A
//! streamed call's activity returns the call's result message alone, so the DAG sees a
//! stream of one; progress went to the job's event stream from the activity.

use super::{
    activities::StageActivities,
    wire::{JobInput, Proto, StageCall, StageReply},
};
use futures::{StreamExt, stream};
use std::time::Duration;
use storyreel_pipeline::executor::{Events, StageExecutor};
use storyreel_proto::{
    common::{self, JobContext},
    decoder, interpolation, keyframe, prompt_rewriter, retrieval, story_llm, tts,
};
use storyreel_runtime::ModelInfo;
use temporalio_common::protos::temporal::api::failure::v1::{Failure, failure::FailureInfo};
use temporalio_sdk::{ActivityCancellationType, ActivityExecutionError, ActivityOptions, WorkflowContext};
use tonic::{Code, Status};

/// Runs stage calls as activities of the workflow `ctx` belongs to.
pub struct ActivityExecutor<W> {
    pub ctx: WorkflowContext<W>,
    pub input: JobInput,
}

/// The stage service (config name) a DAG step calls.
pub fn service_of(step: &str) -> &'static str {
    match step {
        "story" => "story_llm",
        "prompt" | "keywords" => "prompt_rewriter",
        "retrieval" | "reference_frames" => "retrieval",
        "reference_encode" | "decode" | "upsample" => "decoder",
        "keyframe" => "keyframe",
        "interpolation" => "interpolation",
        "narration" => "tts",
        _ => "gateway",
    }
}

/// The stage service (config name) of an API stage.
pub fn service_of_stage(stage: common::Stage) -> &'static str {
    use common::Stage as S;
    match stage {
        S::Story => "story_llm",
        S::Prompt | S::Keywords => "prompt_rewriter",
        S::Retrieval => "retrieval",
        S::ReferenceEncode | S::Decode | S::Upsample => "decoder",
        S::Keyframe => "keyframe",
        S::Interpolation => "interpolation",
        S::Tts => "tts",
        _ => "gateway",
    }
}

fn scene(context: &Option<JobContext>) -> Option<u32> {
    context.as_ref().and_then(|c| c.scene_index)
}

/// A failed activity as the stage's own status: the code rides in the failure's type
/// (`grpc-<code>`), a timeout is DEADLINE_EXCEEDED, a cancelled one CANCELLED.
pub fn status_of(error: ActivityExecutionError) -> Status {
    match &error {
        ActivityExecutionError::Cancelled(_) => Status::cancelled("the job was cancelled"),
        ActivityExecutionError::Serialization(e) => Status::internal(format!("a stage call's payload: {e}")),
        _ => {
            let mut failure: Option<&Failure> = error.failure();
            while let Some(f) = failure {
                match &f.failure_info {
                    Some(FailureInfo::ApplicationFailureInfo(info)) => {
                        if let Some(code) = info
                            .r#type
                            .strip_prefix("grpc-")
                            .and_then(|c| c.parse::<i32>().ok())
                        {
                            return Status::new(Code::from_i32(code), f.message.clone());
                        }
                    }
                    Some(FailureInfo::TimeoutFailureInfo(_)) => {
                        return Status::deadline_exceeded(format!("a stage call timed out: {}", f.message));
                    }
                    Some(FailureInfo::CanceledFailureInfo(_)) => {
                        return Status::cancelled("the job was cancelled");
                    }
                    _ => {}
                }
                failure = f.cause.as_deref();
            }
            Status::internal(error.to_string())
        }
    }
}

impl<W: 'static> ActivityExecutor<W> {
    fn options(&self, step: &str) -> ActivityOptions {
        let calls = &self.input.calls;
        let retry = temporalio_common::RetryPolicy::builder()
            .initial_interval(Duration::from_millis(500))
            .backoff_coefficient(2.0)
            .maximum_interval(Duration::from_secs(30))
            .maximum_attempts(calls.max_attempts)
            .build();
        let timeout_s = calls
            .stage_timeouts_s
            .get(service_of(step))
            .copied()
            .unwrap_or(calls.stage_timeout_s);
        ActivityOptions::with_start_to_close_timeout(Duration::from_secs(timeout_s))
            .heartbeat_timeout(Duration::from_millis(calls.heartbeat_timeout_ms))
            .retry_policy(retry)
            // A cancelled job ends once its stage calls have stopped, not before.
            .cancellation_type(ActivityCancellationType::WaitCancellationCompleted)
            .summary(step.to_string())
            .build()
    }

    fn call<M: prost::Message>(&self, step: &str, scene: Option<u32>, request: &M) -> StageCall {
        let stage = service_of(step);
        StageCall {
            job_id: self.input.spec.job_id.clone(),
            stage: stage.to_string(),
            group: self
                .input
                .routes
                .get(stage)
                .cloned()
                .unwrap_or_else(|| "stable".into()),
            step: step.to_string(),
            scene,
            request: Proto::of(request),
            trace: self.input.trace.clone(),
        }
    }
}

fn decode<M: prost::Message + Default>(reply: StageReply) -> Result<M, Status> {
    reply.response.decode().map_err(Status::internal)
}

fn one<T: Send + 'static>(message: T) -> Events<T> {
    stream::iter([Ok(message)]).boxed()
}

macro_rules! activity {
    ($self:ident, $activity:ident, $step:expr, $request:ident) => {{
        let call = $self.call($step, scene(&$request.context), &$request);
        let reply = $self
            .ctx
            .execute_activity(StageActivities::$activity, call, $self.options($step))
            .await
            .map_err(status_of)?;
        decode(reply)
    }};
}

#[async_trait::async_trait(?Send)]
impl<W: 'static> StageExecutor for ActivityExecutor<W> {
    async fn story(
        &self,
        request: story_llm::GenerateStreamRequest,
    ) -> Result<Events<story_llm::GenerateStreamResponse>, Status> {
        Ok(one(activity!(self, story, "story", request)?))
    }

    async fn rewrite(
        &self,
        request: prompt_rewriter::RewriteRequest,
    ) -> Result<prompt_rewriter::RewriteResponse, Status> {
        activity!(self, rewrite, "prompt", request)
    }

    async fn keywords(
        &self,
        request: prompt_rewriter::KeywordsRequest,
    ) -> Result<prompt_rewriter::KeywordsResponse, Status> {
        activity!(self, keywords, "keywords", request)
    }

    async fn search(&self, request: retrieval::SearchRequest) -> Result<retrieval::SearchResponse, Status> {
        if request.frames_clip_id.is_empty() {
            activity!(self, search, "retrieval", request)
        } else {
            activity!(self, search, "reference_frames", request)
        }
    }

    async fn encode(&self, request: decoder::EncodeRequest) -> Result<decoder::EncodeResponse, Status> {
        activity!(self, encode, "reference_encode", request)
    }

    async fn keyframe(
        &self,
        request: keyframe::GenerateRequest,
    ) -> Result<Events<keyframe::GenerateResponse>, Status> {
        Ok(one(activity!(self, keyframe, "keyframe", request)?))
    }

    async fn interpolate(
        &self,
        request: interpolation::InterpolateRequest,
    ) -> Result<Events<interpolation::InterpolateResponse>, Status> {
        Ok(one(activity!(self, interpolate, "interpolation", request)?))
    }

    async fn decode(
        &self,
        request: decoder::DecodeRequest,
    ) -> Result<Events<decoder::DecodeResponse>, Status> {
        Ok(one(activity!(self, decode, "decode", request)?))
    }

    async fn upsample(
        &self,
        request: decoder::UpsampleRequest,
    ) -> Result<Events<decoder::UpsampleResponse>, Status> {
        Ok(one(activity!(self, upsample, "upsample", request)?))
    }

    async fn synthesize(&self, request: tts::SynthesizeRequest) -> Result<tts::SynthesizeResponse, Status> {
        activity!(self, synthesize, "narration", request)
    }

    fn now_s(&self) -> f64 {
        self.ctx
            .workflow_time()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }

    async fn keyframe_model(&self) -> Result<ModelInfo, Status> {
        let mut call = self.call("keyframe", None, &common::GetModelRequest {});
        call.step = "keyframe_model".into();
        let reply = self
            .ctx
            .execute_activity(
                StageActivities::keyframe_model,
                call,
                self.options("keyframe_model"),
            )
            .await
            .map_err(status_of)?;
        let response: common::GetModelResponse = decode(reply)?;
        response
            .model
            .map(Into::into)
            .ok_or_else(|| Status::internal("the keyframe stage answered GetModel without a model"))
    }
}

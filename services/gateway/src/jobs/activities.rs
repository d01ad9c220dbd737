//! The activities of a job's workflow: each is one call to a stage service over gRPC
//! (or the assembly, or the job's bookkeeping), run by whichever gateway replica polls
//! it. While a call runs, the activity heartbeats (so a replica that dies is noticed
//! within the heartbeat timeout and the call moves to another), writes the stage's
//! progress to the job's event stream, and stops the call as soon as Temporal says the
//! job was cancelled (dropping the call cancels the gRPC stream, and the stage stops at
//! its next step).
//!
//! Failures keep their gRPC code in the failure's type (`grpc-<code>`); only UNAVAILABLE
//! and DEADLINE_EXCEEDED are retried, with backoff. Every other code is the stage's
//! answer (bad input, missing tensor) and retrying it would repeat the same failure.

use super::{
    clients::{Intercepted, StageClients},
    wire::{ArtifactView, AssembleCall, FinishCall, Proto, StageCall, StageReply},
};
use crate::{artifacts::ArtifactStore, events::EventLog, quota::Quota, routing::Router};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::{future::Future, sync::Arc, time::Duration};
use storyreel_pipeline::{
    JobOutput, PipelineError,
    assemble::{AssemblySettings, assemble},
    report::Report,
    streams::{Piece, Streamed},
};
use storyreel_proto::{
    common::{self, Stage, model_service_client::ModelServiceClient},
    decoder,
    decoder::decoder_service_client::DecoderServiceClient,
    gateway::{self, JobState, StageState, job_event::Payload},
    interpolation,
    interpolation::interpolation_service_client::InterpolationServiceClient,
    keyframe,
    keyframe::keyframe_service_client::KeyframeServiceClient,
    prompt_rewriter,
    prompt_rewriter::prompt_rewriter_service_client::PromptRewriterServiceClient,
    retrieval,
    retrieval::retrieval_service_client::RetrievalServiceClient,
    story_llm::{self, story_llm_service_client::StoryLlmServiceClient},
    tts,
    tts::tts_service_client::TtsServiceClient,
};
use storyreel_runtime::HasErrorCode;
use storyreel_tensors::TensorStore;
use temporalio_macros::activities;
use temporalio_sdk::{
    ApplicationFailure,
    activities::{ActivityContext, ActivityError},
};
use tonic::{Code, Status};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// What the activities share on one replica.
pub struct StageActivities {
    pub clients: StageClients,
    pub events: EventLog,
    pub quota: Quota,
    pub artifacts: ArtifactStore,
    pub store: Arc<dyn TensorStore>,
    pub assembly: AssemblySettings,
    /// How often a running call heartbeats (the SDK sends at most one per throttle
    /// interval).
    pub heartbeat_every: Duration,
    /// The endpoint groups and the versions they serve (metric labels).
    pub router: Router,
    /// The latest progress of each running call, for its heartbeats.
    pub running: std::sync::Mutex<std::collections::HashMap<String, (u32, u32)>>,
}

/// What a stage call's heartbeat carries: where the call is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Beat {
    pub attempt: u32,
    pub step: String,
    pub scene: Option<u32>,
    /// `done` of `total` units (tokens, steps, frames) so far.
    pub done: u32,
    pub total: u32,
}

fn call_key(call: &StageCall) -> String {
    format!("{}/{}/{:?}", call.job_id, call.step, call.scene)
}

/// The failure type of a gRPC code, and back.
pub fn failure_type(code: Code) -> String {
    format!("grpc-{}", code as i32)
}

/// The code a failed call counts as. A status the stage sent has no source error; one
/// with a source was made here from a broken connection (the stage's process died
/// mid-call, a proxy reset the stream): the stage was unavailable, so it is retried.
fn effective_code(status: &Status) -> Code {
    match status.code() {
        Code::Unknown | Code::Internal if std::error::Error::source(status).is_some() => Code::Unavailable,
        code => code,
    }
}

fn failed(status: Status) -> ActivityError {
    let code = effective_code(&status);
    let message = match (status.message(), std::error::Error::source(&status)) {
        ("", Some(source)) => source.to_string(),
        ("", None) => format!("the stage answered {code:?} without a message"),
        (message, _) => message.to_string(),
    };
    let status = Status::new(code, message);
    let retry = matches!(code, Code::Unavailable | Code::DeadlineExceeded);
    let message: Box<dyn std::error::Error + Send + Sync> = status.message().to_string().into();
    ActivityError::application(
        ApplicationFailure::builder(message)
            .type_name(failure_type(status.code()))
            .non_retryable(!retry)
            .build(),
    )
}

fn internal(what: impl std::fmt::Display) -> ActivityError {
    failed(Status::internal(what.to_string()))
}

/// The API's stage of a DAG step name.
pub fn stage_of(step: &str) -> Stage {
    match step {
        "story" => Stage::Story,
        "prompt" => Stage::Prompt,
        "keywords" => Stage::Keywords,
        "retrieval" | "reference_frames" => Stage::Retrieval,
        "reference_encode" => Stage::ReferenceEncode,
        "keyframe" => Stage::Keyframe,
        "interpolation" => Stage::Interpolation,
        "decode" => Stage::Decode,
        "upsample" => Stage::Upsample,
        "narration" => Stage::Tts,
        _ => Stage::Mux,
    }
}

impl StageActivities {
    async fn event(&self, job_id: &str, payload: Payload) {
        if let Err(e) = self.events.append(job_id, payload).await {
            // Events are for watchers; the job goes on without one.
            tracing::warn!(job_id, error = %e, "could not append a job event");
        }
    }

    async fn stage_event(&self, call: &StageCall, state: StageState, attempt: u32) {
        let status = gateway::StageStatus {
            stage: stage_of(&call.step) as i32,
            scene_index: call.scene,
            state: state as i32,
            endpoint_group: call.group.clone(),
            attempts: attempt,
            ..Default::default()
        };
        self.event(&call.job_id, Payload::Stage(status)).await;
    }

    async fn progress(&self, call: &StageCall, mut progress: common::Progress) {
        if let Ok(mut running) = self.running.lock() {
            running.insert(call_key(call), (progress.step, progress.total_steps));
        }
        progress.stage = stage_of(&call.step) as i32;
        progress.scene_index = call.scene;
        self.event(&call.job_id, Payload::Progress(progress)).await;
    }

    /// A keyframe preview to the job's events as a small PNG (a viewer shows it as it
    /// is); a preview that cannot be read is skipped, the call goes on.
    async fn preview(&self, call: &StageCall, preview: storyreel_proto::keyframe::Preview) {
        let Some(reference) = preview
            .image
            .as_ref()
            .and_then(|w| storyreel_runtime::tensor_ref::from_wire("preview.image", w).ok())
        else {
            return;
        };
        let png = match self
            .store
            .get(&reference)
            .await
            .map(|t| crate::images::first_frame_png(&t))
        {
            Ok(Ok(png)) => png,
            Ok(Err(e)) => return tracing::warn!(error = %e, "a keyframe preview"),
            Err(e) => return tracing::warn!(error = %e, "a keyframe preview"),
        };
        let event = storyreel_proto::gateway::KeyframePreview {
            scene_index: call.scene.unwrap_or(0),
            step: preview.step,
            png,
        };
        self.event(&call.job_id, Payload::KeyframePreview(event)).await;
    }

    /// Runs `work` for `call`: stage events before and after, heartbeats while it runs,
    /// the trace of the job as its parent, and Temporal's cancellation stopping it.
    async fn run<T>(
        &self,
        ctx: &ActivityContext,
        call: &StageCall,
        work: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, ActivityError> {
        let attempt = ctx.info().attempt;
        // Choosing the backend is not a stage of the job.
        let announce = call.step != "keyframe_model";
        if announce {
            self.stage_event(call, StageState::Running, attempt).await;
        }
        let span = tracing::info_span!(
            "stage_call",
            job_id = %call.job_id,
            stage = %call.stage,
            step = %call.step,
            scene = ?call.scene,
            group = %call.group,
            attempt
        );
        let _ = span.set_parent(storyreel_runtime::propagation::parent_from_map(&call.trace));
        let heartbeat = async {
            loop {
                let (done, total) = self
                    .running
                    .lock()
                    .ok()
                    .and_then(|r| r.get(&call_key(call)).copied())
                    .unwrap_or_default();
                let beat = Beat {
                    attempt,
                    step: call.step.clone(),
                    scene: call.scene,
                    done,
                    total,
                };
                let _ = ctx.record_heartbeat(beat).await;
                tokio::time::sleep(self.heartbeat_every).await;
            }
        };
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            result = work.instrument(span) => result.map_err(|status| {
                tracing::warn!(
                    job_id = %call.job_id,
                    step = %call.step,
                    scene = ?call.scene,
                    group = %call.group,
                    attempt,
                    code = ?status.code(),
                    message = status.message(),
                    source = ?std::error::Error::source(&status),
                    "stage call failed"
                );
                (effective_code(&status), failed(status))
            }),
            () = ctx.cancelled() => Err((Code::Cancelled, ActivityError::cancelled())),
            () = heartbeat => unreachable!("the heartbeat loop does not end"),
        };
        if let Ok(mut running) = self.running.lock() {
            running.remove(&call_key(call));
        }
        let state = match &outcome {
            Ok(_) => StageState::Succeeded,
            Err((Code::Cancelled, _)) => StageState::Cancelled,
            // Retried: the stage stays running in the job's view.
            Err((Code::Unavailable | Code::DeadlineExceeded, _)) => StageState::Running,
            Err(_) => StageState::Failed,
        };
        if announce && state != StageState::Running {
            self.stage_event(call, state, attempt).await;
        }
        self.record(call, &outcome, started.elapsed());
        outcome.map_err(|(_, e)| e)
    }

    /// Per stage, endpoint group and model version: call latency and outcome
    /// (Prometheus, on the gateway's metrics endpoint), so that a canary can be judged
    /// beside the stable group.
    fn record<T>(&self, call: &StageCall, outcome: &Result<T, (Code, ActivityError)>, took: Duration) {
        let version = match self.router.version(&call.stage, &call.group) {
            v if v.is_empty() => call.group.clone(),
            v => v,
        };
        let code = match outcome {
            Ok(_) => "OK".to_string(),
            Err((code, _)) => format!("{code:?}"),
        };
        let labels = [
            ("stage", call.stage.clone()),
            ("step", call.step.clone()),
            ("group", call.group.clone()),
            ("version", version),
        ];
        metrics::histogram!("storyreel_gateway_stage_call_seconds", &labels).record(took.as_secs_f64());
        let mut counted = labels.to_vec();
        counted.push(("code", code));
        metrics::counter!("storyreel_gateway_stage_calls_total", &counted).increment(1);
    }

    fn channel(&self, call: &StageCall) -> Result<Intercepted, Status> {
        self.clients.get(&call.stage, &call.group)
    }

    async fn unary<Req, Resp, F, Fut>(
        &self,
        ctx: &ActivityContext,
        call: StageCall,
        send: F,
    ) -> Result<StageReply, ActivityError>
    where
        Req: prost::Message + Default,
        Resp: prost::Message,
        F: FnOnce(Intercepted, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, Status>>,
    {
        let request: Req = call.request.decode().map_err(internal)?;
        let work = async {
            let response = send(self.channel(&call)?, request).await?;
            Ok(Proto::of(response.get_ref()))
        };
        let response = self.run(ctx, &call, work).await?;
        Ok(StageReply {
            response,
            attempt: ctx.info().attempt,
        })
    }

    /// A streamed call: progress to the job's events, the result message back.
    async fn streamed<Req, Resp, S, F, Fut>(
        &self,
        ctx: &ActivityContext,
        call: StageCall,
        send: F,
    ) -> Result<StageReply, ActivityError>
    where
        Req: prost::Message + Default,
        Resp: Streamed + prost::Message + Clone,
        S: Stream<Item = Result<Resp, Status>> + Unpin,
        F: FnOnce(Intercepted, Req) -> Fut,
        Fut: Future<Output = Result<tonic::Response<S>, Status>>,
    {
        let request: Req = call.request.decode().map_err(internal)?;
        let work = async {
            let mut events = send(self.channel(&call)?, request).await?.into_inner();
            while let Some(message) = events.next().await {
                let message = message?;
                match message.clone().piece() {
                    Piece::Progress(p) => self.progress(&call, p).await,
                    Piece::Preview(p) => self.preview(&call, p).await,
                    Piece::Result(_) => return Ok(Proto::of(&message)),
                    Piece::Empty => {}
                }
            }
            Err(Status::internal(format!(
                "the {} stream ended without a result",
                call.step
            )))
        };
        let response = self.run(ctx, &call, work).await?;
        Ok(StageReply {
            response,
            attempt: ctx.info().attempt,
        })
    }
}

impl StageActivities {
    /// The pipeline's report with the endpoint group (and its version) each stage was
    /// routed to.
    fn report(&self, input: &super::wire::JobInput, report: Vec<u8>) -> Vec<u8> {
        let Ok(serde_json::Value::Object(mut json)) = serde_json::from_slice(&report) else {
            return report;
        };
        let routes: serde_json::Map<String, serde_json::Value> = input
            .routes
            .iter()
            .map(|(stage, group)| {
                let route = serde_json::json!({"group": group, "version": self.router.version(stage, group)});
                (stage.clone(), route)
            })
            .collect();
        json.insert("endpoint_groups".into(), serde_json::Value::Object(routes));
        serde_json::to_vec_pretty(&json).unwrap_or(report)
    }
}

#[activities]
impl StageActivities {
    /// story-llm GenerateStream: each finished scene as progress, the result back.
    #[activity]
    pub async fn story(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        let request: story_llm::GenerateStreamRequest = call.request.decode().map_err(internal)?;
        let total = request.n_scenes.unwrap_or(0);
        let work = async {
            let mut client = StoryLlmServiceClient::new(self.channel(&call)?);
            let mut events = client.generate_stream(request).await?.into_inner();
            use story_llm::generate_stream_response::Event as E;
            while let Some(message) = events.next().await {
                let message = message?;
                match &message.event {
                    Some(E::Scene(scene)) => {
                        if let Some(scene) = &scene.scene {
                            let progress = common::Progress {
                                step: scene.index + 1,
                                total_steps: total,
                                message: scene.text.clone(),
                                ..Default::default()
                            };
                            self.progress(&call, progress).await;
                        }
                    }
                    Some(E::Result(_)) => return Ok(Proto::of(&message)),
                    _ => {}
                }
            }
            Err(Status::internal("the story stream ended without a result"))
        };
        let response = self.run(&ctx, &call, work).await?;
        Ok(StageReply {
            response,
            attempt: ctx.info().attempt,
        })
    }

    #[activity]
    pub async fn rewrite(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.unary(
            &ctx,
            call,
            |ch, req: prompt_rewriter::RewriteRequest| async move {
                PromptRewriterServiceClient::new(ch).rewrite(req).await
            },
        )
        .await
    }

    #[activity]
    pub async fn keywords(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.unary(
            &ctx,
            call,
            |ch, req: prompt_rewriter::KeywordsRequest| async move {
                PromptRewriterServiceClient::new(ch).keywords(req).await
            },
        )
        .await
    }

    #[activity]
    pub async fn search(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.unary(&ctx, call, |ch, req: retrieval::SearchRequest| async move {
            RetrievalServiceClient::new(ch).search(req).await
        })
        .await
    }

    #[activity]
    pub async fn encode(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.unary(&ctx, call, |ch, req: decoder::EncodeRequest| async move {
            DecoderServiceClient::new(ch).encode(req).await
        })
        .await
    }

    #[activity]
    pub async fn synthesize(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.unary(&ctx, call, |ch, req: tts::SynthesizeRequest| async move {
            TtsServiceClient::new(ch).synthesize(req).await
        })
        .await
    }

    #[activity]
    pub async fn keyframe(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.streamed(&ctx, call, |ch, req: keyframe::GenerateRequest| async move {
            KeyframeServiceClient::new(ch).generate(req).await
        })
        .await
    }

    #[activity]
    pub async fn interpolate(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.streamed(
            &ctx,
            call,
            |ch, req: interpolation::InterpolateRequest| async move {
                InterpolationServiceClient::new(ch).interpolate(req).await
            },
        )
        .await
    }

    #[activity]
    pub async fn decode(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.streamed(&ctx, call, |ch, req: decoder::DecodeRequest| async move {
            DecoderServiceClient::new(ch).decode(req).await
        })
        .await
    }

    #[activity]
    pub async fn upsample(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.streamed(&ctx, call, |ch, req: decoder::UpsampleRequest| async move {
            DecoderServiceClient::new(ch).upsample(req).await
        })
        .await
    }

    /// The keyframe stage's model (the `auto` backend chooses by it).
    #[activity]
    pub async fn keyframe_model(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: StageCall,
    ) -> Result<StageReply, ActivityError> {
        self.unary(&ctx, call, |ch, req: common::GetModelRequest| async move {
            ModelServiceClient::new(ch).get_model(req).await
        })
        .await
    }

    /// The job started running: its first event after the queue.
    #[activity]
    pub async fn begin(self: Arc<Self>, _ctx: ActivityContext, job_id: String) -> Result<(), ActivityError> {
        let change = gateway::JobStateChange {
            state: JobState::Running as i32,
            error: None,
        };
        self.event(&job_id, Payload::StateChange(change)).await;
        Ok(())
    }

    /// The MP4, the .srt and the report, written here and put into the artifact store.
    #[activity]
    pub async fn assemble(
        self: Arc<Self>,
        ctx: ActivityContext,
        call: AssembleCall,
    ) -> Result<Vec<ArtifactView>, ActivityError> {
        let spec = &call.input.spec;
        let output: JobOutput = serde_json::from_str(&call.output).map_err(internal)?;
        let work = tempfile::tempdir().map_err(internal)?;
        let settings = AssemblySettings {
            out_dir: work.path().to_path_buf(),
            ..self.assembly.clone()
        };
        let stage_call = StageCall {
            job_id: spec.job_id.clone(),
            stage: "gateway".into(),
            group: String::new(),
            step: "assembly".into(),
            scene: None,
            request: Proto::default(),
            trace: call.input.trace.clone(),
        };
        let store = self.store.clone();
        let files = async {
            // A store that is away (Redis restarting) is UNAVAILABLE, and retried.
            let status = |e: PipelineError| Status::new(e.error_code().grpc_code(), e.to_string());
            let staged = assemble(spec, &output, store, &settings).await.map_err(status)?;
            let total_s = (now_ms() - call.input.create_time_ms).max(0) as f64 / 1000.0;
            let report = self.report(
                &call.input,
                Report::new(spec, &output, &staged.stats, total_s).to_json(),
            );
            staged.commit(&report).await.map_err(status)
        };
        let files = self.run(&ctx, &stage_call, files).await?;
        let mut artifacts = Vec::new();
        for (name, content_type, path) in [
            ("video.mp4", "video/mp4", &files.video),
            ("subtitles.srt", "application/x-subrip", &files.subtitles),
            ("job.json", "application/json", &files.report),
        ] {
            let bytes = Bytes::from(tokio::fs::read(path).await.map_err(internal)?);
            let view = ArtifactView {
                name: name.into(),
                content_type: content_type.into(),
                size_bytes: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(&bytes)),
                create_time_ms: now_ms(),
            };
            self.artifacts
                .put(&spec.job_id, name, bytes)
                .await
                .map_err(|e| failed(Status::unavailable(e.to_string())))?;
            self.event(&spec.job_id, Payload::Artifact(super::view::artifact(&view)))
                .await;
            artifacts.push(view);
        }
        Ok(artifacts)
    }

    /// The job ended: its terminal event, and its quota slot back.
    #[activity]
    pub async fn finish(
        self: Arc<Self>,
        _ctx: ActivityContext,
        call: FinishCall,
    ) -> Result<(), ActivityError> {
        // The slot first: a client that starts its next job on seeing this one end
        // must find it free.
        self.quota
            .release(&call.owner, &call.job_id)
            .await
            .map_err(|e| failed(Status::unavailable(e.to_string())))?;
        let change = gateway::JobStateChange {
            state: call.state,
            error: call.error.as_ref().map(super::view::error),
        };
        self.event(&call.job_id, Payload::StateChange(change)).await;
        Ok(())
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_counts_as_unavailable_and_a_stage_answer_keeps_its_code() {
        let broken = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset",
        )));
        assert_eq!(effective_code(&broken), Code::Unavailable);
        assert_eq!(effective_code(&Status::internal("a bug")), Code::Internal);
        assert_eq!(
            effective_code(&Status::invalid_argument("`steps`")),
            Code::InvalidArgument
        );
        assert_eq!(failure_type(Code::Unavailable), "grpc-14");
    }
}

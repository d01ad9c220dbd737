//! A job is one workflow, its id the job id: the DAG of the pipeline (the same code the
//! embedded mode runs) on an [`ActivityExecutor`], then the assembly, then the job's
//! end (its terminal event and its quota slot). Everything it decides comes from its
//! input and its activities' results, never from a clock or a random number of its own,
//! so a replica that replays its history after another died takes it up exactly where
//! it was. Its state answers the `view` query (GetJob); its search attributes (owner,
//! state, labels) answer ListJobs.

use super::{
    activities::{StageActivities, stage_of},
    executor::ActivityExecutor,
    wire::{ArtifactView, AssembleCall, ErrorView, FinishCall, JobInput, JobView, StageView},
};
use std::time::Duration;
use storyreel_pipeline::{
    PipelineError,
    progress::{Event, ProgressSink},
};
use storyreel_proto::{
    common::Stage,
    gateway::{ErrorReason, JobState, StageState},
};
use temporalio_common::search_attributes::SearchAttributeKey;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityOptions, WorkflowCancellationToken, WorkflowContext, WorkflowContextView, WorkflowResult,
    WorkflowTermination,
};
use tonic::Code;

/// SHA-256 of the API key that owns the job.
pub const OWNER: SearchAttributeKey<String> = SearchAttributeKey::keyword("StoryreelOwner");
/// The job's state, as the API names it (`RUNNING`).
pub const STATE: SearchAttributeKey<String> = SearchAttributeKey::keyword("StoryreelState");
/// The job's labels as `key=value`.
pub const LABELS: SearchAttributeKey<Vec<String>> = SearchAttributeKey::keyword_list("StoryreelLabels");
/// The search attributes a namespace needs (`temporal operator search-attribute create`).
pub const SEARCH_ATTRIBUTES: [(&str, &str); 3] = [
    ("StoryreelOwner", "Keyword"),
    ("StoryreelState", "Keyword"),
    ("StoryreelLabels", "KeywordList"),
];

/// The API's name of a state, as the `StoryreelState` attribute holds it.
pub fn state_name(state: JobState) -> String {
    state.as_str_name().trim_start_matches("JOB_STATE_").to_string()
}

#[workflow]
#[derive(Default)]
pub struct VideoWorkflow {
    view: JobView,
}

/// Records the DAG's events into the workflow's view (replayed with it).
struct ViewSink<W: 'static> {
    ctx: WorkflowContext<W>,
}

impl ProgressSink for ViewSink<VideoWorkflow> {
    fn emit(&self, event: Event) {
        self.ctx.state_mut(|w| w.view.record(event));
    }
}

impl JobView {
    fn stage_mut(&mut self, stage: Stage, scene: Option<u32>) -> &mut StageView {
        let at = self
            .stages
            .iter()
            .position(|s| s.stage == stage as i32 && s.scene == scene)
            .unwrap_or_else(|| {
                let group = self
                    .input
                    .as_ref()
                    .and_then(|i| i.routes.get(super::executor::service_of_stage(stage)).cloned())
                    .unwrap_or_default();
                self.stages.push(StageView {
                    stage: stage as i32,
                    scene,
                    state: StageState::Pending as i32,
                    group,
                    attempts: 0,
                    cache_hit: false,
                    done: 0,
                    total: 0,
                });
                self.stages.len() - 1
            });
        &mut self.stages[at]
    }

    fn record(&mut self, event: Event) {
        match event {
            Event::Backend { backend, .. } => self.backend = format!("{backend:?}").to_lowercase(),
            Event::Started { step, scene } => {
                let stage = self.stage_mut(stage_of(step.as_str()), scene);
                stage.state = StageState::Running as i32;
                stage.attempts += 1;
            }
            Event::Progress {
                step,
                scene,
                done,
                total,
            } => {
                let stage = self.stage_mut(stage_of(step.as_str()), scene);
                stage.done = done;
                stage.total = total;
            }
            Event::Finished {
                step,
                scene,
                cache_hit,
                ..
            } => {
                let stage = self.stage_mut(stage_of(step.as_str()), scene);
                stage.state = StageState::Succeeded as i32;
                stage.cache_hit = cache_hit;
            }
            Event::SceneText { scene, text } => {
                let at = scene as usize;
                if self.story.len() <= at {
                    self.story.resize(at + 1, String::new());
                }
                self.story[at] = text;
            }
            Event::Preview { .. } => {}
        }
    }

    /// Running stages end as `state` (the job failed or was cancelled).
    fn stop_running(&mut self, state: StageState) {
        for stage in &mut self.stages {
            if stage.state == StageState::Running as i32 || stage.state == StageState::Pending as i32 {
                stage.state = state as i32;
            }
        }
    }
}

/// A pipeline failure as the API reports it.
fn error_view(error: &PipelineError) -> ErrorView {
    let (code, stage, scene) = match error {
        PipelineError::Stage { step, scene, status } => {
            (status.code(), stage_of(step.as_str()) as i32, *scene)
        }
        PipelineError::Spec(_) => (Code::InvalidArgument, Stage::Unspecified as i32, None),
        PipelineError::Assembly(_) => (Code::Internal, Stage::Mux as i32, None),
        PipelineError::NoReference { .. } => (Code::NotFound, Stage::Retrieval as i32, None),
        PipelineError::Answer { step, .. } => (Code::Internal, stage_of(step.as_str()) as i32, None),
        PipelineError::Store { .. } => (Code::FailedPrecondition, Stage::Unspecified as i32, None),
    };
    let reason = match code {
        Code::InvalidArgument => ErrorReason::Validation,
        Code::ResourceExhausted => ErrorReason::Overload,
        Code::Unavailable => ErrorReason::Unavailable,
        Code::DeadlineExceeded => ErrorReason::Timeout,
        Code::FailedPrecondition => ErrorReason::MissingTensor,
        Code::Internal | Code::Unknown => ErrorReason::Internal,
        _ => ErrorReason::Model,
    };
    ErrorView {
        reason: reason as i32,
        grpc_code: code as i32,
        message: error.to_string(),
        stage,
        scene,
    }
}

impl VideoWorkflow {
    fn set_state(ctx: &WorkflowContext<Self>, state: JobState) {
        ctx.state_mut(|w| w.view.state = state as i32);
        ctx.upsert_search_attributes([STATE.value_set(state_name(state))]);
    }

    /// The job's bookkeeping activities run even after a cancellation.
    fn bookkeeping() -> ActivityOptions {
        ActivityOptions::with_start_to_close_timeout(Duration::from_secs(60))
            .cancellation_token(WorkflowCancellationToken::new())
            .build()
    }

    async fn pipeline(
        ctx: &WorkflowContext<Self>,
        input: &JobInput,
    ) -> Result<Vec<ArtifactView>, PipelineError> {
        let executor = ActivityExecutor {
            ctx: ctx.clone(),
            input: input.clone(),
        };
        let sink = ViewSink { ctx: ctx.clone() };
        let output = storyreel_pipeline::run(&input.spec, &input.settings, &executor, &sink).await?;
        let call = AssembleCall {
            input: input.clone(),
            output: serde_json::to_string(&output).map_err(|e| PipelineError::Assembly(e.to_string()))?,
        };
        sink.emit(Event::Started {
            step: storyreel_pipeline::progress::Step::Assembly,
            scene: None,
        });
        let options =
            ActivityOptions::with_start_to_close_timeout(Duration::from_secs(input.calls.stage_timeout_s))
                .heartbeat_timeout(Duration::from_millis(input.calls.heartbeat_timeout_ms))
                .build();
        let artifacts = ctx
            .execute_activity(StageActivities::assemble, call, options)
            .await
            .map_err(|e| PipelineError::Assembly(super::executor::status_of(e).message().to_string()))?;
        sink.emit(Event::Finished {
            step: storyreel_pipeline::progress::Step::Assembly,
            scene: None,
            cache_hit: false,
            seconds: 0.0,
        });
        Ok(artifacts)
    }
}

#[workflow_methods]
impl VideoWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: JobInput) -> WorkflowResult<JobView> {
        ctx.state_mut(|w| w.view.input = Some(input.clone()));
        Self::set_state(ctx, JobState::Running);
        let job_id = input.spec.job_id.clone();
        // A failed begin event is not worth failing the job for.
        let _ = ctx
            .execute_activity(StageActivities::begin, job_id.clone(), Self::bookkeeping())
            .await;
        let outcome = Self::pipeline(ctx, &input).await;
        let cancelled = ctx.cancellation_token().is_cancelled();
        let (state, error) = match outcome {
            Ok(artifacts) => {
                ctx.state_mut(|w| w.view.artifacts = artifacts);
                (JobState::Succeeded, None)
            }
            Err(_) if cancelled => (JobState::Cancelled, None),
            Err(e) => (JobState::Failed, Some(error_view(&e))),
        };
        ctx.state_mut(|w| {
            w.view.error = error.clone();
            match state {
                JobState::Cancelled => w.view.stop_running(StageState::Cancelled),
                JobState::Failed => w.view.stop_running(StageState::Failed),
                _ => {}
            }
        });
        Self::set_state(ctx, state);
        let finish = FinishCall {
            job_id,
            owner: input.owner.clone(),
            state: state as i32,
            error,
        };
        let _ = ctx
            .execute_activity(StageActivities::finish, finish, Self::bookkeeping())
            .await;
        if cancelled {
            return Err(WorkflowTermination::cancelled());
        }
        Ok(ctx.state(|w| w.view.clone()))
    }

    /// The job as the workflow sees it (GetJob).
    #[query]
    pub fn view(&self, _ctx: &WorkflowContextView) -> JobView {
        self.view.clone()
    }

    /// CancelJob: marks the request; Temporal's cancellation stops the stages.
    #[signal]
    pub fn cancel_requested(
        &mut self,
        _ctx: &mut temporalio_sdk::SyncWorkflowContext<Self>,
        _reason: String,
    ) {
        self.view.cancel_requested = true;
    }
}

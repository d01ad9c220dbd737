//! The API's `Job` of a workflow: Temporal's status and times, the workflow's view.

use super::wire::{ArtifactView, ErrorView, JobView};
use prost_types::Timestamp;
use std::time::SystemTime;
use storyreel_proto::{
    common,
    gateway::{self, JobState},
};
use temporalio_client::WorkflowExecutionStatus;

pub fn timestamp_ms(ms: i64) -> Timestamp {
    Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn timestamp(time: SystemTime) -> Timestamp {
    let ms = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    timestamp_ms(ms)
}

pub fn artifact(a: &ArtifactView) -> gateway::Artifact {
    gateway::Artifact {
        name: a.name.clone(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        sha256: a.sha256.clone(),
        create_time: Some(timestamp_ms(a.create_time_ms)),
    }
}

pub fn error(e: &ErrorView) -> gateway::JobError {
    gateway::JobError {
        reason: e.reason,
        grpc_code: e.grpc_code,
        message: e.message.clone(),
        stage: e.stage,
        scene_index: e.scene,
    }
}

/// Temporal's status says the last word on how a job ended (a timed-out or terminated
/// workflow ran no code to say so itself).
pub fn state_of(status: WorkflowExecutionStatus, view_state: i32) -> JobState {
    match status {
        WorkflowExecutionStatus::Running => match JobState::try_from(view_state) {
            Ok(JobState::Unspecified) | Err(_) => JobState::Queued,
            Ok(state) => state,
        },
        WorkflowExecutionStatus::Completed => match JobState::try_from(view_state) {
            Ok(JobState::Failed) => JobState::Failed,
            _ => JobState::Succeeded,
        },
        WorkflowExecutionStatus::Canceled | WorkflowExecutionStatus::TimedOut => JobState::Cancelled,
        _ => JobState::Failed,
    }
}

/// What GetJob needs of Temporal's description of the workflow.
pub struct Execution {
    pub status: WorkflowExecutionStatus,
    pub start_time: Option<SystemTime>,
    pub close_time: Option<SystemTime>,
}

/// The job of `view` (its input included) as the API shows it; `with_stages` false for
/// ListJobs.
pub fn job(view: &JobView, execution: &Execution, with_stages: bool) -> gateway::Job {
    let state = state_of(execution.status, view.state);
    let input = view.input.as_ref();
    let done = view
        .stages
        .iter()
        .filter(|s| s.state == gateway::StageState::Succeeded as i32)
        .count();
    let progress = if state == JobState::Succeeded {
        1.0
    } else if view.stages.is_empty() {
        0.0
    } else {
        // The stages of a job are not known before its story; an estimate is enough.
        let scenes = input.map(|i| i.spec.n_scenes).unwrap_or(1) as usize;
        (done as f32 / (3 + 6 * scenes) as f32).min(0.99)
    };
    let mut error = view.error.as_ref().map(error);
    if error.is_none() && state == JobState::Failed {
        error = Some(gateway::JobError {
            reason: gateway::ErrorReason::Internal as i32,
            grpc_code: tonic::Code::Internal as i32,
            message: format!("the job's workflow ended as {:?}", execution.status),
            ..Default::default()
        });
    }
    gateway::Job {
        id: input.map(|i| i.spec.job_id.clone()).unwrap_or_default(),
        state: state as i32,
        spec: input.and_then(|i| i.video.decode().ok()),
        // Without the input (a list reads visibility only), the workflow's start: it
        // starts when the job is created.
        create_time: input
            .map(|i| timestamp_ms(i.create_time_ms))
            .or(execution.start_time.map(timestamp)),
        update_time: execution.close_time.or(execution.start_time).map(timestamp),
        start_time: execution.start_time.map(timestamp),
        end_time: execution.close_time.map(timestamp),
        deadline: input.map(|i| timestamp_ms(i.deadline_ms)),
        stages: if with_stages {
            view.stages
                .iter()
                .map(|s| gateway::StageStatus {
                    stage: s.stage,
                    scene_index: s.scene,
                    state: s.state,
                    progress: (s.total > 0).then(|| common::Progress {
                        stage: s.stage,
                        step: s.done,
                        total_steps: s.total,
                        fraction: s.done as f32 / s.total as f32,
                        scene_index: s.scene,
                        ..Default::default()
                    }),
                    endpoint_group: s.group.clone(),
                    attempts: s.attempts,
                    cache_hit: s.cache_hit,
                    ..Default::default()
                })
                .collect()
        } else {
            Vec::new()
        },
        progress,
        error,
        artifacts: view.artifacts.iter().map(artifact).collect(),
        story: view
            .story
            .iter()
            .enumerate()
            .map(|(i, text)| common::Scene {
                index: i as u32,
                text: text.clone(),
            })
            .collect(),
        labels: input
            .map(|i| i.labels.clone().into_iter().collect())
            .unwrap_or_default(),
        idempotency_key: input.map(|i| i.idempotency_key.clone()).unwrap_or_default(),
        cancel_requested: view.cancel_requested || execution.status == WorkflowExecutionStatus::Canceled,
    }
}

pub fn is_terminal(state: JobState) -> bool {
    matches!(
        state,
        JobState::Succeeded | JobState::Failed | JobState::Cancelled
    )
}

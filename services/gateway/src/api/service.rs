//! The gateway API as a plain Rust service (no tonic types): create, get, cancel, list
//! and watch jobs, and read artifacts, for an authenticated [`Caller`]. Jobs are
//! Temporal workflows ([`crate::jobs`]); a caller's jobs are those whose `StoryreelOwner`
//! attribute is its key's digest, and another key's job is NOT_FOUND, never FORBIDDEN (a
//! job id says nothing about who owns it).

use super::{auth::Caller, video_spec};
use crate::{
    artifacts::{ArtifactError, ArtifactStore, check_job_id},
    config::PipelineConfig,
    events::{EventLog, EventsError},
    gateway_config::GatewayConfig,
    jobs::clients::StageClients,
    jobs::{
        activities::now_ms,
        view::{self, Execution},
        wire::{CallSettings, JobInput, JobView, Proto},
        workflow::{LABELS, OWNER, STATE, VideoWorkflow, state_name},
    },
    quota::{Quota, QuotaError},
    routing::Router,
};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use std::{collections::BTreeMap, sync::Arc, time::Duration};
use storyreel_pipeline::Settings;
use storyreel_proto::gateway::{
    Artifact, CancelJobRequest, CreateVideoRequest, CreateVideoResponse, GetJobRequest, Job, JobState,
    ListJobsRequest, ListJobsResponse,
};
use storyreel_runtime::ValidationError;
use storyreel_tensors::TensorStore;
use temporalio_client::{
    Client, WorkflowCancelOptions, WorkflowDescribeOptions, WorkflowExecutionStatus,
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy, WorkflowListOptions, WorkflowQueryOptions,
    WorkflowSignalOptions, WorkflowStartOptions,
};
use temporalio_common::search_attributes::SearchAttributes;

/// A failed API call; one code each (see the gRPC adapter's table).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("job `{0}` not found")]
    NotFound(String),
    #[error("job `{job_id}` has no artifact `{name}`")]
    NoArtifact { job_id: String, name: String },
    #[error("{0}")]
    AlreadyExists(String),
    #[error(transparent)]
    Quota(QuotaError),
    #[error("{0}")]
    OutOfRange(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    /// A stage's own answer (e.g. ABORTED: the model wrote no usable text), passed on.
    #[error("{}", .0.message())]
    Stage(tonic::Status),
}

impl From<crate::api::auth::AuthError> for ApiError {
    fn from(e: crate::api::auth::AuthError) -> Self {
        ApiError::Unauthenticated(e.to_string())
    }
}

impl From<QuotaError> for ApiError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::Redis(e) => ApiError::Unavailable(format!("the job quota in redis: {e}")),
            other => ApiError::Quota(other),
        }
    }
}

impl From<ArtifactError> for ApiError {
    fn from(e: ArtifactError) -> Self {
        match e {
            ArtifactError::BadName { field, .. } => {
                ApiError::Invalid(ValidationError::new(field, e.to_string()))
            }
            ArtifactError::NotFound(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

impl From<EventsError> for ApiError {
    fn from(e: EventsError) -> Self {
        match e {
            EventsError::BadCursor(_) => {
                ApiError::Invalid(ValidationError::new("resume_after", e.to_string()))
            }
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

fn temporal(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!("{what} on the Temporal cluster: {e}"))
}

/// Labels: at most 16, keys 1-63 and values 0-63 characters of `[a-z0-9_-]`.
fn check_labels(
    field: &str,
    labels: &std::collections::HashMap<String, String>,
) -> Result<(), ValidationError> {
    if labels.len() > 16 {
        return Err(ValidationError::new(
            field,
            format!("at most 16 labels, got {}", labels.len()),
        ));
    }
    let ok = |s: &str, min: usize| {
        s.len() >= min
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
    };
    for (k, v) in labels {
        if !ok(k, 1) || !ok(v, 0) {
            return Err(ValidationError::new(
                field,
                format!("keys must be 1-63 and values 0-63 characters of [a-z0-9_-], got `{k}={v}`"),
            ));
        }
    }
    Ok(())
}

/// The job id of an idempotency key: the same for every repeat of the key by its owner
/// (the workflow id, so Temporal itself refuses a second job), distinct across owners.
pub fn idempotent_job_id(owner: &str, idempotency_key: &str) -> String {
    let digest = Sha256::digest(format!("{owner}\n{idempotency_key}").as_bytes());
    format!("job-{}", &hex::encode(digest)[..24])
}

/// The memo key of a job's title (ListJobs shows it).
const TITLE_MEMO: &str = "title";

/// The API over one Temporal client and the shared Redis and artifact store.
pub struct GatewayService {
    pub client: Client,
    pub config: GatewayConfig,
    pub pipeline: PipelineConfig,
    pub events: EventLog,
    pub quota: Quota,
    pub artifacts: ArtifactStore,
    pub router: Router,
    /// Channels for the calls the API makes itself (texts, references, voices).
    pub stages: StageClients,
    /// Where those calls' tensors are (clip thumbnails).
    pub store: Arc<dyn TensorStore>,
}

/// A job, read for its owner.
pub struct Found {
    pub job: Job,
    pub view: JobView,
}

impl GatewayService {
    fn settings(&self) -> Settings {
        self.pipeline.settings()
    }

    pub async fn create_video(
        &self,
        caller: &Caller,
        request: CreateVideoRequest,
    ) -> Result<CreateVideoResponse, ApiError> {
        let key = &request.idempotency_key;
        if key.len() > 128
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        {
            return Err(ValidationError::new(
                "idempotency_key",
                "must be 0-128 characters of [A-Za-z0-9._:-]",
            )
            .into());
        }
        check_labels("labels", &request.labels)?;
        let timeout = match &request.timeout {
            None => Duration::from_secs(self.config.default_job_timeout_s),
            Some(d) if d.seconds >= 1 && d.seconds <= 24 * 3600 && d.nanos >= 0 => {
                Duration::new(d.seconds as u64, d.nanos as u32)
            }
            Some(d) => {
                return Err(ValidationError::new(
                    "timeout",
                    format!("must be 1 s-24 h, got {} s", d.seconds),
                )
                .into());
            }
        };
        let video = request
            .spec
            .clone()
            .ok_or_else(|| ValidationError::new("spec", "is required"))?;
        // What the caller asked, before defaults: a repeat of an idempotency key must
        // ask the same.
        let asked = hex::encode(Sha256::digest(prost::Message::encode_to_vec(&video)));
        let job_id = if key.is_empty() {
            format!("job-{:024x}", rand::random::<u128>() >> 32)
        } else {
            idempotent_job_id(&caller.owner, key)
        };
        if !key.is_empty()
            && let Some(found) = self.find(caller, &job_id).await?
        {
            return self.repeat(found, &asked);
        }
        let (spec, resolved) = video_spec::resolve(&video, &self.pipeline, &job_id, rand::random())?;
        let routes = self.router.draw(&job_id, &video.model_pins)?;
        let now = now_ms();
        let deadline = now + timeout.as_millis() as i64;
        self.quota
            .admit(&caller.owner, &job_id, now, deadline, caller.max_concurrent_jobs)
            .await?;
        let labels: BTreeMap<String, String> = request.labels.clone().into_iter().collect();
        let input = JobInput {
            spec,
            settings: self.settings(),
            video: Proto::of(&resolved),
            owner: caller.owner.clone(),
            labels: labels.clone(),
            idempotency_key: key.clone(),
            routes,
            create_time_ms: now,
            deadline_ms: deadline,
            trace: storyreel_runtime::propagation::current_as_map(),
            calls: CallSettings {
                heartbeat_timeout_ms: self.config.heartbeat_timeout_ms,
                stage_timeout_s: self.config.stage_timeout_s,
                stage_timeouts_s: self.config.stage_timeouts_s.clone(),
                max_attempts: self.config.stage_max_attempts,
            },
            asked,
        };
        let attributes = SearchAttributes::new([
            OWNER.value_set(caller.owner.clone()),
            STATE.value_set(state_name(JobState::Queued)),
            LABELS.value_set(labels.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        ]);
        // The title rides in the memo, which a list returns without querying each job.
        let mut memo = temporalio_common::MemoValues::new();
        memo.insert(TITLE_MEMO, resolved.title.clone());
        let options = WorkflowStartOptions::new(self.config.temporal.task_queue.clone(), job_id.clone())
            .execution_timeout(timeout)
            .search_attributes(attributes)
            .memo(memo)
            .id_reuse_policy(WorkflowIdReusePolicy::RejectDuplicate)
            .id_conflict_policy(WorkflowIdConflictPolicy::Fail)
            .build();
        match self
            .client
            .start_workflow(VideoWorkflow::run, input.clone(), options)
            .await
        {
            Ok(_) => {}
            Err(temporalio_client::errors::WorkflowStartError::AlreadyStarted { .. }) => {
                // The same key at the same moment from another replica: one job.
                let found = self
                    .find(caller, &job_id)
                    .await?
                    .ok_or_else(|| ApiError::Internal(format!("job `{job_id}` exists but cannot be read")))?;
                return self.repeat(found, &input.asked);
            }
            Err(e) => {
                let _ = self.quota.release(&caller.owner, &job_id).await;
                return Err(temporal("starting the job", e));
            }
        }
        let view = JobView {
            input: Some(input),
            state: JobState::Queued as i32,
            ..Default::default()
        };
        let execution = Execution {
            status: WorkflowExecutionStatus::Running,
            start_time: None,
            close_time: None,
        };
        Ok(CreateVideoResponse {
            job: Some(view::job(&view, &execution, true)),
            existing: false,
        })
    }

    fn repeat(&self, found: Found, asked: &str) -> Result<CreateVideoResponse, ApiError> {
        let same = found.view.input.as_ref().is_some_and(|i| i.asked == asked);
        if !same {
            return Err(ApiError::AlreadyExists(format!(
                "idempotency key already used for job `{}` with a different spec",
                found.job.id
            )));
        }
        Ok(CreateVideoResponse {
            job: Some(found.job),
            existing: true,
        })
    }

    /// The job `job_id` if `caller` owns it.
    pub async fn find(&self, caller: &Caller, job_id: &str) -> Result<Option<Found>, ApiError> {
        if check_job_id(job_id).is_err() {
            return Ok(None);
        }
        let handle = self
            .client
            .get_workflow_handle::<VideoWorkflow>(job_id.to_string());
        let description = match handle.describe(WorkflowDescribeOptions::default()).await {
            Ok(d) => d,
            Err(temporalio_client::errors::WorkflowInteractionError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(temporal("reading the job", e)),
        };
        if description.search_attributes().get(&OWNER).as_deref() != Some(caller.owner.as_str()) {
            return Ok(None);
        }
        let view = handle
            .query(VideoWorkflow::view, (), WorkflowQueryOptions::default())
            .await
            .map_err(|e| temporal("querying the job", e))?;
        let execution = Execution {
            status: description.status(),
            start_time: description.start_time(),
            close_time: description.close_time(),
        };
        let mut job = view::job(&view, &execution, true);
        if job.id.is_empty() {
            job.id = job_id.to_string();
        }
        Ok(Some(Found { job, view }))
    }

    pub async fn get_job(&self, caller: &Caller, request: GetJobRequest) -> Result<Job, ApiError> {
        self.find(caller, &request.job_id)
            .await?
            .map(|f| f.job)
            .ok_or(ApiError::NotFound(request.job_id))
    }

    pub async fn cancel_job(&self, caller: &Caller, request: CancelJobRequest) -> Result<Job, ApiError> {
        if request.reason.chars().count() > 256 {
            return Err(ValidationError::new("reason", "must be 0-256 characters").into());
        }
        let found = self
            .find(caller, &request.job_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(request.job_id.clone()))?;
        if view::is_terminal(JobState::try_from(found.job.state).unwrap_or(JobState::Unspecified)) {
            return Ok(found.job);
        }
        let handle = self
            .client
            .get_workflow_handle::<VideoWorkflow>(request.job_id.clone());
        let _ = handle
            .signal(
                VideoWorkflow::cancel_requested,
                request.reason.clone(),
                WorkflowSignalOptions::default(),
            )
            .await;
        handle
            .cancel(
                WorkflowCancelOptions::builder()
                    .reason(request.reason.clone())
                    .build(),
            )
            .await
            .map_err(|e| temporal("cancelling the job", e))?;
        let mut job = found.job;
        job.cancel_requested = true;
        Ok(job)
    }

    pub async fn list_jobs(
        &self,
        caller: &Caller,
        request: ListJobsRequest,
    ) -> Result<ListJobsResponse, ApiError> {
        let page_size = match request.page_size {
            0 => 20,
            n if n <= 100 => n as usize,
            n => return Err(ValidationError::new("page_size", format!("must be 0-100, got {n}")).into()),
        };
        let offset: usize = if request.page_token.is_empty() {
            0
        } else {
            request
                .page_token
                .parse()
                .map_err(|_| ValidationError::new("page_token", "must be a next_page_token of ListJobs"))?
        };
        check_labels("labels", &request.labels)?;
        // Owners are hex digests and states and labels are checked alphabets: nothing
        // here can break out of the quoted literals.
        let mut query = format!(
            "WorkflowType = 'VideoWorkflow' AND StoryreelOwner = '{}'",
            caller.owner
        );
        if !request.states.is_empty() {
            let states: Vec<String> = request
                .states
                .iter()
                .map(|s| {
                    JobState::try_from(*s)
                        .ok()
                        .filter(|s| *s != JobState::Unspecified)
                        .map(|s| format!("'{}'", state_name(s)))
                        .ok_or_else(|| ValidationError::new("states", format!("{s} is not a job state")))
                })
                .collect::<Result<_, _>>()?;
            query.push_str(&format!(" AND StoryreelState IN ({})", states.join(", ")));
        }
        let mut labels: Vec<_> = request.labels.iter().collect();
        labels.sort();
        for (k, v) in labels {
            query.push_str(&format!(" AND StoryreelLabels = '{k}={v}'"));
        }
        let options = WorkflowListOptions::builder()
            .limit(offset + page_size + 1)
            .build();
        let executions: Vec<_> = self
            .client
            .list_workflows(query, options)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| temporal("listing jobs", e))?;
        let more = executions.len() > offset + page_size;
        let mut jobs = Vec::new();
        for execution in executions.into_iter().skip(offset).take(page_size) {
            let id = execution.id().to_string();
            let state_attr = execution.search_attributes().get(&STATE).unwrap_or_default();
            let view_state =
                JobState::from_str_name(&format!("JOB_STATE_{state_attr}")).unwrap_or(JobState::Queued);
            let execution_view = Execution {
                status: execution.status(),
                start_time: execution.start_time(),
                close_time: execution.close_time(),
            };
            let view = JobView {
                state: view_state as i32,
                ..Default::default()
            };
            let mut job = view::job(&view, &execution_view, false);
            job.id = id;
            if let Ok(Some(title)) = execution.memo().get::<String>(TITLE_MEMO) {
                job.spec = Some(storyreel_proto::gateway::VideoSpec {
                    title,
                    ..Default::default()
                });
            }
            jobs.push(job);
        }
        Ok(ListJobsResponse {
            jobs,
            next_page_token: if more {
                (offset + page_size).to_string()
            } else {
                String::new()
            },
        })
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// The artifact `name` of the caller's job `job_id`.
    pub async fn artifact(&self, caller: &Caller, job_id: &str, name: &str) -> Result<Artifact, ApiError> {
        crate::artifacts::check_name(name)?;
        let found = self
            .find(caller, job_id)
            .await?
            .ok_or_else(|| ApiError::NotFound(job_id.to_string()))?;
        found
            .job
            .artifacts
            .into_iter()
            .find(|a| a.name == name)
            .ok_or_else(|| ApiError::NoArtifact {
                job_id: job_id.to_string(),
                name: name.to_string(),
            })
    }
}

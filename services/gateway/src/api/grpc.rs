//! The gRPC adapter of [`GatewayService`]: authentication from metadata, errors to
//! codes in one table, and the two streams (WatchJob, GetArtifact).

use super::{
    auth::{ApiKeys, AuthError, Caller},
    service::{ApiError, GatewayService},
};
use crate::jobs::view;
use futures::{Stream, StreamExt};
use std::{pin::Pin, sync::Arc, time::Duration};
use storyreel_proto::gateway::{
    CancelJobRequest, CancelJobResponse, CreateVideoRequest, CreateVideoResponse, GetArtifactRequest,
    GetArtifactResponse, GetJobRequest, GetJobResponse, JobEvent, JobState, ListJobsRequest,
    ListJobsResponse, WatchJobRequest, WatchJobResponse,
    gateway_service_server::GatewayService as GatewayApi, job_event::Payload,
};
use tonic::{Request, Response, Status};

/// The error table of the API.
pub fn status(error: ApiError) -> Status {
    match error {
        ApiError::Invalid(e) => Status::invalid_argument(e.to_string()),
        ApiError::NotFound(m) => Status::not_found(m),
        ApiError::AlreadyExists(m) => Status::already_exists(m),
        ApiError::Quota(e) => Status::resource_exhausted(e.to_string()),
        ApiError::Unavailable(m) => Status::unavailable(m),
        ApiError::Internal(m) => Status::internal(m),
    }
}

pub struct GatewayGrpc {
    pub service: Arc<GatewayService>,
    pub keys: ApiKeys,
}

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl GatewayGrpc {
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        self.keys.authenticate(authorization).map_err(|e| match e {
            AuthError::Missing | AuthError::Invalid => Status::unauthenticated(e.to_string()),
        })
    }
}

/// How long a watch waits on the event stream before it checks the job itself (a job
/// that timed out wrote no last event).
const WATCH_POLL: Duration = Duration::from_secs(2);

#[tonic::async_trait]
impl GatewayApi for GatewayGrpc {
    async fn create_video(
        &self,
        request: Request<CreateVideoRequest>,
    ) -> Result<Response<CreateVideoResponse>, Status> {
        let caller = self.caller(&request)?;
        let response = self
            .service
            .create_video(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    async fn get_job(&self, request: Request<GetJobRequest>) -> Result<Response<GetJobResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self
            .service
            .get_job(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(GetJobResponse { job: Some(job) }))
    }

    type WatchJobStream = Streamed<WatchJobResponse>;

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let service = self.service.clone();
        let found = service
            .find(&caller, &request.job_id)
            .await
            .map_err(status)?
            .ok_or_else(|| Status::not_found(format!("job `{}` not found", request.job_id)))?;
        let job_id = request.job_id.clone();
        // Resuming: from the cursor, no snapshot. Else: the snapshot as of the stream's
        // last event, then everything after it.
        let (cursor, snapshot) = if request.resume_after.is_empty() {
            let last = service
                .events
                .last_id(&job_id)
                .await
                .map_err(|e| status(e.into()))?;
            let found = service
                .find(&caller, &job_id)
                .await
                .map_err(status)?
                .unwrap_or(found);
            (last.unwrap_or_else(|| "0".into()), Some(found.job))
        } else {
            (request.resume_after.clone(), None)
        };
        let mut reader = service
            .events
            .reader(&job_id, &cursor)
            .await
            .map_err(|e| status(e.into()))?;
        let stream = async_stream(move |tx| async move {
            let mut terminal = false;
            if let Some(job) = snapshot {
                terminal = view::is_terminal(JobState::try_from(job.state).unwrap_or(JobState::Unspecified));
                let event = JobEvent {
                    event_id: cursor.clone(),
                    job_id: job_id.clone(),
                    time: job.update_time,
                    payload: Some(Payload::Snapshot(job)),
                };
                if tx
                    .send(Ok(WatchJobResponse { event: Some(event) }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            while !terminal {
                let batch = match reader.next_batch(WATCH_POLL).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        let _ = tx.send(Err(status(e.into()))).await;
                        return;
                    }
                };
                if batch.is_empty() {
                    // No event for a while: the job may have ended without one (timeout).
                    match service.find(&caller, &job_id).await {
                        Ok(Some(found))
                            if view::is_terminal(
                                JobState::try_from(found.job.state).unwrap_or(JobState::Unspecified),
                            ) =>
                        {
                            // One more read: its last events may have just come.
                            match reader.next_batch(Duration::from_millis(1)).await {
                                Ok(last) if !last.is_empty() => {
                                    for event in last {
                                        terminal |= is_terminal_event(&event);
                                        if tx
                                            .send(Ok(WatchJobResponse { event: Some(event) }))
                                            .await
                                            .is_err()
                                        {
                                            return;
                                        }
                                    }
                                }
                                _ => {}
                            }
                            if !terminal {
                                let event = JobEvent {
                                    event_id: String::new(),
                                    job_id: job_id.clone(),
                                    time: found.job.end_time,
                                    payload: Some(Payload::StateChange(
                                        storyreel_proto::gateway::JobStateChange {
                                            state: found.job.state,
                                            error: found.job.error.clone(),
                                        },
                                    )),
                                };
                                let _ = tx.send(Ok(WatchJobResponse { event: Some(event) })).await;
                            }
                            return;
                        }
                        _ => continue,
                    }
                }
                for event in batch {
                    if matches!(event.payload, Some(Payload::StoryDelta(_))) && !request.include_story_text {
                        continue;
                    }
                    terminal |= is_terminal_event(&event);
                    if tx
                        .send(Ok(WatchJobResponse { event: Some(event) }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn cancel_job(
        &self,
        request: Request<CancelJobRequest>,
    ) -> Result<Response<CancelJobResponse>, Status> {
        let caller = self.caller(&request)?;
        let job = self
            .service
            .cancel_job(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(CancelJobResponse { job: Some(job) }))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let caller = self.caller(&request)?;
        let response = self
            .service
            .list_jobs(&caller, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }

    type GetArtifactStream = Streamed<GetArtifactResponse>;

    async fn get_artifact(
        &self,
        request: Request<GetArtifactRequest>,
    ) -> Result<Response<Self::GetArtifactStream>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let chunk = request.chunk_size.unwrap_or(1 << 20);
        if !(4096..=4 << 20).contains(&chunk) {
            return Err(Status::invalid_argument(format!(
                "`chunk_size` must be 4096-4194304, got {chunk}"
            )));
        }
        crate::artifacts::check_name(&request.name).map_err(|e| status(e.into()))?;
        let found = self
            .service
            .find(&caller, &request.job_id)
            .await
            .map_err(status)?
            .ok_or_else(|| Status::not_found(format!("job `{}` not found", request.job_id)))?;
        let artifact = found
            .job
            .artifacts
            .iter()
            .find(|a| a.name == request.name)
            .cloned()
            .ok_or_else(|| {
                Status::not_found(format!(
                    "job `{}` has no artifact `{}`",
                    request.job_id, request.name
                ))
            })?;
        if request.offset > artifact.size_bytes {
            return Err(Status::invalid_argument(format!(
                "`offset` must be 0-{}, got {}",
                artifact.size_bytes, request.offset
            )));
        }
        let store = self.service.artifacts().clone();
        let job_id = request.job_id.clone();
        let stream = async_stream(move |tx| async move {
            let mut offset = request.offset;
            let mut first = Some(artifact.clone());
            loop {
                let end = (offset + u64::from(chunk)).min(artifact.size_bytes);
                let data = if end > offset {
                    match store.read(&job_id, &artifact.name, offset..end).await {
                        Ok(bytes) => bytes,
                        Err(e) => {
                            let _ = tx.send(Err(status(e.into()))).await;
                            return;
                        }
                    }
                } else {
                    bytes::Bytes::new()
                };
                let message = GetArtifactResponse {
                    artifact: first.take(),
                    offset,
                    data,
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
                offset = end;
                if offset >= artifact.size_bytes {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}

fn is_terminal_event(event: &JobEvent) -> bool {
    matches!(&event.payload, Some(Payload::StateChange(change))
        if view::is_terminal(JobState::try_from(change.state).unwrap_or(JobState::Unspecified)))
}

/// A stream fed by a task through a small channel (backpressure: the task waits for the
/// reader; a reader that goes away stops it).
fn async_stream<T, F, Fut>(produce: F) -> Streamed<T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
}

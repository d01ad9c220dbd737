//! A job's events as a stream, for both adapters: a snapshot of the job first (unless
//! resuming), then its event stream from the cursor on, until the terminal state. The
//! cursor is an event id, so a watcher that lost its connection (a gRPC client's
//! `resume_after`, a browser's `Last-Event-ID`) resumes exactly after what it saw.

use super::{
    auth::Caller,
    service::{ApiError, GatewayService},
};
use crate::jobs::view;
use futures::{StreamExt, stream::BoxStream};
use std::{sync::Arc, time::Duration};
use storyreel_proto::gateway::{JobEvent, JobState, JobStateChange, WatchJobRequest, job_event::Payload};

/// A job's events; an error ends it.
pub type EventStream = BoxStream<'static, Result<JobEvent, ApiError>>;

/// How long a watch waits on the event stream before it checks the job itself (a job
/// that timed out wrote no last event).
const WATCH_POLL: Duration = Duration::from_secs(2);

fn state_of(state: i32) -> JobState {
    JobState::try_from(state).unwrap_or(JobState::Unspecified)
}

fn is_terminal_event(event: &JobEvent) -> bool {
    matches!(&event.payload, Some(Payload::StateChange(change)) if view::is_terminal(state_of(change.state)))
}

impl GatewayService {
    /// The events of `request.job_id`, which `caller` must own.
    pub async fn watch_job(
        self: &Arc<Self>,
        caller: &Caller,
        request: WatchJobRequest,
    ) -> Result<EventStream, ApiError> {
        let job_id = request.job_id.clone();
        if self.find(caller, &job_id).await?.is_none() {
            return Err(ApiError::NotFound(job_id));
        }
        // Resuming: from the cursor, no snapshot. Else: the snapshot as of the stream's
        // last event, then everything after it.
        let (cursor, snapshot) = if request.resume_after.is_empty() {
            let last = self.events.last_id(&job_id).await?;
            let found = self
                .find(caller, &job_id)
                .await?
                .ok_or_else(|| ApiError::NotFound(job_id.clone()))?;
            (last.unwrap_or_else(|| "0".into()), Some(found.job))
        } else {
            (request.resume_after.clone(), None)
        };
        let mut reader = self.events.reader(&job_id, &cursor).await?;
        let service = self.clone();
        let caller = caller.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<JobEvent, ApiError>>(16);
        tokio::spawn(async move {
            let mut terminal = false;
            if let Some(job) = snapshot {
                terminal = view::is_terminal(state_of(job.state));
                let event = JobEvent {
                    event_id: cursor.clone(),
                    job_id: job_id.clone(),
                    time: job.update_time,
                    payload: Some(Payload::Snapshot(job)),
                };
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
            let wanted = |event: &JobEvent| {
                request.include_story_text || !matches!(event.payload, Some(Payload::StoryDelta(_)))
            };
            while !terminal {
                let batch = match reader.next_batch(WATCH_POLL).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                };
                if batch.is_empty() {
                    // No event for a while: the job may have ended without one (timeout).
                    let Ok(Some(found)) = service.find(&caller, &job_id).await else {
                        continue;
                    };
                    if !view::is_terminal(state_of(found.job.state)) {
                        continue;
                    }
                    // One more read: its last events may have just come.
                    for event in reader
                        .next_batch(Duration::from_millis(1))
                        .await
                        .unwrap_or_default()
                    {
                        terminal |= is_terminal_event(&event);
                        if wanted(&event) && tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    if !terminal {
                        let event = JobEvent {
                            event_id: String::new(),
                            job_id: job_id.clone(),
                            time: found.job.end_time,
                            payload: Some(Payload::StateChange(JobStateChange {
                                state: found.job.state,
                                error: found.job.error.clone(),
                            })),
                        };
                        let _ = tx.send(Ok(event)).await;
                    }
                    return;
                }
                for event in batch {
                    terminal |= is_terminal_event(&event);
                    if wanted(&event) && tx.send(Ok(event)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }
}

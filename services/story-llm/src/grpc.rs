//! The thin gRPC adapter: per call it takes the request, validates it into a
//! [`StoryRequest`], sets its deadline, calls [`StoryLlm`], and converts the answer (or the
//! error, through `storyreel_runtime::to_status`). The caller's trace context is already
//! the parent span: the runtime's server layer extracts it.
//!
//! Deadlines: the earliest of the job deadline (`context.deadline`), the gRPC deadline
//! (`grpc-timeout`) and the server's `request_timeout_ms`. A passed deadline fails at once;
//! the adapter also enforces it around the service call and over the whole event stream
//! (tonic's own timeout covers a stream only until its first response), ending the stream
//! with DEADLINE_EXCEEDED and dropping the service's stream, which cancels decoding.

use crate::{
    config::{GenerationDefaults, StoryLlmConfig},
    error::StoryLlmError,
    service::{SceneDone, Story, StoryEvent, StoryLlm, StoryProgress, StoryRequest, TokenPiece},
    validation::{validate_generate, validate_generate_stream},
};
use futures::{Stream, StreamExt, stream::BoxStream};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use storyreel_proto::{
    common,
    story_llm::{
        GenerateRequest, GenerateResponse, GenerateStreamRequest, GenerateStreamResponse, SceneEvent,
        TokenEvent,
        generate_stream_response::Event,
        story_llm_service_server::{StoryLlmService, StoryLlmServiceServer},
    },
};
use storyreel_runtime::{ServerConfig, job::grpc_deadline, to_status, with_message_limits};
use tonic::{Request, Response, Status, metadata::MetadataMap};
use tracing::Instrument;

/// The tonic service over any [`StoryLlm`].
#[derive(Clone)]
pub struct StoryLlmGrpc {
    service: Arc<dyn StoryLlm>,
    defaults: GenerationDefaults,
    request_timeout: Duration,
}

impl StoryLlmGrpc {
    pub fn new(service: Arc<dyn StoryLlm>, config: &StoryLlmConfig) -> Self {
        Self {
            service,
            defaults: config.generation.clone(),
            request_timeout: config.server.request_timeout(),
        }
    }

    /// The generated tonic server, with the configured message-size limits.
    pub fn into_server(self, server: &ServerConfig) -> StoryLlmServiceServer<Self> {
        with_message_limits!(StoryLlmServiceServer::new(self), server)
    }

    /// Sets the request's deadline from the call and fails if it has already passed.
    fn admit(&self, request: &mut StoryRequest, metadata: &MetadataMap) -> Result<Instant, Status> {
        let now = Instant::now();
        request.tighten_deadline(grpc_deadline(metadata, now));
        request.tighten_deadline(now.checked_add(self.request_timeout));
        let deadline = request.deadline.unwrap_or(now + self.request_timeout);
        if deadline <= now {
            return Err(status(StoryLlmError::DeadlineExceeded));
        }
        Ok(deadline)
    }
}

fn status(err: StoryLlmError) -> Status {
    tracing::debug!(error = %err, "story request failed");
    to_status(&err)
}

fn request_span(request: &StoryRequest, method: &'static str) -> tracing::Span {
    tracing::info_span!(
        "story_llm",
        method,
        job_id = request.job.job_id.as_deref().unwrap_or(""),
        request_id = request.job.request_id.as_deref().unwrap_or(""),
        n_scenes = request.n_scenes,
        seed = request.seed,
    )
}

type EventStream = BoxStream<'static, Result<GenerateStreamResponse, Status>>;

#[tonic::async_trait]
impl StoryLlmService for StoryLlmGrpc {
    async fn generate(
        &self,
        request: Request<GenerateRequest>,
    ) -> Result<Response<GenerateResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut request = validate_generate(message, &self.defaults).map_err(|e| status(e.into()))?;
        let deadline = self.admit(&mut request, &metadata)?;
        let span = request_span(&request, "generate");
        let call = self.service.generate(request).instrument(span);
        let story = tokio::time::timeout_at(deadline.into(), call)
            .await
            .map_err(|_| StoryLlmError::DeadlineExceeded)
            .and_then(|result| result)
            .map_err(status)?;
        Ok(Response::new(story.into()))
    }

    type GenerateStreamStream = EventStream;

    async fn generate_stream(
        &self,
        request: Request<GenerateStreamRequest>,
    ) -> Result<Response<Self::GenerateStreamStream>, Status> {
        let (metadata, _, message) = request.into_parts();
        let mut request = validate_generate_stream(message, &self.defaults).map_err(|e| status(e.into()))?;
        let deadline = self.admit(&mut request, &metadata)?;
        let span = request_span(&request, "generate_stream");
        let call = self.service.generate_stream(request).instrument(span);
        let events = tokio::time::timeout_at(deadline.into(), call)
            .await
            .map_err(|_| StoryLlmError::DeadlineExceeded)
            .and_then(|result| result)
            .map_err(status)?;
        let events = events.map(|event| event.map(GenerateStreamResponse::from).map_err(status));
        Ok(Response::new(until_deadline(events, deadline)))
    }
}

/// `events` until `deadline`; then one DEADLINE_EXCEEDED and the end (dropping `events`).
fn until_deadline<S>(events: S, deadline: Instant) -> EventStream
where
    S: Stream<Item = Result<GenerateStreamResponse, Status>> + Send + 'static,
{
    let sleep = Box::pin(tokio::time::sleep_until(deadline.into()));
    let state = Some((events.boxed(), sleep));
    futures::stream::unfold(state, |state| async move {
        let (mut events, mut sleep) = state?;
        let next = tokio::select! {
            biased;
            item = events.next() => item.map(Some),
            _ = &mut sleep => Some(None),
        };
        match next {
            Some(Some(item)) => Some((item, Some((events, sleep)))),
            Some(None) => Some((Err(status(StoryLlmError::DeadlineExceeded)), None)),
            None => None,
        }
    })
    .boxed()
}

impl From<Story> for GenerateResponse {
    fn from(story: Story) -> Self {
        GenerateResponse {
            scenes: story
                .scenes
                .into_iter()
                .enumerate()
                .map(|(index, text)| common::Scene {
                    index: index as u32,
                    text,
                })
                .collect(),
            model: Some(story.model.into()),
            usage: Some(story.usage.into()),
            seed: story.seed,
            attempts: story.attempts,
            stats: Some(story.stats.into()),
        }
    }
}

impl From<StoryEvent> for GenerateStreamResponse {
    fn from(event: StoryEvent) -> Self {
        let event = match event {
            StoryEvent::Token(TokenPiece {
                attempt,
                scene_index,
                token_id,
                text,
            }) => Event::Token(TokenEvent {
                attempt,
                scene_index,
                token_id,
                text,
            }),
            StoryEvent::Scene(SceneDone { attempt, index, text }) => Event::Scene(SceneEvent {
                attempt,
                scene: Some(common::Scene { index, text }),
            }),
            StoryEvent::Progress(StoryProgress {
                scenes_done,
                n_scenes,
                message,
            }) => Event::Progress(common::Progress {
                stage: common::Stage::Story as i32,
                step: scenes_done,
                total_steps: n_scenes,
                message,
                fraction: if n_scenes == 0 {
                    0.0
                } else {
                    (scenes_done as f32 / n_scenes as f32).clamp(0.0, 1.0)
                },
                scene_index: None,
            }),
            StoryEvent::Finished(story) => Event::Result(story.into()),
        };
        GenerateStreamResponse { event: Some(event) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reports_the_fraction_of_scenes() {
        let event = GenerateStreamResponse::from(StoryEvent::Progress(StoryProgress {
            scenes_done: 3,
            n_scenes: 4,
            message: "scene 3 of 4".into(),
        }));
        let Some(Event::Progress(progress)) = event.event else {
            panic!("{event:?}")
        };
        assert_eq!(progress.stage(), common::Stage::Story);
        assert_eq!((progress.step, progress.total_steps), (3, 4));
        assert_eq!(progress.fraction, 0.75);
    }
}

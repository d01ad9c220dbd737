//! The thin gRPC adapter: per call it validates the request into a [`StoryRequest`],
//! begins the call's context (`storyreel_stage::CallContext`: one deadline, span, metric),
//! calls [`StoryLlm`] under it, and converts the answer (or the error, through
//! `storyreel_runtime::to_status`). A stream runs under the deadline to its last event;
//! dropping it (the caller went away, or the deadline) cancels decoding.

use crate::{
    StoryLlmStage,
    service::{SceneDone, Story, StoryEvent, StoryProgress, TokenPiece},
    validation::{validate_generate, validate_generate_stream},
};
use futures::{StreamExt, stream::BoxStream};
use storyreel_proto::{
    common,
    story_llm::{
        GenerateRequest, GenerateResponse, GenerateStreamRequest, GenerateStreamResponse, SceneEvent,
        TokenEvent, generate_stream_response::Event, story_llm_service_server::StoryLlmService,
    },
};
use storyreel_runtime::to_status;
use storyreel_stage::Adapter;
use tonic::{Request, Response, Status};

/// The tonic service over any [`crate::StoryLlm`].
#[derive(Clone)]
pub struct StoryLlmGrpc(pub Adapter<StoryLlmStage>);

type EventStream = BoxStream<'static, Result<GenerateStreamResponse, Status>>;

#[tonic::async_trait]
impl StoryLlmService for StoryLlmGrpc {
    async fn generate(
        &self,
        request: Request<GenerateRequest>,
    ) -> Result<Response<GenerateResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let adapter = &self.0;
        let mut request =
            validate_generate(message, &adapter.config.generation).map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("generate", &metadata, &request.job, &mut request.deadline)?;
        let story = context.unary(adapter.service.generate(request)).await?;
        Ok(Response::new(story.into()))
    }

    type GenerateStreamStream = EventStream;

    async fn generate_stream(
        &self,
        request: Request<GenerateStreamRequest>,
    ) -> Result<Response<Self::GenerateStreamStream>, Status> {
        let (metadata, _, message) = request.into_parts();
        let adapter = &self.0;
        let mut request =
            validate_generate_stream(message, &adapter.config.generation).map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("generate_stream", &metadata, &request.job, &mut request.deadline)?;
        let service = adapter.service.clone();
        let events = context
            .open_stream(async move {
                let events = service.generate_stream(request).await?;
                Ok::<_, crate::StoryLlmError>(events.map(|e| e.map(GenerateStreamResponse::from)))
            })
            .await?;
        Ok(Response::new(events))
    }
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

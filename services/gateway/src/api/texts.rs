//! GenerateTexts: a spec's story S^D and prompts S^P without a video, streamed as they
//! are written, so a person can read and edit them before asking for the video. The calls
//! are the job's own (the same requests and seeds as the DAG's story and prompt steps),
//! so a video made from the unedited texts with the same seed finds them in the stages'
//! caches.

use super::{
    auth::Caller,
    service::{ApiError, GatewayService},
    video_spec,
};
use futures::{StreamExt, stream::BoxStream};
use std::sync::Arc;
use storyreel_pipeline::seeds;
use storyreel_proto::{
    common::{self, Stage},
    gateway::{
        GenerateTextsRequest, GenerateTextsResponse, ScenePrompt, StoryDelta, Texts,
        generate_texts_response::Payload,
    },
    prompt_rewriter::{self, prompt_rewriter_service_client::PromptRewriterServiceClient},
    story_llm::{self, generate_stream_response::Event, story_llm_service_client::StoryLlmServiceClient},
};
use storyreel_runtime::ValidationError;
use tokio::sync::mpsc::Sender;

/// The texts' messages; an error ends the stream.
pub type TextStream = BoxStream<'static, Result<GenerateTextsResponse, ApiError>>;

type Out = Sender<Result<GenerateTextsResponse, ApiError>>;

async fn send(tx: &Out, payload: Payload) -> Result<(), ApiError> {
    tx.send(Ok(GenerateTextsResponse {
        payload: Some(payload),
    }))
    .await
    .map_err(|_| ApiError::Internal("the client went away".into()))
}

impl GatewayService {
    pub async fn generate_texts(
        self: &Arc<Self>,
        caller: &Caller,
        request: GenerateTextsRequest,
    ) -> Result<TextStream, ApiError> {
        let video = request
            .spec
            .ok_or_else(|| ValidationError::new("spec", "is required"))?;
        let id = format!("texts-{:024x}", rand::random::<u128>() >> 32);
        let (spec, _) = video_spec::resolve(&video, &self.pipeline, &id, rand::random())?;
        let routes = self.direct_routes(&id, &video.model_pins)?;
        self.admit_direct(caller, &id).await?;
        let service = self.clone();
        let caller = caller.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let result = async {
                let context = |scene: Option<u32>| common::JobContext {
                    job_id: spec.job_id.clone(),
                    scene_index: scene,
                    seed: Some(spec.seed),
                    ..Default::default()
                };
                let story = match &spec.story {
                    Some(story) => story.clone(),
                    None => {
                        let channel = service.direct_channel(&routes, "story_llm")?;
                        let request = story_llm::GenerateStreamRequest {
                            context: Some(context(None)),
                            title: spec.title.clone(),
                            n_scenes: Some(spec.n_scenes),
                            style: spec.style.clone(),
                            seed: Some(seeds::job_stage(spec.seed, Stage::Story)),
                            ..Default::default()
                        };
                        write_story(
                            StoryLlmServiceClient::new(channel),
                            service.direct_request("story_llm", request),
                            &tx,
                        )
                        .await?
                    }
                };
                if story.len() != spec.n_scenes as usize {
                    return Err(ApiError::Stage(tonic::Status::aborted(format!(
                        "the story has {} scenes, {} were asked for",
                        story.len(),
                        spec.n_scenes
                    ))));
                }
                let prompts = match &spec.prompts {
                    Some(prompts) => prompts.clone(),
                    None => {
                        let mut prompts = Vec::with_capacity(story.len());
                        for (i, text) in story.iter().enumerate() {
                            let scene = i as u32;
                            let request = prompt_rewriter::RewriteRequest {
                                context: Some(context(Some(scene))),
                                title: spec.title.clone(),
                                scenes: vec![common::Scene {
                                    index: scene,
                                    text: text.clone(),
                                }],
                                style: spec.style.clone(),
                                seed: Some(seeds::scene_stage(spec.seed, Stage::Prompt, scene)),
                                ..Default::default()
                            };
                            let channel = service.direct_channel(&routes, "prompt_rewriter")?;
                            let response = PromptRewriterServiceClient::new(channel)
                                .rewrite(service.direct_request("prompt_rewriter", request))
                                .await
                                .map_err(ApiError::Stage)?
                                .into_inner();
                            let prompt = response.prompts.into_iter().next().ok_or_else(|| {
                                ApiError::Stage(tonic::Status::internal(
                                    "the prompt rewriter returned no prompt",
                                ))
                            })?;
                            send(
                                &tx,
                                Payload::Prompt(ScenePrompt {
                                    scene_index: scene,
                                    prompt: prompt.prompt.clone(),
                                    negative_prompt: prompt.negative_prompt,
                                    visual_elements: prompt.attributes.unwrap_or_default().visual_elements,
                                }),
                            )
                            .await?;
                            prompts.push(prompt.prompt);
                        }
                        prompts
                    }
                };
                send(
                    &tx,
                    Payload::Done(Texts {
                        story,
                        prompts,
                        seed: spec.seed,
                    }),
                )
                .await
            }
            .await;
            service.release_direct(&caller, &id).await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(tokio_stream::wrappers::ReceiverStream::new(rx).boxed())
    }
}

/// The story stream: its tokens as deltas and its scenes as they finish; the scenes back.
async fn write_story(
    mut client: StoryLlmServiceClient<crate::jobs::clients::Intercepted>,
    request: tonic::Request<story_llm::GenerateStreamRequest>,
    tx: &Out,
) -> Result<Vec<String>, ApiError> {
    let mut events = client
        .generate_stream(request)
        .await
        .map_err(ApiError::Stage)?
        .into_inner();
    while let Some(message) = events.next().await {
        match message.map_err(ApiError::Stage)?.event {
            Some(Event::Token(token)) if !token.text.is_empty() => {
                let delta = StoryDelta {
                    attempt: token.attempt,
                    scene_index: token.scene_index,
                    text: token.text,
                };
                send(tx, Payload::StoryDelta(delta)).await?;
            }
            Some(Event::Scene(scene)) => {
                if let Some(scene) = scene.scene {
                    send(tx, Payload::Scene(scene)).await?;
                }
            }
            Some(Event::Result(result)) => {
                let mut scenes = result.scenes;
                scenes.sort_by_key(|s| s.index);
                return Ok(scenes.into_iter().map(|s| s.text).collect());
            }
            _ => {}
        }
    }
    Err(ApiError::Stage(tonic::Status::internal(
        "the story stream ended without a result",
    )))
}

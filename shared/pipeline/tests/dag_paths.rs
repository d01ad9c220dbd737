//! The DAG's own decisions, on a scripted executor (the stages' answers are canned; the
//! real stages are exercised end to end in `services/gateway/tests`): distinct clips per
//! scene, a scene whose search finds nothing borrowing its nearest scene's clip, a job
//! where no scene finds one refused by name, and the calls' order and seeds.

use futures::StreamExt;
use std::{collections::HashMap, sync::Arc};
use storyreel_pipeline::{
    Backend, BackendChoice, JobSpec, PipelineError, Settings,
    executor::{Events, StageExecutor},
    progress::{Silent, Step},
    spec::{FrameSize, Resolution},
};
use storyreel_proto::{common, decoder, interpolation, keyframe, prompt_rewriter, retrieval, story_llm, tts};
use storyreel_runtime::{ModelInfo, tensor_ref::to_wire};
use storyreel_tensors::{MemoryStore, StoreConfig, Tensor, TensorStore};
use tonic::Status;

/// Scene texts map to keywords; keywords map to the clips a search ranks.
struct Scripted {
    store: Arc<dyn TensorStore>,
    keywords: HashMap<String, Vec<String>>,
    clips: HashMap<String, Vec<(String, f32)>>,
}

impl Scripted {
    async fn put(&self, name: &str, tensor: Tensor) -> common::TensorRef {
        let key = self.store.keys().tensor("t", "scripted", 0, name).unwrap();
        to_wire(&self.store.put(&key, &tensor, None).await.unwrap())
    }
}

fn model() -> common::ModelInfo {
    common::ModelInfo {
        name: "scripted".into(),
        version: "1".into(),
        ..Default::default()
    }
}

#[async_trait::async_trait(?Send)]
impl StageExecutor for Scripted {
    async fn story(
        &self,
        _: story_llm::GenerateStreamRequest,
    ) -> Result<Events<story_llm::GenerateStreamResponse>, Status> {
        Err(Status::unimplemented("the story is supplied"))
    }

    async fn rewrite(
        &self,
        r: prompt_rewriter::RewriteRequest,
    ) -> Result<prompt_rewriter::RewriteResponse, Status> {
        let scene = &r.scenes[0];
        Ok(prompt_rewriter::RewriteResponse {
            prompts: vec![prompt_rewriter::ScenePrompt {
                scene_index: scene.index,
                prompt: scene.text.clone(),
                ..Default::default()
            }],
            model: Some(model()),
            ..Default::default()
        })
    }

    async fn keywords(
        &self,
        r: prompt_rewriter::KeywordsRequest,
    ) -> Result<prompt_rewriter::KeywordsResponse, Status> {
        let prompt = &r.prompts[0];
        Ok(prompt_rewriter::KeywordsResponse {
            keywords: vec![prompt_rewriter::SceneKeywords {
                scene_index: prompt.index,
                keywords: self.keywords.get(&prompt.text).cloned().unwrap_or_default(),
            }],
            model: Some(model()),
            ..Default::default()
        })
    }

    async fn search(&self, r: retrieval::SearchRequest) -> Result<retrieval::SearchResponse, Status> {
        let mut hits: Vec<(String, f32)> = r
            .keywords
            .iter()
            .flat_map(|k| self.clips.get(k).cloned().unwrap_or_default())
            .collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1));
        hits.dedup_by(|a, b| a.0 == b.0);
        let frames = if r.skip_frames {
            None
        } else {
            let id = if r.frames_clip_id.is_empty() {
                hits[0].0.clone()
            } else {
                r.frames_clip_id.clone()
            };
            assert!(hits.iter().any(|h| h.0 == id), "frames of a clip the query ranks");
            let spec = r.frames.unwrap();
            let (w, h, n) = (
                spec.width.unwrap() as usize,
                spec.height.unwrap() as usize,
                spec.count.unwrap() as usize,
            );
            // each clip's frames carry its name's length, so a test can tell clips apart
            let value = id.len() as u8;
            Some(
                self.put(
                    &id,
                    Tensor::from_slice(vec![n, 3, h, w], &vec![value; n * 3 * h * w]).unwrap(),
                )
                .await,
            )
        };
        Ok(retrieval::SearchResponse {
            hits: hits
                .into_iter()
                .enumerate()
                .map(|(i, (clip_id, fused_score))| retrieval::ClipHit {
                    rank: i as u32 + 1,
                    clip_id,
                    fused_score,
                    ..Default::default()
                })
                .collect(),
            frames,
            model: Some(model()),
            ..Default::default()
        })
    }

    async fn encode(&self, _: decoder::EncodeRequest) -> Result<decoder::EncodeResponse, Status> {
        Err(Status::unimplemented("reference backend only"))
    }

    async fn keyframe(
        &self,
        _: keyframe::GenerateRequest,
    ) -> Result<Events<keyframe::GenerateResponse>, Status> {
        Err(Status::unimplemented("reference backend only"))
    }

    async fn interpolate(
        &self,
        r: interpolation::InterpolateRequest,
    ) -> Result<Events<interpolation::InterpolateResponse>, Status> {
        assert_eq!(r.space, common::InterpolationSpace::Pixel as i32);
        let result = interpolation::InterpolateResponse {
            event: Some(interpolation::interpolate_response::Event::Result(
                interpolation::InterpolateResult {
                    frames: r.key_frames,
                    model: Some(model()),
                    ..Default::default()
                },
            )),
        };
        Ok(futures::stream::iter([Ok(result)]).boxed())
    }

    async fn decode(&self, _: decoder::DecodeRequest) -> Result<Events<decoder::DecodeResponse>, Status> {
        Err(Status::unimplemented("reference backend only"))
    }

    async fn upsample(
        &self,
        _: decoder::UpsampleRequest,
    ) -> Result<Events<decoder::UpsampleResponse>, Status> {
        Err(Status::unimplemented("upscale 1"))
    }

    async fn synthesize(&self, r: tts::SynthesizeRequest) -> Result<tts::SynthesizeResponse, Status> {
        let scene = r.scenes[0].index;
        let audio = self
            .put("audio", Tensor::from_slice(vec![800], &[0.0f32; 800]).unwrap())
            .await;
        Ok(tts::SynthesizeResponse {
            scenes: vec![tts::SceneAudio {
                scene_index: scene,
                audio: Some(audio),
                duration_s: 0.1,
                sample_rate_hz: 8000,
                segments: Vec::new(),
                words: Vec::new(),
            }],
            model: Some(model()),
            ..Default::default()
        })
    }

    async fn keyframe_model(&self) -> Result<ModelInfo, Status> {
        Ok(ModelInfo {
            random_init: true,
            ..Default::default()
        })
    }
}

fn executor(keywords: &[(&str, &[&str])], clips: &[(&str, &[(&str, f32)])]) -> Scripted {
    let owned = |list: &[(&str, f32)]| list.iter().map(|(c, s)| (c.to_string(), *s)).collect();
    Scripted {
        store: Arc::new(MemoryStore::new(&StoreConfig::default()).unwrap()),
        keywords: keywords
            .iter()
            .map(|(scene, k)| (scene.to_string(), k.iter().map(|s| s.to_string()).collect()))
            .collect(),
        clips: clips
            .iter()
            .map(|(k, list)| (k.to_string(), owned(list)))
            .collect(),
    }
}

fn spec(story: &[&str]) -> JobSpec {
    JobSpec {
        job_id: "scripted".into(),
        title: "Harbour".into(),
        n_scenes: story.len() as u32,
        style: String::new(),
        output: FrameSize::output(Resolution::Side(64), Default::default()),
        upscale: 1,
        backend: BackendChoice::Auto,
        voice: String::new(),
        seed: 5,
        fps: 10,
        crossfade_s: 0.0,
        key_frames: 2,
        interpolation_factor: 4,
        steps: 1,
        guidance_scale: 1.0,
        reference_strength: 0.5,
        story: Some(story.iter().map(|s| s.to_string()).collect()),
        prompts: None,
        negative_prompt: String::new(),
        bypass_cache: false,
    }
}

fn settings() -> Settings {
    Settings {
        scene_parallelism: 2,
        reuse_margin: 0.25,
        search_k: 5,
        preview_every: 0,
        sample_rate_hz: None,
    }
}

fn chosen(output: &storyreel_pipeline::JobOutput) -> Vec<String> {
    output
        .scenes
        .iter()
        .map(|s| {
            s.references
                .iter()
                .find(|r| r.chosen)
                .map(|r| r.clip_id.clone())
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test]
async fn scenes_take_distinct_clips_and_a_scene_without_hits_borrows_the_nearest() {
    let executor = executor(
        &[
            ("boats", &["boat"]),
            ("more boats", &["boat"]),
            ("nothing", &["zzz"]),
        ],
        &[("boat", &[("pier", 0.9), ("harbour-boats", 0.8)])],
    );
    let output = storyreel_pipeline::run(
        &spec(&["boats", "more boats", "nothing"]),
        &settings(),
        &executor,
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(
        output.backend,
        Backend::Reference,
        "auto on a random-initialised keyframe model"
    );
    assert_eq!(
        chosen(&output)[..2],
        ["pier", "harbour-boats"],
        "the second scene prefers an unused clip"
    );
    // the third scene ranked nothing (its keywords and the title's): it shows scene 2's clip
    assert!(output.scenes[2].references.is_empty());
    let frames = executor.store.get(&output.scenes[2].frames).await.unwrap();
    assert_eq!(frames.as_bytes()[0], "harbour-boats".len() as u8);
    // pipeline order, and seeds that differ per scene
    let prompt_seeds: Vec<u64> = output
        .calls
        .iter()
        .filter(|c| c.step == Step::Prompt)
        .map(|c| c.seed.unwrap())
        .collect();
    assert_eq!(prompt_seeds.len(), 3);
    assert!(prompt_seeds[0] != prompt_seeds[1] && prompt_seeds[1] != prompt_seeds[2]);
    assert!(
        output
            .calls
            .windows(2)
            .all(|w| (w[0].step, w[0].scene) <= (w[1].step, w[1].scene))
    );
}

#[tokio::test]
async fn the_title_words_are_searched_when_a_scenes_keywords_match_nothing() {
    let executor = executor(
        &[("a quiet scene", &["zzz"])],
        &[("harbour", &[("harbour-night", 0.7)])],
    );
    let output = storyreel_pipeline::run(&spec(&["a quiet scene"]), &settings(), &executor, &Silent)
        .await
        .unwrap();
    assert_eq!(chosen(&output), ["harbour-night"]);
}

#[tokio::test]
async fn the_reference_backend_without_any_clip_is_refused_by_name() {
    let executor = executor(&[("a quiet scene", &["zzz"])], &[]);
    let err = storyreel_pipeline::run(&spec(&["a quiet scene"]), &settings(), &executor, &Silent)
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineError::NoReference { .. }), "{err}");
    assert!(err.to_string().contains("keywords: zzz"), "{err}");
}

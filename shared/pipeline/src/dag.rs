//! The DAG of one job (DESIGN.md §1), written once against a [`StageExecutor`]:
//!
//! ```text
//! story ─┬─► per scene: prompt ─► keywords ─► search (ranks) ─┐
//!        │                                   choose distinct clips (in scene order)
//!        │   per scene: frames ─► diffusion: encode ─► keyframe ─► interpolate (latent) ─► decode ─► upsample
//!        │                     └► reference: interpolate (RIFE) ─► upsample
//!        └─► per scene: narration (alongside the visual chain)
//! ```
//!
//! Scenes run in parallel, at most `scene_parallelism` at a time. Everything that shapes
//! the output comes from the [`JobSpec`]: every call's seed derives from the job seed
//! ([`crate::seeds`]), and nothing here reads a clock or draws a random number, so the
//! same spec gives the same video on any executor. Each stage is called per scene, so an
//! edited scene misses the stage caches of its own calls only.

use crate::{
    Backend,
    clips::{Candidate, choose_distinct},
    error::PipelineError,
    executor::StageExecutor,
    progress::{Event, ProgressSink, Step},
    record::{CallRecord, Calls, ModelRecord},
    seeds,
    spec::JobSpec,
    streams::drain,
};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use storyreel_proto::{
    common::{self, Stage},
    decoder, interpolation, keyframe, prompt_rewriter, retrieval, story_llm, tts,
};
use storyreel_runtime::tensor_ref::{from_wire, to_wire};
use storyreel_tensors::TensorRef;

/// What the DAG needs besides the job: the deployment's settings (`[pipeline]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Scenes in flight at once.
    pub scene_parallelism: usize,
    /// See [`crate::clips`].
    pub reuse_margin: f32,
    /// Clips ranked per scene.
    pub search_k: u32,
    /// Keyframe previews every this many steps; 0: none.
    pub preview_every: u32,
    /// Narration sample rate; `None`: the voice's own.
    pub sample_rate_hz: Option<u32>,
}

/// A scene's prompt S^P and what the rewriter found in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptOut {
    pub prompt: String,
    pub negative_prompt: String,
    pub visual_elements: Vec<String>,
    pub colour_scheme: Vec<String>,
    pub shapes: Vec<String>,
    pub categories: Vec<String>,
    /// A person wrote it (the prompt stage was skipped).
    pub supplied: bool,
}

/// A ranked clip of a scene's search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub clip_id: String,
    pub caption: String,
    pub source_uri: String,
    pub licence: String,
    pub bm25_score: f32,
    pub embedding_score: f32,
    pub fused_score: f32,
    /// Its frames made this scene (reference backend) or guided it (diffusion).
    pub chosen: bool,
}

/// A stretch of narration and the text spoken in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub text: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// A written word of the narration and when it is heard (tts `WordTiming`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordTiming {
    pub word: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// A scene's narration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Narration {
    /// f32 mono PCM.
    pub audio: TensorRef,
    pub sample_rate: u32,
    pub duration_s: f64,
    pub segments: Vec<Segment>,
    /// Every written word with its times; empty from a tts that does not time words
    /// (the subtitles then share each sentence's time by length).
    #[serde(default)]
    pub words: Vec<WordTiming>,
}

/// Everything one scene became.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SceneOutput {
    pub index: u32,
    pub text: String,
    pub prompt: PromptOut,
    pub keywords: Vec<String>,
    pub references: Vec<Reference>,
    /// u8 (F, 3, H, W), all scenes at one size.
    pub frames: TensorRef,
    pub narration: Narration,
}

/// A finished DAG: what the assembly and the report need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobOutput {
    pub backend: Backend,
    pub backend_reason: String,
    pub scenes: Vec<SceneOutput>,
    pub calls: Vec<CallRecord>,
}

/// Runs the DAG of `spec` on `executor`.
pub async fn run(
    spec: &JobSpec,
    settings: &Settings,
    executor: &dyn StageExecutor,
    sink: &dyn ProgressSink,
) -> Result<JobOutput, PipelineError> {
    spec.validate()?;
    let job = Job {
        spec,
        settings,
        executor,
        sink,
        calls: Calls::default(),
    };
    let (backend, backend_reason) = crate::backend::resolve(spec.backend, executor).await?;
    sink.emit(Event::Backend {
        backend,
        reason: backend_reason.clone(),
    });
    let texts = job.story().await?;
    let (narrations, visuals) = futures::try_join!(job.narrate_all(&texts), job.visual_all(&texts, backend))?;
    let scenes = texts
        .into_iter()
        .zip(narrations)
        .zip(visuals)
        .enumerate()
        .map(|(i, ((text, narration), visual))| SceneOutput {
            index: i as u32,
            text,
            prompt: visual.prompt,
            keywords: visual.keywords,
            references: visual.references,
            frames: visual.frames,
            narration,
        })
        .collect();
    Ok(JobOutput {
        backend,
        backend_reason,
        scenes,
        calls: job.calls.into_sorted(),
    })
}

struct Job<'a> {
    spec: &'a JobSpec,
    settings: &'a Settings,
    executor: &'a dyn StageExecutor,
    sink: &'a dyn ProgressSink,
    calls: Calls,
}

/// A scene's text-side results before its frames.
struct Planned {
    prompt: PromptOut,
    keywords: Vec<String>,
    /// The search that ranked `hits` (frames are asked for with the same query).
    query: Query,
    hits: Vec<retrieval::ClipHit>,
}

#[derive(Clone)]
struct Query {
    keywords: Vec<String>,
    prompt: String,
}

struct Visual {
    prompt: PromptOut,
    keywords: Vec<String>,
    references: Vec<Reference>,
    frames: TensorRef,
}

/// One timed stage call: started and finished events, and its record.
struct Timed<'a> {
    job: &'a Job<'a>,
    step: Step,
    scene: Option<u32>,
    seed: Option<u64>,
    /// The executor's clock ([`StageExecutor::now_s`]) when the call began.
    started: f64,
}

impl Job<'_> {
    fn context(&self, scene: Option<u32>) -> common::JobContext {
        common::JobContext {
            job_id: self.spec.job_id.clone(),
            scene_index: scene,
            seed: Some(self.spec.seed),
            bypass_cache: self.spec.bypass_cache,
            ..Default::default()
        }
    }

    fn begin(&self, step: Step, scene: Option<u32>, seed: Option<u64>) -> Timed<'_> {
        self.sink.emit(Event::Started { step, scene });
        Timed {
            job: self,
            step,
            scene,
            seed,
            started: self.executor.now_s(),
        }
    }

    fn fail(&self, step: Step, scene: Option<u32>) -> impl FnOnce(tonic::Status) -> PipelineError {
        PipelineError::stage(step, scene)
    }

    async fn story(&self) -> Result<Vec<String>, PipelineError> {
        if let Some(story) = &self.spec.story {
            for (i, text) in story.iter().enumerate() {
                self.sink.emit(Event::SceneText {
                    scene: i as u32,
                    text: text.clone(),
                });
            }
            return Ok(story.clone());
        }
        let seed = seeds::job_stage(self.spec.seed, Stage::Story);
        let call = self.begin(Step::Story, None, Some(seed));
        let fail = || self.fail(Step::Story, None);
        let mut events = self
            .executor
            .story(story_llm::GenerateStreamRequest {
                context: Some(self.context(None)),
                title: self.spec.title.clone(),
                n_scenes: Some(self.spec.n_scenes),
                style: self.spec.style.clone(),
                seed: Some(seed),
                ..Default::default()
            })
            .await
            .map_err(fail())?;
        use story_llm::generate_stream_response::Event as E;
        while let Some(event) = events.next().await {
            match event.map_err(fail())?.event {
                Some(E::Scene(scene)) => {
                    if let Some(scene) = scene.scene {
                        self.sink.emit(Event::Progress {
                            step: Step::Story,
                            scene: None,
                            done: scene.index + 1,
                            total: self.spec.n_scenes,
                        });
                    }
                }
                Some(E::Result(result)) => {
                    let mut scenes = result.scenes;
                    scenes.sort_by_key(|s| s.index);
                    let texts: Vec<String> = scenes.into_iter().map(|s| s.text).collect();
                    if texts.len() != self.spec.n_scenes as usize {
                        return Err(PipelineError::Answer {
                            step: Step::Story,
                            what: "one scene per requested scene",
                        });
                    }
                    for (i, text) in texts.iter().enumerate() {
                        self.sink.emit(Event::SceneText {
                            scene: i as u32,
                            text: text.clone(),
                        });
                    }
                    call.finish(result.model, result.stats);
                    return Ok(texts);
                }
                _ => {}
            }
        }
        Err(PipelineError::Answer {
            step: Step::Story,
            what: "a finished story",
        })
    }

    async fn narrate_all(&self, texts: &[String]) -> Result<Vec<Narration>, PipelineError> {
        stream::iter(texts.iter().enumerate())
            .map(|(i, text)| self.narrate(i as u32, text))
            .buffered(self.settings.scene_parallelism.max(1))
            .try_collect()
            .await
    }

    async fn narrate(&self, scene: u32, text: &str) -> Result<Narration, PipelineError> {
        let seed = seeds::scene_stage(self.spec.seed, Stage::Tts, scene);
        let call = self.begin(Step::Narration, Some(scene), Some(seed));
        let response = self
            .executor
            .synthesize(tts::SynthesizeRequest {
                context: Some(self.context(Some(scene))),
                scenes: vec![common::Scene {
                    index: scene,
                    text: text.to_string(),
                }],
                voice: self.spec.voice.clone(),
                sample_rate_hz: self.settings.sample_rate_hz,
                seed: Some(seed),
                ..Default::default()
            })
            .await
            .map_err(self.fail(Step::Narration, Some(scene)))?;
        let audio = response.scenes.into_iter().next().ok_or(PipelineError::Answer {
            step: Step::Narration,
            what: "the scene's audio",
        })?;
        let tensor = audio.audio.as_ref().ok_or(PipelineError::Answer {
            step: Step::Narration,
            what: "an audio tensor",
        })?;
        let narration = Narration {
            audio: tensor_ref(Step::Narration, tensor)?,
            sample_rate: audio.sample_rate_hz,
            duration_s: audio.duration_s,
            segments: audio
                .segments
                .into_iter()
                .map(|s| Segment {
                    text: s.text,
                    start_s: s.start_s,
                    end_s: s.end_s,
                })
                .collect(),
            words: audio
                .words
                .into_iter()
                .map(|w| WordTiming {
                    word: w.word,
                    start_s: w.start_s,
                    end_s: w.end_s,
                })
                .collect(),
        };
        call.finish(response.model, response.stats);
        Ok(narration)
    }

    async fn visual_all(&self, texts: &[String], backend: Backend) -> Result<Vec<Visual>, PipelineError> {
        let parallel = self.settings.scene_parallelism.max(1);
        let planned: Vec<Planned> = stream::iter(texts.iter().enumerate())
            .map(|(i, text)| self.plan(i as u32, text))
            .buffered(parallel)
            .try_collect()
            .await?;
        let candidates: Vec<Vec<Candidate>> = planned
            .iter()
            .map(|p| {
                p.hits
                    .iter()
                    .map(|h| Candidate {
                        clip_id: h.clip_id.clone(),
                        fused_score: h.fused_score,
                    })
                    .collect()
            })
            .collect();
        let chosen = choose_distinct(&candidates, self.settings.reuse_margin);
        // A scene whose search found nothing borrows the nearest scene's clip (and query).
        let sources: Vec<Option<usize>> = (0..planned.len())
            .map(|i| {
                let mut order: Vec<usize> = (0..planned.len()).collect();
                order.sort_by_key(|&j| (j.abs_diff(i), j));
                order.into_iter().find(|&j| chosen[j].is_some())
            })
            .collect();
        if backend == Backend::Reference && sources.iter().all(Option::is_none) {
            let keywords = planned
                .iter()
                .flat_map(|p| p.keywords.iter().cloned())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(PipelineError::NoReference { keywords });
        }
        let queries: Vec<Query> = planned.iter().map(|plan| plan.query.clone()).collect();
        stream::iter(planned.into_iter().enumerate())
            .map(|(i, plan)| {
                let source = sources[i].map(|j| (chosen[j].clone().unwrap_or_default(), queries[j].clone()));
                self.scene_frames(i as u32, plan, source, backend)
            })
            .buffered(parallel)
            .try_collect()
            .await
    }

    /// Prompt, keywords and the ranked clips of one scene.
    async fn plan(&self, scene: u32, text: &str) -> Result<Planned, PipelineError> {
        let prompt = match &self.spec.prompts {
            Some(prompts) => PromptOut {
                prompt: prompts[scene as usize].clone(),
                negative_prompt: self.spec.negative_prompt.clone(),
                visual_elements: Vec::new(),
                colour_scheme: Vec::new(),
                shapes: Vec::new(),
                categories: Vec::new(),
                supplied: true,
            },
            None => self.rewrite(scene, text).await?,
        };
        let keywords = self.keywords(scene, &prompt.prompt).await?;
        let mut query = Query {
            keywords: keywords.clone(),
            prompt: prompt.prompt.clone(),
        };
        let mut hits = self.rank(scene, &query).await?;
        if hits.is_empty() {
            // No keyword matched a caption: try the title's words, which every scene shares.
            let fallback = Query {
                keywords: title_words(&self.spec.title),
                prompt: prompt.prompt.clone(),
            };
            if !fallback.keywords.is_empty() {
                hits = self.rank(scene, &fallback).await?;
                if !hits.is_empty() {
                    query = fallback;
                }
            }
        }
        Ok(Planned {
            prompt,
            keywords,
            query,
            hits,
        })
    }

    async fn rewrite(&self, scene: u32, text: &str) -> Result<PromptOut, PipelineError> {
        let seed = seeds::scene_stage(self.spec.seed, Stage::Prompt, scene);
        let call = self.begin(Step::Prompt, Some(scene), Some(seed));
        let response = self
            .executor
            .rewrite(prompt_rewriter::RewriteRequest {
                context: Some(self.context(Some(scene))),
                title: self.spec.title.clone(),
                scenes: vec![common::Scene {
                    index: scene,
                    text: text.to_string(),
                }],
                style: self.spec.style.clone(),
                seed: Some(seed),
                ..Default::default()
            })
            .await
            .map_err(self.fail(Step::Prompt, Some(scene)))?;
        let prompt = response.prompts.into_iter().next().ok_or(PipelineError::Answer {
            step: Step::Prompt,
            what: "the scene's prompt",
        })?;
        let attributes = prompt.attributes.unwrap_or_default();
        call.finish(response.model, response.stats);
        Ok(PromptOut {
            prompt: prompt.prompt,
            negative_prompt: prompt.negative_prompt,
            visual_elements: attributes.visual_elements,
            colour_scheme: attributes.colour_scheme,
            shapes: attributes.shapes,
            categories: attributes.categories,
            supplied: false,
        })
    }

    async fn keywords(&self, scene: u32, prompt: &str) -> Result<Vec<String>, PipelineError> {
        let seed = seeds::scene_stage(self.spec.seed, Stage::Keywords, scene);
        let call = self.begin(Step::Keywords, Some(scene), Some(seed));
        let response = self
            .executor
            .keywords(prompt_rewriter::KeywordsRequest {
                context: Some(self.context(Some(scene))),
                prompts: vec![common::Scene {
                    index: scene,
                    text: prompt.to_string(),
                }],
                seed: Some(seed),
                ..Default::default()
            })
            .await
            .map_err(self.fail(Step::Keywords, Some(scene)))?;
        let keywords = response
            .keywords
            .into_iter()
            .next()
            .map(|k| k.keywords)
            .unwrap_or_default();
        call.finish(response.model, response.stats);
        Ok(keywords)
    }

    /// The ranked clips of `query`, without frames.
    async fn rank(&self, scene: u32, query: &Query) -> Result<Vec<retrieval::ClipHit>, PipelineError> {
        if query.keywords.is_empty() {
            return Ok(Vec::new());
        }
        let call = self.begin(Step::Retrieval, Some(scene), None);
        let response = self
            .executor
            .search(self.search_request(scene, query, None))
            .await
            .map_err(self.fail(Step::Retrieval, Some(scene)))?;
        call.finish(response.model, response.stats);
        Ok(response.hits)
    }

    fn search_request(&self, scene: u32, query: &Query, frames_of: Option<&str>) -> retrieval::SearchRequest {
        let size = self.spec.generation_size();
        retrieval::SearchRequest {
            context: Some(self.context(Some(scene))),
            keywords: query.keywords.iter().take(32).cloned().collect(),
            prompt: query.prompt.clone(),
            k: Some(self.settings.search_k),
            frames: Some(retrieval::FrameSpec {
                width: Some(size.width),
                height: Some(size.height),
                count: Some(self.spec.key_frames),
            }),
            skip_frames: frames_of.is_none(),
            frames_clip_id: frames_of.unwrap_or_default().to_string(),
            ..Default::default()
        }
    }

    /// The clip's frames at the generation size, `key_frames` of them.
    async fn clip_frames(&self, scene: u32, clip: &str, query: &Query) -> Result<TensorRef, PipelineError> {
        let call = self.begin(Step::ReferenceFrames, Some(scene), None);
        let response = self
            .executor
            .search(self.search_request(scene, query, Some(clip)))
            .await
            .map_err(self.fail(Step::ReferenceFrames, Some(scene)))?;
        let frames = response.frames.as_ref().ok_or(PipelineError::Answer {
            step: Step::ReferenceFrames,
            what: "the chosen clip's frames",
        })?;
        let frames = tensor_ref(Step::ReferenceFrames, frames)?;
        call.finish(response.model, response.stats);
        Ok(frames)
    }

    async fn scene_frames(
        &self,
        scene: u32,
        plan: Planned,
        source: Option<(String, Query)>,
        backend: Backend,
    ) -> Result<Visual, PipelineError> {
        let own_clip = source.as_ref().map(|(clip, _)| clip.clone());
        let references = plan
            .hits
            .iter()
            .map(|h| {
                let metadata = h.metadata.clone().unwrap_or_default();
                Reference {
                    chosen: own_clip.as_deref() == Some(h.clip_id.as_str()),
                    clip_id: h.clip_id.clone(),
                    caption: h.caption.clone(),
                    source_uri: metadata.source_uri,
                    licence: metadata.licence,
                    bm25_score: h.bm25_score,
                    embedding_score: h.embedding_score,
                    fused_score: h.fused_score,
                }
            })
            .collect();
        let reference_frames = match &source {
            Some((clip, query)) => Some(self.clip_frames(scene, clip, query).await?),
            None => None,
        };
        let frames = match backend {
            Backend::Reference => {
                let key_frames = reference_frames.expect("the reference backend has a clip for every scene");
                let frames = self
                    .interpolate(scene, &key_frames, interpolation_space(Backend::Reference), "")
                    .await?;
                self.upsample(scene, &frames).await?
            }
            Backend::Diffusion => {
                let reference = match &reference_frames {
                    Some(frames) => Some(self.encode(scene, frames).await?),
                    None => None,
                };
                let latents = self.keyframe(scene, &plan.prompt, reference.as_ref()).await?;
                let latents = self
                    .interpolate(
                        scene,
                        &latents,
                        interpolation_space(Backend::Diffusion),
                        &plan.prompt.prompt,
                    )
                    .await?;
                let pixels = self.decode(scene, &latents).await?;
                self.upsample(scene, &pixels).await?
            }
        };
        Ok(Visual {
            prompt: plan.prompt,
            keywords: plan.keywords,
            references,
            frames,
        })
    }

    async fn encode(&self, scene: u32, pixels: &TensorRef) -> Result<TensorRef, PipelineError> {
        let call = self.begin(Step::ReferenceEncode, Some(scene), None);
        let response = self
            .executor
            .encode(decoder::EncodeRequest {
                context: Some(self.context(Some(scene))),
                pixels: Some(to_wire(pixels)),
                ..Default::default()
            })
            .await
            .map_err(self.fail(Step::ReferenceEncode, Some(scene)))?;
        let latents = required(Step::ReferenceEncode, response.latents.as_ref(), "latents")?;
        call.finish(response.model, response.stats);
        Ok(latents)
    }

    async fn keyframe(
        &self,
        scene: u32,
        prompt: &PromptOut,
        reference: Option<&TensorRef>,
    ) -> Result<TensorRef, PipelineError> {
        let seed = seeds::scene_stage(self.spec.seed, Stage::Keyframe, scene);
        let size = self.spec.generation_size();
        let call = self.begin(Step::Keyframe, Some(scene), Some(seed));
        let events = self
            .executor
            .keyframe(keyframe::GenerateRequest {
                context: Some(self.context(Some(scene))),
                prompt: prompt.prompt.clone(),
                negative_prompt: prompt.negative_prompt.clone(),
                seed: Some(seed),
                steps: Some(self.spec.steps),
                guidance_scale: Some(self.spec.guidance_scale),
                size: Some(common::FrameSize {
                    width: size.width,
                    height: size.height,
                }),
                n_frames: Some(self.spec.key_frames),
                reference_latents: reference.map(to_wire),
                reference_strength: reference.map(|_| self.spec.reference_strength),
                preview_every: Some(self.settings.preview_every),
                ..Default::default()
            })
            .await
            .map_err(self.fail(Step::Keyframe, Some(scene)))?;
        let result = drain(events, Step::Keyframe, scene, self.sink)
            .await
            .map_err(self.fail(Step::Keyframe, Some(scene)))?;
        let latents = required(Step::Keyframe, result.latents.as_ref(), "latents")?;
        call.finish(result.model, result.stats);
        Ok(latents)
    }

    async fn interpolate(
        &self,
        scene: u32,
        key_frames: &TensorRef,
        space: common::InterpolationSpace,
        prompt: &str,
    ) -> Result<TensorRef, PipelineError> {
        let latent = space == common::InterpolationSpace::Latent;
        let seed = latent.then(|| seeds::scene_stage(self.spec.seed, Stage::Interpolation, scene));
        let call = self.begin(Step::Interpolation, Some(scene), seed);
        let events = self
            .executor
            .interpolate(interpolation::InterpolateRequest {
                context: Some(self.context(Some(scene))),
                key_frames: Some(to_wire(key_frames)),
                factor: Some(self.spec.interpolation_factor),
                space: space as i32,
                prompt: prompt.to_string(),
                seed,
                ..Default::default()
            })
            .await
            .map_err(self.fail(Step::Interpolation, Some(scene)))?;
        let result = drain(events, Step::Interpolation, scene, self.sink)
            .await
            .map_err(self.fail(Step::Interpolation, Some(scene)))?;
        let frames = required(Step::Interpolation, result.frames.as_ref(), "frames")?;
        call.finish(result.model, result.stats);
        Ok(frames)
    }

    async fn decode(&self, scene: u32, latents: &TensorRef) -> Result<TensorRef, PipelineError> {
        let call = self.begin(Step::Decode, Some(scene), None);
        let events = self
            .executor
            .decode(decoder::DecodeRequest {
                context: Some(self.context(Some(scene))),
                latents: Some(to_wire(latents)),
                ..Default::default()
            })
            .await
            .map_err(self.fail(Step::Decode, Some(scene)))?;
        let result = drain(events, Step::Decode, scene, self.sink)
            .await
            .map_err(self.fail(Step::Decode, Some(scene)))?;
        let pixels = required(Step::Decode, result.pixels.as_ref(), "pixels")?;
        call.finish(result.model, result.stats);
        Ok(pixels)
    }

    /// Real-ESRGAN x2 / x4 as the spec says; the frames as they are at x1.
    async fn upsample(&self, scene: u32, pixels: &TensorRef) -> Result<TensorRef, PipelineError> {
        let mode = match self.spec.upscale {
            2 => common::UpsampleMode::RealesrganX2,
            4 => common::UpsampleMode::RealesrganX4,
            _ => return Ok(pixels.clone()),
        };
        let call = self.begin(Step::Upsample, Some(scene), None);
        let events = self
            .executor
            .upsample(decoder::UpsampleRequest {
                context: Some(self.context(Some(scene))),
                pixels: Some(to_wire(pixels)),
                mode: mode as i32,
                ..Default::default()
            })
            .await
            .map_err(self.fail(Step::Upsample, Some(scene)))?;
        let result = drain(events, Step::Upsample, scene, self.sink)
            .await
            .map_err(self.fail(Step::Upsample, Some(scene)))?;
        let pixels = required(Step::Upsample, result.pixels.as_ref(), "pixels")?;
        call.finish(result.model, result.stats);
        Ok(pixels)
    }
}

impl Timed<'_> {
    fn finish(self, model: Option<common::ModelInfo>, stats: Option<common::StageStats>) {
        let stats = stats.unwrap_or_default();
        let seconds = (self.job.executor.now_s() - self.started).max(0.0);
        self.job.sink.emit(Event::Finished {
            step: self.step,
            scene: self.scene,
            cache_hit: stats.cache_hit,
            seconds,
        });
        self.job.calls.push(CallRecord {
            step: self.step,
            scene: self.scene,
            model: model.map(ModelRecord::from),
            seed: self.seed,
            cache_hit: stats.cache_hit,
            seconds,
            compute_seconds: stats
                .compute_time
                .and_then(|d| std::time::Duration::try_from(d).ok())
                .map(|d| d.as_secs_f64()),
        });
    }
}

/// The space each backend interpolates in: latents between the diffusion model and the
/// VAE decoder, pixels (RIFE) on clip frames.
fn interpolation_space(backend: Backend) -> common::InterpolationSpace {
    match backend {
        Backend::Diffusion => common::InterpolationSpace::Latent,
        Backend::Reference => common::InterpolationSpace::Pixel,
    }
}

fn tensor_ref(step: Step, wire: &common::TensorRef) -> Result<TensorRef, PipelineError> {
    from_wire(step.as_str(), wire).map_err(|_| PipelineError::Answer {
        step,
        what: "a well-formed tensor ref",
    })
}

fn required(
    step: Step,
    wire: Option<&common::TensorRef>,
    what: &'static str,
) -> Result<TensorRef, PipelineError> {
    tensor_ref(step, wire.ok_or(PipelineError::Answer { step, what })?)
}

/// The title's words of three letters or more, lowercase, at most 8: a search every
/// scene of the job can share when its own keywords match nothing.
fn title_words(title: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
    {
        if !words.contains(&word) && words.len() < 8 {
            words.push(word);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_words_are_distinct_lowercase_and_bounded() {
        assert_eq!(
            title_words("Eight Great Wonders of the China and World (4 each)"),
            [
                "eight", "great", "wonders", "the", "china", "and", "world", "each"
            ]
        );
        assert!(title_words("A B").is_empty());
    }
}

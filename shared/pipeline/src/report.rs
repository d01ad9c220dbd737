//! The job report (`<job>.json` beside the video): what was made and how. Title, story,
//! prompts with their attributes, keywords, the references with their scores, the
//! backend and why, each stage's model, every call's seed, timings and cache hits.

use crate::{
    Backend,
    assemble::AssemblyStats,
    dag::{JobOutput, PromptOut, Reference},
    progress::Step,
    record::{CallRecord, ModelRecord},
    spec::JobSpec,
};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub job_id: &'a str,
    pub title: &'a str,
    pub backend: Backend,
    pub backend_reason: &'a str,
    pub seed: u64,
    pub video: VideoFacts,
    pub scenes: Vec<SceneReport<'a>>,
    /// The model of each stage (the first call's; one job runs on one version).
    pub models: BTreeMap<&'static str, &'a ModelRecord>,
    pub cache: CacheCounts,
    pub timings: Timings,
    /// Every stage call, in pipeline order.
    pub calls: &'a [CallRecord],
    /// The spec the job ran with, every default resolved: it reproduces the video.
    pub spec: &'a JobSpec,
}

#[derive(Debug, Serialize)]
pub struct VideoFacts {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: usize,
    pub duration_s: f64,
    pub crossfade_s: f32,
}

#[derive(Debug, Serialize)]
pub struct SceneReport<'a> {
    pub index: u32,
    pub text: &'a str,
    pub prompt: &'a PromptOut,
    pub keywords: &'a [String],
    pub references: &'a [Reference],
    pub narration_s: f64,
    pub frames: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct CacheCounts {
    pub calls: usize,
    pub hits: usize,
    pub per_stage: BTreeMap<&'static str, StageCount>,
}

#[derive(Debug, Default, Serialize)]
pub struct StageCount {
    pub calls: usize,
    pub hits: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Timings {
    /// The whole job, set-up and assembly included.
    pub total_s: f64,
    /// Summed call times per stage (scenes overlap, so these add up to more than the
    /// wall time when scenes run in parallel).
    pub per_stage_s: BTreeMap<&'static str, f64>,
    pub assembly_s: f64,
}

impl<'a> Report<'a> {
    pub fn new(spec: &'a JobSpec, output: &'a JobOutput, assembly: &AssemblyStats, total_s: f64) -> Self {
        let mut models = BTreeMap::new();
        let mut cache = CacheCounts::default();
        let mut timings = Timings {
            total_s,
            assembly_s: assembly.seconds,
            ..Default::default()
        };
        for call in &output.calls {
            let name = call.step.as_str();
            if let Some(model) = &call.model {
                models.entry(name).or_insert(model);
            }
            cache.calls += 1;
            cache.hits += call.cache_hit as usize;
            let count = cache.per_stage.entry(name).or_default();
            count.calls += 1;
            count.hits += call.cache_hit as usize;
            *timings.per_stage_s.entry(name).or_default() += call.seconds;
        }
        timings
            .per_stage_s
            .insert(Step::Assembly.as_str(), assembly.seconds);
        Report {
            job_id: &spec.job_id,
            title: &spec.title,
            backend: output.backend,
            backend_reason: &output.backend_reason,
            seed: spec.seed,
            video: VideoFacts {
                width: spec.output.width,
                height: spec.output.height,
                fps: spec.fps,
                frames: assembly.frames,
                duration_s: assembly.duration_s,
                crossfade_s: spec.crossfade_s,
            },
            scenes: output
                .scenes
                .iter()
                .map(|s| SceneReport {
                    index: s.index,
                    text: &s.text,
                    prompt: &s.prompt,
                    keywords: &s.keywords,
                    references: &s.references,
                    narration_s: s.narration.duration_s,
                    frames: s.frames.shape.first().copied().unwrap_or(0),
                })
                .collect(),
            models,
            cache,
            timings,
            calls: &output.calls,
            spec,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("the report serialises")
    }
}

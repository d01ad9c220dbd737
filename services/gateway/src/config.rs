//! The `[pipeline]` configuration table: the defaults of a job (what `storyreel
//! generate` uses for an option not given), how the DAG runs, and how the video is
//! written. Built-in defaults here, overridden by `config/default.toml`,
//! `config/{profile}.toml` and `STORYREEL_PIPELINE__<KEY>`.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use storyreel_pipeline::{
    BackendChoice, Settings,
    assemble::AssemblySettings,
    spec::{self, Aspect},
};
use storyreel_runtime::{Validate, ValidationError, config::check_range};
use storyreel_tensors::{StoreConfig, config::Backend as StoreBackend};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Scenes of a job, 1-8.
    pub scenes: u32,
    /// The output's longer side in pixels, or `WIDTHxHEIGHT`.
    pub resolution: String,
    /// `1:1`, `16:9` or `9:16`.
    pub aspect: String,
    /// Real-ESRGAN factor after the video models: 1 (none), 2 or 4. The models work at
    /// the output size divided by it (rounded up to multiples of 64).
    pub upscale: u32,
    /// `auto`, `diffusion` or `reference` (see `storyreel_pipeline::backend`).
    pub backend: String,
    /// Narration voice id; empty: the tts stage's default.
    pub voice: String,
    pub fps: u32,
    /// Seconds; 0: a cut between scenes.
    pub crossfade_s: f32,
    /// Key frames per scene (diffusion frames, or clip frames taken).
    pub key_frames: u32,
    /// 4 or 16.
    pub interpolation_factor: u32,
    /// Keyframe denoising steps, guidance and reference strength (diffusion).
    pub steps: u32,
    pub guidance_scale: f32,
    pub reference_strength: f32,
    /// Negative prompt of person-supplied prompts.
    pub negative_prompt: String,
    /// Scenes in flight at once.
    pub scene_parallelism: usize,
    /// How much worse (a fraction of the best score) an unused clip may score and still
    /// be preferred to reusing a clip another scene shows.
    pub reuse_margin: f32,
    /// Clips ranked per scene.
    pub search_k: u32,
    /// Keyframe previews every this many denoising steps; 0: none.
    pub preview_every: u32,
    /// Narration sample rate in Hz; 0: the voice's own.
    pub sample_rate_hz: u32,
    /// The ffmpeg binary.
    pub ffmpeg: PathBuf,
    /// x264 quality (constant rate factor, 0-51) and preset.
    pub crf: u32,
    pub preset: String,
    /// Where `storyreel generate` writes `<job>.mp4`, `.srt` and `.json`.
    pub out_dir: PathBuf,
    /// The store the stages share in one process: memory (the default; the stage caches
    /// last as long as the process), or Redis, so that a re-run reuses every stage output
    /// of an earlier one.
    pub tensors: StoreConfig,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            scenes: 4,
            resolution: "512".into(),
            aspect: "16:9".into(),
            upscale: 2,
            backend: "auto".into(),
            voice: String::new(),
            fps: 24,
            crossfade_s: 0.5,
            key_frames: 8,
            interpolation_factor: 4,
            steps: 25,
            guidance_scale: 7.5,
            reference_strength: 0.6,
            negative_prompt: "blurry, low quality, distorted, watermark, text".into(),
            scene_parallelism: 2,
            reuse_margin: 0.25,
            search_k: 5,
            preview_every: 5,
            sample_rate_hz: 0,
            ffmpeg: "ffmpeg".into(),
            crf: 20,
            preset: "veryfast".into(),
            out_dir: "out".into(),
            tensors: StoreConfig {
                backend: StoreBackend::Memory,
                ..StoreConfig::default()
            },
        }
    }
}

impl Validate for PipelineConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        check_range("scenes", self.scenes, 1, spec::SCENES_MAX)?;
        self.resolution
            .parse::<spec::Resolution>()
            .map_err(|e| ValidationError::new("resolution", e))?;
        self.aspect
            .parse::<Aspect>()
            .map_err(|e| ValidationError::new("aspect", e))?;
        self.backend
            .parse::<BackendChoice>()
            .map_err(|e| ValidationError::new("backend", e))?;
        check_range("scene_parallelism", self.scene_parallelism, 1, 8)?;
        check_range("reuse_margin", self.reuse_margin, 0.0, 1.0)?;
        check_range("search_k", self.search_k, 1, 50)?;
        check_range("preview_every", self.preview_every, 0, 150)?;
        if self.sample_rate_hz != 0 {
            check_range("sample_rate_hz", self.sample_rate_hz, 8000, 48000)?;
        }
        check_range("crf", self.crf, 0, 51)?;
        if self.preset.trim().is_empty() {
            return Err(ValidationError::new(
                "preset",
                "must name an x264 preset, got an empty string",
            ));
        }
        self.tensors
            .validate()
            .map_err(|e| ValidationError::new("tensors", e.to_string()))
        // the job fields are checked once a job is made of them (JobSpec::validate)
    }
}

impl PipelineConfig {
    pub fn settings(&self) -> Settings {
        Settings {
            scene_parallelism: self.scene_parallelism,
            reuse_margin: self.reuse_margin,
            search_k: self.search_k,
            preview_every: self.preview_every,
            sample_rate_hz: (self.sample_rate_hz != 0).then_some(self.sample_rate_hz),
        }
    }

    pub fn assembly(&self, out_dir: Option<PathBuf>) -> AssemblySettings {
        AssemblySettings {
            ffmpeg: self.ffmpeg.clone(),
            out_dir: out_dir.unwrap_or_else(|| self.out_dir.clone()),
            crf: self.crf,
            preset: self.preset.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_values_are_named() {
        PipelineConfig::default().validate().unwrap();
        let bad = PipelineConfig {
            aspect: "4:3".into(),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().to_string().starts_with("`aspect`"));
        let bad = PipelineConfig {
            scene_parallelism: 0,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .starts_with("`scene_parallelism`")
        );
    }
}

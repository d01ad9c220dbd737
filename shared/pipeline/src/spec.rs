//! What one job makes: [`JobSpec`], every default resolved, so that the same spec (seed
//! included) makes the same video. [`JobSpec::validate`] names the field and the limit.

use serde::{Deserialize, Serialize};
use storyreel_runtime::ValidationError;

pub const TITLE_MAX_CHARS: usize = 500;
pub const SCENES_MAX: u32 = 8;
pub const SCENE_TEXT_MAX_CHARS: usize = 2000;
pub const PROMPT_MAX_CHARS: usize = 2000;
pub const STYLE_MAX_CHARS: usize = 64;
pub const SIDE_RANGE: (u32, u32) = (64, 2048);
pub const FPS_RANGE: (u32, u32) = (1, 60);
pub const KEY_FRAMES_RANGE: (u32, u32) = (2, 32);
pub const STEPS_RANGE: (u32, u32) = (1, 150);
pub const CROSSFADE_MAX_S: f32 = 2.0;

/// How a scene's frames are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The paper's path: reference encode -> keyframe LDM -> interpolation (latent) ->
    /// decode -> upsample.
    Diffusion,
    /// The retrieved clip's frames are the key frames -> RIFE -> upsample.
    Reference,
}

/// The backend a job asks for; `Auto` is resolved from the keyframe model (see
/// [`crate::backend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendChoice {
    #[default]
    Auto,
    Diffusion,
    Reference,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "diffusion" => Ok(Self::Diffusion),
            "reference" => Ok(Self::Reference),
            other => Err(format!(
                "must be one of auto, diffusion, reference; got `{other}`"
            )),
        }
    }
}

/// The shape of the frame: the output's width to height.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Aspect {
    #[default]
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "16:9")]
    Landscape,
    #[serde(rename = "9:16")]
    Portrait,
}

impl std::str::FromStr for Aspect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1:1" => Ok(Self::Square),
            "16:9" => Ok(Self::Landscape),
            "9:16" => Ok(Self::Portrait),
            other => Err(format!("must be one of 1:1, 16:9, 9:16; got `{other}`")),
        }
    }
}

/// A frame size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameSize {
    pub width: u32,
    pub height: u32,
}

impl FrameSize {
    /// The output size of `resolution` (the longer side, or `WxH` given exactly) at
    /// `aspect`: the shorter side is rounded to an even number (H.264 4:2:0 needs it).
    pub fn output(resolution: Resolution, aspect: Aspect) -> FrameSize {
        let long = match resolution {
            Resolution::Exact(size) => return size,
            Resolution::Side(side) => side,
        };
        let short = ((long as f64 * 9.0 / 16.0 / 2.0).round() as u32) * 2;
        match aspect {
            Aspect::Square => FrameSize {
                width: long,
                height: long,
            },
            Aspect::Landscape => FrameSize {
                width: long,
                height: short,
            },
            Aspect::Portrait => FrameSize {
                width: short,
                height: long,
            },
        }
    }

    /// The size the models work at for an output of `self` upscaled `factor` times:
    /// each side `self / factor` rounded up to a multiple of 64 (what the video models
    /// take); the assembly scales and centre-crops back to `self`.
    pub fn generation(self, factor: u32) -> FrameSize {
        let side = |s: u32| s.div_ceil(factor).div_ceil(64).max(1) * 64;
        FrameSize {
            width: side(self.width),
            height: side(self.height),
        }
    }
}

impl std::fmt::Display for FrameSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// `--resolution`: the output's longer side (`512`), or an exact size (`768x448`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    Side(u32),
    Exact(FrameSize),
}

impl std::str::FromStr for Resolution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let number = |part: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("must be a side in pixels (512) or WIDTHxHEIGHT (768x448); got `{s}`"))
        };
        match s.split_once(['x', 'X']) {
            Some((w, h)) => Ok(Resolution::Exact(FrameSize {
                width: number(w)?,
                height: number(h)?,
            })),
            None => Ok(Resolution::Side(number(s)?)),
        }
    }
}

/// One job, every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// 1-64 characters of `[A-Za-z0-9_-]`; tensor keys and file names derive from it.
    pub job_id: String,
    /// S^I, 1-500 characters.
    pub title: String,
    /// 1-8; equals the story's length when a story is given.
    pub n_scenes: u32,
    /// Free-text style hint for the story and the prompts.
    pub style: String,
    /// The output frame size (after upsampling and the final crop).
    pub output: FrameSize,
    /// 1 (none), 2 or 4: Real-ESRGAN after the video models.
    pub upscale: u32,
    pub backend: BackendChoice,
    /// The narration voice; empty: the tts stage's default.
    pub voice: String,
    /// Every stage seed derives from it ([`crate::seeds`]).
    pub seed: u64,
    /// Output frame rate.
    pub fps: u32,
    /// Crossfade between scenes in seconds; 0: a cut.
    pub crossfade_s: f32,
    /// Key frames per scene: the keyframe model's frames, or the clip frames taken.
    pub key_frames: u32,
    /// Frame multiplier: 4 or 16.
    pub interpolation_factor: u32,
    /// Denoising steps of the keyframe stage (diffusion).
    pub steps: u32,
    /// Classifier-free guidance scale (diffusion).
    pub guidance_scale: f32,
    /// How far from the reference latents the key frames start, (0, 1] (diffusion).
    pub reference_strength: f32,
    /// A person's story S^D: the story stage is skipped.
    pub story: Option<Vec<String>>,
    /// A person's prompts S^P, one per scene: the prompt stage is skipped.
    pub prompts: Option<Vec<String>>,
    /// Negative prompt for person-supplied prompts.
    pub negative_prompt: String,
    /// Recompute every stage even when its output is cached.
    pub bypass_cache: bool,
}

impl JobSpec {
    /// Checks every field; the error names the field and the limit.
    pub fn validate(&self) -> Result<(), ValidationError> {
        use storyreel_runtime::{config::check_range, text::check_no_control_chars};
        if self.job_id.is_empty()
            || self.job_id.len() > 64
            || !self
                .job_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ValidationError::new(
                "job_id",
                format!("must be 1-64 characters of [A-Za-z0-9_-], got `{}`", self.job_id),
            ));
        }
        check_text("title", &self.title, 1, TITLE_MAX_CHARS)?;
        check_text("style", &self.style, 0, STYLE_MAX_CHARS)?;
        check_range("scenes", self.n_scenes, 1, SCENES_MAX)?;
        for (field, side) in [
            ("resolution (width)", self.output.width),
            ("resolution (height)", self.output.height),
        ] {
            check_range(field, side, SIDE_RANGE.0, SIDE_RANGE.1)?;
            if side % 2 != 0 {
                return Err(ValidationError::new(
                    field,
                    format!("must be even (H.264 4:2:0), got {side}"),
                ));
            }
        }
        if ![1, 2, 4].contains(&self.upscale) {
            return Err(ValidationError::new(
                "upscale",
                format!("must be 1, 2 or 4, got {}", self.upscale),
            ));
        }
        let generation = self.output.generation(self.upscale);
        for (field, side) in [
            ("resolution (width)", generation.width),
            ("resolution (height)", generation.height),
        ] {
            if side > 1024 {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "needs a {side}-pixel side before upscaling, over the video models' 1024; \
                         choose a larger --upscale or a smaller resolution"
                    ),
                ));
            }
        }
        check_range("fps", self.fps, FPS_RANGE.0, FPS_RANGE.1)?;
        check_range("crossfade", self.crossfade_s, 0.0, CROSSFADE_MAX_S)?;
        check_range(
            "key_frames",
            self.key_frames,
            KEY_FRAMES_RANGE.0,
            KEY_FRAMES_RANGE.1,
        )?;
        if ![4, 16].contains(&self.interpolation_factor) {
            return Err(ValidationError::new(
                "interpolation_factor",
                format!("must be 4 or 16, got {}", self.interpolation_factor),
            ));
        }
        check_range("steps", self.steps, STEPS_RANGE.0, STEPS_RANGE.1)?;
        check_range("guidance_scale", self.guidance_scale, 0.0, 30.0)?;
        if !(self.reference_strength > 0.0 && self.reference_strength <= 1.0) {
            return Err(ValidationError::new(
                "reference_strength",
                format!("must be in (0, 1], got {}", self.reference_strength),
            ));
        }
        check_no_control_chars("voice", &self.voice)?;
        check_text("negative_prompt", &self.negative_prompt, 0, PROMPT_MAX_CHARS)?;
        if let Some(story) = &self.story {
            check_scenes("story", story, self.n_scenes, SCENE_TEXT_MAX_CHARS)?;
        }
        if let Some(prompts) = &self.prompts {
            check_scenes("prompts", prompts, self.n_scenes, PROMPT_MAX_CHARS)?;
        }
        Ok(())
    }

    /// The size the video models work at.
    pub fn generation_size(&self) -> FrameSize {
        self.output.generation(self.upscale)
    }
}

fn check_text(field: &str, text: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let chars = text.trim().chars().count();
    if chars < min || chars > max {
        return Err(ValidationError::new(
            field,
            format!("must be {min}-{max} characters, got {chars}"),
        ));
    }
    storyreel_runtime::text::check_no_control_chars(field, text)
}

fn check_scenes(
    field: &str,
    scenes: &[String],
    n_scenes: u32,
    max_chars: usize,
) -> Result<(), ValidationError> {
    if scenes.len() != n_scenes as usize || scenes.is_empty() || scenes.len() > SCENES_MAX as usize {
        return Err(ValidationError::new(
            field,
            format!(
                "must hold one entry per scene (1-{SCENES_MAX}, here {n_scenes}), got {}",
                scenes.len()
            ),
        ));
    }
    for (i, text) in scenes.iter().enumerate() {
        check_text(&format!("{field}[{i}]"), text, 1, max_chars)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> JobSpec {
        JobSpec {
            job_id: "job-1".into(),
            title: "A walk by the sea".into(),
            n_scenes: 2,
            style: String::new(),
            output: FrameSize::output(Resolution::Side(512), Aspect::Landscape),
            upscale: 2,
            backend: BackendChoice::Auto,
            voice: String::new(),
            seed: 7,
            fps: 24,
            crossfade_s: 0.0,
            key_frames: 8,
            interpolation_factor: 4,
            steps: 10,
            guidance_scale: 7.5,
            reference_strength: 0.6,
            story: None,
            prompts: None,
            negative_prompt: String::new(),
            bypass_cache: false,
        }
    }

    #[test]
    fn output_sizes_follow_the_aspect_and_generation_sizes_are_multiples_of_64() {
        let size = |r: &str, a: &str| FrameSize::output(r.parse().unwrap(), a.parse().unwrap());
        assert_eq!(
            size("512", "1:1"),
            FrameSize {
                width: 512,
                height: 512
            }
        );
        assert_eq!(
            size("512", "16:9"),
            FrameSize {
                width: 512,
                height: 288
            }
        );
        assert_eq!(
            size("1024", "9:16"),
            FrameSize {
                width: 576,
                height: 1024
            }
        );
        assert_eq!(
            size("768x448", "16:9"),
            FrameSize {
                width: 768,
                height: 448
            }
        );
        let generation = size("512", "16:9").generation(2);
        assert_eq!(
            generation,
            FrameSize {
                width: 256,
                height: 192
            }
        );
        assert_eq!(
            size("768x448", "1:1").generation(1),
            FrameSize {
                width: 768,
                height: 448
            }
        );
        assert_eq!(
            size("256", "9:16").generation(4),
            FrameSize {
                width: 64,
                height: 64
            }
        );
    }

    #[test]
    fn bad_fields_are_named_with_their_limits() {
        assert!(spec().validate().is_ok());
        type Change = Box<dyn Fn(&mut JobSpec)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|s| s.title = "x".repeat(501)),
                "`title` must be 1-500 characters, got 501",
            ),
            (
                Box::new(|s| s.title = "  ".into()),
                "`title` must be 1-500 characters, got 0",
            ),
            (Box::new(|s| s.n_scenes = 9), "`scenes`"),
            (Box::new(|s| s.upscale = 3), "`upscale` must be 1, 2 or 4, got 3"),
            (Box::new(|s| s.output.width = 4096), "`resolution (width)`"),
            (Box::new(|s| s.fps = 0), "`fps`"),
            (
                Box::new(|s| s.interpolation_factor = 8),
                "`interpolation_factor` must be 4 or 16",
            ),
            (
                Box::new(|s| s.reference_strength = 0.0),
                "`reference_strength` must be in (0, 1]",
            ),
            (Box::new(|s| s.job_id = "a/b".into()), "`job_id`"),
            (
                Box::new(|s| s.story = Some(vec!["one".into()])),
                "`story` must hold one entry per scene (1-8, here 2), got 1",
            ),
            (
                Box::new(|s| s.prompts = Some(vec!["a".into(), String::new()])),
                "`prompts[1]` must be 1-2000 characters, got 0",
            ),
        ];
        for (change, expected) in cases {
            let mut s = spec();
            change(&mut s);
            let message = s.validate().unwrap_err().to_string();
            assert!(message.contains(expected), "{message} lacks {expected}");
        }
    }

    #[test]
    fn choices_parse_and_refuse_unknown_values_by_name() {
        assert_eq!("reference".parse::<BackendChoice>(), Ok(BackendChoice::Reference));
        assert!(
            "fast"
                .parse::<BackendChoice>()
                .unwrap_err()
                .contains("auto, diffusion, reference")
        );
        assert!("4:3".parse::<Aspect>().unwrap_err().contains("1:1, 16:9, 9:16"));
        assert!("big".parse::<Resolution>().unwrap_err().contains("WIDTHxHEIGHT"));
    }
}

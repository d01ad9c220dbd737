//! `storyreel generate`'s options, and the [`JobSpec`] they make with the `[pipeline]`
//! defaults.

use crate::config::PipelineConfig;
use clap::Args;
use std::path::{Path, PathBuf};
use storyreel_pipeline::{
    BackendChoice, JobSpec,
    spec::{Aspect, FrameSize, Resolution},
};

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// The story title S^I (1-500 characters).
    pub title: String,
    /// Number of scenes, 1-8 (default: the story file's length, else [pipeline] scenes).
    #[arg(long)]
    pub scenes: Option<u32>,
    /// The output's longer side in pixels (256, 512, 768 ...) or an exact WIDTHxHEIGHT
    /// (768x448).
    #[arg(long)]
    pub resolution: Option<Resolution>,
    /// Frame shape: 1:1, 16:9 or 9:16.
    #[arg(long)]
    pub aspect: Option<Aspect>,
    /// Frame backend: auto, diffusion or reference.
    #[arg(long)]
    pub backend: Option<BackendChoice>,
    /// Narration voice id (tts ListVoices); default: the tts stage's.
    #[arg(long)]
    pub voice: Option<String>,
    /// Job seed: the same seed and options give the same video. Default: random
    /// (printed, and recorded in the report).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A story to use instead of writing one: a text file, one scene per non-empty line.
    #[arg(long, value_name = "FILE")]
    pub story: Option<PathBuf>,
    /// Diffusion prompts to use instead of writing them: one per scene, one per line.
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// Output directory (default: [pipeline] out_dir).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Real-ESRGAN factor: 1, 2 or 4.
    #[arg(long)]
    pub upscale: Option<u32>,
    /// Output frame rate, 1-60.
    #[arg(long)]
    pub fps: Option<u32>,
    /// Crossfade between scenes in seconds, 0-2 (0: a cut).
    #[arg(long)]
    pub crossfade: Option<f32>,
    /// Key frames per scene, 2-32.
    #[arg(long)]
    pub key_frames: Option<u32>,
    /// Keyframe denoising steps, 1-150 (diffusion backend).
    #[arg(long)]
    pub steps: Option<u32>,
    /// A style hint for the story and the prompts (0-64 characters).
    #[arg(long)]
    pub style: Option<String>,
    /// The job id, 1-64 characters of [A-Za-z0-9_-]; names the output files. Default:
    /// the title's words and the seed.
    #[arg(long)]
    pub job_id: Option<String>,
    /// Recompute every stage even when its output is cached.
    #[arg(long)]
    pub bypass_cache: bool,
}

impl GenerateArgs {
    /// The job of these options; unset options take the config's defaults. The error
    /// names the option.
    pub fn job_spec(&self, config: &PipelineConfig) -> Result<JobSpec, String> {
        let parse = |field: &str, value: &str| format!("[pipeline] {field}: `{value}` is not valid");
        let resolution = match self.resolution {
            Some(r) => r,
            None => config
                .resolution
                .parse()
                .map_err(|_| parse("resolution", &config.resolution))?,
        };
        let aspect = match self.aspect {
            Some(a) => a,
            None => config
                .aspect
                .parse()
                .map_err(|_| parse("aspect", &config.aspect))?,
        };
        let backend = match self.backend {
            Some(b) => b,
            None => config
                .backend
                .parse()
                .map_err(|_| parse("backend", &config.backend))?,
        };
        let story = self
            .story
            .as_deref()
            .map(|p| read_lines("--story", p))
            .transpose()?;
        let prompts = self
            .prompts
            .as_deref()
            .map(|p| read_lines("--prompts", p))
            .transpose()?;
        let n_scenes = self
            .scenes
            .or(story.as_ref().map(|s| s.len() as u32))
            .or(prompts.as_ref().map(|p| p.len() as u32))
            .unwrap_or(config.scenes);
        let seed = self.seed.unwrap_or_else(rand::random);
        Ok(JobSpec {
            job_id: self.job_id.clone().unwrap_or_else(|| job_id(&self.title, seed)),
            title: self.title.trim().to_string(),
            n_scenes,
            style: self.style.clone().unwrap_or_default(),
            output: FrameSize::output(resolution, aspect),
            upscale: self.upscale.unwrap_or(config.upscale),
            backend,
            voice: self.voice.clone().unwrap_or_else(|| config.voice.clone()),
            seed,
            fps: self.fps.unwrap_or(config.fps),
            crossfade_s: self.crossfade.unwrap_or(config.crossfade_s),
            key_frames: self.key_frames.unwrap_or(config.key_frames),
            interpolation_factor: config.interpolation_factor,
            steps: self.steps.unwrap_or(config.steps),
            guidance_scale: config.guidance_scale,
            reference_strength: config.reference_strength,
            story,
            prompts,
            negative_prompt: config.negative_prompt.clone(),
            bypass_cache: self.bypass_cache,
        })
    }
}

/// A file's non-empty lines, trimmed.
fn read_lines(option: &str, path: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{option} {}: {e}", path.display()))?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        return Err(format!(
            "{option} {}: the file holds no scene (one per line)",
            path.display()
        ));
    }
    Ok(lines)
}

/// `<title words>-<seed>`: readable, and distinct per seed. The words are cut at a
/// word boundary within 40 characters.
pub fn job_id(title: &str, seed: u64) -> String {
    let mut slug = String::new();
    for word in title
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_ascii_lowercase();
        let extra = word.len() + usize::from(!slug.is_empty());
        if slug.len() + extra > 40 {
            if slug.is_empty() {
                slug = word[..40].to_string();
            }
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.push_str(&word);
    }
    if slug.is_empty() {
        format!("job-{seed:016x}")
    } else {
        format!("{slug}-{seed:016x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<GenerateArgs, clap::Error> {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: GenerateArgs,
        }
        let argv = std::iter::once("storyreel").chain(args.iter().copied());
        Wrapper::try_parse_from(argv).map(|w| w.args)
    }

    #[test]
    fn options_override_the_config_defaults() {
        let args = parse(&[
            "A day at sea",
            "--scenes",
            "2",
            "--resolution",
            "256",
            "--aspect",
            "9:16",
            "--seed",
            "5",
        ])
        .unwrap();
        let spec = args.job_spec(&PipelineConfig::default()).unwrap();
        assert_eq!(spec.n_scenes, 2);
        assert_eq!(
            spec.output,
            FrameSize {
                width: 144,
                height: 256
            }
        );
        assert_eq!(spec.job_id, "a-day-at-sea-0000000000000005");
        assert_eq!(spec.backend, BackendChoice::Auto);
        spec.validate().unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_the_option_named() {
        let err = parse(&["t", "--aspect", "4:3"]).unwrap_err().to_string();
        assert!(
            err.contains("--aspect") && err.contains("1:1, 16:9, 9:16"),
            "{err}"
        );
        let err = parse(&["t", "--backend", "fast"]).unwrap_err().to_string();
        assert!(err.contains("--backend"), "{err}");
        let missing = parse(&["t", "--story", "/nonexistent/story.txt"]).unwrap();
        let err = missing.job_spec(&PipelineConfig::default()).unwrap_err();
        assert!(err.starts_with("--story /nonexistent/story.txt"), "{err}");
    }

    #[test]
    fn job_ids_are_slugs_with_the_seed() {
        assert_eq!(
            job_id("Eight Great Wonders (4 each)!", 1),
            "eight-great-wonders-4-each-0000000000000001"
        );
        assert_eq!(job_id("¿?", 2), "job-0000000000000002");
        assert!(job_id(&"word ".repeat(30), 3).len() <= 64);
        assert_eq!(
            job_id("Eight Great Wonders of the China and World (4 each)", 7),
            "eight-great-wonders-of-the-china-and-0000000000000007"
        );
        assert_eq!(job_id(&"x".repeat(60), 1).len(), 40 + 17);
    }
}

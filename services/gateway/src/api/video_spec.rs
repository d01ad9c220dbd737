//! A CreateVideo request's `VideoSpec` as a [`JobSpec`]: unset fields take the
//! `[pipeline]` defaults, every field is checked, and the error names the field (as the
//! proto names it) and the limit. The resolved spec goes back into the job, seed
//! included, so the job can be made again.

use crate::config::PipelineConfig;
use storyreel_pipeline::{
    BackendChoice, JobSpec,
    spec::{Aspect, FrameSize, Resolution},
};
use storyreel_proto::{common, gateway::VideoSpec};
use storyreel_runtime::ValidationError;

fn invalid(field: &str, message: impl Into<String>) -> ValidationError {
    ValidationError::new(format!("spec.{field}"), message)
}

/// The job of `video`, and `video` with every default resolved.
pub fn resolve(
    video: &VideoSpec,
    config: &PipelineConfig,
    job_id: &str,
    random_seed: u64,
) -> Result<(JobSpec, VideoSpec), ValidationError> {
    let default_side = |field: &str, value: &str| {
        value
            .parse::<Resolution>()
            .map_err(|_| invalid(field, format!("the [pipeline] default `{value}` is not valid")))
    };
    let resolution = match common::Resolution::try_from(video.resolution) {
        Ok(common::Resolution::Unspecified) => default_side("resolution", &config.resolution)?,
        Ok(common::Resolution::Resolution256) => Resolution::Side(256),
        Ok(common::Resolution::Resolution512) => Resolution::Side(512),
        Ok(common::Resolution::Resolution768) => Resolution::Side(768),
        Err(_) => {
            return Err(invalid(
                "resolution",
                format!("must be RESOLUTION_256, _512 or _768, got {}", video.resolution),
            ));
        }
    };
    let aspect_text = if video.aspect.is_empty() {
        &config.aspect
    } else {
        &video.aspect
    };
    let aspect: Aspect = aspect_text
        .parse()
        .map_err(|e| invalid("aspect", format!("{e} (1:1, 16:9 or 9:16)")))?;
    let backend_text = if video.backend.is_empty() {
        &config.backend
    } else {
        &video.backend
    };
    let backend: BackendChoice = backend_text
        .parse()
        .map_err(|e| invalid("backend", format!("{e} (auto, diffusion or reference)")))?;
    let story = (!video.story.is_empty()).then(|| video.story.clone());
    let prompts = (!video.prompts.is_empty()).then(|| video.prompts.clone());
    let n_scenes = video
        .n_scenes
        .or(story.as_ref().map(|s| s.len() as u32))
        .or(prompts.as_ref().map(|p| p.len() as u32))
        .unwrap_or(config.scenes);
    if !video.language.is_empty() && !video.language.eq_ignore_ascii_case("en") {
        return Err(invalid(
            "language",
            format!(
                "must be `en` (the only language of the default models), got `{}`",
                video.language
            ),
        ));
    }
    let fps = match video.fps {
        None => config.fps,
        Some(fps) if fps.fract() == 0.0 && (1.0..=60.0).contains(&fps) => fps as u32,
        Some(fps) => return Err(invalid("fps", format!("must be a whole number 1-60, got {fps}"))),
    };
    let interpolation_factor = video.interpolation_factor.unwrap_or(config.interpolation_factor);
    let spec = JobSpec {
        job_id: job_id.to_string(),
        title: video.title.trim().to_string(),
        n_scenes,
        style: video.style.clone(),
        output: FrameSize::output(resolution, aspect),
        upscale: video.upscale.unwrap_or(config.upscale),
        backend,
        voice: if video.voice.is_empty() {
            config.voice.clone()
        } else {
            video.voice.clone()
        },
        seed: video.seed.unwrap_or(random_seed),
        fps,
        crossfade_s: video.crossfade_s.unwrap_or(config.crossfade_s),
        key_frames: video.key_frames.unwrap_or(config.key_frames),
        interpolation_factor,
        steps: video.steps.unwrap_or(config.steps),
        guidance_scale: video.guidance_scale.unwrap_or(config.guidance_scale),
        reference_strength: video.reference_strength.unwrap_or(config.reference_strength),
        story,
        prompts,
        negative_prompt: if video.negative_prompt.is_empty() {
            config.negative_prompt.clone()
        } else {
            video.negative_prompt.clone()
        },
        bypass_cache: false,
    };
    spec.validate().map_err(|e| {
        let field = e.field.split(' ').next().unwrap_or(&e.field).to_string();
        let proto_field = match field.as_str() {
            "scenes" => "n_scenes",
            "crossfade" => "crossfade_s",
            other => other,
        };
        invalid(proto_field, e.message.clone())
    })?;
    let resolved = VideoSpec {
        title: spec.title.clone(),
        n_scenes: Some(spec.n_scenes),
        style: spec.style.clone(),
        language: "en".into(),
        resolution: video.resolution,
        key_frames: Some(spec.key_frames),
        steps: Some(spec.steps),
        guidance_scale: Some(spec.guidance_scale),
        scheduler: video.scheduler,
        seed: Some(spec.seed),
        negative_prompt: spec.negative_prompt.clone(),
        use_references: video.use_references,
        reference_strength: Some(spec.reference_strength),
        interpolation_factor: Some(spec.interpolation_factor),
        interpolation_space: video.interpolation_space,
        upsample_mode: video.upsample_mode,
        voice: spec.voice.clone(),
        speaking_rate: video.speaking_rate,
        fps: Some(spec.fps as f32),
        model_pins: video.model_pins.clone(),
        backend: backend_text.trim().to_ascii_lowercase(),
        aspect: aspect_text.trim().to_string(),
        upscale: Some(spec.upscale),
        story: video.story.clone(),
        prompts: video.prompts.clone(),
        crossfade_s: Some(spec.crossfade_s),
    };
    Ok((spec, resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(title: &str) -> VideoSpec {
        VideoSpec {
            title: title.into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_come_from_the_config_and_are_resolved() {
        let (spec, resolved) =
            resolve(&video("A lighthouse"), &PipelineConfig::default(), "job-1", 7).unwrap();
        assert_eq!(spec.n_scenes, 4);
        assert_eq!(spec.seed, 7);
        assert_eq!(resolved.seed, Some(7));
        assert_eq!(resolved.aspect, "16:9");
        assert_eq!(resolved.backend, "auto");
    }

    #[test]
    fn bad_fields_are_named_with_their_limit() {
        let config = PipelineConfig::default();
        let cases: [(VideoSpec, &str); 5] = [
            (video(&"x".repeat(501)), "spec.title"),
            (
                VideoSpec {
                    n_scenes: Some(9),
                    ..video("t")
                },
                "spec.n_scenes",
            ),
            (
                VideoSpec {
                    aspect: "4:3".into(),
                    ..video("t")
                },
                "spec.aspect",
            ),
            (
                VideoSpec {
                    fps: Some(24.5),
                    ..video("t")
                },
                "spec.fps",
            ),
            (
                VideoSpec {
                    steps: Some(0),
                    ..video("t")
                },
                "spec.steps",
            ),
        ];
        for (video, field) in cases {
            let error = resolve(&video, &config, "job-1", 1).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
    }
}

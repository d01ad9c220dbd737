//! Wire request -> [`KeyframeRequest`]: every limit and default of `keyframe.proto`,
//! checked before any work. Each error names the field and the limit.

use crate::{
    KeyframeConfig,
    config::limits,
    error::KeyframeError,
    service::{KeyframeRequest, Reference},
};
use storyreel_proto::{
    common::{self, Stage},
    keyframe::GenerateRequest,
};
use storyreel_runtime::seed;
use storyreel_runtime::{
    ValidationError,
    config::check_range,
    job::validate_context,
    tensor_ref,
    text::{check_no_control_chars, check_trimmed_len},
};
use storyreel_stage::scheduler::SchedulerChoice;
use storyreel_tensors::DType;

/// CLIP's context: prompts longer than this are refused, not cut.
pub const MAX_CLIP_TOKENS: usize = 77;
/// Characters of a prompt, before its tokens are counted.
pub const PROMPT_MAX_CHARS: usize = 2000;

/// A frame side: a multiple of 64 in 64-1024.
pub fn check_side(field: &str, side: u32) -> Result<(), ValidationError> {
    if !(limits::SIDE_MIN..=limits::SIDE_MAX).contains(&side) || !side.is_multiple_of(limits::SIDE_MULTIPLE) {
        return Err(ValidationError::new(
            field,
            format!(
                "must be a multiple of {} between {} and {}, got {side}",
                limits::SIDE_MULTIPLE,
                limits::SIDE_MIN,
                limits::SIDE_MAX
            ),
        ));
    }
    Ok(())
}

/// Validates a Generate request; `count_tokens` counts a text's CLIP tokens (start and end
/// included).
pub fn validate_generate(
    request: GenerateRequest,
    config: &KeyframeConfig,
    count_tokens: &dyn Fn(&str) -> Result<usize, String>,
) -> Result<KeyframeRequest, KeyframeError> {
    let GenerateRequest {
        context,
        prompt,
        negative_prompt,
        seed,
        steps,
        guidance_scale,
        scheduler,
        size,
        n_frames,
        reference_latents,
        reference_strength,
        preview_every,
    } = request;
    let prompt = check_trimmed_len("prompt", &prompt, 1, PROMPT_MAX_CHARS)?.to_string();
    check_no_control_chars("prompt", &prompt)?;
    let negative_prompt = negative_prompt.trim().to_string();
    check_no_control_chars("negative_prompt", &negative_prompt)?;
    for (field, text) in [("prompt", &prompt), ("negative_prompt", &negative_prompt)] {
        let tokens = count_tokens(text).map_err(KeyframeError::Model)?;
        if tokens > MAX_CLIP_TOKENS {
            return Err(ValidationError::new(
                field,
                format!(
                    "must be at most {MAX_CLIP_TOKENS} CLIP tokens (start and end included), got {tokens}"
                ),
            )
            .into());
        }
    }

    let steps = steps.unwrap_or(config.default_steps);
    check_range("steps", steps, 1, limits::STEPS_MAX)?;
    let guidance_scale = guidance_scale.unwrap_or(config.default_guidance_scale);
    check_range("guidance_scale", guidance_scale, 0.0, limits::GUIDANCE_MAX)?;
    let scheduler = SchedulerChoice::from_wire(scheduler)?;

    let (width, height) = match size {
        Some(common::FrameSize { width, height }) => (width, height),
        None => (config.default_width, config.default_height),
    };
    check_side("size.width", width)?;
    check_side("size.height", height)?;
    let frames = n_frames.unwrap_or(config.default_frames);
    check_range("n_frames", frames, 1, limits::FRAMES_MAX)?;
    let pixels = frames as u64 * width as u64 * height as u64;
    if pixels > config.max_frame_pixels {
        return Err(KeyframeError::OverBudget {
            what: format!("`n_frames` x `size`: {frames} frames of {width}x{height}"),
            pixels,
            limit: config.max_frame_pixels,
            advice: "ask for fewer frames or a smaller size",
        });
    }

    let reference = match reference_latents {
        None => {
            if reference_strength.is_some() {
                return Err(ValidationError::new(
                    "reference_strength",
                    "is only valid with `reference_latents`",
                )
                .into());
            }
            None
        }
        Some(wire) => {
            let latents = tensor_ref::from_wire("reference_latents", &wire)?;
            if !matches!(latents.dtype, DType::F32 | DType::F16) {
                return Err(ValidationError::new(
                    "reference_latents.dtype",
                    format!("must be f32 or f16, got {:?}", latents.dtype),
                )
                .into());
            }
            let (h, w) = (height as usize / 8, width as usize / 8);
            let fits = |f: usize| latents.shape == [1, 4, f, h, w];
            if !fits(frames as usize) && !fits(1) {
                return Err(ValidationError::new(
                    "reference_latents.shape",
                    format!(
                        "must be [1, 4, {frames}, {h}, {w}] or [1, 4, 1, {h}, {w}] for {frames} frames of {width}x{height}, got {:?}",
                        latents.shape
                    ),
                )
                .into());
            }
            let strength = reference_strength.unwrap_or(config.default_reference_strength);
            if !(strength > 0.0 && strength <= 1.0) {
                return Err(ValidationError::new(
                    "reference_strength",
                    format!("must be in (0, 1], got {strength}"),
                )
                .into());
            }
            if (steps as f32 * strength).floor() < 1.0 {
                return Err(ValidationError::new(
                    "reference_strength",
                    format!("{strength} x {steps} steps leaves no step to run: raise one of them"),
                )
                .into());
            }
            Some(Reference { latents, strength })
        }
    };

    let preview_every = preview_every.unwrap_or(0);
    check_range("preview_every", preview_every, 0, limits::STEPS_MAX)?;
    let (job, deadline) = validate_context(context)?;
    let (seed, seed_origin) = seed::choose(seed, job.seed, Stage::Keyframe);
    Ok(KeyframeRequest {
        prompt,
        negative_prompt,
        seed,
        seed_origin,
        steps,
        guidance_scale,
        scheduler,
        width,
        height,
        frames,
        reference,
        preview_every,
        deadline,
        job,
    })
}

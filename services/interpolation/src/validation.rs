//! Wire request -> [`InterpolateRequest`]: every limit of `interpolation.proto`, from the
//! key frames' ref (dtype, shape) before they are read. Each error names the field and
//! the limit.

use crate::{
    InterpolateConfig,
    error::InterpolationError,
    service::{InterpolateRequest, Space},
};
use storyreel_proto::{
    common::{self, Stage},
    interpolation::InterpolateRequest as WireRequest,
};
use storyreel_runtime::seed;
use storyreel_runtime::{
    ValidationError, config::check_range, job::validate_context, tensor_ref, text::check_no_control_chars,
};
use storyreel_stage::scheduler::SchedulerChoice;
use storyreel_tensors::DType;

/// CLIP's context: longer prompts are refused, not cut.
pub const MAX_CLIP_TOKENS: usize = 77;

fn invalid(field: &str, message: String) -> InterpolationError {
    ValidationError::new(field, message).into()
}

pub fn validate_interpolate(
    request: WireRequest,
    config: &InterpolateConfig,
    count_tokens: &dyn Fn(&str) -> Result<usize, String>,
) -> Result<InterpolateRequest, InterpolationError> {
    let WireRequest {
        context,
        key_frames,
        factor,
        space,
        prompt,
        seed,
        steps,
        scheduler,
    } = request;
    let space = match common::InterpolationSpace::try_from(space) {
        Ok(common::InterpolationSpace::Unspecified | common::InterpolationSpace::Latent) => Space::Latent,
        Ok(common::InterpolationSpace::Pixel) => Space::Pixel,
        Err(_) => return Err(invalid("space", format!("must be LATENT or PIXEL, got {space}"))),
    };
    let factor = factor.unwrap_or(config.default_factor);
    if !matches!(factor, 4 | 16) {
        return Err(invalid("factor", format!("must be 4 or 16, got {factor}")));
    }
    let key_frames = key_frames.ok_or_else(|| invalid("key_frames", "must be set".into()))?;
    let key_frames = tensor_ref::from_wire("key_frames", &key_frames)?;
    let shape = key_frames.shape.clone();
    // output frames, and the pixels of one (latents count 64 pixels each)
    let (t, frame_pixels) = match space {
        Space::Latent => {
            if !matches!(key_frames.dtype, DType::F32 | DType::F16) {
                return Err(invalid(
                    "key_frames.dtype",
                    format!(
                        "must be f32 or f16 latents in LATENT space, got {}",
                        key_frames.dtype.as_str()
                    ),
                ));
            }
            match shape[..] {
                [1, 4, t, h, w]
                    if (2..=64).contains(&t) && (8..=128).contains(&h) && (8..=128).contains(&w) =>
                {
                    (t, 64 * h * w)
                }
                _ => {
                    return Err(invalid(
                        "key_frames.shape",
                        format!(
                            "must be (1, 4, T, h, w) with T 2-64, h and w 8-128 in LATENT space, got {shape:?}"
                        ),
                    ));
                }
            }
        }
        Space::Pixel => {
            if key_frames.dtype != DType::U8 {
                return Err(invalid(
                    "key_frames.dtype",
                    format!(
                        "must be u8 pixels in PIXEL space, got {}",
                        key_frames.dtype.as_str()
                    ),
                ));
            }
            match shape[..] {
                [t, 3, h, w]
                    if (2..=64).contains(&t) && (16..=1024).contains(&h) && (16..=1024).contains(&w) =>
                {
                    (t, h * w)
                }
                _ => {
                    return Err(invalid(
                        "key_frames.shape",
                        format!(
                            "must be (T, 3, H, W) with T 2-64, H and W 16-1024 in PIXEL space, got {shape:?}"
                        ),
                    ));
                }
            }
        }
    };
    let frames = ((t - 1) * factor as usize + 1) as u64;
    let pixels = frames * frame_pixels as u64;
    if pixels > config.max_frame_pixels {
        return Err(InterpolationError::OverBudget {
            what: format!("the output: {frames} frames of {frame_pixels} pixels"),
            pixels,
            limit: config.max_frame_pixels,
            advice: "send fewer key frames, smaller ones, or ask for factor 4",
        });
    }
    let prompt = prompt.trim().to_string();
    check_no_control_chars("prompt", &prompt)?;
    let tokens = count_tokens(&prompt).map_err(InterpolationError::Model)?;
    if tokens > MAX_CLIP_TOKENS {
        return Err(invalid(
            "prompt",
            format!("must be at most {MAX_CLIP_TOKENS} CLIP tokens (start and end included), got {tokens}"),
        ));
    }
    let steps = steps.unwrap_or(config.default_steps);
    check_range("steps", steps, 1, 150)?;
    let scheduler = SchedulerChoice::from_wire(scheduler)?;
    let (job, deadline) = validate_context(context)?;
    let (seed, seed_origin) = seed::choose(seed, job.seed, Stage::Interpolation);
    Ok(InterpolateRequest {
        job,
        deadline,
        key_frames,
        space,
        factor,
        prompt,
        seed,
        seed_origin,
        steps,
        scheduler,
    })
}

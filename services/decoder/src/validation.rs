//! Wire requests -> typed requests: every limit of `decoder.proto`, from the input
//! tensor's dtype and shape (known from its ref, before it is read), checked before any
//! work. Each error names the field and the limit.

use crate::{
    DecoderConfig,
    error::DecoderError,
    service::{DecodeRequest, DiffusionUpscale, EncodeRequest, UpsampleRequest, Upsampler},
};
use storyreel_nn::realesrgan::RealEsrganModel;
use storyreel_proto::{
    common::{self, Stage},
    decoder,
};
use storyreel_runtime::seed;
use storyreel_runtime::{
    JobInfo, ValidationError,
    config::check_range,
    job::validate_context,
    tensor_ref,
    text::{check_max_chars, check_no_control_chars},
};
use storyreel_stage::scheduler::SchedulerChoice;
use storyreel_tensors::{DType, TensorRef};

/// The limits and defaults of `DiffusionUpscaleParams` (decoder.proto).
pub mod diffusion_limits {
    /// CLIP's context: prompts longer than this are refused, not cut.
    pub const MAX_CLIP_TOKENS: usize = 77;
    /// Characters of a prompt, before its tokens are counted.
    pub const PROMPT_MAX_CHARS: usize = 2000;
    pub const STEPS_MAX: u32 = 150;
    pub const DEFAULT_STEPS: u32 = 20;
    pub const GUIDANCE_MAX: f32 = 30.0;
    pub const DEFAULT_GUIDANCE: f32 = 9.0;
    pub const NOISE_LEVEL_MAX: u32 = 350;
    pub const DEFAULT_NOISE_LEVEL: u32 = 20;
    /// The output over the input size.
    pub const SCALE: usize = 4;
}

fn invalid(field: &str, message: String) -> DecoderError {
    ValidationError::new(field, message).into()
}

/// The input ref named `field`: present, of one of `dtypes`, of rank 4 or 5.
fn input(field: &str, wire: Option<common::TensorRef>, dtypes: &[DType]) -> Result<TensorRef, DecoderError> {
    let wire = wire.ok_or_else(|| invalid(field, "must be set".into()))?;
    let input = tensor_ref::from_wire(field, &wire)?;
    if !dtypes.contains(&input.dtype) {
        let names: Vec<&str> = dtypes.iter().map(|d| d.as_str()).collect();
        return Err(invalid(
            &format!("{field}.dtype"),
            format!("must be {}, got {}", names.join(" or "), input.dtype.as_str()),
        ));
    }
    Ok(input)
}

/// u8 RGB pixels (F, 3, H, W) within the given limits.
fn pixels_shape(
    field: &str,
    pixels: &TensorRef,
    frames: (usize, usize),
    side: (usize, usize),
    multiple: usize,
) -> Result<(usize, usize, usize), DecoderError> {
    let shape = &pixels.shape;
    let ok = matches!(shape[..], [f, 3, h, w]
        if (frames.0..=frames.1).contains(&f)
            && [h, w].iter().all(|s| (side.0..=side.1).contains(s) && s % multiple == 0));
    if !ok {
        return Err(invalid(
            &format!("{field}.shape"),
            format!(
                "must be (F, 3, H, W) with F {}-{}, H and W {}-{}{}, got {shape:?}",
                frames.0,
                frames.1,
                side.0,
                side.1,
                if multiple > 1 {
                    format!(" and multiples of {multiple}")
                } else {
                    String::new()
                }
            ),
        ));
    }
    Ok((shape[0], shape[2], shape[3]))
}

fn budget(config: &DecoderConfig, what: String, pixels: u64) -> Result<(), DecoderError> {
    if pixels > config.max_frame_pixels {
        return Err(DecoderError::OverBudget {
            what,
            pixels,
            limit: config.max_frame_pixels,
            advice: "send fewer or smaller frames",
        });
    }
    Ok(())
}

pub fn validate_encode(
    request: decoder::EncodeRequest,
    config: &DecoderConfig,
) -> Result<EncodeRequest, DecoderError> {
    let decoder::EncodeRequest {
        context,
        pixels,
        sample_posterior,
        seed,
        latent_dtype,
    } = request;
    let pixels = input("pixels", pixels, &[DType::U8])?;
    let (f, h, w) = pixels_shape("pixels", &pixels, (1, 64), (64, 1024), 8)?;
    budget(
        config,
        format!("`pixels`: {f} frames of {w}x{h}"),
        (f * h * w) as u64,
    )?;
    let latent_dtype = match common::Dtype::try_from(latent_dtype) {
        Ok(common::Dtype::Unspecified | common::Dtype::F32) => DType::F32,
        Ok(common::Dtype::F16) => DType::F16,
        _ => {
            return Err(invalid(
                "latent_dtype",
                format!("must be F32 or F16, got {latent_dtype}"),
            ));
        }
    };
    let (job, deadline) = validate_context(context)?;
    let (seed, seed_origin) = seed::choose(seed, job.seed, Stage::ReferenceEncode);
    Ok(EncodeRequest {
        sample_seed: sample_posterior.then_some(seed),
        seed_origin,
        job,
        deadline,
        pixels,
        latent_dtype,
    })
}

pub fn validate_decode(
    request: decoder::DecodeRequest,
    config: &DecoderConfig,
) -> Result<DecodeRequest, DecoderError> {
    let decoder::DecodeRequest {
        context,
        latents,
        slice_frames,
    } = request;
    let latents = input("latents", latents, &[DType::F32, DType::F16])?;
    let ok = matches!(latents.shape[..], [1, 4, f, h, w]
        if (1..=1024).contains(&f) && (8..=128).contains(&h) && (8..=128).contains(&w));
    if !ok {
        return Err(invalid(
            "latents.shape",
            format!(
                "must be (1, 4, F, h, w) with F 1-1024, h and w 8-128, got {:?}",
                latents.shape
            ),
        ));
    }
    let (f, h, w) = (latents.shape[2], latents.shape[3] * 8, latents.shape[4] * 8);
    budget(
        config,
        format!("the decoded `latents`: {f} frames of {w}x{h}"),
        (f * h * w) as u64,
    )?;
    let slice_frames = slice_frames.unwrap_or(config.default_slice_frames);
    check_range("slice_frames", slice_frames, 1, 64)?;
    let (job, deadline) = validate_context(context)?;
    Ok(DecodeRequest {
        job,
        deadline,
        latents,
        slice_frames,
    })
}

/// Validates an Upsample request; `count_tokens` counts a text's CLIP tokens (start and
/// end included) by the diffusion upscaler's tokenizer.
pub fn validate_upsample(
    request: decoder::UpsampleRequest,
    config: &DecoderConfig,
    count_tokens: &dyn Fn(&str) -> Result<usize, String>,
) -> Result<UpsampleRequest, DecoderError> {
    let decoder::UpsampleRequest {
        context,
        pixels,
        mode,
        tile_size,
        tile_overlap,
        diffusion,
    } = request;
    let pixels = input("pixels", pixels, &[DType::U8])?;
    let (f, h, w) = pixels_shape("pixels", &pixels, (1, 1024), (16, 1024), 1)?;
    let scale = match common::UpsampleMode::try_from(mode) {
        Ok(common::UpsampleMode::Unspecified | common::UpsampleMode::None) => None,
        Ok(common::UpsampleMode::RealesrganX2) => Some(RealEsrganModel::AnimeVideoV3X2.scale() as usize),
        Ok(common::UpsampleMode::RealesrganX4) => Some(RealEsrganModel::X4Plus.scale() as usize),
        Ok(common::UpsampleMode::DiffusionX4) => Some(diffusion_limits::SCALE),
        Err(_) => return Err(invalid("mode", format!("must be an UpsampleMode, got {mode}"))),
    };
    if let Some(s) = scale {
        budget(
            config,
            format!("the upsampled `pixels`: {f} frames of {}x{}", s * w, s * h),
            (f * s * s * h * w) as u64,
        )?;
    }
    let tile_size = tile_size.unwrap_or(config.default_tile_size);
    check_range("tile_size", tile_size, 32, 1024)?;
    let tile_overlap = tile_overlap.unwrap_or(config.default_tile_overlap);
    check_range("tile_overlap", tile_overlap, 0, 64)?;
    if tile_overlap * 2 >= tile_size {
        return Err(invalid(
            "tile_overlap",
            format!("must be under half of `tile_size` ({tile_size}), got {tile_overlap}"),
        ));
    }
    let (job, deadline) = validate_context(context)?;
    let upsampler = match common::UpsampleMode::try_from(mode) {
        Ok(common::UpsampleMode::RealesrganX2) => Upsampler::RealEsrgan(RealEsrganModel::AnimeVideoV3X2),
        Ok(common::UpsampleMode::RealesrganX4) => Upsampler::RealEsrgan(RealEsrganModel::X4Plus),
        Ok(common::UpsampleMode::DiffusionX4) => Upsampler::Diffusion(validate_diffusion(
            diffusion.unwrap_or_default(),
            &job,
            count_tokens,
        )?),
        _ => Upsampler::None,
    };
    Ok(UpsampleRequest {
        job,
        deadline,
        pixels,
        upsampler,
        tile_size,
        tile_overlap,
    })
}

/// `DiffusionUpscaleParams`: every field named `diffusion.<field>` in errors.
fn validate_diffusion(
    params: decoder::DiffusionUpscaleParams,
    job: &JobInfo,
    count_tokens: &dyn Fn(&str) -> Result<usize, String>,
) -> Result<DiffusionUpscale, DecoderError> {
    use diffusion_limits as limits;
    let decoder::DiffusionUpscaleParams {
        prompt,
        negative_prompt,
        steps,
        guidance_scale,
        noise_level,
        seed,
        scheduler,
    } = params;
    let (prompt, negative_prompt) = (prompt.trim().to_string(), negative_prompt.trim().to_string());
    for (field, text) in [
        ("diffusion.prompt", &prompt),
        ("diffusion.negative_prompt", &negative_prompt),
    ] {
        check_max_chars(field, text, limits::PROMPT_MAX_CHARS)?;
        check_no_control_chars(field, text)?;
        let tokens = count_tokens(text).map_err(DecoderError::Model)?;
        if tokens > limits::MAX_CLIP_TOKENS {
            return Err(invalid(
                field,
                format!(
                    "must be at most {} CLIP tokens (start and end included), got {tokens}",
                    limits::MAX_CLIP_TOKENS
                ),
            ));
        }
    }
    let steps = steps.unwrap_or(limits::DEFAULT_STEPS);
    check_range("diffusion.steps", steps, 1, limits::STEPS_MAX)?;
    let guidance_scale = guidance_scale.unwrap_or(limits::DEFAULT_GUIDANCE);
    check_range(
        "diffusion.guidance_scale",
        guidance_scale,
        0.0,
        limits::GUIDANCE_MAX,
    )?;
    let noise_level = noise_level.unwrap_or(limits::DEFAULT_NOISE_LEVEL);
    check_range("diffusion.noise_level", noise_level, 0, limits::NOISE_LEVEL_MAX)?;
    let scheduler = SchedulerChoice::from_wire(scheduler).map_err(|e| e.within("diffusion"))?;
    let (seed, seed_origin) = seed::choose(seed, job.seed, Stage::Upsample);
    Ok(DiffusionUpscale {
        prompt,
        negative_prompt,
        steps,
        guidance_scale,
        noise_level,
        seed,
        seed_origin,
        scheduler,
    })
}

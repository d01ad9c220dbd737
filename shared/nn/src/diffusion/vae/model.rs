//! diffusers' `AutoencoderKL`: `encoder` (pixels -> mean and log-variance of the latent
//! Gaussian), `quant_conv`, `post_quant_conv`, `decoder` (latents -> pixels).
//!
//! VarStore paths: `encoder.{conv_in, down_blocks.N, mid_block, conv_norm_out, conv_out}`,
//! `decoder.{conv_in, mid_block, up_blocks.N, conv_norm_out, conv_out}`, `quant_conv`,
//! `post_quant_conv`; the mid blocks' attention in either naming.

use std::path::Path;

use tch::{Device, Kind, Tensor, nn, nn::Module};

use super::{
    AutoencoderKLConfig,
    blocks::{DownEncoderBlock, MidBlock2D, UpDecoderBlock},
};
use crate::{
    DType, DeviceSpec,
    diffusion::{
        AttentionNaming, DiffusionError,
        resnet::ResnetOptions,
        unet::model::{finish_loading, var_store},
    },
    layers::{conv2d, group_norm},
};

fn resnet_template(c: &AutoencoderKLConfig) -> ResnetOptions {
    ResnetOptions {
        in_channels: 0,
        out_channels: 0,
        temb_channels: None,
        groups: c.norm_num_groups,
        eps: 1e-6,
        act: c.act_fn,
        output_scale_factor: 1.0,
    }
}

#[derive(Debug)]
struct Encoder {
    conv_in: nn::Conv2D,
    down_blocks: Vec<DownEncoderBlock>,
    mid_block: MidBlock2D,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl Encoder {
    fn new(p: nn::Path, c: &AutoencoderKLConfig, naming: AttentionNaming) -> Self {
        let ch = &c.block_out_channels;
        let n = ch.len();
        let template = resnet_template(c);
        let db = &p / "down_blocks";
        let mut out = ch[0];
        let down_blocks = (0..n)
            .map(|i| {
                let cin = out;
                out = ch[i];
                DownEncoderBlock::new(&db / i as i64, c.layers_per_block, cin, out, i < n - 1, template)
            })
            .collect();
        let last = ch[n - 1];
        Encoder {
            conv_in: conv2d(&p / "conv_in", c.in_channels, ch[0], 3, 1, 1),
            down_blocks,
            mid_block: MidBlock2D::new(
                &p / "mid_block",
                last,
                c.mid_block_add_attention,
                template,
                naming,
            ),
            conv_norm_out: group_norm(&p / "conv_norm_out", c.norm_num_groups, last, 1e-6),
            conv_out: conv2d(&p / "conv_out", last, 2 * c.latent_channels, 3, 1, 1),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = self.conv_in.forward(xs);
        for b in &self.down_blocks {
            h = b.forward(&h);
        }
        h = self.mid_block.forward(&h);
        self.conv_out.forward(&self.conv_norm_out.forward(&h).silu())
    }
}

#[derive(Debug)]
struct Decoder {
    conv_in: nn::Conv2D,
    mid_block: MidBlock2D,
    up_blocks: Vec<UpDecoderBlock>,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl Decoder {
    fn new(p: nn::Path, c: &AutoencoderKLConfig, naming: AttentionNaming) -> Self {
        let reversed: Vec<i64> = c.block_out_channels.iter().rev().copied().collect();
        let n = reversed.len();
        let template = resnet_template(c);
        let ub = &p / "up_blocks";
        let mut out = reversed[0];
        let up_blocks = (0..n)
            .map(|i| {
                let prev = out;
                out = reversed[i];
                UpDecoderBlock::new(
                    &ub / i as i64,
                    c.layers_per_block + 1,
                    prev,
                    out,
                    i < n - 1,
                    template,
                )
            })
            .collect();
        let first = c.block_out_channels[0];
        Decoder {
            conv_in: conv2d(&p / "conv_in", c.latent_channels, reversed[0], 3, 1, 1),
            mid_block: MidBlock2D::new(
                &p / "mid_block",
                reversed[0],
                c.mid_block_add_attention,
                template,
                naming,
            ),
            up_blocks,
            conv_norm_out: group_norm(&p / "conv_norm_out", c.norm_num_groups, first, 1e-6),
            conv_out: conv2d(&p / "conv_out", first, c.out_channels, 3, 1, 1),
        }
    }

    fn forward(&self, z: &Tensor) -> Tensor {
        let mut h = self.mid_block.forward(&self.conv_in.forward(z));
        for b in &self.up_blocks {
            h = b.forward(&h);
        }
        self.conv_out.forward(&self.conv_norm_out.forward(&h).silu())
    }
}

/// The latent Gaussian of an encoded image (diffusers' `DiagonalGaussianDistribution`).
#[derive(Debug)]
pub struct LatentDist {
    pub mean: Tensor,
    /// `exp(0.5 * clamp(logvar, -30, 20))`.
    pub std: Tensor,
}

impl LatentDist {
    /// `mean + std * noise` (`noise` shaped as `mean`).
    pub fn sample(&self, noise: &Tensor) -> Tensor {
        &self.mean + &self.std * noise
    }
}

#[derive(Debug)]
pub struct AutoencoderKL {
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: Option<nn::Conv2D>,
    post_quant_conv: Option<nn::Conv2D>,
    config: AutoencoderKLConfig,
    device: Device,
    kind: Kind,
}

impl AutoencoderKL {
    pub fn new(
        p: &nn::Path,
        config: &AutoencoderKLConfig,
        naming: AttentionNaming,
    ) -> Result<Self, DiffusionError> {
        config.validate()?;
        let c = config;
        let z2 = 2 * c.latent_channels;
        Ok(AutoencoderKL {
            encoder: Encoder::new(p / "encoder", c, naming),
            decoder: Decoder::new(p / "decoder", c, naming),
            quant_conv: c
                .use_quant_conv
                .then(|| conv2d(p / "quant_conv", z2, z2, 1, 1, 0)),
            post_quant_conv: c.use_post_quant_conv.then(|| {
                conv2d(
                    p / "post_quant_conv",
                    c.latent_channels,
                    c.latent_channels,
                    1,
                    1,
                    0,
                )
            }),
            config: config.clone(),
            device: p.device(),
            kind: Kind::Float,
        })
    }

    /// Loads from config.json and the weights (either attention naming), strictly.
    pub fn load(
        config: &AutoencoderKLConfig,
        files: &[impl AsRef<Path>],
        device: DeviceSpec,
        dtype: DType,
    ) -> Result<Self, DiffusionError> {
        let naming = AttentionNaming::from_files(files)?;
        let mut vs = var_store(device, dtype)?;
        let mut model = Self::new(&vs.root(), config, naming)?;
        finish_loading(&mut vs, files)?;
        model.kind = dtype.kind();
        Ok(model)
    }

    pub fn config(&self) -> &AutoencoderKLConfig {
        &self.config
    }

    fn check(&self, input: &'static str, xs: &Tensor, channels: i64) -> Result<(), DiffusionError> {
        let size = xs.size();
        if size.len() != 4 || size[1] != channels {
            return Err(DiffusionError::input(
                input,
                format!("must be (N, {channels}, H, W), got shape {size:?}"),
            ));
        }
        Ok(())
    }

    /// Encodes (N, in_channels, H, W) images in [-1, 1] to the latent Gaussian (unscaled:
    /// multiply by `scaling_factor` for the UNet, see [`Self::scale_latents`]).
    pub fn encode(&self, images: &Tensor) -> Result<LatentDist, DiffusionError> {
        self.check("images", images, self.config.in_channels)?;
        let size = images.size();
        let f = self.config.downscale();
        if size[2] % f != 0 || size[3] % f != 0 {
            return Err(DiffusionError::input(
                "images",
                format!(
                    "height and width must be multiples of {f}, got {}x{}",
                    size[2], size[3]
                ),
            ));
        }
        Ok(tch::no_grad(|| {
            let xs = images.to_device(self.device).to_kind(self.kind);
            let mut moments = self.encoder.forward(&xs);
            if let Some(q) = &self.quant_conv {
                moments = q.forward(&moments);
            }
            let halves = moments.chunk(2, 1);
            let logvar = halves[1].clamp(-30.0, 20.0);
            LatentDist {
                mean: halves[0].shallow_clone(),
                std: (logvar * 0.5).exp(),
            }
        }))
    }

    /// Decodes (N, latent_channels, h, w) unscaled latents to images, `slice` at a time
    /// (bounding the memory of the decoder's full-resolution activations).
    pub fn decode(&self, latents: &Tensor, slice: i64) -> Result<Tensor, DiffusionError> {
        self.check("latents", latents, self.config.latent_channels)?;
        if slice < 1 {
            return Err(DiffusionError::input(
                "slice",
                format!("must be >= 1, got {slice}"),
            ));
        }
        Ok(tch::no_grad(|| {
            let z = latents.to_device(self.device).to_kind(self.kind);
            let parts: Vec<Tensor> = z
                .split(slice, 0)
                .iter()
                .map(|part| {
                    let part = match &self.post_quant_conv {
                        Some(q) => q.forward(part),
                        None => part.shallow_clone(),
                    };
                    self.decoder.forward(&part)
                })
                .collect();
            Tensor::cat(&parts, 0)
        }))
    }

    /// UNet latents from VAE latents: `(z - shift_factor) * scaling_factor`.
    pub fn scale_latents(&self, z: &Tensor) -> Tensor {
        (z - self.config.shift_factor.unwrap_or(0.0)) * self.config.scaling_factor
    }

    /// VAE latents from UNet latents (the inverse of [`Self::scale_latents`]).
    pub fn unscale_latents(&self, latents: &Tensor) -> Tensor {
        // `1 / scaling_factor * latents`, as diffusers writes it (one rounding fewer).
        latents * (1.0 / self.config.scaling_factor) + self.config.shift_factor.unwrap_or(0.0)
    }

    /// Decodes (B, C, F, h, w) UNet latents (scaled) into (B, 3, F, H, W) frames,
    /// `frames_per_slice` frames at a time, as `AnimateDiffPipeline.decode_latents`.
    pub fn decode_video(&self, latents: &Tensor, frames_per_slice: i64) -> Result<Tensor, DiffusionError> {
        let size = latents.size();
        let [b, c, f, h, w] = size[..] else {
            return Err(DiffusionError::input(
                "latents",
                format!("must be (B, C, F, h, w), got shape {size:?}"),
            ));
        };
        let frames = self
            .unscale_latents(latents)
            .permute([0, 2, 1, 3, 4])
            .reshape([b * f, c, h, w]);
        let images = self.decode(&frames, frames_per_slice)?;
        let s = images.size();
        Ok(images.reshape([b, f, s[1], s[2], s[3]]).permute([0, 2, 1, 3, 4]))
    }
}

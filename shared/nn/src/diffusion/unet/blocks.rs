//! The UNet's down, mid and up blocks: `CrossAttnDownBlock2D` / `DownBlock2D`,
//! `UNetMidBlock2DCrossAttn`, `CrossAttnUpBlock2D` / `UpBlock2D`, and their motion
//! variants (`CrossAttnDownBlockMotion` ...), which add a motion module after each
//! resnet (+ attention) pair. One struct per kind serves both: the motion modules are
//! simply absent in an image UNet.
//!
//! VarStore paths: `resnets.N`, `attentions.N`, `motion_modules.N`, `downsamplers.0`,
//! `upsamplers.0`.

use tch::{Tensor, nn};

use crate::diffusion::{
    motion::{AnimateDiffTransformer3D, MotionModuleOptions},
    resnet::{Downsample2D, ResnetBlock2D, ResnetOptions, Upsample2D},
    transformer_2d::{Transformer2DModel, Transformer2DOptions},
};

/// How to build the spatial attention of a block (`None` in the attention-free blocks).
#[derive(Debug, Clone, Copy)]
pub struct BlockAttention {
    pub transformer: Transformer2DOptions,
}

/// Builds the motion modules of a block: `None` for an image UNet, else the options with
/// `in_channels` set per module and the number of transformer layers.
pub type MotionFor = Option<MotionModuleOptions>;

fn motion_modules(p: &nn::Path, n: i64, channels: i64, motion: MotionFor) -> Vec<AnimateDiffTransformer3D> {
    match motion {
        None => Vec::new(),
        Some(o) => {
            let mm = p / "motion_modules";
            (0..n)
                .map(|i| {
                    AnimateDiffTransformer3D::new(
                        &mm / i,
                        MotionModuleOptions {
                            in_channels: channels,
                            ..o
                        },
                    )
                })
                .collect()
        }
    }
}

fn transformer(
    p: &nn::Path,
    i: i64,
    channels: i64,
    attention: Option<Transformer2DOptions>,
) -> Option<Transformer2DModel> {
    attention.map(|o| {
        Transformer2DModel::new(
            p / "attentions" / i,
            Transformer2DOptions {
                in_channels: channels,
                dim_head: channels / o.heads,
                ..o
            },
        )
    })
}

/// Applies resnet, attention (if any) and motion module (if any) in diffusers' order.
fn layer(
    resnet: &ResnetBlock2D,
    attention: Option<&Transformer2DModel>,
    motion: Option<&AnimateDiffTransformer3D>,
    xs: &Tensor,
    temb: &Tensor,
    context: &Tensor,
    num_frames: i64,
) -> Tensor {
    let mut h = resnet.forward(xs, Some(temb));
    if let Some(attention) = attention {
        h = attention.forward(&h, Some(context));
    }
    if let Some(motion) = motion {
        h = motion.forward(&h, num_frames);
    }
    h
}

#[derive(Debug)]
pub struct DownBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    motion_modules: Vec<AnimateDiffTransformer3D>,
    downsampler: Option<Downsample2D>,
}

/// The arguments of a down or up block.
#[derive(Debug, Clone, Copy)]
pub struct BlockOptions {
    pub in_channels: i64,
    pub out_channels: i64,
    /// Up blocks: the channels coming from the block below.
    pub prev_output_channels: i64,
    pub num_layers: i64,
    /// The resnet template (channels are set per layer).
    pub resnet: ResnetOptions,
    /// `Some` for the cross-attention blocks (heads, layers, ...; channels set per layer).
    pub attention: Option<Transformer2DOptions>,
    pub motion: MotionFor,
    /// Down: add a `Downsample2D` (with this padding); up: add an `Upsample2D`.
    pub resample: Option<i64>,
}

impl DownBlock {
    pub fn new(p: nn::Path, o: BlockOptions) -> Self {
        let resnets = &p / "resnets";
        let mut resnet_list = Vec::new();
        let mut attentions = Vec::new();
        for i in 0..o.num_layers {
            let cin = if i == 0 { o.in_channels } else { o.out_channels };
            resnet_list.push(ResnetBlock2D::new(
                &resnets / i,
                ResnetOptions {
                    in_channels: cin,
                    out_channels: o.out_channels,
                    ..o.resnet
                },
            ));
            attentions.extend(transformer(&p, i, o.out_channels, o.attention));
        }
        DownBlock {
            resnets: resnet_list,
            attentions,
            motion_modules: motion_modules(&p, o.num_layers, o.out_channels, o.motion),
            downsampler: o.resample.map(|padding| {
                Downsample2D::new(&p / "downsamplers" / 0, o.out_channels, o.out_channels, padding)
            }),
        }
    }

    /// Returns the output and the states the up blocks take as skip connections.
    pub fn forward(
        &self,
        xs: &Tensor,
        temb: &Tensor,
        context: &Tensor,
        num_frames: i64,
    ) -> (Tensor, Vec<Tensor>) {
        let mut h = xs.shallow_clone();
        let mut states = Vec::new();
        for (i, resnet) in self.resnets.iter().enumerate() {
            h = layer(
                resnet,
                self.attentions.get(i),
                self.motion_modules.get(i),
                &h,
                temb,
                context,
                num_frames,
            );
            states.push(h.shallow_clone());
        }
        if let Some(down) = &self.downsampler {
            h = down.forward(&h);
            states.push(h.shallow_clone());
        }
        (h, states)
    }
}

#[derive(Debug)]
pub struct UpBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    motion_modules: Vec<AnimateDiffTransformer3D>,
    upsampler: Option<Upsample2D>,
}

impl UpBlock {
    pub fn new(p: nn::Path, o: BlockOptions) -> Self {
        let resnets = &p / "resnets";
        let mut resnet_list = Vec::new();
        let mut attentions = Vec::new();
        for i in 0..o.num_layers {
            let skip = if i == o.num_layers - 1 {
                o.in_channels
            } else {
                o.out_channels
            };
            let cin = if i == 0 {
                o.prev_output_channels
            } else {
                o.out_channels
            };
            resnet_list.push(ResnetBlock2D::new(
                &resnets / i,
                ResnetOptions {
                    in_channels: cin + skip,
                    out_channels: o.out_channels,
                    ..o.resnet
                },
            ));
            attentions.extend(transformer(&p, i, o.out_channels, o.attention));
        }
        UpBlock {
            resnets: resnet_list,
            attentions,
            motion_modules: motion_modules(&p, o.num_layers, o.out_channels, o.motion),
            upsampler: o
                .resample
                .map(|_| Upsample2D::new(&p / "upsamplers" / 0, o.out_channels, o.out_channels)),
        }
    }

    pub fn num_layers(&self) -> usize {
        self.resnets.len()
    }

    /// `skips`: this block's skip connections, consumed from the last.
    pub fn forward(
        &self,
        xs: &Tensor,
        skips: &[Tensor],
        temb: &Tensor,
        context: &Tensor,
        upsample_size: Option<[i64; 2]>,
        num_frames: i64,
    ) -> Tensor {
        let mut h = xs.shallow_clone();
        for (i, resnet) in self.resnets.iter().enumerate() {
            let skip = &skips[skips.len() - 1 - i];
            let joined = Tensor::cat(&[&h, skip], 1);
            h = layer(
                resnet,
                self.attentions.get(i),
                self.motion_modules.get(i),
                &joined,
                temb,
                context,
                num_frames,
            );
        }
        match &self.upsampler {
            Some(up) => up.forward(&h, upsample_size),
            None => h,
        }
    }
}

/// `UNetMidBlock2DCrossAttn` / `UNetMidBlockCrossAttnMotion`: resnet, then per layer
/// attention, motion module (if any), resnet.
#[derive(Debug)]
pub struct MidBlock {
    resnets: Vec<ResnetBlock2D>,
    attentions: Vec<Transformer2DModel>,
    motion_modules: Vec<AnimateDiffTransformer3D>,
}

impl MidBlock {
    /// `num_layers` attention layers (1 in every supported config).
    pub fn new(
        p: nn::Path,
        channels: i64,
        num_layers: i64,
        resnet: ResnetOptions,
        attention: Transformer2DOptions,
        motion: MotionFor,
    ) -> Self {
        let resnet = ResnetOptions {
            in_channels: channels,
            out_channels: channels,
            ..resnet
        };
        let resnets = &p / "resnets";
        MidBlock {
            resnets: (0..=num_layers)
                .map(|i| ResnetBlock2D::new(&resnets / i, resnet))
                .collect(),
            attentions: (0..num_layers)
                .filter_map(|i| transformer(&p, i, channels, Some(attention)))
                .collect(),
            motion_modules: motion_modules(&p, num_layers, channels, motion),
        }
    }

    pub fn forward(&self, xs: &Tensor, temb: &Tensor, context: &Tensor, num_frames: i64) -> Tensor {
        let mut h = self.resnets[0].forward(xs, Some(temb));
        for (i, attention) in self.attentions.iter().enumerate() {
            h = attention.forward(&h, Some(context));
            if let Some(motion) = self.motion_modules.get(i) {
                h = motion.forward(&h, num_frames);
            }
            h = self.resnets[i + 1].forward(&h, Some(temb));
        }
        h
    }
}

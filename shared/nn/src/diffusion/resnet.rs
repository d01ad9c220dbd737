//! diffusers' `ResnetBlock2D` (pre-norm, `time_embedding_norm = "default"`),
//! `Downsample2D` and `Upsample2D` (both with a convolution).
//!
//! VarStore paths: `norm1`, `conv1`, `time_emb_proj` (when there is a time embedding),
//! `norm2`, `conv2`, `conv_shortcut` (when the channel count changes); `conv` for the
//! samplers.

use tch::{Tensor, nn, nn::Module};

use super::Activation;
use crate::layers::{conv2d, group_norm, linear};

/// The constructor arguments of `ResnetBlock2D` that the supported models use.
#[derive(Debug, Clone, Copy)]
pub struct ResnetOptions {
    pub in_channels: i64,
    pub out_channels: i64,
    /// `None`: no time embedding (the VAE).
    pub temb_channels: Option<i64>,
    pub groups: i64,
    pub eps: f64,
    pub act: Activation,
    pub output_scale_factor: f64,
}

#[derive(Debug)]
pub struct ResnetBlock2D {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    time_emb_proj: Option<nn::Linear>,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    conv_shortcut: Option<nn::Conv2D>,
    act: Activation,
    output_scale_factor: f64,
}

impl ResnetBlock2D {
    pub fn new(p: nn::Path, o: ResnetOptions) -> Self {
        let (cin, cout) = (o.in_channels, o.out_channels);
        ResnetBlock2D {
            norm1: group_norm(&p / "norm1", o.groups, cin, o.eps),
            conv1: conv2d(&p / "conv1", cin, cout, 3, 1, 1),
            time_emb_proj: o.temb_channels.map(|t| linear(&p / "time_emb_proj", t, cout)),
            norm2: group_norm(&p / "norm2", o.groups, cout, o.eps),
            conv2: conv2d(&p / "conv2", cout, cout, 3, 1, 1),
            conv_shortcut: (cin != cout).then(|| conv2d(&p / "conv_shortcut", cin, cout, 1, 1, 0)),
            act: o.act,
            output_scale_factor: o.output_scale_factor,
        }
    }

    /// `xs`: (N, C, H, W); `temb`: (N, temb_channels), ignored without `time_emb_proj`.
    pub fn forward(&self, xs: &Tensor, temb: Option<&Tensor>) -> Tensor {
        let mut h = self.conv1.forward(&self.act.apply(&self.norm1.forward(xs)));
        if let (Some(proj), Some(temb)) = (&self.time_emb_proj, temb) {
            h += proj.forward(&self.act.apply(temb)).unsqueeze(-1).unsqueeze(-1);
        }
        let h = self.conv2.forward(&self.act.apply(&self.norm2.forward(&h)));
        let shortcut = match &self.conv_shortcut {
            Some(conv) => conv.forward(xs),
            None => xs.shallow_clone(),
        };
        let out = shortcut + h;
        if self.output_scale_factor != 1.0 {
            out / self.output_scale_factor
        } else {
            out
        }
    }
}

/// `Downsample2D(use_conv=True)`: a stride-2 3x3 convolution; with `padding = 0` the
/// input is first padded by one on the right and bottom (the VAE encoder).
#[derive(Debug)]
pub struct Downsample2D {
    conv: nn::Conv2D,
    pad_right_bottom: bool,
}

impl Downsample2D {
    pub fn new(p: nn::Path, channels: i64, out_channels: i64, padding: i64) -> Self {
        Downsample2D {
            conv: conv2d(&p / "conv", channels, out_channels, 3, 2, padding),
            pad_right_bottom: padding == 0,
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        if self.pad_right_bottom {
            self.conv.forward(&xs.constant_pad_nd([0, 1, 0, 1]))
        } else {
            self.conv.forward(xs)
        }
    }
}

/// `Upsample2D(use_conv=True)`: nearest-neighbour upsampling (x2, or to `size`), then a
/// 3x3 convolution.
#[derive(Debug)]
pub struct Upsample2D {
    conv: nn::Conv2D,
}

impl Upsample2D {
    pub fn new(p: nn::Path, channels: i64, out_channels: i64) -> Self {
        Upsample2D {
            conv: conv2d(&p / "conv", channels, out_channels, 3, 1, 1),
        }
    }

    pub fn forward(&self, xs: &Tensor, size: Option<[i64; 2]>) -> Tensor {
        let up = match size {
            Some(size) => xs.upsample_nearest2d(size, None, None),
            None => {
                let s = xs.size();
                xs.upsample_nearest2d([s[2] * 2, s[3] * 2], Some(2.0), Some(2.0))
            }
        };
        self.conv.forward(&up)
    }
}

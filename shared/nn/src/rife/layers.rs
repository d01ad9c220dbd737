//! RIFE's small layers: `conv` (Conv2d + PReLU), `deconv` (ConvTranspose2d + PReLU) and
//! bilinear resizing by a factor, as `F.interpolate(..., scale_factor=s,
//! align_corners=False, recompute_scale_factor=False)` does it.

use tch::{Tensor, nn, nn::Module};

use crate::layers::conv2d;

/// `nn.PReLU(channels)`: `{path}.weight` (channels,).
#[derive(Debug)]
pub struct PRelu {
    weight: Tensor,
}

impl PRelu {
    pub fn new(p: nn::Path, channels: i64) -> Self {
        PRelu {
            weight: p.zeros("weight", &[channels]),
        }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.prelu(&self.weight)
    }
}

/// `nn.Sequential(nn.Conv2d(in, out, k, stride, padding), nn.PReLU(out))`: `{path}.0`, `{path}.1`.
#[derive(Debug)]
pub struct ConvPRelu {
    conv: nn::Conv2D,
    act: PRelu,
}

impl ConvPRelu {
    pub fn new(p: nn::Path, in_dim: i64, out_dim: i64, kernel: i64, stride: i64, padding: i64) -> Self {
        ConvPRelu {
            conv: conv2d(&p / "0", in_dim, out_dim, kernel, stride, padding),
            act: PRelu::new(&p / "1", out_dim),
        }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.act.forward(&self.conv.forward(x))
    }
}

/// `nn.ConvTranspose2d(in, out, 4, 2, 1)`: doubles the resolution.
pub fn conv_transpose_4x2(p: nn::Path, in_dim: i64, out_dim: i64) -> nn::ConvTranspose2D {
    let c = nn::ConvTransposeConfig {
        stride: 2,
        padding: 1,
        ws_init: nn::Init::Const(0.),
        bs_init: nn::Init::Const(0.),
        ..Default::default()
    };
    nn::conv_transpose2d(p, in_dim, out_dim, 4, c)
}

/// `nn.Sequential(nn.ConvTranspose2d(in, out, 4, 2, 1), nn.PReLU(out))`.
#[derive(Debug)]
pub struct DeconvPRelu {
    conv: nn::ConvTranspose2D,
    act: PRelu,
}

impl DeconvPRelu {
    pub fn new(p: nn::Path, in_dim: i64, out_dim: i64) -> Self {
        DeconvPRelu {
            conv: conv_transpose_4x2(&p / "0", in_dim, out_dim),
            act: PRelu::new(&p / "1", out_dim),
        }
    }
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.act.forward(&self.conv.forward(x))
    }
}

/// Bilinear resize of (N, C, H, W) by `factor`: the output is floor(H * factor) by
/// floor(W * factor), and source coordinates use `factor` itself (not the size ratio),
/// as PyTorch does with `recompute_scale_factor=False`.
pub fn resize_by(x: &Tensor, factor: f64) -> Tensor {
    let (h, w) = (x.size()[2], x.size()[3]);
    let out = [
        (h as f64 * factor).floor() as i64,
        (w as f64 * factor).floor() as i64,
    ];
    x.upsample_bilinear2d(out, false, factor, factor)
}

//! `RRDBNet` (ESRGAN's generator, RealESRGAN_x4plus): 23 residual-in-residual dense
//! blocks at low resolution, then two nearest 2x upsamplings with convolutions. Paths as
//! in `basicsr.archs.rrdbnet_arch` (`conv_first`, `body.{i}.rdb{1,2,3}.conv{1..5}`,
//! `conv_body`, `conv_up1`, `conv_up2`, `conv_hr`, `conv_last`).

use tch::{Tensor, nn, nn::Module};

use crate::layers::conv2d;

const LRELU_SLOPE: f64 = 0.2;
/// Residual scaling of the dense blocks.
const RESIDUAL_SCALE: f64 = 0.2;

/// `F.leaky_relu(x, 0.2)`: tch's `leaky_relu` has the fixed slope 0.01; PReLU with one
/// weight is the same function (x > 0 ? x : w * x).
fn lrelu(x: &Tensor) -> Tensor {
    let slope = Tensor::from_slice(&[LRELU_SLOPE as f32])
        .to_device(x.device())
        .to_kind(x.kind());
    x.prelu(&slope)
}

/// The network's shape (its constructor arguments).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrdbConfig {
    pub num_in_ch: i64,
    pub num_out_ch: i64,
    pub scale: i64,
    pub num_feat: i64,
    pub num_block: i64,
    pub num_grow_ch: i64,
}

impl RrdbConfig {
    /// RealESRGAN_x4plus.
    pub const X4PLUS: RrdbConfig = RrdbConfig {
        num_in_ch: 3,
        num_out_ch: 3,
        scale: 4,
        num_feat: 64,
        num_block: 23,
        num_grow_ch: 32,
    };
}

#[derive(Debug)]
struct ResidualDenseBlock {
    convs: [nn::Conv2D; 5],
}

impl ResidualDenseBlock {
    fn new(p: nn::Path, f: i64, g: i64) -> Self {
        ResidualDenseBlock {
            convs: [
                conv2d(&p / "conv1", f, g, 3, 1, 1),
                conv2d(&p / "conv2", f + g, g, 3, 1, 1),
                conv2d(&p / "conv3", f + 2 * g, g, 3, 1, 1),
                conv2d(&p / "conv4", f + 3 * g, g, 3, 1, 1),
                conv2d(&p / "conv5", f + 4 * g, f, 3, 1, 1),
            ],
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut feats = vec![x.shallow_clone()];
        for conv in &self.convs[..4] {
            let next = lrelu(&conv.forward(&Tensor::cat(&feats, 1)));
            feats.push(next);
        }
        self.convs[4].forward(&Tensor::cat(&feats, 1)) * RESIDUAL_SCALE + x
    }
}

#[derive(Debug)]
struct Rrdb {
    rdbs: [ResidualDenseBlock; 3],
}

impl Rrdb {
    fn new(p: nn::Path, f: i64, g: i64) -> Self {
        Rrdb {
            rdbs: [
                ResidualDenseBlock::new(&p / "rdb1", f, g),
                ResidualDenseBlock::new(&p / "rdb2", f, g),
                ResidualDenseBlock::new(&p / "rdb3", f, g),
            ],
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let out = self.rdbs.iter().fold(x.shallow_clone(), |h, rdb| rdb.forward(&h));
        out * RESIDUAL_SCALE + x
    }
}

#[derive(Debug)]
pub struct RrdbNet {
    conv_first: nn::Conv2D,
    body: Vec<Rrdb>,
    conv_body: nn::Conv2D,
    conv_up1: nn::Conv2D,
    conv_up2: nn::Conv2D,
    conv_hr: nn::Conv2D,
    conv_last: nn::Conv2D,
    scale: i64,
}

impl RrdbNet {
    /// `c.scale` is 4, 2 or 1; below 4 the input is pixel-unshuffled first, as basicsr does.
    pub fn new(p: &nn::Path, c: RrdbConfig) -> Self {
        let in_ch = match c.scale {
            2 => c.num_in_ch * 4,
            1 => c.num_in_ch * 16,
            _ => c.num_in_ch,
        };
        let f = c.num_feat;
        RrdbNet {
            conv_first: conv2d(p / "conv_first", in_ch, f, 3, 1, 1),
            body: (0..c.num_block)
                .map(|i| Rrdb::new(p / "body" / i, f, c.num_grow_ch))
                .collect(),
            conv_body: conv2d(p / "conv_body", f, f, 3, 1, 1),
            conv_up1: conv2d(p / "conv_up1", f, f, 3, 1, 1),
            conv_up2: conv2d(p / "conv_up2", f, f, 3, 1, 1),
            conv_hr: conv2d(p / "conv_hr", f, f, 3, 1, 1),
            conv_last: conv2d(p / "conv_last", f, c.num_out_ch, 3, 1, 1),
            scale: c.scale,
        }
    }

    /// (N, 3, H, W) in [0, 1] -> (N, 3, 4H, 4W), not clamped.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let x = match self.scale {
            2 => x.pixel_unshuffle(2),
            1 => x.pixel_unshuffle(4),
            _ => x.shallow_clone(),
        };
        let feat = self.conv_first.forward(&x);
        let body = self
            .body
            .iter()
            .fold(feat.shallow_clone(), |h, block| block.forward(&h));
        let feat = feat + self.conv_body.forward(&body);
        let up = |h: &Tensor, conv: &nn::Conv2D| {
            let (hh, ww) = (h.size()[2], h.size()[3]);
            lrelu(&conv.forward(&h.upsample_nearest2d([hh * 2, ww * 2], None, None)))
        };
        let feat = up(&feat, &self.conv_up1);
        let feat = up(&feat, &self.conv_up2);
        self.conv_last.forward(&lrelu(&self.conv_hr.forward(&feat)))
    }
}

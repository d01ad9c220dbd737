//! `IFBlock`: one scale of the coarse-to-fine flow estimate. The input (images, timestep,
//! and from the second block on the current mask and flow) is shrunk by `scale`, run
//! through two stride-2 convolutions and eight residual ones, and a transposed convolution
//! gives 4 flow channels (to frame 0, to frame 1) and 1 mask channel at full size.

use tch::{Tensor, nn, nn::Module};

use super::layers::{ConvPRelu, conv_transpose_4x2, resize_by};

#[derive(Debug)]
pub struct IfBlock {
    conv0: Vec<ConvPRelu>,
    convblock: Vec<ConvPRelu>,
    lastconv: nn::ConvTranspose2D,
}

impl IfBlock {
    pub fn new(p: nn::Path, in_planes: i64, c: i64) -> Self {
        let conv0 = &p / "conv0";
        let convblock = &p / "convblock";
        IfBlock {
            conv0: vec![
                ConvPRelu::new(&conv0 / "0", in_planes, c / 2, 3, 2, 1),
                ConvPRelu::new(&conv0 / "1", c / 2, c, 3, 2, 1),
            ],
            convblock: (0..8)
                .map(|i| ConvPRelu::new(&convblock / i, c, c, 3, 1, 1))
                .collect(),
            lastconv: conv_transpose_4x2(&p / "lastconv", c, 5),
        }
    }

    /// Returns (flow (N, 4, H, W), mask logits (N, 1, H, W)).
    pub fn forward(&self, x: &Tensor, flow: Option<&Tensor>, scale: f64) -> (Tensor, Tensor) {
        let mut x = resize_by(x, 1.0 / scale);
        if let Some(flow) = flow {
            let flow = resize_by(flow, 1.0 / scale) * (1.0 / scale);
            x = Tensor::cat(&[x, flow], 1);
        }
        let feat = self.conv0.iter().fold(x, |h, layer| layer.forward(&h));
        let feat = self
            .convblock
            .iter()
            .fold(feat.shallow_clone(), |h, layer| layer.forward(&h))
            + feat;
        let tmp = resize_by(&self.lastconv.forward(&feat), scale * 2.0);
        let flow = tmp.narrow(1, 0, 4) * (scale * 2.0);
        let mask = tmp.narrow(1, 4, 1);
        (flow, mask)
    }
}

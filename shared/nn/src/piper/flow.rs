//! VITS `ResidualCouplingBlock` (`flow`): mean-only affine coupling layers with WaveNet
//! (`WN`) conditioners, each followed by a channel Flip; run in reverse at inference to
//! turn prior samples into the decoder's latent.

use super::config::VitsConfig;
use tch::{Tensor, nn, nn::Module};

/// `modules.WN` without global conditioning.
#[derive(Debug)]
pub struct WaveNet {
    in_layers: Vec<nn::Conv1D>,
    res_skip_layers: Vec<nn::Conv1D>,
    hidden: i64,
}

impl WaveNet {
    pub fn new(p: nn::Path, hidden: i64, kernel_size: i64, dilation_rate: i64, n_layers: i64) -> Self {
        let mut wn = WaveNet {
            in_layers: Vec::new(),
            res_skip_layers: Vec::new(),
            hidden,
        };
        for i in 0..n_layers {
            let dilation = dilation_rate.pow(i as u32);
            let config = nn::ConvConfig {
                dilation,
                padding: (kernel_size * dilation - dilation) / 2,
                ..Default::default()
            };
            wn.in_layers.push(nn::conv1d(
                &p / "in_layers" / i,
                hidden,
                2 * hidden,
                kernel_size,
                config,
            ));
            let out = if i < n_layers - 1 { 2 * hidden } else { hidden };
            wn.res_skip_layers.push(nn::conv1d(
                &p / "res_skip_layers" / i,
                hidden,
                out,
                1,
                Default::default(),
            ));
        }
        wn
    }

    pub fn forward(&self, x: &Tensor, mask: &Tensor) -> Tensor {
        let mut x = x.shallow_clone();
        let mut output = x.zeros_like();
        let n = self.in_layers.len();
        for i in 0..n {
            let x_in = self.in_layers[i].forward(&x);
            let acts = x_in.slice(1, 0, self.hidden, 1).tanh()
                * x_in.slice(1, self.hidden, 2 * self.hidden, 1).sigmoid();
            let res_skip = self.res_skip_layers[i].forward(&acts);
            if i < n - 1 {
                x = (x + res_skip.slice(1, 0, self.hidden, 1)) * mask;
                output += res_skip.slice(1, self.hidden, 2 * self.hidden, 1);
            } else {
                output += res_skip;
            }
        }
        output * mask
    }
}

/// `modules.ResidualCouplingLayer` with `mean_only=True` (inverse only).
#[derive(Debug)]
pub struct CouplingLayer {
    pre: nn::Conv1D,
    enc: WaveNet,
    post: nn::Conv1D,
    half: i64,
}

impl CouplingLayer {
    pub fn new(p: nn::Path, c: &VitsConfig) -> Self {
        let half = c.inter_channels / 2;
        CouplingLayer {
            pre: nn::conv1d(&p / "pre", half, c.hidden_channels, 1, Default::default()),
            enc: WaveNet::new(
                &p / "enc",
                c.hidden_channels,
                c.flow_kernel_size,
                1,
                c.flow_n_layers,
            ),
            post: nn::conv1d(&p / "post", c.hidden_channels, half, 1, Default::default()),
            half,
        }
    }

    pub fn reverse(&self, x: &Tensor, mask: &Tensor) -> Tensor {
        let parts = x.split(self.half, 1);
        let (x0, x1) = (&parts[0], &parts[1]);
        let h = self.pre.forward(x0) * mask;
        let h = self.enc.forward(&h, mask);
        let m = self.post.forward(&h) * mask;
        let x1 = (x1 - m) * mask;
        Tensor::cat(&[x0, &x1], 1)
    }
}

/// `ResidualCouplingBlock`: `flows.{0,2,4,..}` coupling layers, Flips between.
#[derive(Debug)]
pub struct ResidualCouplingBlock {
    layers: Vec<CouplingLayer>,
}

impl ResidualCouplingBlock {
    pub fn new(p: nn::Path, c: &VitsConfig) -> Self {
        let flows = &p / "flows";
        ResidualCouplingBlock {
            layers: (0..c.flow_n_flows)
                .map(|i| CouplingLayer::new(&flows / (2 * i), c))
                .collect(),
        }
    }

    pub fn reverse(&self, z: &Tensor, mask: &Tensor) -> Tensor {
        let mut z = z.shallow_clone();
        for layer in self.layers.iter().rev() {
            z = layer.reverse(&z.flip([1]), mask);
        }
        z
    }
}

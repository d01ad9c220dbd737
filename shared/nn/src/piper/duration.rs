//! VITS `StochasticDurationPredictor` (`dp`) at inference: noise (scaled by `noise_w`)
//! run backwards through its flows, conditioned on the text encoder's hidden states,
//! gives each phoneme's log-duration. With `noise_w = 0` it is deterministic.

use super::{attentions::ChannelNorm, config::VitsConfig, spline::inverse_rational_quadratic};
use crate::noise::gaussian_noise;
use tch::{Tensor, nn, nn::Module};

/// `modules.DDSConv`: dilated depth-separable convolutions with residuals.
#[derive(Debug)]
pub struct DdsConv {
    convs_sep: Vec<nn::Conv1D>,
    convs_1x1: Vec<nn::Conv1D>,
    norms_1: Vec<ChannelNorm>,
    norms_2: Vec<ChannelNorm>,
}

impl DdsConv {
    pub fn new(p: nn::Path, channels: i64, kernel_size: i64, n_layers: i64) -> Self {
        let mut conv = DdsConv {
            convs_sep: Vec::new(),
            convs_1x1: Vec::new(),
            norms_1: Vec::new(),
            norms_2: Vec::new(),
        };
        for i in 0..n_layers {
            let dilation = kernel_size.pow(i as u32);
            let sep = nn::ConvConfig {
                groups: channels,
                dilation,
                padding: (kernel_size * dilation - dilation) / 2,
                ..Default::default()
            };
            conv.convs_sep.push(nn::conv1d(
                &p / "convs_sep" / i,
                channels,
                channels,
                kernel_size,
                sep,
            ));
            conv.convs_1x1.push(nn::conv1d(
                &p / "convs_1x1" / i,
                channels,
                channels,
                1,
                Default::default(),
            ));
            conv.norms_1.push(ChannelNorm::new(&p / "norms_1" / i, channels));
            conv.norms_2.push(ChannelNorm::new(&p / "norms_2" / i, channels));
        }
        conv
    }

    pub fn forward(&self, x: &Tensor, mask: &Tensor, g: Option<&Tensor>) -> Tensor {
        let mut x = match g {
            Some(g) => x + g,
            None => x.shallow_clone(),
        };
        for i in 0..self.convs_sep.len() {
            let y = self.convs_sep[i].forward(&(&x * mask));
            let y = self.norms_1[i].forward(&y).gelu("none");
            let y = self.convs_1x1[i].forward(&y);
            let y = self.norms_2[i].forward(&y).gelu("none");
            x += y;
        }
        x * mask
    }
}

/// `modules.ConvFlow`: a rational-quadratic spline coupling layer (inverse only).
#[derive(Debug)]
pub struct ConvFlow {
    pre: nn::Conv1D,
    convs: DdsConv,
    proj: nn::Conv1D,
    half: i64,
    filter_channels: i64,
    num_bins: i64,
    tail_bound: f64,
}

impl ConvFlow {
    pub fn new(p: nn::Path, c: &VitsConfig) -> Self {
        let (half, f) = (1, c.dp_filter_channels);
        ConvFlow {
            pre: nn::conv1d(&p / "pre", half, f, 1, Default::default()),
            convs: DdsConv::new(&p / "convs", f, c.dp_kernel_size, 3),
            proj: nn::conv1d(
                &p / "proj",
                f,
                half * (c.dp_num_bins * 3 - 1),
                1,
                Default::default(),
            ),
            half,
            filter_channels: f,
            num_bins: c.dp_num_bins,
            tail_bound: c.dp_tail_bound,
        }
    }

    pub fn reverse(&self, x: &Tensor, mask: &Tensor, g: &Tensor) -> Tensor {
        let parts = x.split(self.half, 1);
        let (x0, x1) = (&parts[0], &parts[1]);
        let h = self.pre.forward(x0);
        let h = self.convs.forward(&h, mask, Some(g));
        let h = self.proj.forward(&h) * mask;
        let (b, c, t) = x0.size3().expect("(B, C, T)");
        let h = h.reshape([b, c, -1, t]).permute([0, 1, 3, 2]);
        let scale = (self.filter_channels as f64).sqrt();
        let k = self.num_bins;
        let widths = h.slice(-1, 0, k, 1) / scale;
        let heights = h.slice(-1, k, 2 * k, 1) / scale;
        let derivatives = h.slice(-1, 2 * k, 3 * k - 1, 1);
        let x1 = inverse_rational_quadratic(x1, &widths, &heights, &derivatives, self.tail_bound);
        Tensor::cat(&[x0, &x1], 1) * mask
    }
}

/// `StochasticDurationPredictor` with `gin_channels = 0`, inference path only.
#[derive(Debug)]
pub struct StochasticDurationPredictor {
    pre: nn::Conv1D,
    proj: nn::Conv1D,
    convs: DdsConv,
    /// `flows.0`: the ElementwiseAffine (m, logs).
    m: Tensor,
    logs: Tensor,
    /// The ConvFlows used in reverse, in the order they run (`flows.7`, `.5`, `.3`; the
    /// first ConvFlow, `flows.1`, is dropped at inference, as in VITS).
    conv_flows: Vec<ConvFlow>,
}

impl StochasticDurationPredictor {
    pub fn new(p: nn::Path, c: &VitsConfig) -> Self {
        let f = c.dp_filter_channels;
        let flows = &p / "flows";
        let conv_flows = (2..=c.dp_n_flows)
            .rev()
            .map(|i| ConvFlow::new(&flows / (2 * i - 1), c))
            .collect();
        StochasticDurationPredictor {
            pre: nn::conv1d(&p / "pre", c.hidden_channels, f, 1, Default::default()),
            proj: nn::conv1d(&p / "proj", f, f, 1, Default::default()),
            convs: DdsConv::new(&p / "convs", f, c.dp_kernel_size, 3),
            m: (&flows / 0).var("m", &[2, 1], nn::Init::Const(0.0)),
            logs: (&flows / 0).var("logs", &[2, 1], nn::Init::Const(0.0)),
            conv_flows,
        }
    }

    /// Log-durations (B, 1, T) of the phonemes with hidden states `x` (B, C, T); the
    /// noise is drawn from `seed` ([`gaussian_noise`]).
    pub fn reverse(&self, x: &Tensor, mask: &Tensor, noise_w: f64, seed: u64) -> Tensor {
        let x = self.pre.forward(x);
        let x = self.convs.forward(&x, mask, None);
        let x = self.proj.forward(&x) * mask;
        let (b, _, t) = x.size3().expect("(B, C, T)");
        let mut z = if noise_w == 0.0 {
            Tensor::zeros([b, 2, t], (x.kind(), x.device()))
        } else {
            gaussian_noise(seed, &[b, 2, t], x.device()).to_kind(x.kind()) * noise_w
        };
        // reversed flows: Flip, ConvFlow, Flip, ConvFlow, ..., Flip, ElementwiseAffine
        for flow in &self.conv_flows {
            z = z.flip([1]);
            z = flow.reverse(&z, mask, &x);
        }
        z = z.flip([1]);
        z = (z - &self.m) * (-&self.logs).exp() * mask;
        z.split(1, 1)[0].shallow_clone()
    }
}

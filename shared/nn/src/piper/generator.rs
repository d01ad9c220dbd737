//! VITS `Generator` (`dec`): the HiFi-GAN vocoder, latent frames -> waveform. Weight norm
//! is folded into the weights (piper removes it before export).

use super::config::VitsConfig;
use tch::{Tensor, nn, nn::Module};

const LRELU_SLOPE: f64 = 0.1;

/// `F.leaky_relu(x, slope)`: tch binds leaky_relu with its default slope only; PReLU
/// with one weight is the same function in one kernel (the same values, bit for bit).
fn leaky(x: &Tensor, slope: f64) -> Tensor {
    x.prelu(&Tensor::from_slice(&[slope as f32]).to_device(x.device()))
}

/// `ResBlock1` (`convs1` + `convs2`) or `ResBlock2` (`convs`).
#[derive(Debug)]
struct ResBlock {
    convs1: Vec<nn::Conv1D>,
    convs2: Vec<nn::Conv1D>,
}

fn dilated(p: nn::Path, channels: i64, kernel: i64, dilation: i64) -> nn::Conv1D {
    let config = nn::ConvConfig {
        dilation,
        padding: (kernel * dilation - dilation) / 2,
        ..Default::default()
    };
    nn::conv1d(p, channels, channels, kernel, config)
}

impl ResBlock {
    fn new(p: nn::Path, kind: &str, channels: i64, kernel: i64, dilations: &[i64]) -> Self {
        if kind == "1" {
            ResBlock {
                convs1: (0..dilations.len())
                    .map(|i| dilated(&p / "convs1" / i as i64, channels, kernel, dilations[i]))
                    .collect(),
                convs2: (0..dilations.len())
                    .map(|i| dilated(&p / "convs2" / i as i64, channels, kernel, 1))
                    .collect(),
            }
        } else {
            ResBlock {
                convs1: (0..dilations.len())
                    .map(|i| dilated(&p / "convs" / i as i64, channels, kernel, dilations[i]))
                    .collect(),
                convs2: Vec::new(),
            }
        }
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let mut x = x.shallow_clone();
        for (i, c1) in self.convs1.iter().enumerate() {
            let mut xt = c1.forward(&leaky(&x, LRELU_SLOPE));
            if let Some(c2) = self.convs2.get(i) {
                xt = c2.forward(&leaky(&xt, LRELU_SLOPE));
            }
            x = xt + x;
        }
        x
    }
}

#[derive(Debug)]
pub struct Generator {
    conv_pre: nn::Conv1D,
    ups: Vec<nn::ConvTranspose1D>,
    resblocks: Vec<ResBlock>,
    conv_post: nn::Conv1D,
    num_kernels: usize,
}

impl Generator {
    pub fn new(p: nn::Path, c: &VitsConfig) -> Self {
        let ch0 = c.upsample_initial_channel;
        let pad3 = nn::ConvConfig {
            padding: 3,
            ..Default::default()
        };
        let mut ups = Vec::new();
        let mut resblocks = Vec::new();
        for (i, (&u, &k)) in c.upsample_rates.iter().zip(&c.upsample_kernel_sizes).enumerate() {
            let (cin, cout) = (ch0 >> i, ch0 >> (i + 1));
            let config = nn::ConvTransposeConfig {
                stride: u,
                padding: (k - u) / 2,
                ..Default::default()
            };
            ups.push(nn::conv_transpose1d(&p / "ups" / i as i64, cin, cout, k, config));
            for (kernel, dilations) in c.resblock_kernel_sizes.iter().zip(&c.resblock_dilation_sizes) {
                let index = resblocks.len() as i64;
                resblocks.push(ResBlock::new(
                    &p / "resblocks" / index,
                    &c.resblock,
                    cout,
                    *kernel,
                    dilations,
                ));
            }
        }
        let last = ch0 >> c.upsample_rates.len();
        Generator {
            conv_pre: nn::conv1d(&p / "conv_pre", c.inter_channels, ch0, 7, pad3),
            ups,
            resblocks,
            conv_post: nn::conv1d(
                &p / "conv_post",
                last,
                1,
                7,
                nn::ConvConfig { bias: false, ..pad3 },
            ),
            num_kernels: c.resblock_kernel_sizes.len(),
        }
    }

    /// Latent (B, C, T) -> waveform (B, 1, T * hop).
    pub fn forward(&self, z: &Tensor) -> Tensor {
        let mut x = self.conv_pre.forward(z);
        for (i, up) in self.ups.iter().enumerate() {
            x = up.forward(&leaky(&x, LRELU_SLOPE));
            let blocks = &self.resblocks[i * self.num_kernels..(i + 1) * self.num_kernels];
            let sum = blocks
                .iter()
                .map(|b| b.forward(&x))
                .reduce(|a, b| a + b)
                .expect("at least one resblock kernel");
            x = sum / self.num_kernels as f64;
        }
        // the last activation uses leaky_relu's default slope, 0.01
        self.conv_post.forward(&leaky(&x, 0.01)).tanh()
    }
}

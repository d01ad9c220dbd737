//! VITS `Generator` (`dec`): the HiFi-GAN vocoder, latent frames -> waveform. Weight norm
//! is folded into the weights (piper removes it before export).
//!
//! The activations are kept as (B, C, 1, T) in channels-last memory, (B, T, C) underneath,
//! and every `conv1d` runs as a (1, k) `conv2d` on them: oneDNN then convolves that layout
//! directly instead of reordering each plain (B, C, T) input and output to its blocked
//! layout and back (~25% of the vocoder's time on CPU), and the polyphase upsampling's
//! interleave becomes a free view.

use super::config::VitsConfig;
use tch::{Tensor, nn, nn::Module};

const LRELU_SLOPE: f64 = 0.1;

/// `F.leaky_relu(x, slope)`: tch binds leaky_relu with its default slope only; PReLU
/// with one weight is the same function in one kernel (the same values, bit for bit).
fn leaky(x: &Tensor, slope: f64) -> Tensor {
    x.prelu(&Tensor::from_slice(&[slope as f32]).to_device(x.device()))
}

/// (B, C, T) -> (B, C, 1, T) in channels-last memory.
fn channels_last(x: &Tensor) -> Tensor {
    x.transpose(1, 2).contiguous().unsqueeze(1).permute([0, 3, 1, 2])
}

/// A `conv1d` layer applied to channels-last (B, C, 1, T) as a (1, k) `conv2d`; the
/// output keeps the input's layout.
fn conv(layer: &nn::Conv1D, x: &Tensor, padding: i64, dilation: i64) -> Tensor {
    x.conv2d(
        &layer.ws.unsqueeze(2),
        layer.bs.as_ref(),
        [1, 1],
        [0, padding],
        [1, dilation],
        1,
    )
}

/// A `conv1d` layer with its padding and dilation, for [`conv`].
#[derive(Debug)]
struct Conv {
    layer: nn::Conv1D,
    padding: i64,
    dilation: i64,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Tensor {
        conv(&self.layer, x, self.padding, self.dilation)
    }
}

/// `ResBlock1` (`convs1` + `convs2`) or `ResBlock2` (`convs`).
#[derive(Debug)]
struct ResBlock {
    convs1: Vec<Conv>,
    convs2: Vec<Conv>,
}

fn dilated(p: nn::Path, channels: i64, kernel: i64, dilation: i64) -> Conv {
    let padding = (kernel * dilation - dilation) / 2;
    let config = nn::ConvConfig {
        dilation,
        padding,
        ..Default::default()
    };
    Conv {
        layer: nn::conv1d(p, channels, channels, kernel, config),
        padding,
        dilation,
    }
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

    /// `x`: channels-last (B, C, 1, T).
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

/// A stride-`u`, kernel-`2u`, padding-`u/2` transposed convolution (piper's upsampling)
/// run as `u` phases of one 3-tap convolution whose outputs are interleaved: the same sums
/// (in another order), in libtorch's faster convolution kernels (~1.7x on CPU).
#[derive(Debug)]
struct Polyphase {
    weight: Tensor,
    bias: Tensor,
    stride: i64,
    out_channels: i64,
}

impl Polyphase {
    /// `None` unless the layer has that shape.
    fn of(up: &nn::ConvTranspose1D, stride: i64) -> Option<Self> {
        let (cin, cout, k) = up.ws.size3().ok()?;
        let pad = (k - stride) / 2;
        if k != 2 * stride || stride % 2 != 0 {
            return None;
        }
        let w = &up.ws;
        let zeros = Tensor::zeros([cout, cin], (w.kind(), w.device()));
        // tap t of phase r reads x[n - 1 + t]; its kernel index follows from
        // j + pad = i * stride + k with j = n * stride + r
        let tap = |k: i64| w.select(2, k).transpose(0, 1);
        let phases: Vec<Tensor> = (0..stride)
            .map(|r| {
                let q = r + pad;
                let taps = if q < stride {
                    [tap(q + stride), tap(q), zeros.shallow_clone()]
                } else {
                    [zeros.shallow_clone(), tap(q), tap(q - stride)]
                };
                Tensor::stack(&taps, 2)
            })
            .collect();
        let bias = up.bs.as_ref()?.repeat([stride]);
        Some(Polyphase {
            weight: Tensor::cat(&phases, 0).unsqueeze(2).contiguous(),
            bias,
            stride,
            out_channels: cout,
        })
    }

    /// Channels-last (B, C, 1, T) -> channels-last (B, out, 1, T * stride). The phases'
    /// outputs lie (B, T, stride, out) in memory, which already is the interleaved signal.
    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, _, _, t) = x.size4().expect("(B, C, 1, T)");
        x.conv2d(&self.weight, Some(&self.bias), [1, 1], [0, 1], [1, 1], 1)
            .permute([0, 2, 3, 1])
            .view([b, 1, t * self.stride, self.out_channels])
            .permute([0, 3, 1, 2])
    }
}

#[derive(Debug)]
pub struct Generator {
    conv_pre: Conv,
    ups: Vec<nn::ConvTranspose1D>,
    /// `ups` as polyphase convolutions, made from the loaded weights on first use.
    polyphase: std::cell::OnceCell<Vec<Option<Polyphase>>>,
    upsample_rates: Vec<i64>,
    resblocks: Vec<ResBlock>,
    conv_post: Conv,
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
            conv_pre: Conv {
                layer: nn::conv1d(&p / "conv_pre", c.inter_channels, ch0, 7, pad3),
                padding: 3,
                dilation: 1,
            },
            ups,
            resblocks,
            conv_post: Conv {
                layer: nn::conv1d(
                    &p / "conv_post",
                    last,
                    1,
                    7,
                    nn::ConvConfig { bias: false, ..pad3 },
                ),
                padding: 3,
                dilation: 1,
            },
            num_kernels: c.resblock_kernel_sizes.len(),
            polyphase: std::cell::OnceCell::new(),
            upsample_rates: c.upsample_rates.clone(),
        }
    }

    /// Latent (B, C, T) -> waveform (B, 1, T * hop). Call after the weights are loaded
    /// (the polyphase upsampling weights are derived from them once).
    pub fn forward(&self, z: &Tensor) -> Tensor {
        let (b, _, _) = z.size3().expect("(B, C, T)");
        let mut x = self.conv_pre.forward(&channels_last(z));
        let polyphase = self.polyphase.get_or_init(|| {
            tch::no_grad(|| {
                self.ups
                    .iter()
                    .zip(&self.upsample_rates)
                    .map(|(up, &u)| Polyphase::of(up, u))
                    .collect()
            })
        });
        for (i, up) in self.ups.iter().enumerate() {
            let x_act = leaky(&x, LRELU_SLOPE);
            x = match &polyphase[i] {
                Some(fast) => fast.forward(&x_act),
                None => channels_last(&up.forward(&x_act.squeeze_dim(2))),
            };
            let blocks = &self.resblocks[i * self.num_kernels..(i + 1) * self.num_kernels];
            let sum = blocks
                .iter()
                .map(|b| b.forward(&x))
                .reduce(|a, b| a + b)
                .expect("at least one resblock kernel");
            x = sum / self.num_kernels as f64;
        }
        // the last activation uses leaky_relu's default slope, 0.01
        // one channel: channels-last and plain memory agree
        self.conv_post
            .forward(&leaky(&x, 0.01))
            .tanh()
            .reshape([b, 1, -1])
    }
}

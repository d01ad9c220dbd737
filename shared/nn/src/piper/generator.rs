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

/// A stride-`u`, kernel-`2u`, padding-`u/2` transposed convolution (piper's upsampling)
/// run as `u` phases of one 3-tap `conv1d` whose outputs are interleaved: the same sums
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
            weight: Tensor::cat(&phases, 0).contiguous(),
            bias,
            stride,
            out_channels: cout,
        })
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let (b, _, t) = x.size3().expect("(B, C, T)");
        x.conv1d(&self.weight, Some(&self.bias), [1], [1], [1], 1)
            .view([b, self.stride, self.out_channels, t])
            .permute([0, 2, 3, 1])
            .reshape([b, self.out_channels, t * self.stride])
    }
}

#[derive(Debug)]
pub struct Generator {
    conv_pre: nn::Conv1D,
    ups: Vec<nn::ConvTranspose1D>,
    /// `ups` as polyphase convolutions, made from the loaded weights on first use.
    polyphase: std::cell::OnceCell<Vec<Option<Polyphase>>>,
    upsample_rates: Vec<i64>,
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
            polyphase: std::cell::OnceCell::new(),
            upsample_rates: c.upsample_rates.clone(),
        }
    }

    /// Latent (B, C, T) -> waveform (B, 1, T * hop). Call after the weights are loaded
    /// (the polyphase upsampling weights are derived from them once).
    pub fn forward(&self, z: &Tensor) -> Tensor {
        let mut x = self.conv_pre.forward(z);
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
                None => up.forward(&x_act),
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
        self.conv_post.forward(&leaky(&x, 0.01)).tanh()
    }
}

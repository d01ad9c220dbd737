//! tch layers created for loading, not training: zero-initialised, every weight is then
//! overwritten by [`crate::weights::load_strict`]. Shared by the encoders and the diffusion
//! models.

use tch::nn;

/// `nn.Linear` with a bias: `{path}.weight` (out, in), `{path}.bias`.
pub fn linear(p: nn::Path, in_dim: i64, out_dim: i64) -> nn::Linear {
    let c = nn::LinearConfig {
        ws_init: nn::Init::Const(0.),
        bs_init: Some(nn::Init::Const(0.)),
        bias: true,
    };
    nn::linear(p, in_dim, out_dim, c)
}

/// `nn.LayerNorm(dim, eps)`: `{path}.weight`, `{path}.bias`.
pub fn layer_norm(p: nn::Path, dim: i64, eps: f64) -> nn::LayerNorm {
    nn::layer_norm(
        p,
        vec![dim],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    )
}

/// `nn.Embedding(n, dim)`: `{path}.weight`.
pub fn embedding(p: nn::Path, n: i64, dim: i64) -> nn::Embedding {
    nn::embedding(
        p,
        n,
        dim,
        nn::EmbeddingConfig {
            ws_init: nn::Init::Const(0.),
            ..Default::default()
        },
    )
}

/// `nn.Conv2d(in, out, kernel, stride, padding)` with a bias: `{path}.weight`
/// (out, in, k, k), `{path}.bias`.
pub fn conv2d(p: nn::Path, in_dim: i64, out_dim: i64, kernel: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let c = nn::ConvConfig {
        stride,
        padding,
        ws_init: nn::Init::Const(0.),
        bs_init: nn::Init::Const(0.),
        ..Default::default()
    };
    nn::conv2d(p, in_dim, out_dim, kernel, c)
}

/// `nn.Linear` without a bias: `{path}.weight` (out, in).
pub fn linear_no_bias(p: nn::Path, in_dim: i64, out_dim: i64) -> nn::Linear {
    let c = nn::LinearConfig {
        ws_init: nn::Init::Const(0.),
        bs_init: None,
        bias: false,
    };
    nn::linear(p, in_dim, out_dim, c)
}

/// `nn.Linear` with or without a bias.
pub fn linear_opt_bias(p: nn::Path, in_dim: i64, out_dim: i64, bias: bool) -> nn::Linear {
    if bias {
        linear(p, in_dim, out_dim)
    } else {
        linear_no_bias(p, in_dim, out_dim)
    }
}

/// `nn.GroupNorm(groups, channels, eps, affine=True)`: `{path}.weight`, `{path}.bias`.
pub fn group_norm(p: nn::Path, groups: i64, channels: i64, eps: f64) -> nn::GroupNorm {
    nn::group_norm(
        p,
        groups,
        channels,
        nn::GroupNormConfig {
            eps,
            affine: true,
            ws_init: nn::Init::Const(0.),
            bs_init: nn::Init::Const(0.),
            ..Default::default()
        },
    )
}

/// A 4-D (N, C, H, W) tensor in channels-last memory (NHWC underneath), the same values
/// and shape: oneDNN convolves that layout directly, where plain NCHW inputs and weights
/// are reordered to its blocked layout and back on every call.
pub fn channels_last(x: &tch::Tensor) -> tch::Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Moves every 4-D floating-point variable of `vs` (the convolution weights) to
/// channels-last memory in place; the layers keep using them unchanged.
pub fn convolutions_channels_last(vs: &nn::VarStore) {
    tch::no_grad(|| {
        for (_, mut var) in vs.variables() {
            if var.dim() == 4 && var.is_floating_point() {
                let moved = channels_last(&var);
                var.set_data(&moved);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor, nn::Module};

    #[test]
    fn channels_last_keeps_values_and_moves_the_layout() {
        let x = Tensor::randn([2, 3, 4, 5], (Kind::Float, Device::Cpu));
        let y = channels_last(&x);
        assert_eq!(y.size(), x.size());
        assert!(y.equal(&x));
        assert_eq!(y.stride(), [60, 1, 15, 3], "NHWC underneath");
    }

    #[test]
    fn convolution_weights_move_in_place_and_the_layer_still_agrees() {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(Device::Cpu);
        let conv = conv2d(vs.root() / "conv", 3, 8, 3, 1, 1);
        tch::no_grad(|| {
            conv.ws
                .shallow_clone()
                .copy_(&Tensor::randn([8, 3, 3, 3], (Kind::Float, Device::Cpu)));
        });
        let x = Tensor::randn([1, 3, 6, 6], (Kind::Float, Device::Cpu));
        let before = conv.forward(&x);
        convolutions_channels_last(&vs);
        assert_eq!(
            conv.ws.stride(),
            [27, 1, 9, 3],
            "the layer's own handle sees the move"
        );
        let after = conv.forward(&channels_last(&x));
        // Each output sums 27 float32 products of unit-scale values; the NHWC kernels add
        // them in another order, so outputs near zero differ by a few ulps of the terms
        // (~27 x 1.2e-7), which a 1e-6 absolute tolerance does not cover.
        let worst = (&after - &before).abs().max().double_value(&[]);
        assert!(worst < 1e-5, "largest difference {worst}");
        assert_eq!(
            vs.variables()["conv.bias"].dim(),
            1,
            "1-D variables stay as they are"
        );
    }
}

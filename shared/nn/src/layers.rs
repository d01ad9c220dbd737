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

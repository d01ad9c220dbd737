//! tch layers created for loading, not training: zero-initialised, every weight is then
//! overwritten by [`crate::weights::load_strict`]. Shared by the encoders.

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

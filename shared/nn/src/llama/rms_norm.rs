//! `LlamaRMSNorm` (also Qwen2's): normalised in f32, scaled by `weight` in the model dtype.

use tch::{Kind, Tensor, nn};

#[derive(Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    /// Declares `{path}.weight` of shape `(size)`.
    pub fn new(path: nn::Path, size: usize, eps: f64) -> Self {
        RmsNorm {
            weight: path.ones_no_train("weight", &[size as i64]),
            eps,
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let kind = xs.kind();
        let x = xs.to_kind(Kind::Float);
        let variance = x.square().mean_dim(-1, true, Kind::Float);
        let normed = x * (variance + self.eps).rsqrt();
        &self.weight * normed.to_kind(kind)
    }
}

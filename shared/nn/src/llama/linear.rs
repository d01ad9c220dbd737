//! `nn.Linear` as the checkpoints store it: `{path}.weight` (out, in) and an optional
//! `{path}.bias`. The product and the bias are one fused libtorch call.

use tch::{Tensor, nn};

#[derive(Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(path: nn::Path, in_features: usize, out_features: usize, bias: bool) -> Self {
        let weight = path.zeros_no_train("weight", &[out_features as i64, in_features as i64]);
        let bias = bias.then(|| path.zeros_no_train("bias", &[out_features as i64]));
        Linear { weight, bias }
    }

    /// A linear layer over an existing weight (a tied lm_head).
    pub fn from_weight(weight: Tensor) -> Self {
        Linear { weight, bias: None }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        xs.linear(&self.weight, self.bias.as_ref())
    }
}

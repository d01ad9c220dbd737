//! The `act_fn` of diffusers configs (`get_activation`).

use serde::Deserialize;
use tch::Tensor;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    #[serde(alias = "swish")]
    Silu,
    Mish,
    Gelu,
    Relu,
}

impl Activation {
    pub fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Activation::Silu => xs.silu(),
            Activation::Mish => xs.mish(),
            Activation::Gelu => xs.gelu("none"),
            Activation::Relu => xs.relu(),
        }
    }
}

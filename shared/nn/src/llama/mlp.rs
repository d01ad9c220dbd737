//! `LlamaMLP`: SwiGLU, `down_proj(silu(gate_proj(x)) * up_proj(x))`.

use super::{config::LlamaConfig, linear::Linear};
use tch::{Tensor, nn};

#[derive(Debug)]
pub struct LlamaMlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

impl LlamaMlp {
    pub fn new(path: nn::Path, config: &LlamaConfig) -> Self {
        let (h, i, bias) = (config.hidden_size, config.intermediate_size, config.mlp_bias);
        LlamaMlp {
            gate_proj: Linear::new(&path / "gate_proj", h, i, bias),
            up_proj: Linear::new(&path / "up_proj", h, i, bias),
            down_proj: Linear::new(&path / "down_proj", i, h, bias),
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let mut gate = self.gate_proj.forward(xs);
        let _ = gate.silu_();
        gate *= self.up_proj.forward(xs);
        self.down_proj.forward(&gate)
    }
}

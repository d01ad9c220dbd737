//! VITS `TextEncoder` (`enc_p`): phoneme ids -> hidden states and the prior's mean and
//! log-std per phoneme.

use super::{attentions::Encoder, config::VitsConfig};
use tch::{Tensor, nn, nn::Module};

#[derive(Debug)]
pub struct TextEncoder {
    emb: nn::Embedding,
    encoder: Encoder,
    proj: nn::Conv1D,
    hidden: i64,
    out_channels: i64,
}

/// What the text encoder gives: hidden states, prior mean and log-std, (B, C, T) each.
pub struct Encoded {
    pub x: Tensor,
    pub m: Tensor,
    pub logs: Tensor,
}

impl TextEncoder {
    pub fn new(p: nn::Path, c: &VitsConfig) -> Self {
        TextEncoder {
            emb: nn::embedding(&p / "emb", c.n_vocab, c.hidden_channels, Default::default()),
            encoder: Encoder::new(
                &p / "encoder",
                c.hidden_channels,
                c.filter_channels,
                c.n_heads,
                c.n_layers,
                c.kernel_size,
                c.window_size,
            ),
            proj: nn::conv1d(
                &p / "proj",
                c.hidden_channels,
                c.inter_channels * 2,
                1,
                Default::default(),
            ),
            hidden: c.hidden_channels,
            out_channels: c.inter_channels,
        }
    }

    /// `ids` (B, T) under `mask` (B, 1, T).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Encoded {
        let x = self.emb.forward(ids) * (self.hidden as f64).sqrt();
        let x = x.transpose(1, -1);
        let x = self.encoder.forward(&x, mask);
        let stats = self.proj.forward(&x) * mask;
        let parts = stats.split(self.out_channels, 1);
        Encoded {
            x,
            m: parts[0].shallow_clone(),
            logs: parts[1].shallow_clone(),
        }
    }
}

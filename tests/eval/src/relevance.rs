//! Relevance of a scene to its title: the cosine of their all-MiniLM-L6-v2 embeddings.
//!
//! [`THRESHOLD`] is set against a null distribution the evaluation measures on every run
//! (the cosine of each scene to the titles of the *other* stories, which it is not about):
//! it lies above that distribution's 95th percentile (0.25 on the 45 titles; the 99th is
//! 0.34), so a scene counted relevant is closer to its title than 95% of unrelated titles
//! are. The summary prints the null
//! percentiles beside the threshold, so a change of encoder or titles that moves them is
//! seen.

use std::path::Path;
use storyreel_nn::bert::{SentenceEncoder, SentenceEncoderOptions};

pub const THRESHOLD: f32 = 0.3;

pub struct Encoder(SentenceEncoder);

impl Encoder {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let encoder = SentenceEncoder::load(dir, &SentenceEncoderOptions::default())
            .map_err(|e| anyhow::anyhow!("sentence encoder {}: {e}", dir.display()))?;
        anyhow::ensure!(
            encoder.normalizes(),
            "{}: the encoder must normalise its embeddings",
            dir.display()
        );
        Ok(Self(encoder))
    }

    /// Unit-length embeddings of `texts`.
    pub fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.0.embed(texts).map_err(|e| anyhow::anyhow!("embedding: {e}"))
    }
}

/// Cosine of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

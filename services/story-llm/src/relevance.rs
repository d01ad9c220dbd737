//! How close a candidate scene is to the story's title: the cosine of their sentence
//! embeddings (all-MiniLM-L6-v2 by default, the encoder retrieval uses), a term of
//! [`crate::scoring::score`].
//!
//! The encoder is small (22M parameters): the title and a scene's candidates are embedded
//! in one forward pass of a few milliseconds, on a blocking thread so the async runtime
//! is not held. A panic or an error of the encoder is logged and the scene is scored
//! without relevance: it is a preference between usable candidates, not a gate.

use crate::error::StoryLlmError;
use std::{
    path::Path,
    sync::{Arc, Mutex},
};
use storyreel_nn::bert::{SentenceEncoder, SentenceEncoderOptions};
use storyreel_runtime::ValidationError;

/// A sentence encoder shared by the stories of a process.
#[derive(Clone)]
pub struct TitleRelevance {
    encoder: Arc<Mutex<SentenceEncoder>>,
}

impl TitleRelevance {
    /// Loads a sentence-transformers directory; its embeddings must be unit-length, so a
    /// dot product is their cosine.
    pub fn load(dir: &Path) -> Result<Self, StoryLlmError> {
        let fail = |message: String| {
            StoryLlmError::Validation(ValidationError::new(
                "relevance_encoder_dir",
                format!(
                    "{}: {message} (set it to \"\" to score scenes without relevance)",
                    dir.display()
                ),
            ))
        };
        let encoder = SentenceEncoder::load(dir, &SentenceEncoderOptions::default())
            .map_err(|e| fail(e.to_string()))?;
        if !encoder.normalizes() {
            return Err(fail("the encoder does not normalise its embeddings".into()));
        }
        Ok(Self {
            encoder: Arc::new(Mutex::new(encoder)),
        })
    }

    /// The cosine of each text to `title`; `None` when the encoder failed (logged).
    pub async fn cosines(&self, title: &str, texts: Vec<String>) -> Option<Vec<f32>> {
        if texts.is_empty() {
            return Some(Vec::new());
        }
        let encoder = self.encoder.clone();
        let title = title.to_string();
        let embedded = tokio::task::spawn_blocking(move || {
            let mut batch = Vec::with_capacity(texts.len() + 1);
            batch.push(title);
            batch.extend(texts);
            // Inference keeps no state between calls: a poisoned lock is still usable.
            let encoder = encoder.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            encoder.embed(&batch)
        })
        .await;
        match embedded {
            Ok(Ok(rows)) => {
                let (title, scenes) = rows.split_first()?;
                Some(scenes.iter().map(|row| dot(title, row)).collect())
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "relevance encoder failed; scoring without it");
                None
            }
            Err(join) => {
                tracing::warn!(error = %join, "relevance encoder panicked; scoring without it");
                None
            }
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

//! Caption-like embeddings for synthetic clips, without running the encoder per clip.
//!
//! Embedding 1M synthetic captions with MiniLM takes over half an hour on 2 cores, and random unit
//! vectors have none of the structure of real caption embeddings (clips about the same
//! subject or place lie close together), which is what makes a nearest-neighbour graph
//! fast and accurate. A [`ComposedEmbeddings`] embeds each vocabulary entry once with the
//! real encoder and gives a clip the normalised sum of its parts' vectors, plus a little
//! seeded noise so that no two clips coincide. How close these come to the encoder's own
//! embedding of the whole caption is measured ([`ComposedEmbeddings::fidelity`]) and
//! reported beside any figure that uses them.

use crate::{
    catalog::ann::dot,
    synthetic::{SyntheticClip, pseudo_embedding},
};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Length of the noise added to a clip's (unit) sum of parts, before it is normalised
/// again: enough to separate clips built from the same five parts, small beside the
/// distance between clips that differ in one part.
pub const NOISE: f32 = 0.1;

/// The encoder's vector of every vocabulary entry.
pub struct ComposedEmbeddings {
    parts: HashMap<&'static str, Vec<f32>>,
    dim: usize,
}

/// A vocabulary entry had no vector, or the vectors disagree in length.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no embedding for the vocabulary entry {0:?}")]
    MissingPart(&'static str),
    #[error("part embeddings must all have {expected} dimensions; {part:?} has {got}")]
    Dimension {
        part: &'static str,
        expected: usize,
        got: usize,
    },
}

impl ComposedEmbeddings {
    /// From `(entry, vector)` pairs, the encoder's embedding of each vocabulary entry
    /// ([`crate::synthetic::vocabulary`]).
    pub fn new(parts: impl IntoIterator<Item = (&'static str, Vec<f32>)>) -> Result<Self, ComposeError> {
        let parts: HashMap<_, _> = parts.into_iter().collect();
        let dim = parts.values().next().map_or(0, Vec::len);
        if let Some((part, v)) = parts.iter().find(|(_, v)| v.len() != dim) {
            return Err(ComposeError::Dimension {
                part,
                expected: dim,
                got: v.len(),
            });
        }
        Ok(ComposedEmbeddings { parts, dim })
    }

    /// The unit vector of `clip`: its parts' vectors summed, normalised, `NOISE` of
    /// random direction added (drawn from `rng`), normalised again.
    pub fn embed(&self, clip: &SyntheticClip, rng: &mut ChaCha8Rng) -> Result<Vec<f32>, ComposeError> {
        let mut sum = vec![0f32; self.dim];
        for part in clip.parts {
            let v = self.parts.get(part).ok_or(ComposeError::MissingPart(part))?;
            sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        }
        normalise(&mut sum);
        let noise = pseudo_embedding(rng, self.dim);
        sum.iter_mut().zip(&noise).for_each(|(s, n)| *s += NOISE * n);
        normalise(&mut sum);
        Ok(sum)
    }

    /// The mean cosine between the composed vectors of `clips` and `encoded`, the
    /// encoder's own embeddings of the same captions (1.0: identical directions).
    pub fn fidelity(
        &self,
        clips: &[SyntheticClip],
        encoded: &[Vec<f32>],
        rng: &mut ChaCha8Rng,
    ) -> Result<f32, ComposeError> {
        let mut total = 0f32;
        for (clip, real) in clips.iter().zip(encoded) {
            let composed = self.embed(clip, rng)?;
            total += dot(&composed, real);
        }
        Ok(total / clips.len().max(1) as f32)
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    v.iter_mut().for_each(|x| *x /= norm);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{CaptionGenerator, vocabulary};
    use rand::SeedableRng;

    /// One-hot-ish vectors: entry i points along axis i mod dim.
    fn axes(dim: usize) -> ComposedEmbeddings {
        ComposedEmbeddings::new(vocabulary().into_iter().enumerate().map(|(i, part)| {
            let mut v = vec![0f32; dim];
            v[i % dim] = 1.0;
            (part, v)
        }))
        .unwrap()
    }

    #[test]
    fn clips_sharing_parts_lie_closer_than_clips_sharing_none() {
        let composed = axes(512);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let clips: Vec<_> = CaptionGenerator::new(1).take(200).collect();
        let vectors: Vec<_> = clips
            .iter()
            .map(|c| composed.embed(c, &mut rng).unwrap())
            .collect();
        for v in &vectors {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "unit vectors, got norm {norm}");
        }
        let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let shared =
            |a: &SyntheticClip, b: &SyntheticClip| a.parts.iter().filter(|p| b.parts.contains(p)).count();
        let (mut close, mut far) = (vec![], vec![]);
        for i in 0..clips.len() {
            for j in i + 1..clips.len() {
                match shared(&clips[i], &clips[j]) {
                    0 => far.push(cosine(&vectors[i], &vectors[j])),
                    2.. => close.push(cosine(&vectors[i], &vectors[j])),
                    _ => {}
                }
            }
        }
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!(!close.is_empty() && !far.is_empty());
        assert!(
            mean(&close) > mean(&far) + 0.3,
            "two shared parts: mean cosine {}, none shared: {}",
            mean(&close),
            mean(&far)
        );
    }

    #[test]
    fn same_seed_same_vectors_and_a_missing_part_is_named() {
        let composed = axes(64);
        let clip = CaptionGenerator::new(9).next().unwrap();
        let a = composed.embed(&clip, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let b = composed.embed(&clip, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(a, b);
        let partial = ComposedEmbeddings::new([(clip.parts[0], vec![1.0; 4])]).unwrap();
        let err = partial
            .embed(&clip, &mut ChaCha8Rng::seed_from_u64(1))
            .unwrap_err();
        assert!(err.to_string().contains(clip.parts[1]), "{err}");
    }

    #[test]
    fn parts_of_different_lengths_are_refused() {
        let err = ComposedEmbeddings::new([("red", vec![1.0; 4]), ("blue", vec![1.0; 3])])
            .err()
            .expect("lengths differ");
        assert!(matches!(err, ComposeError::Dimension { .. }), "{err}");
    }
}

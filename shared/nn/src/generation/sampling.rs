//! Choosing the next token from one row of logits: the logits processors (transformers'
//! `RepetitionPenaltyLogitsProcessor`, `TemperatureLogitsWarper`, `TopKLogitsWarper`,
//! `TopPLogitsWarper`, in that order) and greedy or seeded sampling.
//!
//! This runs on the CPU over `f32` slices, one sequence at a time, with one ChaCha20 generator
//! per sequence: a sequence's tokens depend on its logits and its own seed, never on what
//! else is in the batch.

use super::SamplingParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The distinct token ids a sequence has seen (prompt and output), for the repetition penalty.
#[derive(Debug, Clone)]
pub struct TokenHistory {
    seen: Vec<u64>,
    ids: Vec<u32>,
}

impl TokenHistory {
    pub fn new(vocab_size: usize) -> Self {
        TokenHistory {
            seen: vec![0; vocab_size.div_ceil(64)],
            ids: vec![],
        }
    }

    pub fn push(&mut self, id: u32) {
        let (word, bit) = (id as usize / 64, id % 64);
        if let Some(w) = self.seen.get_mut(word)
            && *w & (1 << bit) == 0
        {
            *w |= 1 << bit;
            self.ids.push(id);
        }
    }

    /// Each id once, in order of first appearance.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }
}

/// transformers' `RepetitionPenaltyLogitsProcessor`: for each id in `ids`, a positive logit is
/// divided by `penalty`, a negative one multiplied.
pub fn apply_repetition_penalty(logits: &mut [f32], ids: &[u32], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    for &id in ids {
        if let Some(l) = logits.get_mut(id as usize) {
            *l = if *l < 0.0 { *l * penalty } else { *l / penalty };
        }
    }
}

/// transformers' `TemperatureLogitsWarper`: logits divided by `temperature`.
pub fn apply_temperature(logits: &mut [f32], temperature: f32) {
    if temperature != 1.0 {
        logits.iter_mut().for_each(|l| *l /= temperature);
    }
}

/// transformers' `TopKLogitsWarper`: every logit below the k-th largest becomes -inf (ties
/// with the k-th survive).
pub fn top_k_filter(logits: &mut [f32], k: usize) {
    if k == 0 || k >= logits.len() {
        return;
    }
    let mut values: Vec<f32> = logits.to_vec();
    let (_, kth, _) = values.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = *kth;
    logits
        .iter_mut()
        .filter(|l| **l < kth)
        .for_each(|l| *l = f32::NEG_INFINITY);
}

/// transformers' `TopPLogitsWarper` (min_tokens_to_keep = 1): sorted by probability, the
/// least likely tokens whose total probability is at most `1 - top_p` become -inf; the most
/// likely token always survives.
///
/// Walking from the most likely token down, a token is kept while the probability of the
/// tokens before it is < top_p (the same set). Only the head of the distribution is sorted:
/// the best 64 candidates, more only when they do not reach `top_p`.
pub fn top_p_filter(logits: &mut [f32], top_p: f32) {
    if top_p >= 1.0 {
        return;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return;
    }
    let weight = |l: f32| (l as f64 - max as f64).exp();
    let budget = top_p as f64 * logits.iter().map(|&l| weight(l)).sum::<f64>();
    // most likely first; ties by id, so the result never depends on the sort algorithm
    let better = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
    let mut candidates: Vec<u32> = (0..logits.len() as u32)
        .filter(|&i| logits[i as usize] > f32::NEG_INFINITY)
        .collect();
    let mut head = 64.min(candidates.len());
    let first_removed = loop {
        if head < candidates.len() {
            candidates.select_nth_unstable_by(head - 1, better);
        }
        candidates[..head].sort_unstable_by(better);
        let mut mass = 0.0;
        let found = candidates[..head].iter().enumerate().find_map(|(rank, &i)| {
            if rank > 0 && mass >= budget {
                return Some(i);
            }
            mass += weight(logits[i as usize]);
            None
        });
        match found {
            Some(i) => break i,
            None if head == candidates.len() => return,
            None => head = (head * 4).min(candidates.len()),
        }
    };
    // the first removed token and everything after it in the same order goes
    let cut = logits[first_removed as usize];
    for (i, l) in logits.iter_mut().enumerate() {
        if l.total_cmp(&cut).then((first_removed as usize).cmp(&i)).is_le() {
            *l = f32::NEG_INFINITY;
        }
    }
}

/// The first index of the largest logit (torch.argmax's choice on ties).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Draws an index with probability softmax(logits) (-inf entries never drawn).
pub fn sample(logits: &[f32], rng: &mut impl Rng) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let total: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let target = rng.random::<f64>() * total;
    let mut cumulative = 0.0;
    let mut last = argmax(logits);
    for (i, &l) in logits.iter().enumerate() {
        if l == f32::NEG_INFINITY {
            continue;
        }
        cumulative += (l as f64 - max).exp();
        last = i as u32;
        if cumulative > target {
            return i as u32;
        }
    }
    last
}

/// One sequence's token chooser: its parameters and its own seeded generator.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: ChaCha20Rng,
}

impl Sampler {
    pub fn new(params: &SamplingParams) -> Self {
        Sampler {
            params: params.clone(),
            rng: ChaCha20Rng::seed_from_u64(params.seed),
        }
    }

    /// Processes `logits` in place and picks the next token.
    pub fn next_token(&mut self, logits: &mut [f32], history: &TokenHistory) -> u32 {
        let p = &self.params;
        apply_repetition_penalty(logits, history.ids(), p.repetition_penalty);
        if !p.do_sample {
            return argmax(logits);
        }
        apply_temperature(logits, p.temperature);
        if let Some(k) = p.top_k {
            top_k_filter(logits, k);
        }
        if let Some(top_p) = p.top_p {
            top_p_filter(logits, top_p);
        }
        sample(logits, &mut self.rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative_logits() {
        let mut logits = vec![2.0, -2.0, 1.0, -1.0];
        apply_repetition_penalty(&mut logits, &[0, 1], 2.0);
        assert_eq!(logits, vec![1.0, -4.0, 1.0, -1.0]);
    }

    #[test]
    fn history_keeps_each_id_once() {
        let mut h = TokenHistory::new(130);
        for id in [5, 129, 5, 0, 129] {
            h.push(id);
        }
        assert_eq!(h.ids(), &[5, 129, 0]);
    }

    #[test]
    fn top_k_keeps_ties_with_the_kth() {
        let mut logits = vec![1.0, 3.0, 2.0, 2.0, 0.0];
        top_k_filter(&mut logits, 2);
        let ninf = f32::NEG_INFINITY;
        assert_eq!(logits, vec![ninf, 3.0, 2.0, 2.0, ninf]);
    }

    #[test]
    fn top_p_matches_transformers_on_a_small_example() {
        // probabilities 0.5, 0.25, 0.125, 0.125: top_p 0.7 keeps the first two, as
        // transformers does (ascending cumulative 0.125, 0.25 <= 0.3 removed; 0.5 > 0.3 kept)
        let mut logits: Vec<f32> = [0.5f32, 0.25, 0.125, 0.125].iter().map(|p| p.ln()).collect();
        top_p_filter(&mut logits, 0.7);
        assert!(logits[0].is_finite() && logits[1].is_finite());
        assert!(logits[2] == f32::NEG_INFINITY && logits[3] == f32::NEG_INFINITY);
        // a tiny top_p keeps the best token only
        let mut logits = vec![0.1, 0.3, 0.2];
        top_p_filter(&mut logits, 1e-6);
        assert_eq!(logits.iter().filter(|l| l.is_finite()).count(), 1);
        assert!(logits[1].is_finite());
    }

    #[test]
    fn sampling_follows_the_distribution_and_skips_removed_tokens() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let logits = vec![0.0, f32::NEG_INFINITY, (3.0f32).ln()];
        let mut counts = [0usize; 3];
        for _ in 0..4000 {
            counts[sample(&logits, &mut rng) as usize] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 4000.0;
        assert!((share - 0.75).abs() < 0.03, "{counts:?}");
    }

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}

//! Word timings: when each word of a sentence is heard.
//!
//! A voice reports a [`WordSpan`] per word of the sentence it speaks (the normalised
//! text): Piper from its duration predictor ([`phoneme_words`] groups the phonemes into
//! words, [`alignment`] pairs those with the text's words), espeak-ng from its word
//! events ([`silence`] trims the pauses they leave in). [`original`] maps the spans back
//! to the text as written, one span per written token.

pub mod alignment;
pub mod original;
pub mod phoneme_words;
pub mod silence;

/// Samples `[start, end)` of one word; `start == end` for a word that makes no sound
/// (a dash, a lone symbol).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WordSpan {
    pub start: usize,
    pub end: usize,
}

impl WordSpan {
    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes `spans` ordered, non-overlapping and within `0..total`, whatever a voice
/// reported: each span starts no earlier than the previous one ends.
pub fn make_monotonic(spans: &mut [WordSpan], total: usize) {
    let mut floor = 0;
    for span in spans {
        span.start = span.start.clamp(floor, total);
        span.end = span.end.clamp(span.start, total);
        floor = span.end;
    }
}

/// `spans` at `from` Hz as spans at `to` Hz, within `0..total` samples.
pub fn rescale(spans: &[WordSpan], from: u32, to: u32, total: usize) -> Vec<WordSpan> {
    let at = |s: usize| ((s as u128 * to as u128 + from as u128 / 2) / from.max(1) as u128) as usize;
    let mut out: Vec<WordSpan> = spans
        .iter()
        .map(|s| WordSpan {
            start: at(s.start),
            end: at(s.end),
        })
        .collect();
    make_monotonic(&mut out, total);
    out
}

/// Spans for `words` over `0..total` in proportion to their lengths: the timing of a
/// voice that could not report one.
pub fn proportional(words: &[&str], total: usize) -> Vec<WordSpan> {
    let weights: Vec<usize> = words
        .iter()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).count())
        .collect();
    split_by_weights(WordSpan { start: 0, end: total }, &weights)
}

/// `span` shared by `weights` (a zero weight gets an empty span).
pub fn split_by_weights(span: WordSpan, weights: &[usize]) -> Vec<WordSpan> {
    let sum: usize = weights.iter().sum();
    let mut out = Vec::with_capacity(weights.len());
    let mut acc = 0usize;
    for &w in weights {
        let at = |acc: usize| match sum {
            0 => span.start,
            _ => span.start + (span.len() as u128 * acc as u128 / sum as u128) as usize,
        };
        let start = at(acc);
        acc += w;
        out.push(WordSpan { start, end: at(acc) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize) -> WordSpan {
        WordSpan { start, end }
    }

    #[test]
    fn monotonic_rescaled_and_proportional() {
        let mut spans = [span(5, 3), span(2, 8), span(20, 30)];
        make_monotonic(&mut spans, 25);
        assert_eq!(spans, [span(5, 5), span(5, 8), span(20, 25)]);
        assert_eq!(rescale(&[span(0, 22050)], 22050, 16000, 16000), [span(0, 16000)]);
        assert_eq!(
            proportional(&["ab", "—", "abcd"], 60),
            [span(0, 20), span(20, 20), span(20, 60)]
        );
        assert_eq!(
            split_by_weights(span(10, 10), &[0, 0]),
            [span(10, 10), span(10, 10)]
        );
    }
}

//! Pauses at a word's edges: espeak-ng reports where each word starts, so a word runs
//! until the next one starts, pauses included (after a comma, between sentences). The
//! silent stretch at its end (and start) is cut off by loudness.

use super::WordSpan;

/// Loudness below this fraction of the sentence's loudest window is silence: quiet
/// consonants ("f", "th") stay well above it, espeak-ng's pauses are digital silence.
const SILENCE_FRACTION: f32 = 0.02;
/// The window loudness is measured over.
const WINDOW_MS: usize = 10;

/// Silence in one sentence's samples.
pub struct Silence<'a> {
    samples: &'a [f32],
    window: usize,
    threshold: f32,
}

impl<'a> Silence<'a> {
    pub fn of(samples: &'a [f32], sample_rate: u32) -> Self {
        let window = (sample_rate as usize * WINDOW_MS / 1000).max(1);
        let loudest = samples.chunks(window).map(rms).fold(0.0f32, f32::max);
        Silence {
            samples,
            window,
            threshold: (loudest * SILENCE_FRACTION).max(1e-4),
        }
    }

    fn silent(&self, from: usize, to: usize) -> bool {
        self.samples.get(from..to).is_none_or(|s| rms(s) < self.threshold)
    }

    /// `span` without the silent windows at its ends; unchanged when all of it is silent.
    pub fn trim(&self, span: WordSpan) -> WordSpan {
        let end_limit = span.end.min(self.samples.len());
        let mut start = span.start.min(end_limit);
        let mut end = end_limit;
        while end > start && self.silent(end.saturating_sub(self.window).max(start), end) {
            end = end.saturating_sub(self.window).max(start);
        }
        if end == start {
            return span;
        }
        while start + self.window < end && self.silent(start, start + self.window) {
            start += self.window;
        }
        // to the sample within the edge windows
        let loud = |i: &usize| self.samples[*i].abs() >= self.threshold;
        let end = (end.saturating_sub(self.window).max(start)..end)
            .rev()
            .find(loud)
            .map_or(end, |i| i + 1);
        let start = (start..(start + self.window).min(end))
            .find(loud)
            .unwrap_or(start);
        WordSpan { start, end }
    }
}

fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_silent_edges_only() {
        // 1 kHz: 10-sample windows; sound in 20..50 and 80..90
        let samples: Vec<f32> = (0..100)
            .map(|i| {
                if (20..50).contains(&i) || (80..90).contains(&i) {
                    0.5
                } else {
                    0.0
                }
            })
            .collect();
        let silence = Silence::of(&samples, 1000);
        assert_eq!(
            silence.trim(WordSpan { start: 10, end: 80 }),
            WordSpan { start: 20, end: 50 }
        );
        assert_eq!(
            silence.trim(WordSpan { start: 50, end: 80 }),
            WordSpan { start: 50, end: 80 }
        );
        assert_eq!(
            silence.trim(WordSpan { start: 75, end: 120 }),
            WordSpan { start: 80, end: 90 }
        );
        assert_eq!(
            silence.trim(WordSpan { start: 15, end: 57 }),
            WordSpan { start: 20, end: 50 }
        );
        assert_eq!(
            Silence::of(&[], 1000).trim(WordSpan { start: 3, end: 5 }),
            WordSpan { start: 3, end: 5 }
        );
    }
}

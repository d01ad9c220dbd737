//! How a scene's later candidate rounds decode: a little more adventurously than the first.
//!
//! A round is repeated only when none of its candidates was usable. With a small model the
//! usual cause is a loop: every candidate copies the previous scene, or repeats a phrase,
//! because those continuations are by far the likeliest. New seeds alone then draw the same
//! text again, so each later round samples at a higher temperature (flatter distribution,
//! other openings get drawn) and penalises repeated tokens a little (the previous scene is
//! in the prompt). Both stay within bounds where SmolLM2-class models still write fluent
//! sentences; the scorer still judges every candidate.
//!
//! A greedy request (temperature 0) stays greedy: it asked for one deterministic answer,
//! and its later rounds differ only by the worker's seeds, which it ignores.

use storyreel_llm::JobSampling;

/// Temperature added per round after the first.
pub const TEMPERATURE_STEP: f32 = 0.15;
/// Later rounds never sample hotter than this (above ~1.1 small models lose grammar).
pub const MAX_TEMPERATURE: f32 = 1.0;
/// The repetition penalty of a later round is at least 1 + this per round after the first.
pub const REPETITION_PENALTY_STEP: f32 = 0.05;
/// Later rounds never penalise repetition more than this (the title's own words are
/// penalised too, and must stay writable).
pub const MAX_REPETITION_PENALTY: f32 = 1.15;

/// The sampling of round `round` (1-based) of a scene, from the request's own.
pub fn sampling_for_round(base: JobSampling, round: u32) -> JobSampling {
    let later = round.saturating_sub(1) as f32;
    if later == 0.0 || base.temperature == 0.0 {
        return base;
    }
    JobSampling {
        temperature: (base.temperature + TEMPERATURE_STEP * later).min(MAX_TEMPERATURE.max(base.temperature)),
        repetition_penalty: base
            .repetition_penalty
            .max((1.0 + REPETITION_PENALTY_STEP * later).min(MAX_REPETITION_PENALTY)),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(temperature: f32, repetition_penalty: f32) -> JobSampling {
        JobSampling {
            temperature,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty,
            seed: 7,
            max_new_tokens: 48,
        }
    }

    #[test]
    fn the_first_round_decodes_as_asked() {
        assert_eq!(sampling_for_round(base(0.7, 1.0), 1), base(0.7, 1.0));
    }

    #[test]
    fn later_rounds_sample_hotter_and_penalise_repeats_within_bounds() {
        let second = sampling_for_round(base(0.7, 1.0), 2);
        assert!((second.temperature - 0.85).abs() < 1e-6);
        assert!((second.repetition_penalty - 1.05).abs() < 1e-6);
        assert_eq!((second.seed, second.top_p, second.max_new_tokens), (7, 0.9, 48));
        let tenth = sampling_for_round(base(0.7, 1.0), 10);
        assert_eq!(
            (tenth.temperature, tenth.repetition_penalty),
            (MAX_TEMPERATURE, MAX_REPETITION_PENALTY)
        );
    }

    #[test]
    fn a_request_hotter_or_stricter_than_the_bounds_keeps_its_own_values() {
        let hot = sampling_for_round(base(1.4, 1.3), 3);
        assert_eq!((hot.temperature, hot.repetition_penalty), (1.4, 1.3));
    }

    #[test]
    fn greedy_stays_greedy() {
        assert_eq!(sampling_for_round(base(0.0, 1.0), 3), base(0.0, 1.0));
    }
}

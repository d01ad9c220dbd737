//! Seeds: which seed a request runs with, and how regeneration changes it (the same rules
//! for every stage: language models, diffusion, interpolation, the VAE's posterior).
//!
//! - A request's own `seed` is used as is.
//! - Otherwise the job's base seed (`context.seed`) is mixed with the stage, so stages of
//!   one job draw different random streams from one base seed, reproducibly.
//! - Otherwise a random seed is drawn; it is reported back, so the story can be repeated.
//!
//! Attempt 1 runs with the request's seed; attempt `a > 1` with [`for_attempt`]. The
//! response carries the seed of the attempt that produced the story, so sending it back
//! reproduces that output in one attempt.

use storyreel_proto::common::Stage;

/// The seed of `stage` of a job whose base seed is `job_seed`.
pub fn from_job(job_seed: u64, stage: Stage) -> u64 {
    splitmix64(job_seed ^ splitmix64(stage as u64))
}

/// The request's seed, else the job's (mixed with `stage`), else a random one; with
/// where it came from.
pub fn choose(request_seed: Option<u64>, job_seed: Option<u64>, stage: Stage) -> (u64, SeedOrigin) {
    match (request_seed, job_seed) {
        (Some(seed), _) => (seed, SeedOrigin::Request),
        (None, Some(job_seed)) => (from_job(job_seed, stage), SeedOrigin::Job),
        (None, None) => (random(), SeedOrigin::Random),
    }
}

/// Where a request's seed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedOrigin {
    /// The request's own `seed`.
    Request,
    /// Derived from `context.seed`, the job's base seed.
    Job,
    /// Neither was set: drawn at random (and reported back).
    Random,
}

/// A fresh random seed.
pub fn random() -> u64 {
    rand::random()
}

/// The seed of generation attempt `attempt` (1-based) of a request seeded with `seed`.
pub fn for_attempt(seed: u64, attempt: u32) -> u64 {
    if attempt <= 1 {
        seed
    } else {
        splitmix64(seed.wrapping_add(u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    }
}

/// The sampling seed of item `index` (0-based: a scene, a field of a scene) of an attempt
/// seeded with `seed`, so the items of one request draw different random streams.
pub fn for_scene(seed: u64, index: usize) -> u64 {
    splitmix64(seed ^ splitmix64(0x5CE4_E000 ^ index as u64))
}

/// SplitMix64's output function: a bijective, well-mixing map on u64.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn derivations_are_stable() {
        // Pinned: changing them changes every job's story for a given job seed.
        assert_eq!(from_job(42, Stage::Story), from_job(42, Stage::Story));
        assert_ne!(from_job(42, Stage::Story), 42);
        assert_ne!(from_job(42, Stage::Story), from_job(42, Stage::Prompt));
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(for_attempt(7, 1), 7);
        assert_eq!(for_attempt(7, 0), 7);
    }

    #[test]
    fn the_request_seed_wins_then_the_job_seed() {
        assert_eq!(choose(Some(3), Some(4), Stage::Story), (3, SeedOrigin::Request));
        assert_eq!(
            choose(None, Some(4), Stage::Story),
            (from_job(4, Stage::Story), SeedOrigin::Job)
        );
        assert_eq!(choose(None, None, Stage::Story).1, SeedOrigin::Random);
    }

    #[test]
    fn attempts_get_distinct_seeds() {
        let seeds: HashSet<u64> = (1..=10).map(|a| for_attempt(123, a)).collect();
        assert_eq!(seeds.len(), 10);
        let jobs: HashSet<u64> = (0..100).map(|j| from_job(j, Stage::Story)).collect();
        assert_eq!(jobs.len(), 100);
        let scenes: HashSet<u64> = (0..8).map(|i| for_scene(123, i)).collect();
        assert_eq!(scenes.len(), 8);
        assert!(!scenes.contains(&123));
    }
}

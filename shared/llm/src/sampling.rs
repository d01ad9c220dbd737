//! Sampling parameters (common.proto `SamplingParams`): their limits, the server defaults
//! a service's config sets, and request validation that names each field.

use serde::{Deserialize, Serialize};
use storyreel_proto::common::SamplingParams;
use storyreel_runtime::{ValidationError, config::check_range};

/// Limits of `SamplingParams`, shared by config defaults and request validation.
pub mod limits {
    pub const TEMPERATURE_MAX: f32 = 2.0;
    pub const TOP_K_MAX: u32 = 1000;
    pub const REPETITION_PENALTY_MIN: f32 = 1.0;
    pub const REPETITION_PENALTY_MAX: f32 = 2.0;
    pub const MAX_NEW_TOKENS_MAX: u32 = 1024;
}

/// Sampling parameters with the server defaults applied, every field within its limits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Sampling {
    /// 0.0-2.0; 0 is greedy.
    pub temperature: f32,
    /// (0.0, 1.0].
    pub top_p: f32,
    /// 0-1000; 0 disables.
    pub top_k: u32,
    /// 1.0-2.0; 1.0 disables.
    pub repetition_penalty: f32,
    /// Tokens generated per output item (a scene, a prompt) at most, 1-1024.
    pub max_new_tokens: u32,
}

/// A service's defaults for the `SamplingParams` fields a request leaves unset (the
/// `[<service>.generation]` config table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerationDefaults {
    pub temperature: f32,
    pub top_p: f32,
    pub top_k: u32,
    pub repetition_penalty: f32,
    /// Tokens generated per output item at most.
    pub max_new_tokens: u32,
}

impl Default for GenerationDefaults {
    /// Temperature, top-p and repetition penalty are the values that give SmolLM2-135M
    /// distinct scenes (DESIGN.md §9) and the proto's documented defaults; top-k 0 and
    /// 128 new tokens are the proto's documented defaults too.
    fn default() -> Self {
        Self {
            temperature: 0.7,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.3,
            max_new_tokens: 128,
        }
    }
}

impl GenerationDefaults {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let wire = SamplingParams {
            temperature: Some(self.temperature),
            top_p: Some(self.top_p),
            top_k: Some(self.top_k),
            repetition_penalty: Some(self.repetition_penalty),
            max_new_tokens: Some(self.max_new_tokens),
        };
        resolve(wire, self, "").map(|_| ())
    }

    /// The request's `sampling` (unset: all defaults) with these defaults applied; errors
    /// name `sampling.<field>`.
    pub fn apply(&self, params: Option<SamplingParams>) -> Result<Sampling, ValidationError> {
        resolve(params.unwrap_or_default(), self, "sampling.")
    }
}

fn resolve(
    params: SamplingParams,
    defaults: &GenerationDefaults,
    prefix: &str,
) -> Result<Sampling, ValidationError> {
    let field = |name: &str| format!("{prefix}{name}");
    let temperature = params.temperature.unwrap_or(defaults.temperature);
    check_float(&field("temperature"), temperature, 0.0, limits::TEMPERATURE_MAX)?;
    let top_p = params.top_p.unwrap_or(defaults.top_p);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ValidationError::new(
            field("top_p"),
            format!("must be > 0 and <= 1, got {top_p}"),
        ));
    }
    let top_k = params.top_k.unwrap_or(defaults.top_k);
    check_range(&field("top_k"), top_k, 0, limits::TOP_K_MAX)?;
    let repetition_penalty = params.repetition_penalty.unwrap_or(defaults.repetition_penalty);
    check_float(
        &field("repetition_penalty"),
        repetition_penalty,
        limits::REPETITION_PENALTY_MIN,
        limits::REPETITION_PENALTY_MAX,
    )?;
    let max_new_tokens = params.max_new_tokens.unwrap_or(defaults.max_new_tokens);
    check_range(
        &field("max_new_tokens"),
        max_new_tokens,
        1,
        limits::MAX_NEW_TOKENS_MAX,
    )?;
    Ok(Sampling {
        temperature,
        top_p,
        top_k,
        repetition_penalty,
        max_new_tokens,
    })
}

/// `[min, max]`, rejecting NaN (which `check_range` would let through).
pub fn check_float(field: &str, value: f32, min: f32, max: f32) -> Result<(), ValidationError> {
    if !(min..=max).contains(&value) {
        return Err(ValidationError::new(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_fields_take_the_defaults() {
        let defaults = GenerationDefaults {
            max_new_tokens: 40,
            ..Default::default()
        };
        let s = defaults.apply(None).unwrap();
        assert_eq!((s.temperature, s.top_p, s.top_k), (0.7, 0.9, 0));
        assert_eq!((s.repetition_penalty, s.max_new_tokens), (1.3, 40));
        let s = defaults
            .apply(Some(SamplingParams {
                temperature: Some(0.0),
                ..Default::default()
            }))
            .unwrap();
        assert_eq!((s.temperature, s.max_new_tokens), (0.0, 40));
    }

    #[test]
    fn each_limit_is_named() {
        let bad = |params: SamplingParams| {
            GenerationDefaults::default()
                .apply(Some(params))
                .unwrap_err()
                .to_string()
        };
        let cases = [
            (
                SamplingParams {
                    temperature: Some(f32::NAN),
                    ..Default::default()
                },
                "`sampling.temperature` must be between 0 and 2, got NaN",
            ),
            (
                SamplingParams {
                    top_p: Some(0.0),
                    ..Default::default()
                },
                "`sampling.top_p` must be > 0 and <= 1, got 0",
            ),
            (
                SamplingParams {
                    top_k: Some(1001),
                    ..Default::default()
                },
                "`sampling.top_k` must be between 0 and 1000, got 1001",
            ),
            (
                SamplingParams {
                    repetition_penalty: Some(0.5),
                    ..Default::default()
                },
                "`sampling.repetition_penalty` must be between 1 and 2, got 0.5",
            ),
            (
                SamplingParams {
                    max_new_tokens: Some(0),
                    ..Default::default()
                },
                "`sampling.max_new_tokens` must be between 1 and 1024, got 0",
            ),
        ];
        for (params, want) in cases {
            assert_eq!(bad(params), want);
        }
    }

    #[test]
    fn config_defaults_are_checked_without_the_prefix() {
        let defaults = GenerationDefaults {
            max_new_tokens: 0,
            ..Default::default()
        };
        assert_eq!(
            defaults.validate().unwrap_err().to_string(),
            "`max_new_tokens` must be between 1 and 1024, got 0"
        );
    }
}

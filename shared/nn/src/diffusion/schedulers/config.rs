//! `scheduler_config.json` of the three supported diffusers schedulers, one struct with
//! the union of their fields (each takes diffusers' default when absent); `_class_name`
//! picks the scheduler.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::diffusion::DiffusionError;

/// What the UNet predicts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PredictionType {
    #[default]
    Epsilon,
    VPrediction,
    Sample,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BetaSchedule {
    Linear,
    ScaledLinear,
    #[serde(rename = "squaredcos_cap_v2")]
    SquaredCosCapV2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestepSpacing {
    Linspace,
    Leading,
    Trailing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SchedulerKind {
    #[serde(rename = "DDIMScheduler")]
    Ddim,
    #[serde(rename = "EulerDiscreteScheduler")]
    EulerDiscrete,
    #[serde(rename = "DPMSolverMultistepScheduler")]
    DpmSolverMultistep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalSigmas {
    Zero,
    SigmaMin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolverType {
    Midpoint,
    Heun,
}

pub(crate) fn d_train() -> i64 {
    1000
}
pub(crate) fn d_beta_start() -> f64 {
    0.0001
}
pub(crate) fn d_beta_end() -> f64 {
    0.02
}
fn d_linear() -> BetaSchedule {
    BetaSchedule::Linear
}
fn d_true() -> bool {
    true
}
fn d_one() -> f64 {
    1.0
}
fn d_two() -> i64 {
    2
}
fn d_zero() -> FinalSigmas {
    FinalSigmas::Zero
}
fn d_midpoint() -> SolverType {
    SolverType::Midpoint
}
fn d_dpmpp() -> String {
    "dpmsolver++".into()
}
fn d_linear_interp() -> String {
    "linear".into()
}
fn d_discrete() -> String {
    "discrete".into()
}

/// The fields of `DDIMScheduler`, `EulerDiscreteScheduler` and
/// `DPMSolverMultistepScheduler` configs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SchedulerConfig {
    #[serde(rename = "_class_name")]
    pub class_name: SchedulerKind,
    #[serde(default = "d_train")]
    pub num_train_timesteps: i64,
    #[serde(default = "d_beta_start")]
    pub beta_start: f64,
    #[serde(default = "d_beta_end")]
    pub beta_end: f64,
    #[serde(default = "d_linear")]
    pub beta_schedule: BetaSchedule,
    /// Must be null (explicit betas are not supported).
    #[serde(default)]
    pub trained_betas: Option<Value>,
    #[serde(default)]
    pub prediction_type: PredictionType,
    /// Defaults per scheduler: `leading` for DDIM, `linspace` for the others.
    #[serde(default)]
    pub timestep_spacing: Option<TimestepSpacing>,
    #[serde(default)]
    pub steps_offset: i64,
    #[serde(default)]
    pub rescale_betas_zero_snr: bool,
    // DDIM
    #[serde(default = "d_true")]
    pub clip_sample: bool,
    #[serde(default = "d_one")]
    pub clip_sample_range: f64,
    #[serde(default = "d_true")]
    pub set_alpha_to_one: bool,
    #[serde(default)]
    pub thresholding: bool,
    // Euler and DPM-Solver
    #[serde(default)]
    pub use_karras_sigmas: Option<bool>,
    #[serde(default)]
    pub use_exponential_sigmas: Option<bool>,
    #[serde(default)]
    pub use_beta_sigmas: Option<bool>,
    #[serde(default, deserialize_with = "non_finite_f64")]
    pub sigma_min: Option<f64>,
    #[serde(default, deserialize_with = "non_finite_f64")]
    pub sigma_max: Option<f64>,
    #[serde(default = "d_zero")]
    pub final_sigmas_type: FinalSigmas,
    #[serde(default = "d_linear_interp")]
    pub interpolation_type: String,
    #[serde(default = "d_discrete")]
    pub timestep_type: String,
    // DPM-Solver
    #[serde(default = "d_two")]
    pub solver_order: i64,
    #[serde(default = "d_dpmpp")]
    pub algorithm_type: String,
    #[serde(default = "d_midpoint")]
    pub solver_type: SolverType,
    #[serde(default = "d_true")]
    pub lower_order_final: bool,
    #[serde(default)]
    pub euler_at_final: bool,
    /// `-Infinity` in diffusers' files (no clipping), read as `None`.
    #[serde(default, deserialize_with = "non_finite_f64")]
    pub lambda_min_clipped: Option<f64>,
    #[serde(default)]
    pub use_lu_lambdas: bool,
    #[serde(default)]
    pub use_flow_sigmas: bool,
    #[serde(default)]
    pub variance_type: Option<Value>,
}

/// Python's `json` writes infinities and NaN as bare `Infinity`, `-Infinity`, `NaN`, which
/// are not JSON; they are quoted here (outside strings) and read by [`non_finite_f64`].
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            in_string = c != '"' || escaped;
            escaped = c == '\\' && !escaped;
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .iter()
            .find(|t| rest.starts_with(**t))
        {
            out.push('"');
            out.push_str(token);
            out.push('"');
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// An optional float that may be one of the quoted non-finite tokens; `-Infinity` (the
/// "off" value of diffusers' clipping options) reads as `None`.
fn non_finite_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Number(x)) => Ok(Some(x)),
        Some(Raw::Text(t)) if t == "-Infinity" => Ok(None),
        Some(Raw::Text(t)) => Err(serde::de::Error::custom(format!(
            "expected a finite number or -Infinity, got {t}"
        ))),
    }
}

impl SchedulerConfig {
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DiffusionError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DiffusionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn from_json(text: &str) -> Result<Self, DiffusionError> {
        Self::parse(text, Path::new("<scheduler config>"))
    }

    fn parse(text: &str, path: &Path) -> Result<Self, DiffusionError> {
        let config: Self =
            serde_json::from_str(&quote_non_finite(text)).map_err(|source| DiffusionError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn spacing(&self) -> TimestepSpacing {
        self.timestep_spacing.unwrap_or(match self.class_name {
            SchedulerKind::Ddim => TimestepSpacing::Leading,
            _ => TimestepSpacing::Linspace,
        })
    }

    pub fn karras(&self) -> bool {
        self.use_karras_sigmas.unwrap_or(false)
    }

    /// Rejects the options the schedulers do not implement; errors name the field.
    pub fn validate(&self) -> Result<(), DiffusionError> {
        let unsupported = |field, message: &str| Err(DiffusionError::config(field, message.to_string()));
        if self.num_train_timesteps < 2 {
            return unsupported("num_train_timesteps", "must be >= 2");
        }
        if self.trained_betas.as_ref().is_some_and(|v| !v.is_null()) {
            return unsupported("trained_betas", "is not supported: must be null");
        }
        if self.thresholding {
            return unsupported("thresholding", "is not supported: must be false");
        }
        if self.use_exponential_sigmas.unwrap_or(false) || self.use_beta_sigmas.unwrap_or(false) {
            return unsupported(
                "use_exponential_sigmas",
                "and `use_beta_sigmas` are not supported",
            );
        }
        if self.use_lu_lambdas || self.use_flow_sigmas {
            return unsupported("use_lu_lambdas", "and `use_flow_sigmas` are not supported");
        }
        if self.interpolation_type != "linear" {
            return unsupported("interpolation_type", "must be `linear`");
        }
        if self.timestep_type != "discrete" {
            return unsupported("timestep_type", "must be `discrete`");
        }
        if self.variance_type.as_ref().is_some_and(|v| !v.is_null()) {
            return unsupported("variance_type", "is not supported: must be null");
        }
        if self.class_name == SchedulerKind::DpmSolverMultistep {
            if self.algorithm_type != "dpmsolver++" {
                return unsupported("algorithm_type", "must be `dpmsolver++`");
            }
            if !(1..=2).contains(&self.solver_order) {
                return unsupported("solver_order", "must be 1 or 2");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_python_infinities_outside_strings_only() {
        let text = r#"{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity,
            "algorithm_type": "dpmsolver++", "note": "NaN -Infinity stay \" text"}"#;
        assert!(quote_non_finite(text).contains(r#""note": "NaN -Infinity stay \" text""#));
        let c = SchedulerConfig::from_json(text).unwrap();
        assert_eq!(c.lambda_min_clipped, None);
        let c = SchedulerConfig::from_json(r#"{"_class_name": "DDIMScheduler", "lambda_min_clipped": -5.1}"#)
            .unwrap();
        assert_eq!(c.lambda_min_clipped, Some(-5.1));
    }
}

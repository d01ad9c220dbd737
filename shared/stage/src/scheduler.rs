//! The scheduler a diffusion request asks for (`common.proto` `SchedulerConfig`), checked,
//! and applied to a model's own scheduler configuration.

use serde::Serialize;
use storyreel_nn::diffusion::schedulers::{SchedulerConfig, SchedulerKind};
use storyreel_proto::common::{self, Scheduler};
use storyreel_runtime::ValidationError;

/// A request's scheduler: unset keeps the model's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SchedulerChoice {
    #[serde(serialize_with = "scheduler_name")]
    pub kind: Scheduler,
    pub karras_sigmas: bool,
}

fn scheduler_name<S: serde::Serializer>(kind: &Scheduler, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str_name())
}

impl SchedulerChoice {
    /// Validates the wire field `scheduler`.
    pub fn from_wire(config: Option<common::SchedulerConfig>) -> Result<Self, ValidationError> {
        let config = config.unwrap_or_default();
        let kind = Scheduler::try_from(config.scheduler).map_err(|_| {
            ValidationError::new(
                "scheduler.scheduler",
                format!(
                    "must be DDIM, EULER or DPM_SOLVER_PP_2M, got {}",
                    config.scheduler
                ),
            )
        })?;
        if config.karras_sigmas && matches!(kind, Scheduler::Ddim | Scheduler::Unspecified) {
            return Err(ValidationError::new(
                "scheduler.karras_sigmas",
                "is valid with EULER and DPM_SOLVER_PP_2M only",
            ));
        }
        Ok(Self {
            kind,
            karras_sigmas: config.karras_sigmas,
        })
    }

    /// `default` (a model's scheduler configuration) with this choice applied.
    pub fn apply(self, default: &SchedulerConfig) -> SchedulerConfig {
        let mut config = default.clone();
        match self.kind {
            Scheduler::Unspecified => {}
            Scheduler::Ddim => config.class_name = SchedulerKind::Ddim,
            Scheduler::Euler => config.class_name = SchedulerKind::EulerDiscrete,
            Scheduler::DpmSolverPp2m => {
                config.class_name = SchedulerKind::DpmSolverMultistep;
                config.algorithm_type = "dpmsolver++".into();
                config.solver_order = 2;
            }
        }
        if self.karras_sigmas {
            config.use_karras_sigmas = Some(true);
        }
        config
    }
}

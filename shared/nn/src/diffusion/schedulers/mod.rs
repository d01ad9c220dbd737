//! The samplers' schedulers behind one trait, matching diffusers step for step: DDIM,
//! Euler discrete and DPM-Solver++ (2M), with epsilon and v-prediction.
//!
//! - [`config`]: [`SchedulerConfig`], a diffusers `scheduler_config.json`;
//! - [`schedule`]: the shared noise schedule arithmetic;
//! - [`ddim`], [`euler`], [`dpm_solver`]: the schedulers.
//!
//! Steps are addressed by their index in [`Scheduler::timesteps`] (diffusers looks the
//! index up from the timestep value; a sampling loop knows it).

pub mod config;
pub mod ddim;
pub mod dpm_solver;
pub mod euler;
pub mod schedule;

use tch::Tensor;

pub use config::{PredictionType, SchedulerConfig, SchedulerKind};
pub use ddim::Ddim;
pub use dpm_solver::DpmSolverMultistep;
pub use euler::EulerDiscrete;

use super::DiffusionError;

/// A diffusers scheduler: `set_timesteps`, `scale_model_input`, `step`, `add_noise`.
pub trait Scheduler: Send {
    /// Prepares `steps` inference steps (and resets any multistep history).
    fn set_timesteps(&mut self, steps: usize) -> Result<(), DiffusionError>;
    /// The timesteps the UNet is called with, in order (integers for DDIM and
    /// DPM-Solver, fractional for Euler).
    fn timesteps(&self) -> Vec<f64>;
    /// The standard deviation of the initial noise.
    fn init_noise_sigma(&self) -> f64;
    /// The UNet input at step `step`.
    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Tensor;
    /// The sample after step `step` given the model output there. Steps must be taken in
    /// order (the multistep solvers keep a history).
    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Tensor;
    /// `original` noised to the level of step `step` (img2img starts).
    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Tensor;
    fn config(&self) -> &SchedulerConfig;
}

/// The scheduler that `config.class_name` names.
pub fn from_config(config: &SchedulerConfig) -> Result<Box<dyn Scheduler>, DiffusionError> {
    config.validate()?;
    Ok(match config.class_name {
        SchedulerKind::Ddim => Box::new(Ddim::new(config)),
        SchedulerKind::EulerDiscrete => Box::new(EulerDiscrete::new(config)),
        SchedulerKind::DpmSolverMultistep => Box::new(DpmSolverMultistep::new(config)),
    })
}

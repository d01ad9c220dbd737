//! diffusers' `EulerDiscreteScheduler` (`s_churn = 0`: deterministic), with optional
//! Karras sigmas.

use tch::Tensor;

use super::{
    Scheduler,
    config::{FinalSigmas, PredictionType, SchedulerConfig, TimestepSpacing},
    schedule::{alphas_cumprod, check_steps, interp, karras, sigma_to_t, spaced_timesteps},
};
use crate::diffusion::DiffusionError;

#[derive(Debug, Clone)]
pub struct EulerDiscrete {
    config: SchedulerConfig,
    /// `((1 - a) / a) ** 0.5` per training timestep, f32.
    train_sigmas: Vec<f32>,
    timesteps: Vec<f32>,
    /// One per step plus the final sigma.
    sigmas: Vec<f32>,
}

impl EulerDiscrete {
    pub fn new(config: &SchedulerConfig) -> Self {
        let train_sigmas = alphas_cumprod(config)
            .into_iter()
            .map(|a| ((1.0 - a) / a).sqrt())
            .collect();
        EulerDiscrete {
            config: config.clone(),
            train_sigmas,
            timesteps: Vec::new(),
            sigmas: Vec::new(),
        }
    }
}

impl Scheduler for EulerDiscrete {
    fn set_timesteps(&mut self, steps: usize) -> Result<(), DiffusionError> {
        check_steps(steps, &self.config)?;
        let c = &self.config;
        let mut timesteps: Vec<f64> =
            spaced_timesteps(c.spacing(), steps, c.num_train_timesteps, c.steps_offset, true)
                .into_iter()
                .map(|t| t as f32 as f64)
                .collect();
        let fp: Vec<f64> = self.train_sigmas.iter().map(|&s| s as f64).collect();
        let mut sigmas: Vec<f64> = timesteps.iter().map(|&t| interp(t, &fp)).collect();
        if c.karras() {
            let log_sigmas: Vec<f32> = self.train_sigmas.iter().map(|s| s.ln()).collect();
            let lo = c.sigma_min.unwrap_or(sigmas[sigmas.len() - 1]);
            let hi = c.sigma_max.unwrap_or(sigmas[0]);
            sigmas = karras(lo, hi, steps);
            timesteps = sigmas.iter().map(|&s| sigma_to_t(s, &log_sigmas)).collect();
        }
        let last = match c.final_sigmas_type {
            FinalSigmas::Zero => 0.0,
            FinalSigmas::SigmaMin => self.train_sigmas[0] as f64,
        };
        sigmas.push(last);
        self.sigmas = sigmas.into_iter().map(|s| s as f32).collect();
        self.timesteps = timesteps.into_iter().map(|t| t as f32).collect();
        Ok(())
    }

    fn timesteps(&self) -> Vec<f64> {
        self.timesteps.iter().map(|&t| t as f64).collect()
    }

    fn init_noise_sigma(&self) -> f64 {
        let max = self.sigmas.iter().copied().fold(f32::MIN, f32::max);
        match self.config.spacing() {
            TimestepSpacing::Linspace | TimestepSpacing::Trailing => max as f64,
            TimestepSpacing::Leading => (max * max + 1.0).sqrt() as f64,
        }
    }

    fn scale_model_input(&self, sample: &Tensor, step: usize) -> Tensor {
        let s = self.sigmas[step];
        sample / ((s * s + 1.0).sqrt() as f64)
    }

    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Tensor {
        let sigma = self.sigmas[step];
        let pred_x0 = match self.config.prediction_type {
            PredictionType::Epsilon => sample - model_output * (sigma as f64),
            PredictionType::Sample => model_output.shallow_clone(),
            PredictionType::VPrediction => {
                let var = sigma * sigma + 1.0;
                model_output * ((-sigma / var.sqrt()) as f64) + sample / (var as f64)
            }
        };
        let derivative = (sample - pred_x0) / (sigma as f64);
        let dt = self.sigmas[step + 1] - sigma;
        sample + derivative * (dt as f64)
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Tensor {
        original + noise * (self.sigmas[step] as f64)
    }

    fn config(&self) -> &SchedulerConfig {
        &self.config
    }
}

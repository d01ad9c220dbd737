//! diffusers' `DDIMScheduler` (deterministic, `eta = 0`).

use tch::Tensor;

use super::{
    Scheduler,
    config::{PredictionType, SchedulerConfig},
    schedule::{alphas_cumprod, check_steps, spaced_timesteps},
};
use crate::diffusion::DiffusionError;

#[derive(Debug, Clone)]
pub struct Ddim {
    config: SchedulerConfig,
    alphas_cumprod: Vec<f32>,
    final_alpha_cumprod: f32,
    timesteps: Vec<i64>,
}

impl Ddim {
    pub fn new(config: &SchedulerConfig) -> Self {
        let alphas_cumprod = alphas_cumprod(config);
        let final_alpha_cumprod = if config.set_alpha_to_one {
            1.0
        } else {
            alphas_cumprod[0]
        };
        Ddim {
            config: config.clone(),
            alphas_cumprod,
            final_alpha_cumprod,
            timesteps: Vec::new(),
        }
    }
}

impl Scheduler for Ddim {
    fn set_timesteps(&mut self, steps: usize) -> Result<(), DiffusionError> {
        check_steps(steps, &self.config)?;
        let c = &self.config;
        self.timesteps = spaced_timesteps(c.spacing(), steps, c.num_train_timesteps, c.steps_offset, false)
            .into_iter()
            .map(|t| t as i64)
            .collect();
        Ok(())
    }

    fn timesteps(&self) -> Vec<f64> {
        self.timesteps.iter().map(|&t| t as f64).collect()
    }

    fn init_noise_sigma(&self) -> f64 {
        1.0
    }

    fn scale_model_input(&self, sample: &Tensor, _step: usize) -> Tensor {
        sample.shallow_clone()
    }

    fn step(&mut self, model_output: &Tensor, step: usize, sample: &Tensor) -> Tensor {
        let t = self.timesteps[step];
        let prev_t = t - self.config.num_train_timesteps / self.timesteps.len() as i64;
        let a_t = self.alphas_cumprod[t as usize];
        let a_prev = if prev_t >= 0 {
            self.alphas_cumprod[prev_t as usize]
        } else {
            self.final_alpha_cumprod
        };
        let b_t = 1.0 - a_t;
        let (sa, sb) = (a_t.sqrt() as f64, b_t.sqrt() as f64);
        let (pred_x0, pred_eps) = match self.config.prediction_type {
            PredictionType::Epsilon => ((sample - model_output * sb) / sa, model_output.shallow_clone()),
            PredictionType::Sample => {
                let x0 = model_output.shallow_clone();
                let eps = (sample - &x0 * sa) / sb;
                (x0, eps)
            }
            PredictionType::VPrediction => (sample * sa - model_output * sb, model_output * sa + sample * sb),
        };
        let pred_x0 = if self.config.clip_sample {
            let r = self.config.clip_sample_range;
            pred_x0.clamp(-r, r)
        } else {
            pred_x0
        };
        // eta = 0: no variance term.
        let direction = pred_eps * ((1.0 - a_prev).sqrt() as f64);
        pred_x0 * (a_prev.sqrt() as f64) + direction
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Tensor {
        let a = self.alphas_cumprod[self.timesteps[step] as usize];
        original * (a.sqrt() as f64) + noise * ((1.0 - a).sqrt() as f64)
    }

    fn config(&self) -> &SchedulerConfig {
        &self.config
    }
}

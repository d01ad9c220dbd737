//! diffusers' `DPMSolverMultistepScheduler` with `algorithm_type = "dpmsolver++"`, solver
//! order 1 or 2 (DPM-Solver++ 2M), midpoint or Heun second-order updates, optional Karras
//! sigmas.

use tch::Tensor;

use super::{
    Scheduler,
    config::{FinalSigmas, PredictionType, SchedulerConfig, SolverType, TimestepSpacing},
    schedule::{alphas_cumprod, check_steps, interp, karras, linspace, round_even, sigma_to_t},
};
use crate::diffusion::DiffusionError;

#[derive(Debug)]
pub struct DpmSolverMultistep {
    config: SchedulerConfig,
    alphas_cumprod: Vec<f32>,
    timesteps: Vec<i64>,
    sigmas: Vec<f32>,
    /// The last converted model outputs (x0 predictions), oldest first.
    model_outputs: Vec<Tensor>,
    lower_order_nums: usize,
}

impl Clone for DpmSolverMultistep {
    fn clone(&self) -> Self {
        DpmSolverMultistep {
            config: self.config.clone(),
            alphas_cumprod: self.alphas_cumprod.clone(),
            timesteps: self.timesteps.clone(),
            sigmas: self.sigmas.clone(),
            model_outputs: self.model_outputs.iter().map(Tensor::copy).collect(),
            lower_order_nums: self.lower_order_nums,
        }
    }
}

/// `(alpha_t, sigma_t)` of a sigma, and its log-SNR `lambda`, in f32 as diffusers.
fn alpha_sigma_lambda(sigma: f32) -> (f32, f32, f32) {
    let alpha = 1.0 / (sigma * sigma + 1.0).sqrt();
    let sigma_t = sigma * alpha;
    (alpha, sigma_t, alpha.ln() - sigma_t.ln())
}

impl DpmSolverMultistep {
    pub fn new(config: &SchedulerConfig) -> Self {
        DpmSolverMultistep {
            config: config.clone(),
            alphas_cumprod: alphas_cumprod(config),
            timesteps: Vec::new(),
            sigmas: Vec::new(),
            model_outputs: Vec::new(),
            lower_order_nums: 0,
        }
    }

    /// The number of usable training timesteps after `lambda_min_clipped`.
    fn last_timestep(&self) -> i64 {
        let n = self.config.num_train_timesteps;
        let Some(min) = self.config.lambda_min_clipped else {
            return n;
        };
        // searchsorted(flip(lambda_t), min): how many lambdas (ascending when flipped)
        // are below `min`.
        let clipped = self
            .alphas_cumprod
            .iter()
            .map(|&a| a.sqrt().ln() - (1.0 - a).sqrt().ln())
            .filter(|&l| (l as f64) < min)
            .count() as i64;
        n - clipped
    }
}

impl Scheduler for DpmSolverMultistep {
    fn set_timesteps(&mut self, steps: usize) -> Result<(), DiffusionError> {
        check_steps(steps, &self.config)?;
        let c = &self.config;
        let last = self.last_timestep();
        let mut timesteps: Vec<f64> = match c.spacing() {
            TimestepSpacing::Linspace => {
                let mut t: Vec<f64> = linspace(0.0, (last - 1) as f64, steps + 1)
                    .into_iter()
                    .map(round_even)
                    .collect();
                t.reverse();
                t.truncate(steps);
                t
            }
            TimestepSpacing::Leading => {
                let ratio = (last / (steps as i64 + 1)) as f64;
                let mut t: Vec<f64> = (0..=steps).map(|i| round_even(i as f64 * ratio)).collect();
                t.reverse();
                t.truncate(steps);
                t.into_iter().map(|x| x + c.steps_offset as f64).collect()
            }
            TimestepSpacing::Trailing => {
                let ratio = c.num_train_timesteps as f64 / steps as f64;
                let len = (last as f64 / ratio).ceil() as usize;
                (0..len)
                    .map(|k| round_even(last as f64 - k as f64 * ratio) - 1.0)
                    .collect()
            }
        };
        let train_sigmas: Vec<f32> = self
            .alphas_cumprod
            .iter()
            .map(|&a| ((1.0 - a) / a).sqrt())
            .collect();
        let mut sigmas: Vec<f64> = if c.karras() {
            let log_sigmas: Vec<f32> = train_sigmas.iter().map(|s| s.ln()).collect();
            let lo = c.sigma_min.unwrap_or(train_sigmas[0] as f64);
            let hi = c.sigma_max.unwrap_or(train_sigmas[train_sigmas.len() - 1] as f64);
            let sigmas = karras(lo, hi, steps);
            timesteps = sigmas
                .iter()
                .map(|&s| {
                    let t = sigma_to_t(s, &log_sigmas);
                    if c.beta_schedule == super::config::BetaSchedule::SquaredCosCapV2 {
                        t
                    } else {
                        round_even(t)
                    }
                })
                .collect();
            sigmas
        } else {
            let fp: Vec<f64> = train_sigmas.iter().map(|&s| s as f64).collect();
            timesteps.iter().map(|&t| interp(t, &fp)).collect()
        };
        sigmas.push(match c.final_sigmas_type {
            FinalSigmas::Zero => 0.0,
            FinalSigmas::SigmaMin => train_sigmas[0] as f64,
        });
        self.sigmas = sigmas.into_iter().map(|s| s as f32).collect();
        // `torch.from_numpy(timesteps).to(torch.int64)` truncates.
        self.timesteps = timesteps.into_iter().map(|t| t as i64).collect();
        self.model_outputs.clear();
        self.lower_order_nums = 0;
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
        let c = &self.config;
        let n = self.timesteps.len();
        let lower_order_final = step == n - 1
            && (c.euler_at_final
                || (c.lower_order_final && n < 15)
                || c.final_sigmas_type == FinalSigmas::Zero);
        let lower_order_second = step == n.saturating_sub(2) && c.lower_order_final && n < 15;

        // The model output as an x0 prediction.
        let (alpha_s0, sigma_s0, lambda_s0) = alpha_sigma_lambda(self.sigmas[step]);
        let x0 = match c.prediction_type {
            PredictionType::Epsilon => (sample - model_output * (sigma_s0 as f64)) / (alpha_s0 as f64),
            PredictionType::Sample => model_output.shallow_clone(),
            PredictionType::VPrediction => sample * (alpha_s0 as f64) - model_output * (sigma_s0 as f64),
        };
        if self.model_outputs.len() == c.solver_order as usize {
            drop(self.model_outputs.remove(0));
        }
        self.model_outputs.push(x0.shallow_clone());

        let (alpha_t, sigma_t, lambda_t) = alpha_sigma_lambda(self.sigmas[step + 1]);
        let h = lambda_t - lambda_s0;
        let first_order = c.solver_order == 1 || self.lower_order_nums < 1 || lower_order_final;
        let _ = lower_order_second; // with order <= 2 the second-order update is the highest
        let prev = if first_order {
            sample * ((sigma_t / sigma_s0) as f64) - x0 * ((alpha_t * ((-h).exp() - 1.0)) as f64)
        } else {
            let (_, _, lambda_s1) = alpha_sigma_lambda(self.sigmas[step - 1]);
            let m0 = &self.model_outputs[self.model_outputs.len() - 1];
            let m1 = &self.model_outputs[self.model_outputs.len() - 2];
            let h0 = lambda_s0 - lambda_s1;
            let r0 = h0 / h;
            let d0 = m0;
            let d1 = (m0 - m1) * ((1.0 / r0) as f64);
            let coef = alpha_t * ((-h).exp() - 1.0);
            let base = sample * ((sigma_t / sigma_s0) as f64) - d0 * (coef as f64);
            match c.solver_type {
                SolverType::Midpoint => base - d1 * ((0.5 * coef) as f64),
                SolverType::Heun => base + d1 * ((alpha_t * (((-h).exp() - 1.0) / h + 1.0)) as f64),
            }
        };
        if self.lower_order_nums < c.solver_order as usize {
            self.lower_order_nums += 1;
        }
        prev
    }

    fn add_noise(&self, original: &Tensor, noise: &Tensor, step: usize) -> Tensor {
        let (alpha, sigma, _) = alpha_sigma_lambda(self.sigmas[step]);
        original * (alpha as f64) + noise * (sigma as f64)
    }

    fn config(&self) -> &SchedulerConfig {
        &self.config
    }
}

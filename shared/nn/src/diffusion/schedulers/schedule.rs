//! The noise schedule shared by the schedulers, computed as diffusers computes it: betas
//! and cumulative alphas in f32 torch ops, timestep spacings and sigma interpolation in
//! f64 numpy arithmetic (then f32), Karras sigmas and the sigma -> timestep inversion.

use tch::{Device, Kind, Tensor};

use super::config::{BetaSchedule, SchedulerConfig, TimestepSpacing};
use crate::diffusion::DiffusionError;

/// `alphas_cumprod` (f32) of the config's beta schedule.
pub fn alphas_cumprod(c: &SchedulerConfig) -> Vec<f32> {
    let n = c.num_train_timesteps;
    let opts = (Kind::Float, Device::Cpu);
    let mut betas = match c.beta_schedule {
        BetaSchedule::Linear => Tensor::linspace(c.beta_start, c.beta_end, n, opts),
        BetaSchedule::ScaledLinear => {
            Tensor::linspace(c.beta_start.sqrt(), c.beta_end.sqrt(), n, opts).pow_tensor_scalar(2)
        }
        BetaSchedule::SquaredCosCapV2 => {
            let f = |t: f64| ((t + 0.008) / 1.008 * std::f64::consts::PI / 2.0).cos().powi(2);
            let betas: Vec<f32> = (0..n)
                .map(|i| {
                    let (t1, t2) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
                    (1.0 - f(t2) / f(t1)).min(0.999) as f32
                })
                .collect();
            Tensor::from_slice(&betas)
        }
    };
    if c.rescale_betas_zero_snr {
        betas = rescale_zero_terminal_snr(&betas);
    }
    let cumprod = (-betas + 1.0).cumprod(0, Kind::Float);
    let mut out = Vec::<f32>::try_from(&cumprod).expect("f32 schedule");
    if c.rescale_betas_zero_snr && c.class_name != super::config::SchedulerKind::Ddim {
        // Euler and DPM-Solver avoid an infinite sigma at the last timestep.
        *out.last_mut().expect("non-empty") = 2f32.powi(-24);
    }
    out
}

/// diffusers' `rescale_zero_terminal_snr` (arXiv 2305.08891, Algorithm 1), in f32.
fn rescale_zero_terminal_snr(betas: &Tensor) -> Tensor {
    let sqrt = (-betas + 1.0).cumprod(0, Kind::Float).sqrt();
    let first = sqrt.get(0).copy();
    let last = sqrt.get(-1).copy();
    let shifted = (&sqrt - &last) * (&first / (&first - &last));
    let bar = shifted.pow_tensor_scalar(2);
    let n = bar.size()[0];
    let alphas = Tensor::cat(
        &[
            bar.narrow(0, 0, 1),
            bar.narrow(0, 1, n - 1) / bar.narrow(0, 0, n - 1),
        ],
        0,
    );
    -alphas + 1.0
}

/// numpy's `linspace(start, end, n)` in f64.
pub fn linspace(start: f64, end: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![start];
    }
    let step = (end - start) / (n - 1) as f64;
    let mut v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
    v[n - 1] = end;
    v
}

/// Round half to even, as numpy's `round`.
pub fn round_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// Checks `steps` against the training schedule.
pub fn check_steps(steps: usize, c: &SchedulerConfig) -> Result<(), DiffusionError> {
    if steps == 0 || steps as i64 > c.num_train_timesteps {
        return Err(DiffusionError::input(
            "num_inference_steps",
            format!("must be in 1..={}, got {steps}", c.num_train_timesteps),
        ));
    }
    Ok(())
}

/// The DDIM / Euler spacings of `steps` timesteps, descending, as f64 (callers cast).
/// `last` is the number of training timesteps that may be used.
pub fn spaced_timesteps(
    spacing: TimestepSpacing,
    steps: usize,
    train: i64,
    offset: i64,
    f32_linspace: bool,
) -> Vec<f64> {
    let n = steps as f64;
    match spacing {
        TimestepSpacing::Linspace => {
            let mut t = linspace(0.0, (train - 1) as f64, steps);
            if f32_linspace {
                t.iter_mut().for_each(|x| *x = *x as f32 as f64);
            } else {
                t.iter_mut().for_each(|x| *x = round_even(*x));
            }
            t.reverse();
            t
        }
        TimestepSpacing::Leading => {
            let ratio = (train / steps as i64) as f64;
            (0..steps)
                .rev()
                .map(|i| round_even(i as f64 * ratio) + offset as f64)
                .collect()
        }
        TimestepSpacing::Trailing => {
            let ratio = train as f64 / n;
            // np.arange(train, 0, -ratio): ceil(train / ratio) values train - k * ratio.
            let len = (train as f64 / ratio).ceil() as usize;
            (0..len)
                .map(|k| round_even(train as f64 - k as f64 * ratio) - 1.0)
                .collect()
        }
    }
}

/// numpy's `interp(x, 0..len, fp)`.
pub fn interp(x: f64, fp: &[f64]) -> f64 {
    let last = fp.len() - 1;
    if x <= 0.0 {
        return fp[0];
    }
    if x >= last as f64 {
        return fp[last];
    }
    let j = x.floor() as usize;
    let slope = (fp[j + 1] - fp[j]) / 1.0;
    slope * (x - j as f64) + fp[j]
}

/// Karras et al. (2022) sigmas, rho = 7, from `sigma_max` down to `sigma_min`.
pub fn karras(sigma_min: f64, sigma_max: f64, steps: usize) -> Vec<f64> {
    let rho = 7.0;
    let (lo, hi) = (sigma_min.powf(1.0 / rho), sigma_max.powf(1.0 / rho));
    linspace(0.0, 1.0, steps)
        .into_iter()
        .map(|r| (hi + r * (lo - hi)).powf(rho))
        .collect()
}

/// diffusers' `_sigma_to_t`: the fractional timestep whose log-sigma is `sigma`'s, by
/// linear interpolation in `log_sigmas` (ascending with the timestep; f32 as numpy holds
/// them).
pub fn sigma_to_t(sigma: f64, log_sigmas: &[f32]) -> f64 {
    let log_sigma = sigma.max(1e-10).ln();
    let n = log_sigmas.len();
    // The last index whose log-sigma is <= log_sigma (the cumsum-argmax idiom), clipped.
    let count = log_sigmas
        .iter()
        .filter(|&&l| log_sigma - l as f64 >= 0.0)
        .count();
    let low_idx = count.saturating_sub(1).min(n - 2);
    let low_idx = if count == 0 { 0 } else { low_idx };
    let (low, high) = (log_sigmas[low_idx], log_sigmas[low_idx + 1]);
    let w = ((low as f64 - log_sigma) / ((low - high) as f64)).clamp(0.0, 1.0);
    (1.0 - w) * low_idx as f64 + w * (low_idx + 1) as f64
}

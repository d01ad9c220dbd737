//! Parity of the schedulers (DDIM, Euler discrete, DPM-Solver++ 2M and 1st order) with
//! diffusers: timesteps, initial noise sigma, scaled model inputs, the sample after every
//! step of a full run fed with given model outputs, and `add_noise` at every timestep.
//!
//! Fixtures: `tests/fixtures/diffusion/schedulers/NAME/` (scheduler_config.json +
//! expected.safetensors), written by `scripts/fixtures/diffusion.py` with torch 2.13.0,
//! diffusers 0.42.1 and transformers 5.23.0. The configurations cover epsilon and
//! v-prediction, Karras sigmas, the linspace/leading/trailing spacings, sample clipping,
//! zero-terminal-SNR betas, midpoint and Heun updates.
//!
//! Tolerance: relative error `max|rust - torch| / max|torch| <= 1e-4` (f32, DESIGN.md §5)
//! per step; integer timesteps exactly.

mod diffusion_fixtures;

use diffusion_fixtures::{TOLERANCE, dir, expected, relative_error};
use storyreel_nn::diffusion::schedulers::{SchedulerConfig, from_config};
use tch::Tensor;

const CASES: [&str; 10] = [
    "ddim_sd15",
    "ddim_animatediff_v",
    "ddim_trailing_zero_snr",
    "euler",
    "euler_karras_v_leading",
    "euler_trailing",
    "dpmpp_2m",
    "dpmpp_2m_karras_v",
    "dpmpp_2m_heun_leading",
    "dpmpp_1_trailing",
];

fn check(case: &str) -> f64 {
    let name = format!("schedulers/{case}");
    let config = SchedulerConfig::from_file(dir(&name).join("scheduler_config.json")).unwrap();
    let mut scheduler = from_config(&config).unwrap();
    let want_t = Vec::<f64>::try_from(expected(&name, "timesteps")).unwrap();
    scheduler.set_timesteps(want_t.len()).unwrap();
    let got_t = scheduler.timesteps();
    assert_eq!(
        got_t.len(),
        want_t.len(),
        "{case}: timesteps {got_t:?} vs {want_t:?}"
    );
    for (g, w) in got_t.iter().zip(&want_t) {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "{case}: timesteps {got_t:?} vs {want_t:?}"
        );
    }
    let sigma = expected(&name, "init_noise_sigma").double_value(&[]);
    assert!(
        (scheduler.init_noise_sigma() - sigma).abs() <= 1e-6 * sigma,
        "{case}: init_noise_sigma {} vs {sigma}",
        scheduler.init_noise_sigma()
    );

    let outputs = expected(&name, "model_outputs");
    let scaled = expected(&name, "scaled_inputs");
    let samples = expected(&name, "samples");
    let noised = expected(&name, "noised");
    let (original, noise) = (expected(&name, "original"), expected(&name, "noise"));
    let mut worst: f64 = 0.0;
    let mut sample: Tensor = samples.get(0);
    for k in 0..want_t.len() {
        let i = k as i64;
        let err = relative_error(&scheduler.add_noise(&original, &noise, k), &noised.get(i));
        assert!(err <= TOLERANCE, "{case}: add_noise at step {k}: {err:.3e}");
        worst = worst.max(err);
        let err = relative_error(&scheduler.scale_model_input(&sample, k), &scaled.get(i));
        assert!(
            err <= TOLERANCE,
            "{case}: scale_model_input at step {k}: {err:.3e}"
        );
        worst = worst.max(err);
        sample = scheduler.step(&outputs.get(i), k, &sample);
        let err = relative_error(&sample, &samples.get(i + 1));
        assert!(err <= TOLERANCE, "{case}: sample after step {k}: {err:.3e}");
        worst = worst.max(err);
    }
    eprintln!("{case}: max relative error over the run {worst:.3e}");
    worst
}

#[test]
fn schedulers_match_diffusers_step_for_step() {
    let worst = CASES.iter().map(|case| check(case)).fold(0.0, f64::max);
    eprintln!("all schedulers: max relative error {worst:.3e}");
}

#[test]
fn set_timesteps_restarts_the_multistep_history() {
    // Running dpmpp_2m twice on one scheduler gives the same run: set_timesteps resets it.
    let name = "schedulers/dpmpp_2m";
    let config = SchedulerConfig::from_file(dir(name).join("scheduler_config.json")).unwrap();
    let mut scheduler = from_config(&config).unwrap();
    let outputs = expected(name, "model_outputs");
    let samples = expected(name, "samples");
    let steps = outputs.size()[0] as usize;
    for _ in 0..2 {
        scheduler.set_timesteps(steps).unwrap();
        let mut sample = samples.get(0);
        for k in 0..steps {
            sample = scheduler.step(&outputs.get(k as i64), k, &sample);
        }
        let err = relative_error(&sample, &samples.get(steps as i64));
        assert!(err <= TOLERANCE, "{err:.3e}");
    }
}

#[test]
fn scheduler_config_errors_name_the_field() {
    let err = SchedulerConfig::from_json(
        r#"{"_class_name": "DPMSolverMultistepScheduler", "algorithm_type": "sde-dpmsolver++"}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("`algorithm_type`"), "{err}");
    let err = SchedulerConfig::from_json(r#"{"_class_name": "DDIMScheduler", "thresholding": true}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`thresholding`"), "{err}");
    let err = SchedulerConfig::from_json(r#"{"_class_name": "PNDMScheduler"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("PNDMScheduler"), "{err}");
    let config = SchedulerConfig::from_json(r#"{"_class_name": "DDIMScheduler"}"#).unwrap();
    let err = from_config(&config)
        .unwrap()
        .set_timesteps(0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`num_inference_steps`"), "{err}");
}

//! Seeded Gaussian noise that is the same on every machine and device: drawn on the CPU
//! from ChaCha8 (rand_chacha) by the Box-Muller transform, in f32, then moved. (libtorch's
//! own generator is process-global state shared by every model and thread in the process;
//! this is not.) The diffusion sampler and the Piper voices draw from it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

/// Standard normal noise of `shape` from `seed`, f32, on `device`.
pub fn gaussian_noise(seed: u64, shape: &[i64], device: Device) -> Tensor {
    let n: i64 = shape.iter().product();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(n as usize);
    while (values.len() as i64) < n {
        // u1 in (0, 1] so that ln(u1) is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        values.push((r * theta.cos()) as f32);
        values.push((r * theta.sin()) as f32);
    }
    values.truncate(n as usize);
    Tensor::from_slice(&values)
        .to_kind(Kind::Float)
        .reshape(shape)
        .to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_noise_and_roughly_standard_normal() {
        let a = gaussian_noise(42, &[2, 4, 3, 16, 16], Device::Cpu);
        let b = gaussian_noise(42, &[2, 4, 3, 16, 16], Device::Cpu);
        assert!(a.equal(&b));
        assert!(!a.equal(&gaussian_noise(43, &[2, 4, 3, 16, 16], Device::Cpu)));
        let (mean, std) = (
            a.mean(Kind::Double).double_value(&[]),
            a.std(true).double_value(&[]),
        );
        assert!(
            mean.abs() < 0.05 && (std - 1.0).abs() < 0.05,
            "mean {mean}, std {std}"
        );
        // The first values are fixed forever: a change of generator would break seeds.
        let first = Vec::<f32>::try_from(a.flatten(0, -1).narrow(0, 0, 2)).unwrap();
        let again = Vec::<f32>::try_from(gaussian_noise(42, &[2], Device::Cpu)).unwrap();
        assert_eq!(first, again);
    }
}

//! Sample-rate conversion: windowed-sinc interpolation (Hann window), low-passed at the
//! lower of the two Nyquist frequencies. Good enough for speech; exact for equal rates.

/// Zero crossings of the sinc on each side.
const HALF_TAPS: f64 = 16.0;

/// `samples` at `from` Hz, resampled to `to` Hz.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || samples.is_empty() {
        return samples.to_vec();
    }
    let ratio = to as f64 / from as f64;
    let out_len = ((samples.len() as f64) * ratio).round() as usize;
    // cutoff relative to the input rate; below 1 when downsampling
    let cutoff = ratio.min(1.0);
    let half_width = HALF_TAPS / cutoff;
    let mut out = Vec::with_capacity(out_len);
    for n in 0..out_len {
        let t = n as f64 / ratio;
        let first = ((t - half_width).ceil().max(0.0)) as usize;
        let last = ((t + half_width).floor() as usize).min(samples.len() - 1);
        let mut acc = 0.0f64;
        for (k, &s) in samples.iter().enumerate().take(last + 1).skip(first) {
            let x = t - k as f64;
            let window = 0.5 + 0.5 * (std::f64::consts::PI * x / half_width).cos();
            acc += s as f64 * cutoff * sinc(cutoff * x) * window;
        }
        out.push(acc.clamp(-1.0, 1.0) as f32);
    }
    out
}

fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-9 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, seconds: f64) -> Vec<f32> {
        (0..(rate as f64 * seconds) as usize)
            .map(|i| (0.5 * (2.0 * std::f64::consts::PI * hz * i as f64 / rate as f64).sin()) as f32)
            .collect()
    }

    #[test]
    fn keeps_length_and_tone() {
        let input = tone(22050, 440.0, 0.5);
        for to in [16000, 22050, 44100, 48000] {
            let out = resample(&input, 22050, to);
            assert_eq!(out.len(), (to as f64 * 0.5).round() as usize);
            let expected = tone(to, 440.0, 0.5);
            // away from the edges the resampled tone is the tone at the new rate
            let margin = to as usize / 50;
            let err = out[margin..out.len() - margin]
                .iter()
                .zip(&expected[margin..])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 0.01, "{to} Hz: max error {err}");
        }
    }
}

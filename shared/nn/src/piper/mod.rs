//! Piper's VITS voices (rhasspy/piper, `piper_train.vits`), inference only, in tch:
//!
//! - [`text_encoder`] (`enc_p`) with [`attentions`]: relative-position transformer;
//! - [`duration`] (`dp`): the stochastic duration predictor, with [`spline`] flows;
//! - [`flow`] (`flow`): the residual coupling block, run in reverse;
//! - [`generator`] (`dec`): the HiFi-GAN vocoder;
//! - [`config`]: hyperparameters and the voice's `.onnx.json`;
//! - [`onnx`]: the ONNX export's initialisers -> the PyTorch state dict (`make models`).
//!
//! VarStore paths are piper's PyTorch attribute names (`enc_p.encoder.attn_layers.0.conv_q`),
//! so the converted state dict loads strictly.

pub mod attentions;
pub mod config;
pub mod duration;
pub mod flow;
pub mod generator;
pub mod onnx;
pub mod spline;
pub mod text_encoder;

pub use config::{InferenceConfig, VitsConfig, VoiceConfig};

use crate::noise::gaussian_noise;
use crate::weights::{WeightsError, load_strict};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor, nn};

/// Mixed into an utterance's seed for the prior's noise, so it is not the duration
/// predictor's stream.
const PRIOR_NOISE_STREAM: u64 = 0x9e37_79b9_7f4a_7c15;

/// File names of a converted voice directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, thiserror::Error)]
pub enum PiperError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid config: {source}")]
    Config {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("no `.onnx.json` voice config in {0}")]
    NoVoiceConfig(PathBuf),
    #[error("tensor error: {0}")]
    Tensor(#[from] tch::TchError),
    #[error("{0}")]
    Convert(String),
}

/// The three scales of piper's `scales` input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scales {
    /// Standard deviation multiplier of the prior's noise (0: its mean).
    pub noise_scale: f64,
    /// Duration multiplier (> 1 is slower).
    pub length_scale: f64,
    /// Noise of the duration predictor (0: deterministic durations).
    pub noise_w: f64,
}

impl From<InferenceConfig> for Scales {
    fn from(c: InferenceConfig) -> Self {
        Scales {
            noise_scale: c.noise_scale,
            length_scale: c.length_scale,
            noise_w: c.noise_w,
        }
    }
}

/// piper's `SynthesizerTrn` for one speaker, inference only.
#[derive(Debug)]
pub struct Vits {
    enc_p: text_encoder::TextEncoder,
    dp: duration::StochasticDurationPredictor,
    flow: flow::ResidualCouplingBlock,
    dec: generator::Generator,
    device: Device,
}

impl Vits {
    /// The modules under `p`, with piper's names.
    pub fn new(p: &nn::Path, config: &VitsConfig) -> Self {
        Vits {
            enc_p: text_encoder::TextEncoder::new(p / "enc_p", config),
            dp: duration::StochasticDurationPredictor::new(p / "dp", config),
            flow: flow::ResidualCouplingBlock::new(p / "flow", config),
            dec: generator::Generator::new(p / "dec", config),
            device: p.device(),
        }
    }

    /// Audio (N,) f32 in [-1, 1] for one utterance of phoneme `ids`. The noise (duration
    /// predictor and prior, scaled by `scales`) is drawn from `seed` with
    /// [`gaussian_noise`], not from libtorch's global generator: the same seed gives the
    /// same audio whatever else runs in the process.
    pub fn infer(&self, ids: &[i64], scales: Scales, seed: u64) -> Tensor {
        self.infer_timed(ids, scales, seed).audio
    }

    /// [`Vits::infer`], with how many output frames (of [`VitsConfig::hop_length`]
    /// samples each) the duration predictor gave each id: the audio is the same.
    pub fn infer_timed(&self, ids: &[i64], scales: Scales, seed: u64) -> TimedAudio {
        tch::no_grad(|| {
            let options = (Kind::Float, self.device);
            let x = Tensor::from_slice(ids).to_device(self.device).view([1, -1]);
            let mask = Tensor::ones([1, 1, ids.len() as i64], options);
            let encoded = self.enc_p.forward(&x, &mask);
            let logw = self.dp.reverse(&encoded.x, &mask, scales.noise_w, seed);
            let w = logw.exp() * &mask * scales.length_scale;
            let durations = w.ceil().view([-1]).to_kind(Kind::Int64);
            let frames = i64::try_from(&durations.sum(Kind::Int64)).unwrap_or(0).max(1);
            // `generate_path` for one utterance: each phoneme's stats repeated over its frames
            let expand = |t: &Tensor| t.repeat_interleave_self_tensor(&durations, 2, frames);
            let (m_p, logs_p) = (expand(&encoded.m), expand(&encoded.logs));
            let z_p = if scales.noise_scale == 0.0 {
                m_p
            } else {
                let noise = gaussian_noise(seed ^ PRIOR_NOISE_STREAM, &m_p.size(), self.device);
                &m_p + noise * logs_p.exp() * scales.noise_scale
            };
            let y_mask = Tensor::ones([1, 1, frames], options);
            let z = self.flow.reverse(&z_p, &y_mask);
            TimedAudio {
                audio: self.dec.forward(&(z * y_mask)).view([-1]),
                frames: Vec::<i64>::try_from(&durations).unwrap_or_default(),
            }
        })
    }
}

/// One utterance's audio and the frames each phoneme id lasts.
#[derive(Debug)]
pub struct TimedAudio {
    /// (N,) f32 in [-1, 1].
    pub audio: Tensor,
    /// Frames per id, in id order (`w_ceil` of piper's `infer`); they sum to the audio's
    /// frames, except that an utterance of zero frames is given one.
    pub frames: Vec<i64>,
}

/// A converted voice: the model, its hyperparameters and the voice config.
#[derive(Debug)]
pub struct PiperModel {
    pub vits: Vits,
    pub config: VitsConfig,
    pub voice: VoiceConfig,
    /// The voice's name, from its `.onnx.json` file name (`en_US-joe-medium`).
    pub name: String,
    _vs: nn::VarStore,
}

impl PiperModel {
    /// Loads `dir` (`config.json`, `model.safetensors`, `<name>.onnx.json`) strictly.
    pub fn load(dir: &Path, device: Device) -> Result<Self, PiperError> {
        let config: VitsConfig = read_json(&dir.join(CONFIG_FILE))?;
        let voice_path = voice_config_path(dir)?;
        let voice: VoiceConfig = read_json(&voice_path)?;
        let name = voice_path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".onnx.json"))
            .unwrap_or("piper")
            .to_string();
        let mut vs = nn::VarStore::new(device);
        let vits = Vits::new(&vs.root(), &config);
        load_strict(&mut vs, &[dir.join(WEIGHTS_FILE)])?;
        Ok(PiperModel {
            vits,
            config,
            voice,
            name,
            _vs: vs,
        })
    }
}

/// The one `*.onnx.json` in `dir`.
pub fn voice_config_path(dir: &Path) -> Result<PathBuf, PiperError> {
    let entries = std::fs::read_dir(dir).map_err(|source| PiperError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(".onnx.json"))
        .ok_or_else(|| PiperError::NoVoiceConfig(dir.to_path_buf()))
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, PiperError> {
    let text = std::fs::read_to_string(path).map_err(|source| PiperError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| PiperError::Config {
        path: path.to_path_buf(),
        source,
    })
}

//! The two configs of a Piper voice: [`VitsConfig`], the network's hyperparameters
//! (`config.json`, written by the converter from the checkpoint's shapes, with piper's
//! `medium` defaults), and [`VoiceConfig`], the voice's own `<name>.onnx.json` (phoneme
//! id map, sample rate, noise scales, espeak voice), read as piper writes it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hyperparameters of piper's `SynthesizerTrn` (VITS) at inference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitsConfig {
    pub n_vocab: i64,
    /// Channels of the prior / posterior latent (`inter_channels`).
    pub inter_channels: i64,
    pub hidden_channels: i64,
    /// FFN channels of the text encoder.
    pub filter_channels: i64,
    pub n_heads: i64,
    pub n_layers: i64,
    pub kernel_size: i64,
    /// Relative attention window of the text encoder.
    pub window_size: i64,
    /// HiFi-GAN: `resblock` type "1" (convs1/convs2) or "2" (convs).
    pub resblock: String,
    pub resblock_kernel_sizes: Vec<i64>,
    pub resblock_dilation_sizes: Vec<Vec<i64>>,
    pub upsample_rates: Vec<i64>,
    pub upsample_initial_channel: i64,
    pub upsample_kernel_sizes: Vec<i64>,
    /// Coupling layers of the flow (each followed by a Flip).
    pub flow_n_flows: i64,
    /// WaveNet layers and kernel of each coupling layer.
    pub flow_n_layers: i64,
    pub flow_kernel_size: i64,
    /// Stochastic duration predictor: channels, kernel, ConvFlows (as trained; inference
    /// drops the first), spline bins and tail bound.
    pub dp_filter_channels: i64,
    pub dp_kernel_size: i64,
    pub dp_n_flows: i64,
    pub dp_num_bins: i64,
    pub dp_tail_bound: f64,
}

impl VitsConfig {
    /// piper's `medium` quality (en_US-*-medium voices).
    pub fn piper_medium() -> Self {
        VitsConfig {
            n_vocab: 256,
            inter_channels: 192,
            hidden_channels: 192,
            filter_channels: 768,
            n_heads: 2,
            n_layers: 6,
            kernel_size: 3,
            window_size: 4,
            resblock: "2".into(),
            resblock_kernel_sizes: vec![3, 5, 7],
            resblock_dilation_sizes: vec![vec![1, 2], vec![2, 6], vec![3, 12]],
            upsample_rates: vec![8, 8, 4],
            upsample_initial_channel: 256,
            upsample_kernel_sizes: vec![16, 16, 8],
            flow_n_flows: 4,
            flow_n_layers: 4,
            flow_kernel_size: 5,
            dp_filter_channels: 192,
            dp_kernel_size: 3,
            dp_n_flows: 4,
            dp_num_bins: 10,
            dp_tail_bound: 5.0,
        }
    }

    /// Audio samples per latent frame.
    pub fn hop_length(&self) -> i64 {
        self.upsample_rates.iter().product()
    }
}

/// A voice's `<name>.onnx.json`; unknown keys are allowed (piper adds some over time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceConfig {
    pub audio: AudioConfig,
    pub espeak: EspeakConfig,
    pub inference: InferenceConfig,
    pub phoneme_type: String,
    pub phoneme_id_map: BTreeMap<String, Vec<i64>>,
    pub num_symbols: i64,
    pub num_speakers: i64,
    #[serde(default)]
    pub dataset: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioConfig {
    pub sample_rate: u32,
    #[serde(default)]
    pub quality: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EspeakConfig {
    pub voice: String,
}

/// The voice's default scales: `noise_scale` (prior noise), `length_scale` (1 / speed),
/// `noise_w` (duration noise).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InferenceConfig {
    pub noise_scale: f64,
    pub length_scale: f64,
    pub noise_w: f64,
}

/// piper's special phonemes: padding between phonemes, sentence start and end.
pub const PAD: &str = "_";
pub const BOS: &str = "^";
pub const EOS: &str = "$";

impl VoiceConfig {
    /// piper's `phonemes_to_ids`: BOS, PAD, then each phoneme followed by PAD, then EOS.
    /// Phonemes missing from the map are skipped (piper logs and skips them too); they
    /// are returned as the second value.
    pub fn phoneme_ids(&self, phonemes: &[String]) -> (Vec<i64>, Vec<String>) {
        let (ids, _, missing) = self.phoneme_ids_with_sources(phonemes);
        (ids, missing)
    }

    /// [`VoiceConfig::phoneme_ids`], with the source of each id: the index in `phonemes`
    /// of the phoneme it stands for (a phoneme's trailing PAD counts as its own), `None`
    /// for the leading BOS and PAD and the final EOS. Word timings read the duration
    /// predictor's output through it.
    pub fn phoneme_ids_with_sources(
        &self,
        phonemes: &[String],
    ) -> (Vec<i64>, Vec<Option<usize>>, Vec<String>) {
        let map = &self.phoneme_id_map;
        let get = |p: &str| map.get(p).cloned().unwrap_or_default();
        let mut ids = get(BOS);
        ids.extend(get(PAD));
        let mut sources = vec![None; ids.len()];
        let mut missing = Vec::new();
        for (index, phoneme) in phonemes.iter().enumerate() {
            match map.get(phoneme.as_str()) {
                Some(id) => {
                    ids.extend(id);
                    ids.extend(get(PAD));
                    sources.resize(ids.len(), Some(index));
                }
                None => missing.push(phoneme.clone()),
            }
        }
        ids.extend(get(EOS));
        sources.resize(ids.len(), None);
        (ids, sources, missing)
    }
}

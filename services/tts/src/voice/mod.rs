//! The voices: one trait, [`Voice`], over the backends ([`espeak::EspeakVoice`],
//! [`piper::PiperVoice`]). A voice lives on the synthesis worker thread (tch tensors are
//! not `Sync`; libespeak-ng has global state) and speaks one sentence at a time.

pub mod espeak;
pub mod piper;

use crate::{espeak::EspeakError, words::WordSpan};
use storyreel_runtime::ModelInfo;

/// The speech engine of a voice (`storyreel.tts.v1.VoiceBackend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    EspeakNg,
    Piper,
}

/// What a client may know about a voice (`storyreel.tts.v1.Voice`).
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceDescription {
    /// `espeak-ng:en-us`, `piper:en_US-joe-medium`.
    pub id: String,
    pub display_name: String,
    pub backend: Backend,
    /// BCP-47 tags.
    pub languages: Vec<String>,
    pub native_sample_rate: u32,
    pub licence: String,
    pub model: ModelInfo,
    /// Whether the samples depend on [`SpeechParams::seed`] (a voice with noise); the
    /// stage cache keys on the seed only then.
    pub seeded: bool,
}

/// Per-request settings of a voice.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechParams {
    /// Speaking rate multiplier, 0.5-2.0.
    pub rate: f32,
    /// Seed of the voice's noise (Piper); the same seed gives the same samples.
    pub seed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    #[error(transparent)]
    Espeak(#[from] EspeakError),
    #[error("the voice model failed: {0}")]
    Model(String),
}

/// One sentence spoken.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Speech {
    /// Mono f32 samples in [-1, 1] at the voice's native sample rate.
    pub samples: Vec<f32>,
    /// Where each whitespace-separated word of the sentence is heard, in `samples`:
    /// ordered, not overlapping, one per word.
    pub words: Vec<WordSpan>,
}

/// A voice that speaks sentences.
pub trait Voice {
    fn description(&self) -> &VoiceDescription;
    /// One (normalised) sentence spoken, with its word timings.
    fn speak(&mut self, sentence: &str, params: &SpeechParams) -> Result<Speech, VoiceError>;
}

//! The espeak-ng voices (formant synthesis through libespeak-ng): always available, the
//! default. Deterministic: the seed is not used.

use super::{Backend, SpeechParams, Voice, VoiceDescription, VoiceError};
use crate::espeak::{Espeak, EspeakError};
use storyreel_runtime::{ModelInfo, model::sha256_file};

pub struct EspeakVoice {
    name: String,
    description: VoiceDescription,
}

impl EspeakVoice {
    /// The espeak-ng voice `name` (`en-us`, `en-gb`, `de`, ...). Its model identity is the
    /// library version and the SHA-256 of the phoneme data it speaks with.
    pub fn load(name: &str) -> Result<Self, VoiceError> {
        let mut engine = Espeak::lock()?;
        engine.set_voice(name)?;
        let info = engine.info().clone();
        let phondata = std::path::Path::new(&info.data_dir).join("phondata");
        let weights_sha256 = sha256_file(&phondata).map_err(|e| {
            VoiceError::Espeak(EspeakError::Call {
                what: "read espeak-ng-data/phondata",
                code: e.raw_os_error().unwrap_or(-1),
            })
        })?;
        Ok(EspeakVoice {
            name: name.to_string(),
            description: VoiceDescription {
                id: format!("espeak-ng:{name}"),
                display_name: format!("espeak-ng {name}"),
                backend: Backend::EspeakNg,
                languages: vec![name.to_string()],
                native_sample_rate: info.sample_rate,
                licence: "GPL-3.0-or-later (espeak-ng and its voice data)".into(),
                model: ModelInfo {
                    name: format!("espeak-ng-{name}"),
                    version: info.version,
                    weights_sha256,
                    components: Vec::new(),
                    random_init: false,
                },
                seeded: false,
            },
        })
    }
}

impl Voice for EspeakVoice {
    fn description(&self) -> &VoiceDescription {
        &self.description
    }

    fn speak(&mut self, sentence: &str, params: &SpeechParams) -> Result<Vec<f32>, VoiceError> {
        let mut engine = Espeak::lock()?;
        engine.set_voice(&self.name)?;
        let samples = engine.synthesize(sentence, params.rate)?;
        Ok(samples.into_iter().map(|s| s as f32 / 32768.0).collect())
    }
}

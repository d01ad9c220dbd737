//! Which voice speaks when a request names none. `default_voice = "auto"` (the default)
//! chooses at start: the Piper voice when it is enabled and its files are installed
//! (`make models`), else espeak-ng (`en-us` when served, else the first of
//! `espeak_voices`). With "auto" a missing Piper voice is left out, not an error; any
//! other `default_voice` names the voice exactly, and if it is not served (a Piper voice
//! whose files are missing, an unknown espeak-ng voice) the service fails to load.

use crate::{config::TtsConfig, voice::piper::PiperVoice};
use std::path::Path;
use storyreel_nn::piper::{CONFIG_FILE, WEIGHTS_FILE, voice_config_path};

/// The `default_voice` that chooses at start.
pub const AUTO: &str = "auto";

/// The voices a configuration serves and its default, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceChoice {
    /// The default voice's id.
    pub default_voice: String,
    /// Load the Piper voice.
    pub piper: bool,
}

/// What `config` serves, looking at the Piper voice's files for "auto".
pub fn choose(config: &TtsConfig) -> VoiceChoice {
    if config.default_voice != AUTO {
        return VoiceChoice {
            default_voice: config.default_voice.clone(),
            piper: config.piper.enabled,
        };
    }
    let dir = &config.piper.model_dir;
    if config.piper.enabled && piper_installed(dir) {
        return VoiceChoice {
            default_voice: PiperVoice::id_of(dir),
            piper: true,
        };
    }
    if config.piper.enabled {
        tracing::warn!(
            dir = %dir.display(),
            "the Piper voice is not installed (`make models`); espeak-ng is the default voice"
        );
    }
    VoiceChoice {
        default_voice: format!("espeak-ng:{}", espeak_default(&config.espeak_voices)),
        piper: false,
    }
}

/// `en-us` when served, else the first espeak-ng voice.
fn espeak_default(voices: &[String]) -> &str {
    voices
        .iter()
        .find(|v| *v == "en-us")
        .or_else(|| voices.first())
        .map_or("en-us", String::as_str)
}

/// Whether `dir` holds a converted Piper voice: weights, hyperparameters, voice config.
pub fn piper_installed(dir: &Path) -> bool {
    dir.join(WEIGHTS_FILE).is_file() && dir.join(CONFIG_FILE).is_file() && voice_config_path(dir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_an_installed_piper_voice() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = TtsConfig::default();
        assert_eq!(config.default_voice, AUTO);
        config.piper.model_dir = dir.path().join("piper-en_US-joe-medium");
        let espeak = VoiceChoice {
            default_voice: "espeak-ng:en-us".into(),
            piper: false,
        };
        assert_eq!(choose(&config), espeak, "nothing installed");

        std::fs::create_dir(&config.piper.model_dir).unwrap();
        for file in [WEIGHTS_FILE, CONFIG_FILE, "en_US-joe-medium.onnx.json"] {
            std::fs::write(config.piper.model_dir.join(file), b"{}").unwrap();
        }
        let piper = VoiceChoice {
            default_voice: "piper:en_US-joe-medium".into(),
            piper: true,
        };
        assert_eq!(choose(&config), piper);

        config.piper.enabled = false;
        assert_eq!(choose(&config), espeak, "Piper switched off");
        config.espeak_voices = vec!["de".into(), "en-gb".into()];
        assert_eq!(choose(&config).default_voice, "espeak-ng:de");

        // a voice named explicitly is taken as is (and must then load)
        config.default_voice = "piper:en_US-joe-medium".into();
        config.piper.enabled = true;
        assert_eq!(choose(&config), piper);
    }
}

//! Wire requests -> typed requests: the limits and defaults of tts.proto. Every error
//! names the field and its limit.

use crate::{
    config::TtsConfig,
    service::SynthesisRequest,
    text::split_sentences,
    voice::VoiceDescription,
    worker::{Job, SceneText, Sentence},
};
use storyreel_proto::{
    common::Scene,
    tts::{AudioEncoding, SynthesizeRequest, SynthesizeStreamRequest},
};
use storyreel_runtime::{
    ValidationError,
    config::check_range,
    job::validate_context,
    text::{check_max_chars, check_no_control_chars, excerpt},
};

pub const MAX_SCENES: usize = 8;
pub const MAX_SCENE_INDEX: u32 = 7;
pub const RATE_RANGE: (f32, f32) = (0.5, 2.0);
pub const SAMPLE_RATE_RANGE: (u32, u32) = (8000, 48000);
pub const CHUNK_MS_RANGE: (u32, u32) = (20, 1000);
pub const DEFAULT_CHUNK_MS: u32 = 200;

/// The fields common to both requests.
struct Fields {
    context: Option<storyreel_proto::common::JobContext>,
    scenes: Vec<Scene>,
    voice: String,
    speaking_rate: Option<f32>,
    sample_rate_hz: Option<u32>,
    seed: Option<u64>,
}

pub fn validate_synthesize(
    request: SynthesizeRequest,
    voices: &[VoiceDescription],
    config: &TtsConfig,
) -> Result<SynthesisRequest, ValidationError> {
    validate_fields(
        Fields {
            context: request.context,
            scenes: request.scenes,
            voice: request.voice,
            speaking_rate: request.speaking_rate,
            sample_rate_hz: request.sample_rate_hz,
            seed: request.seed,
        },
        voices,
        config,
    )
}

/// A stream request, its sample encoding and its chunk length in samples.
pub fn validate_stream(
    request: SynthesizeStreamRequest,
    voices: &[VoiceDescription],
    config: &TtsConfig,
) -> Result<(SynthesisRequest, AudioEncoding, usize), ValidationError> {
    let encoding = match AudioEncoding::try_from(request.encoding) {
        Ok(AudioEncoding::Unspecified) => AudioEncoding::PcmS16le,
        Ok(encoding) => encoding,
        Err(_) => {
            return Err(ValidationError::new(
                "encoding",
                format!("must be PCM_S16LE or PCM_F32LE, got {}", request.encoding),
            ));
        }
    };
    let chunk_ms = request.chunk_ms.unwrap_or(DEFAULT_CHUNK_MS);
    check_range("chunk_ms", chunk_ms, CHUNK_MS_RANGE.0, CHUNK_MS_RANGE.1)?;
    let request = validate_fields(
        Fields {
            context: request.context,
            scenes: request.scenes,
            voice: request.voice,
            speaking_rate: request.speaking_rate,
            sample_rate_hz: request.sample_rate_hz,
            seed: request.seed,
        },
        voices,
        config,
    )?;
    let chunk_samples = (request.synthesis.sample_rate as u64 * chunk_ms as u64 / 1000) as usize;
    Ok((request, encoding, chunk_samples))
}

fn validate_fields(
    fields: Fields,
    voices: &[VoiceDescription],
    config: &TtsConfig,
) -> Result<SynthesisRequest, ValidationError> {
    let (job, deadline) = validate_context(fields.context)?;
    let voice = resolve_voice(&fields.voice, voices)?;
    let rate = fields.speaking_rate.unwrap_or(1.0);
    if !(RATE_RANGE.0..=RATE_RANGE.1).contains(&rate) {
        return Err(ValidationError::new(
            "speaking_rate",
            format!(
                "must be between {} and {}, got {rate}",
                RATE_RANGE.0, RATE_RANGE.1
            ),
        ));
    }
    let sample_rate = fields.sample_rate_hz.unwrap_or(voice.native_sample_rate);
    check_range(
        "sample_rate_hz",
        sample_rate,
        SAMPLE_RATE_RANGE.0,
        SAMPLE_RATE_RANGE.1,
    )?;
    let scenes = validate_scenes(fields.scenes, config)?;
    // An explicit seed wins; else one derived from the job's seed; else random.
    let seed = fields
        .seed
        .or(job.seed.map(|s| s ^ 0x7474_735f_7365_6564)) // "tts_seed"
        .unwrap_or_else(rand::random);
    Ok(SynthesisRequest {
        job,
        deadline,
        synthesis: Job {
            voice: voice.id.clone(),
            scenes,
            rate,
            sample_rate,
            seed,
            pause_ms: config.sentence_pause_ms,
        },
    })
}

/// The requested voice; none requested: the default, which the served voices list first.
fn resolve_voice<'a>(
    requested: &str,
    voices: &'a [VoiceDescription],
) -> Result<&'a VoiceDescription, ValidationError> {
    let default = voices.first().map_or("", |v| v.id.as_str());
    let wanted = if requested.is_empty() { default } else { requested };
    voices.iter().find(|v| v.id == wanted).ok_or_else(|| {
        let known: Vec<&str> = voices.iter().map(|v| v.id.as_str()).collect();
        ValidationError::new(
            "voice",
            format!(
                "must be one of [{}] (see ListVoices), got `{}`",
                known.join(", "),
                excerpt(wanted, 80)
            ),
        )
    })
}

fn validate_scenes(scenes: Vec<Scene>, config: &TtsConfig) -> Result<Vec<SceneText>, ValidationError> {
    if scenes.is_empty() || scenes.len() > MAX_SCENES {
        return Err(ValidationError::new(
            "scenes",
            format!("must have 1-{MAX_SCENES} entries, got {}", scenes.len()),
        ));
    }
    let mut seen = [false; MAX_SCENE_INDEX as usize + 1];
    let mut out = Vec::with_capacity(scenes.len());
    for (i, scene) in scenes.into_iter().enumerate() {
        if scene.index > MAX_SCENE_INDEX {
            return Err(ValidationError::new(
                format!("scenes[{i}].index"),
                format!("must be between 0 and {MAX_SCENE_INDEX}, got {}", scene.index),
            ));
        }
        if std::mem::replace(&mut seen[scene.index as usize], true) {
            return Err(ValidationError::new(
                format!("scenes[{i}].index"),
                format!("must be distinct, {} appears twice", scene.index),
            ));
        }
        let field = format!("scenes[{i}].text");
        check_max_chars(&field, &scene.text, config.max_text_chars)?;
        check_no_control_chars(&field, &scene.text)?;
        let sentences: Vec<Sentence> = split_sentences(&scene.text, config.max_sentence_chars)
            .into_iter()
            .map(Sentence::new)
            .collect();
        if !sentences
            .iter()
            .any(|s| s.spoken.chars().any(char::is_alphanumeric))
        {
            return Err(ValidationError::new(
                field,
                format!(
                    "must contain words to speak, got `{}`",
                    excerpt(scene.text.trim(), 40)
                ),
            ));
        }
        out.push(SceneText {
            index: scene.index,
            sentences,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::voice::Backend;
    use storyreel_runtime::ModelInfo;

    fn voices() -> Vec<VoiceDescription> {
        vec![VoiceDescription {
            id: "espeak-ng:en-us".into(),
            display_name: "en-us".into(),
            backend: Backend::EspeakNg,
            languages: vec!["en-us".into()],
            native_sample_rate: 22050,
            licence: "GPL".into(),
            model: ModelInfo::default(),
            seeded: false,
        }]
    }

    fn request(texts: &[&str]) -> SynthesizeRequest {
        SynthesizeRequest {
            scenes: texts
                .iter()
                .enumerate()
                .map(|(i, t)| Scene {
                    index: i as u32,
                    text: t.to_string(),
                })
                .collect(),
            ..Default::default()
        }
    }

    fn error(request: SynthesizeRequest) -> String {
        validate_synthesize(request, &voices(), &TtsConfig::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_and_sentences() {
        let r = validate_synthesize(
            request(&["Dr. Fox has 3 cats. They sleep."]),
            &voices(),
            &TtsConfig::default(),
        )
        .unwrap();
        assert_eq!(r.synthesis.voice, "espeak-ng:en-us");
        assert_eq!(r.synthesis.sample_rate, 22050);
        assert_eq!(r.synthesis.rate, 1.0);
        let sentences = &r.synthesis.scenes[0].sentences;
        assert_eq!(sentences.len(), 2);
        assert_eq!(sentences[0].text, "Dr. Fox has 3 cats.");
        assert_eq!(sentences[0].spoken, "Doctor Fox has three cats.");
    }

    #[test]
    fn bad_input_names_the_field() {
        assert_eq!(error(request(&[])), "`scenes` must have 1-8 entries, got 0");
        assert_eq!(
            error(request(&["  "])),
            "`scenes[0].text` must contain words to speak, got ``"
        );
        let long = "word ".repeat(1001);
        assert_eq!(
            error(request(&[&long])),
            "`scenes[0].text` must be at most 5000 characters, got 5005"
        );
        let mut r = request(&["hi"]);
        r.voice = "piper:nobody".into();
        assert_eq!(
            error(r),
            "`voice` must be one of [espeak-ng:en-us] (see ListVoices), got `piper:nobody`"
        );
        let mut r = request(&["hi"]);
        r.speaking_rate = Some(3.0);
        assert_eq!(error(r), "`speaking_rate` must be between 0.5 and 2, got 3");
        let mut r = request(&["hi"]);
        r.sample_rate_hz = Some(100);
        assert_eq!(
            error(r),
            "`sample_rate_hz` must be between 8000 and 48000, got 100"
        );
        let mut r = request(&["hi", "there"]);
        r.scenes[1].index = 0;
        assert_eq!(error(r), "`scenes[1].index` must be distinct, 0 appears twice");
    }
}

//! Word timings with real voices (libespeak-ng; the Piper voice that `make models`
//! converts), through the service on an in-memory tensor store: one timing per written
//! word, in order, within the audio; every word that makes a sound is heard in its span
//! (its loudness is well above silence); across the pause between two sentences the
//! next word starts after the pause; a word spelled out as several (money, a date) spans
//! them all.

use std::sync::Arc;
use storyreel_proto::{
    common::{JobContext, Scene},
    tts::SynthesizeRequest,
};
use storyreel_tensors::{MemoryStore, StoreConfig, TensorStore};
use storyreel_tts::{
    Tts, TtsConfig,
    service::{SceneAudio, WordTiming},
    validation::validate_synthesize,
};

const PIPER: &str = "piper:en_US-joe-medium";
const ESPEAK: &str = "espeak-ng:en-us";

/// Two sentences (the service puts a pause between them), with money, a date, an
/// abbreviation, a comma and a silent dash.
const TEXT: &str = "Dr. Smith paid $3.50 on 4 July 1776, at noon — then left. The bells rang twice.";

struct Spoken {
    audio: SceneAudio,
    samples: Vec<f32>,
}

async fn speak(voice: &str, sample_rate: Option<u32>) -> Spoken {
    let mut config = TtsConfig {
        cache_outputs: false,
        ..TtsConfig::default()
    };
    config.piper.model_dir = storyreel_test_support::model_dir("piper-en_US-joe-medium", "model.safetensors");
    let store: Arc<dyn TensorStore> = Arc::new(MemoryStore::new(&StoreConfig::default()).unwrap());
    let service = storyreel_tts::start_service_on(&config, store.clone())
        .await
        .expect("the service starts");
    service
        .wait_ready()
        .await
        .expect("the voices load (run `make models`)");
    let request = SynthesizeRequest {
        context: Some(JobContext {
            job_id: "job-words".into(),
            ..Default::default()
        }),
        scenes: vec![Scene {
            index: 0,
            text: TEXT.into(),
        }],
        voice: voice.into(),
        sample_rate_hz: sample_rate,
        seed: Some(11),
        ..Default::default()
    };
    let request = validate_synthesize(request, &service.voices(), &config).expect("a valid request");
    let mut synthesis = service.synthesize(request).await.expect("synthesis");
    let audio = synthesis.scenes.remove(0);
    let samples: Vec<f32> = store.get(&audio.audio).await.unwrap().to_vec().unwrap();
    Spoken { audio, samples }
}

fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

fn span<'a>(spoken: &'a Spoken, word: &WordTiming) -> &'a [f32] {
    let rate = spoken.audio.sample_rate as f64;
    let (start, end) = ((word.start_s * rate) as usize, (word.end_s * rate) as usize);
    &spoken.samples[start.min(spoken.samples.len())..end.min(spoken.samples.len())]
}

fn find<'a>(words: &'a [WordTiming], word: &str) -> &'a WordTiming {
    words
        .iter()
        .find(|w| w.word == word)
        .unwrap_or_else(|| panic!("{word} in {words:?}"))
}

fn check(spoken: &Spoken, voice: &str) {
    let words = &spoken.audio.words;
    let written: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
    let tokens: Vec<&str> = TEXT.split_whitespace().collect();
    assert_eq!(written, tokens, "{voice}: one timing per written word");

    let duration = spoken.audio.duration_s;
    let mut previous_end = 0.0;
    for w in words {
        assert!(
            previous_end <= w.start_s && w.start_s <= w.end_s && w.end_s <= duration + 1e-9,
            "{voice}: {w:?} after {previous_end} within {duration} s"
        );
        previous_end = w.end_s;
    }

    // every sounding word is heard in its span
    let loudest = spoken.samples.chunks(256).map(rms).fold(0.0f32, f32::max);
    for w in words.iter().filter(|w| w.word.chars().any(char::is_alphanumeric)) {
        let loudness = rms(span(spoken, w));
        assert!(
            w.end_s - w.start_s >= 0.05 && loudness > 0.05 * loudest,
            "{voice}: {w:?} lasts {:.3} s at rms {loudness:.4} (loudest window {loudest:.4})",
            w.end_s - w.start_s
        );
    }
    let dash = find(words, "—");
    assert!(
        dash.end_s - dash.start_s < 0.05,
        "{voice}: {dash:?} makes no sound"
    );

    // the pause between the sentences lies between "left." and "The"
    let (left, the) = (find(words, "left."), find(words, "The"));
    let gap = the.start_s - left.end_s;
    assert!(
        gap >= 0.25,
        "{voice}: {left:?} .. {the:?}: the 250 ms pause at least"
    );
    let rate = spoken.audio.sample_rate as f64;
    let pause = &spoken.samples[(left.end_s * rate) as usize..(the.start_s * rate) as usize];
    assert!(
        rms(pause) < 0.02 * loudest,
        "{voice}: the gap {left:?} .. {the:?} is silent: rms {} (loudest {loudest})",
        rms(pause)
    );

    // "$3.50" is heard as five words and "1776," as three: longer than one short word
    let (money, smith) = (find(words, "$3.50"), find(words, "Smith"));
    assert!(
        money.end_s - money.start_s > smith.end_s - smith.start_s,
        "{voice}: {money:?} vs {smith:?}"
    );
    let segments = &spoken.audio.segments;
    assert_eq!(segments.len(), 2);
    assert!(
        (words[0].start_s - segments[0].start_s).abs() < 0.5
            && words.last().unwrap().end_s <= segments[1].end_s + 1e-9,
        "{voice}: words within the sentences {segments:?}"
    );
}

#[tokio::test]
async fn espeak_word_timings_follow_the_audio() {
    check(&speak(ESPEAK, None).await, ESPEAK);
    // resampled: the timings follow
    check(&speak(ESPEAK, Some(16000)).await, "espeak-ng at 16 kHz");
}

#[tokio::test]
async fn piper_word_timings_follow_the_audio() {
    check(&speak(PIPER, None).await, PIPER);
}

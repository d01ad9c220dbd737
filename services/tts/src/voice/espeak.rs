//! The espeak-ng voices (formant synthesis through libespeak-ng): always available, the
//! default. Deterministic: the seed is not used.

use super::{Backend, Speech, SpeechParams, Voice, VoiceDescription, VoiceError};
use crate::{
    espeak::{Espeak, EspeakError, WordEvent},
    words::{WordSpan, make_monotonic, proportional, silence::Silence, split_by_weights},
};
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

    fn speak(&mut self, sentence: &str, params: &SpeechParams) -> Result<Speech, VoiceError> {
        let (samples, events) = {
            let mut engine = Espeak::lock()?;
            engine.set_voice(&self.name)?;
            engine.synthesize_words(sentence, params.rate)?
        };
        let samples: Vec<f32> = samples.into_iter().map(|s| s as f32 / 32768.0).collect();
        let words = word_spans(sentence, &events, &samples, self.description.native_sample_rate);
        Ok(Speech { samples, words })
    }
}

/// A span per whitespace-separated word of `sentence`. espeak-ng reports where words
/// start, but joins some ("on the" may get one event): each word with an event starts a
/// group that lasts until the next group starts (or the end), less the silence at its
/// ends, and the group's words share that span by their lengths (a lone symbol gets an
/// empty span). No events at all: spans in proportion to the words' lengths.
fn word_spans(sentence: &str, events: &[WordEvent], samples: &[f32], rate: u32) -> Vec<WordSpan> {
    let words: Vec<(usize, &str)> = char_offsets(sentence);
    let total = samples.len();
    let to_sample = |ms: u64| ((ms as u128 * rate as u128 / 1000) as usize).min(total);
    // the first event inside each word marks its start
    let mut starts: Vec<Option<usize>> = vec![None; words.len()];
    for event in events {
        let inside = words
            .iter()
            .rposition(|&(offset, _)| offset <= event.char_offset)
            .filter(|&w| event.char_offset < words[w].0 + words[w].1.chars().count());
        if let Some(w) = inside
            && starts[w].is_none()
        {
            starts[w] = Some(to_sample(event.audio_ms));
        }
    }
    let leaders: Vec<usize> = (0..words.len()).filter(|&w| starts[w].is_some()).collect();
    if leaders.is_empty() {
        let texts: Vec<&str> = words.iter().map(|&(_, w)| w).collect();
        return proportional(&texts, total);
    }
    let silence = Silence::of(samples, rate);
    let mut spans = Vec::with_capacity(words.len());
    for (g, &leader) in leaders.iter().enumerate() {
        // words before the first event belong to the first group
        let first = if g == 0 { 0 } else { leader };
        let next = leaders.get(g + 1).copied();
        let start = starts[leader].unwrap_or(0);
        let end = next.and_then(|n| starts[n]).unwrap_or(total).max(start);
        let heard = silence.trim(WordSpan { start, end });
        let weights: Vec<usize> = words[first..next.unwrap_or(words.len())]
            .iter()
            .map(|&(_, w)| w.chars().filter(|c| c.is_alphanumeric()).count())
            .collect();
        spans.extend(split_by_weights(heard, &weights));
    }
    make_monotonic(&mut spans, total);
    spans
}

/// The whitespace-separated words of `text` with their character offsets.
fn char_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut word_start: Option<(usize, usize)> = None; // (char offset, byte offset)
    for (chars, (bytes, c)) in text.char_indices().enumerate() {
        match (c.is_whitespace(), word_start) {
            (true, Some((offset, from))) => {
                out.push((offset, &text[from..bytes]));
                word_start = None;
            }
            (false, None) => word_start = Some((chars, bytes)),
            _ => {}
        }
    }
    if let Some((offset, from)) = word_start {
        out.push((offset, &text[from..]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_start_at_their_events_and_end_before_pauses() {
        assert_eq!(char_offsets(" é b  cd "), [(1, "é"), (3, "b"), (6, "cd")]);
        // 1 kHz: "ab, cd e": sound in 0..30, (pause) 60..80, 80..95; the comma's pause
        // is cut from "ab,"
        let samples: Vec<f32> = (0..100)
            .map(|i| if i < 30 || (60..95).contains(&i) { 0.3 } else { 0.0 })
            .collect();
        let events = [
            WordEvent {
                char_offset: 0,
                audio_ms: 0,
            },
            WordEvent {
                char_offset: 4,
                audio_ms: 55,
            },
            WordEvent {
                char_offset: 9,
                audio_ms: 80,
            },
        ];
        let spans = word_spans("ab, cd — e", &events, &samples, 1000);
        let span = |start, end| WordSpan { start, end };
        assert_eq!(spans, [span(0, 30), span(60, 80), span(80, 80), span(80, 95)]);
        assert_eq!(
            word_spans("ab cd", &[], &samples, 1000),
            [span(0, 50), span(50, 100)]
        );
        // "on the" joined under one event: they share its span by length
        let joined = [events[0], events[2]];
        assert_eq!(
            word_spans("on the — e", &joined, &samples, 1000),
            [span(0, 32), span(32, 80), span(80, 80), span(80, 95)]
        );
    }
}

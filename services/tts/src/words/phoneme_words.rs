//! Piper's phonemes grouped into words, with the samples each word lasts: the phoneme
//! string separates words by spaces, and the duration predictor gives each phoneme id
//! its frames.

use super::WordSpan;

/// One word of an utterance's phonemes and when it is heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhonemeWord {
    pub span: WordSpan,
    /// Its sounds (stress marks and punctuation not counted), to pair it with a text word.
    pub sounds: usize,
}

/// A phoneme that separates words.
fn is_space(phoneme: &str) -> bool {
    phoneme.chars().all(char::is_whitespace)
}

/// A clause terminator piper keeps in the phonemes: a pause, not a sound of the word.
fn is_punctuation(phoneme: &str) -> bool {
    phoneme
        .chars()
        .all(|c| c.is_ascii_punctuation() || matches!(c, '—' | '–' | '…' | '¡' | '¿' | '«' | '»'))
}

/// Marks that shape a sound rather than add one.
fn is_mark(phoneme: &str) -> bool {
    matches!(phoneme, "ˈ" | "ˌ" | "ː" | "ˑ") || phoneme.chars().all(|c| ('\u{300}'..='\u{36f}').contains(&c))
}

/// How many sounds a phoneme string has (what [`PhonemeWord::sounds`] counts).
pub fn sounds(phonemes: impl IntoIterator<Item = impl AsRef<str>>) -> usize {
    phonemes
        .into_iter()
        .filter(|p| {
            let p = p.as_ref();
            !is_space(p) && !is_punctuation(p) && !is_mark(p)
        })
        .count()
}

/// The words of one utterance: `phonemes` as given to the voice's id map, `sources`
/// and `frames` per id (see `VoiceConfig::phoneme_ids_with_sources`, `Vits::infer_timed`),
/// `hop` samples per frame, `offset` the utterance's first sample in the sentence.
pub fn phoneme_words(
    phonemes: &[String],
    sources: &[Option<usize>],
    frames: &[i64],
    hop: usize,
    offset: usize,
) -> Vec<PhonemeWord> {
    // each phoneme's frames [start, end)
    let mut bounds: Vec<Option<(usize, usize)>> = vec![None; phonemes.len()];
    let mut at = 0usize;
    for (source, &count) in sources.iter().zip(frames) {
        let end = at + count.max(0) as usize;
        if let Some(b) = source.and_then(|p| bounds.get_mut(p)) {
            *b = Some(b.map_or((at, end), |(s, _)| (s, end)));
        }
        at = end;
    }
    let mut words = Vec::new();
    let mut current: Option<PhonemeWord> = None;
    for (phoneme, bound) in phonemes.iter().zip(bounds) {
        if is_space(phoneme) {
            words.extend(current.take());
            continue;
        }
        let Some((start, end)) = bound.filter(|_| !is_punctuation(phoneme)) else {
            continue;
        };
        let (start, end) = (offset + start * hop, offset + end * hop);
        let word = current.get_or_insert(PhonemeWord {
            span: WordSpan { start, end },
            sounds: 0,
        });
        word.span.end = end;
        if !is_mark(phoneme) {
            word.sounds += 1;
        }
    }
    words.extend(current);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_take_their_phonemes_frames() {
        // "ab, c." -> ids: BOS PAD a PAD b PAD , PAD ' ' PAD c PAD . PAD EOS
        let phonemes: Vec<String> = ["a", "b", ",", " ", "c", "."].map(String::from).to_vec();
        let sources = [
            None,
            None,
            Some(0),
            Some(0),
            Some(1),
            Some(1),
            Some(2),
            Some(2),
            Some(3),
            Some(3),
            Some(4),
            Some(4),
            Some(5),
            Some(5),
            None,
        ];
        let frames = [2, 1, 3, 1, 2, 1, 5, 0, 1, 0, 4, 1, 6, 0, 2];
        let words = phoneme_words(&phonemes, &sources, &frames, 10, 100);
        assert_eq!(
            words,
            [
                PhonemeWord {
                    span: WordSpan { start: 130, end: 200 },
                    sounds: 2
                },
                PhonemeWord {
                    span: WordSpan { start: 260, end: 310 },
                    sounds: 1
                },
            ]
        );
        assert_eq!(sounds(["ˈ", "a", " ", ",", "b", "ː"]), 2);
    }
}

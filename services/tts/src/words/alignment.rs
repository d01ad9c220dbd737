//! Pairs the words of a sentence's text with the words of its phonemes. espeak-ng joins
//! some words in its phoneme string ("of the" may become one) and splits others
//! ("twenty-one" becomes two), so the two word counts can differ. A dynamic programme
//! finds the monotone pairing in which the grouped words' sound counts agree best, each
//! text word phonemised alone giving its count.

use super::{WordSpan, phoneme_words::PhonemeWord, split_by_weights};

/// Most words on one side of a group (joins and splits are short).
const MAX_GROUP: usize = 4;

/// Consecutive text words paired with consecutive phoneme words.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    text: (usize, usize),
    phonemes: (usize, usize),
}

/// Cost of pairing `t` text words of `text_sounds` sounds with `p` phoneme words of
/// `phoneme_sounds`: the sound counts' difference, plus a price for anything but one to
/// one, so that joins, splits and unpaired words are chosen only when counts say so.
fn cost(t: usize, p: usize, text_sounds: usize, phoneme_sounds: usize) -> usize {
    let difference = text_sounds.abs_diff(phoneme_sounds);
    match (t, p) {
        (1, 1) => difference,
        // a silent word (punctuation, a symbol espeak-ng skips) needs no phonemes
        (1, 0) if text_sounds == 0 => 0,
        (1, 0) => 3 + 2 * text_sounds,
        (0, 1) => 3 + 2 * phoneme_sounds,
        (t, p) => difference + 2 * (t + p - 2),
    }
}

fn align(text: &[usize], phonemes: &[usize]) -> Vec<Group> {
    let (n, m) = (text.len(), phonemes.len());
    let mut best = vec![vec![usize::MAX; m + 1]; n + 1];
    let mut from = vec![vec![(0usize, 0usize); m + 1]; n + 1];
    best[0][0] = 0;
    let mut steps: Vec<(usize, usize)> = vec![(1, 0), (0, 1)];
    steps.extend((1..=MAX_GROUP).map(|p| (1, p)));
    steps.extend((2..=MAX_GROUP).map(|t| (t, 1)));
    for i in 0..=n {
        for j in 0..=m {
            if best[i][j] == usize::MAX {
                continue;
            }
            for &(t, p) in &steps {
                if i + t > n || j + p > m {
                    continue;
                }
                let c = cost(t, p, text[i..i + t].iter().sum(), phonemes[j..j + p].iter().sum());
                let total = best[i][j].saturating_add(c);
                if total < best[i + t][j + p] {
                    best[i + t][j + p] = total;
                    from[i + t][j + p] = (i, j);
                }
            }
        }
    }
    let mut groups = Vec::new();
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        let (pi, pj) = from[i][j];
        groups.push(Group {
            text: (pi, i),
            phonemes: (pj, j),
        });
        (i, j) = (pi, pj);
    }
    groups.reverse();
    groups
}

/// A span per text word (`text_sounds[w]`: word `w`'s sounds) from the phoneme words it
/// pairs with; text words joined into one phoneme word share it by their sounds, a
/// text word paired with none gets an empty span where it stands.
pub fn text_spans(text_sounds: &[usize], words: &[PhonemeWord]) -> Vec<WordSpan> {
    let phoneme_sounds: Vec<usize> = words.iter().map(|w| w.sounds).collect();
    let mut spans = vec![WordSpan::default(); text_sounds.len()];
    let mut position = 0;
    for group in align(text_sounds, &phoneme_sounds) {
        let (t0, t1) = group.text;
        let paired = &words[group.phonemes.0..group.phonemes.1];
        match (t1 - t0, paired.first(), paired.last()) {
            (0, _, _) => {}
            (_, None, _) | (_, _, None) => {
                spans[t0] = WordSpan {
                    start: position,
                    end: position,
                };
            }
            (1, Some(first), Some(last)) => {
                spans[t0] = WordSpan {
                    start: first.span.start,
                    end: last.span.end,
                };
            }
            (_, Some(word), _) => {
                let weights: Vec<usize> = text_sounds[t0..t1].iter().map(|&s| s.max(1)).collect();
                spans[t0..t1].copy_from_slice(&split_by_weights(word.span, &weights));
            }
        }
        if let Some(last) = spans[t0..t1].last() {
            position = last.end.max(position);
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(start: usize, end: usize, sounds: usize) -> PhonemeWord {
        PhonemeWord {
            span: WordSpan { start, end },
            sounds,
        }
    }

    fn span(start: usize, end: usize) -> WordSpan {
        WordSpan { start, end }
    }

    #[test]
    fn one_to_one_joins_splits_and_silent_words() {
        // "the cat sat": one to one
        let words = [word(0, 10, 2), word(10, 30, 3), word(30, 50, 3)];
        assert_eq!(
            text_spans(&[2, 3, 3], &words),
            [span(0, 10), span(10, 30), span(30, 50)]
        );
        // "out of the house": "of the" joined into one phoneme word
        let words = [word(0, 10, 3), word(10, 30, 4), word(30, 60, 4)];
        assert_eq!(
            text_spans(&[3, 2, 2, 4], &words),
            [span(0, 10), span(10, 20), span(20, 30), span(30, 60)]
        );
        // "twenty-one cats": the first text word split in two phoneme words
        let words = [word(0, 20, 6), word(20, 30, 3), word(35, 50, 4)];
        assert_eq!(text_spans(&[9, 4], &words), [span(0, 30), span(35, 50)]);
        // "a — b": the dash makes no sound
        let words = [word(0, 10, 1), word(20, 30, 1)];
        assert_eq!(
            text_spans(&[1, 0, 1], &words),
            [span(0, 10), span(10, 10), span(20, 30)]
        );
        // nothing to pair with
        assert_eq!(text_spans(&[2, 2], &[]), [span(0, 0), span(0, 0)]);
        assert!(text_spans(&[], &words).is_empty());
    }
}

//! Cues from word timings: each cue is a run of consecutive words, shown from its first
//! word's start to its last word's end.
//!
//! Limits: at most [`LINES_MAX`] lines of [`LINE_MAX_CHARS`] characters (a single word
//! longer than a line stands alone), on screen [`MIN_CUE_S`] to [`MAX_CUE_S`]. Where the
//! words are cut is chosen over the whole scene (a shortest-path over word boundaries):
//! sentence ends are preferred, then clause punctuation, then any space, with fuller cues
//! preferred to many short ones. A cue shorter than the minimum is held longer when the
//! next cue (or the scene's end) leaves room; cues never overlap.

use super::{Cue, LINE_MAX_CHARS, LINES_MAX};
use crate::dag::WordTiming;

/// Shortest time a cue stays up, where the next cue allows.
pub const MIN_CUE_S: f64 = 1.0;
/// Longest time a cue stays up: longer speech is split.
pub const MAX_CUE_S: f64 = 7.0;

/// Price of a cut after a word, by what ends the word.
const CUT_AFTER_SENTENCE: f64 = 0.0;
const CUT_AFTER_CLAUSE: f64 = 2.0;
const CUT_ELSEWHERE: f64 = 6.0;
/// Price of each cue: fewer, fuller cues are easier to read.
const PER_CUE: f64 = 1.0;
/// Price of a sentence end inside a cue: a new sentence starts a new cue when it can.
const SENTENCE_INSIDE: f64 = 3.0;
/// Price of a cue whose speech is shorter than the minimum (it may not be held longer).
const SHORT_CUE: f64 = 2.0;

/// Whether `word` ends a sentence ("end.", "end?\"", "end…").
fn ends_sentence(word: &str) -> bool {
    word.trim_end_matches(['"', '\'', ')', ']', '”', '’', '»'])
        .ends_with(['.', '!', '?', '…'])
}

/// Whether `word` ends a clause ("word," "word;" "word:" "word—").
fn ends_clause(word: &str) -> bool {
    word.trim_end_matches(['"', '\'', ')', ']', '”', '’', '»'])
        .ends_with([',', ';', ':', '—', '–'])
        || matches!(word, "—" | "–" | "-")
}

fn chars(word: &str) -> usize {
    word.chars().count()
}

/// `words` as at most [`LINES_MAX`] balanced lines of at most `width` characters, or
/// `None` when they do not fit. One word longer than `width` is one line.
pub fn balanced_lines(words: &[&str], width: usize) -> Option<Vec<String>> {
    let one = words.join(" ");
    if chars(&one) <= width || words.len() == 1 {
        return Some(vec![one]);
    }
    if LINES_MAX < 2 {
        return None;
    }
    // the cut that makes the longer line shortest; on a tie, the one after punctuation,
    // then the shorter top line
    (1..words.len())
        .map(|cut| {
            let (top, bottom) = (words[..cut].join(" "), words[cut..].join(" "));
            let longer = chars(&top).max(chars(&bottom));
            let punctuated = !(ends_clause(words[cut - 1]) || ends_sentence(words[cut - 1]));
            ((longer, punctuated, chars(&top)), top, bottom)
        })
        .filter(|(_, top, bottom)| chars(top) <= width && chars(bottom) <= width)
        .min_by_key(|(key, _, _)| *key)
        .map(|(_, top, bottom)| vec![top, bottom])
}

/// Whether a word is heard (has letters or digits and a span).
fn sounds(word: &WordTiming) -> bool {
    word.end_s > word.start_s && word.word.chars().any(char::is_alphanumeric)
}

/// Most characters of a cue's text on one line (the lines and the spaces between them).
const MAX_TEXT_CHARS: usize = LINES_MAX * LINE_MAX_CHARS + LINES_MAX - 1;

/// When the words of `words[i..j]` are heard: the first heard word's start and the last
/// one's end (words that make no sound, a dash, ride along untimed).
fn heard_span(words: &[WordTiming]) -> Option<(f64, f64)> {
    let first = words.iter().find(|w| sounds(w))?;
    let last = words.iter().rev().find(|w| sounds(w))?;
    Some((first.start_s, last.end_s.max(first.start_s)))
}

/// The cues of one scene's `words` (times from the scene's start), placed at `offset` on
/// the timeline and kept within `[offset, offset + duration]`. `None` when no cutting
/// fits the limits (every cue needs a word that is heard).
pub fn cues(words: &[WordTiming], offset: f64, duration: f64) -> Option<Vec<Cue>> {
    let n = words.len();
    if n == 0 {
        return Some(Vec::new());
    }
    let texts: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
    // when the cue after a cut at j could start: the next heard word, or the scene's end
    let mut next_heard = vec![duration; n + 1];
    for j in (0..n).rev() {
        next_heard[j] = if sounds(&words[j]) {
            words[j].start_s
        } else {
            next_heard[j + 1]
        };
    }
    // best[j]: the cheapest cutting of words[..j]; from[j]: where its last cue starts
    let mut best = vec![f64::INFINITY; n + 1];
    let mut from = vec![0usize; n + 1];
    best[0] = 0.0;
    for i in 0..n {
        if !best[i].is_finite() {
            continue;
        }
        let mut text_chars = 0;
        let mut sentences_inside = 0;
        let mut heard: Option<(f64, f64, usize)> = None; // first start, last end, count
        for j in i + 1..=n {
            let last = &words[j - 1];
            if j > i + 1 {
                text_chars += 1;
                sentences_inside += usize::from(ends_sentence(&words[j - 2].word));
            }
            text_chars += chars(&last.word);
            if sounds(last) {
                let (first, _, count) = heard.unwrap_or((last.start_s, last.end_s, 0));
                heard = Some((first, last.end_s, count + 1));
            }
            // every further word only makes the cue longer
            if j > i + 1 && text_chars > MAX_TEXT_CHARS {
                break;
            }
            let Some((first, end, count)) = heard else {
                continue;
            };
            if count > 1 && end - first > MAX_CUE_S {
                break;
            }
            if balanced_lines(&texts[i..j], LINE_MAX_CHARS).is_none() {
                continue;
            }
            let cut = if j == n || ends_sentence(&last.word) {
                CUT_AFTER_SENTENCE
            } else if ends_clause(&last.word) {
                CUT_AFTER_CLAUSE
            } else {
                CUT_ELSEWHERE
            };
            let short = if next_heard[j] - first < MIN_CUE_S {
                SHORT_CUE
            } else {
                0.0
            };
            let cost = best[i] + PER_CUE + cut + short + SENTENCE_INSIDE * sentences_inside as f64;
            if cost < best[j] {
                best[j] = cost;
                from[j] = i;
            }
        }
    }
    if !best[n].is_finite() {
        return None;
    }
    let mut bounds = Vec::new();
    let mut j = n;
    while j > 0 {
        bounds.push((from[j], j));
        j = from[j];
    }
    bounds.reverse();
    Some(timed(&bounds, words, offset, duration))
}

/// The cues of the word runs `bounds` (each with a heard word), timed: from the first
/// heard word's start to the last one's end, held to [`MIN_CUE_S`] where the next cue
/// (or the scene's end) allows, cut at [`MAX_CUE_S`].
fn timed(bounds: &[(usize, usize)], words: &[WordTiming], offset: f64, duration: f64) -> Vec<Cue> {
    let scene_end = offset + duration.max(0.0);
    let at = |t: f64| (offset + t).clamp(offset, scene_end);
    let spans: Vec<(f64, f64)> = bounds
        .iter()
        .map(|&(i, j)| heard_span(&words[i..j]).map_or((offset, offset), |(s, e)| (at(s), at(e))))
        .collect();
    let mut out: Vec<Cue> = Vec::with_capacity(bounds.len());
    for (k, &(i, j)) in bounds.iter().enumerate() {
        let start = spans[k].0.max(out.last().map_or(offset, |c: &Cue| c.end_s));
        let next = spans.get(k + 1).map_or(scene_end, |s| s.0).max(start);
        let mut end = spans[k].1.clamp(start, start + MAX_CUE_S);
        if end - start < MIN_CUE_S {
            end = (start + MIN_CUE_S).min(next).max(end);
        }
        let texts: Vec<&str> = words[i..j].iter().map(|w| w.word.as_str()).collect();
        let lines = balanced_lines(&texts, LINE_MAX_CHARS).unwrap_or_else(|| vec![texts.join(" ")]);
        out.push(Cue {
            start_s: start,
            end_s: end.min(scene_end),
            text: lines.join("\n"),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(text: &str, start_s: f64, end_s: f64) -> WordTiming {
        WordTiming {
            word: text.into(),
            start_s,
            end_s,
        }
    }

    /// Words of `text` spoken one after another, `per_word` seconds each.
    fn spoken(text: &str, start: f64, per_word: f64) -> Vec<WordTiming> {
        text.split_whitespace()
            .enumerate()
            .map(|(i, w)| word(w, start + i as f64 * per_word, start + (i + 1) as f64 * per_word))
            .collect()
    }

    #[test]
    fn sentences_get_their_own_cues_and_times() {
        let mut words = spoken("The sea is calm.", 0.2, 0.3);
        words.extend(spoken("Gulls cry over the harbour.", 2.0, 0.3));
        let cues = cues(&words, 10.0, 4.0).unwrap();
        let texts: Vec<&str> = cues.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["The sea is calm.", "Gulls cry over the harbour."]);
        assert!((cues[0].start_s - 10.2).abs() < 1e-9 && (cues[0].end_s - 11.4).abs() < 1e-9);
        assert!((cues[1].start_s - 12.0).abs() < 1e-9 && (cues[1].end_s - 13.5).abs() < 1e-9);
    }

    #[test]
    fn short_cues_are_held_where_the_next_allows() {
        let words = [
            word("Yes.", 0.0, 0.3),
            word("Then", 0.6, 0.9),
            word("go.", 0.9, 1.2),
        ];
        let cues = timed(&[(0, 1), (1, 3)], &words, 5.0, 3.0);
        assert_eq!((cues[0].start_s, cues[0].end_s), (5.0, 5.6), "up to the next cue");
        assert_eq!((cues[1].start_s, cues[1].end_s), (5.6, 6.6), "a second");
        let last = timed(&[(1, 3)], &words, 0.0, 1.3);
        assert_eq!(
            (last[0].start_s, last[0].end_s),
            (0.6, 1.3),
            "up to the scene's end"
        );
    }

    #[test]
    fn a_short_sentence_stands_alone_only_when_it_can_be_read() {
        let mut words = vec![word("Yes.", 0.0, 0.3)];
        words.extend(spoken("Then the reply came.", 1.5, 0.3));
        let texts = |cues: Vec<Cue>| cues.into_iter().map(|c| c.text).collect::<Vec<_>>();
        assert_eq!(
            texts(cues(&words, 0.0, 3.0).unwrap()),
            ["Yes.", "Then the reply came."]
        );
        // a quick "Yes." shown alone would flash: it joins the next sentence
        let mut quick = vec![word("Yes.", 0.0, 0.3)];
        quick.extend(spoken("Then the reply came.", 0.4, 0.3));
        assert_eq!(
            texts(cues(&quick, 0.0, 3.0).unwrap()),
            ["Yes. Then the reply came."]
        );
    }

    #[test]
    fn long_sentences_break_at_clauses_with_balanced_lines() {
        let text = "The old lighthouse keeper climbed the winding stairs every evening, to light the lamp that guided ships safely home through the storm.";
        let cues = cues(&spoken(text, 0.0, 0.35), 0.0, 10.0).unwrap();
        assert!(cues.len() >= 2);
        assert!(cues[0].text.replace('\n', " ").ends_with("evening,"), "{cues:?}");
        for cue in &cues {
            let lines: Vec<&str> = cue.text.lines().collect();
            assert!(
                lines.len() <= 2 && lines.iter().all(|l| l.chars().count() <= 42),
                "{cue:?}"
            );
            if let [top, bottom] = lines[..] {
                assert!(
                    top.chars().count().abs_diff(bottom.chars().count()) <= 12,
                    "balanced: {cue:?}"
                );
            }
        }
        let rejoined: Vec<&str> = cues.iter().flat_map(|c| c.text.split_whitespace()).collect();
        assert_eq!(rejoined.join(" "), text);
    }

    #[test]
    fn speech_over_seven_seconds_is_split() {
        // slow speech: 1.5 s a word, short words that would fit one cue by length
        let cues = cues(&spoken("one two three four five six seven", 0.0, 1.5), 0.0, 11.0).unwrap();
        assert!(cues.len() >= 2);
        assert!(
            cues.iter().all(|c| c.end_s - c.start_s <= MAX_CUE_S + 1e-9),
            "{cues:?}"
        );
    }

    #[test]
    fn silent_words_ride_along_and_all_silence_does_not_fit() {
        let words = [
            word("Wait", 0.0, 0.5),
            word("—", 0.5, 0.5),
            word("now.", 0.6, 1.0),
        ];
        let cues = cues(&words, 0.0, 2.0).unwrap();
        assert_eq!(cues.len(), 1);
        assert_eq!(cues[0].text, "Wait — now.");
        assert!(super::cues(&[word("—", 0.0, 0.0)], 0.0, 1.0).is_none());
    }

    /// A small deterministic generator (no dependency needed for a property loop).
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % below.max(1)
        }
    }

    #[test]
    fn limits_hold_on_generated_scenes() {
        let mut rng = Lcg(7);
        for case in 0..500 {
            let n = 1 + rng.next(60) as usize;
            let mut t = rng.next(500) as f64 / 1000.0;
            let mut words = Vec::with_capacity(n);
            for _ in 0..n {
                let len = 1 + rng.next(14) as usize;
                let mut text: String = (0..len).map(|_| (b'a' + rng.next(26) as u8) as char).collect();
                match rng.next(10) {
                    0 => text.push('.'),
                    1 => text.push(','),
                    2 => text.push('?'),
                    _ => {}
                }
                if rng.next(40) == 0 {
                    text = "—".into();
                }
                // pauses now and then, slow words sometimes
                t += match rng.next(8) {
                    0 => rng.next(2000) as f64 / 1000.0,
                    _ => rng.next(50) as f64 / 1000.0,
                };
                let length = if text == "—" {
                    0.0
                } else {
                    0.05 + rng.next(900) as f64 / 1000.0
                };
                words.push(word(&text, t, t + length));
                t += length;
            }
            let duration = t + rng.next(300) as f64 / 1000.0;
            let offset = rng.next(100) as f64;
            let Some(cues) = cues(&words, offset, duration) else {
                assert!(
                    words.iter().all(|w| !sounds(w)),
                    "case {case}: only silent words fail"
                );
                continue;
            };
            // the cues' texts are the words, in order, each once
            let rejoined: Vec<&str> = cues.iter().flat_map(|c| c.text.split_whitespace()).collect();
            let written: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
            assert_eq!(rejoined, written, "case {case}");
            let mut first = 0;
            for (k, cue) in cues.iter().enumerate() {
                let lines: Vec<&str> = cue.text.lines().collect();
                let count = cue.text.split_whitespace().count();
                let mine = &words[first..first + count];
                first += count;
                assert!(lines.len() <= LINES_MAX, "case {case}: {cue:?}");
                assert!(
                    lines.iter().all(|l| l.chars().count() <= LINE_MAX_CHARS),
                    "case {case}: {cue:?}"
                );
                // from its first word's start; to its last word's end, or longer to
                // reach the minimum, or cut at the maximum
                let heard: Vec<&WordTiming> = mine.iter().filter(|w| sounds(w)).collect();
                assert!(!heard.is_empty(), "case {case}: {cue:?}");
                assert!(
                    (cue.start_s - (offset + heard[0].start_s)).abs() < 1e-9,
                    "case {case}"
                );
                assert!(
                    cue.start_s >= offset - 1e-9 && cue.end_s <= offset + duration + 1e-9,
                    "case {case}"
                );
                let shown = cue.end_s - cue.start_s;
                assert!(shown <= MAX_CUE_S + 1e-9, "case {case}: {cue:?}");
                let spoken_end = offset + heard[heard.len() - 1].end_s;
                assert!(
                    cue.end_s >= spoken_end.min(cue.start_s + MAX_CUE_S) - 1e-9,
                    "case {case}: {cue:?}"
                );
                let next_start = cues.get(k + 1).map_or(offset + duration, |c| c.start_s);
                assert!(cue.end_s <= next_start + 1e-9, "case {case}: overlap {cue:?}");
                if shown < MIN_CUE_S - 1e-9 {
                    assert!(
                        (cue.end_s - next_start).abs() < 1e-9,
                        "case {case}: held to the next: {cue:?}"
                    );
                }
                // the words it holds are heard within it
                assert!(
                    heard
                        .iter()
                        .all(|w| offset + w.start_s >= cue.start_s - 1e-9
                            && offset + w.end_s <= spoken_end + 1e-9),
                    "case {case}: {cue:?}"
                );
            }
        }
    }
}

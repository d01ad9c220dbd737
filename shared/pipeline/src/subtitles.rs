//! Subtitles of the story S^D in step with the narration, placed at each scene's start on
//! the timeline. A cue holds at most two lines of at most 42 characters (the usual
//! broadcast limits).
//!
//! With the tts stage's word timings ([`timed`]), each cue is a run of words shown while
//! they are spoken (1-7 s, cut preferably at sentence ends, then at clause punctuation,
//! lines balanced). Without them (a tts that does not time words, or timings that do not
//! hold together) there is one cue per spoken sentence (the stage's segments), a longer
//! sentence becoming several cues that share its time by their lengths.

pub mod timed;

use crate::dag::{Segment, WordTiming};
use std::fmt::Write;

pub const LINE_MAX_CHARS: usize = 42;
pub const LINES_MAX: usize = 2;

/// One subtitle.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start_s: f64,
    pub end_s: f64,
    /// Lines joined by `\n`.
    pub text: String,
}

/// A scene on the timeline: where it starts, how long it lasts, its text, segments and
/// word timings.
pub struct SceneText<'a> {
    pub start_s: f64,
    pub duration_s: f64,
    pub text: &'a str,
    pub segments: &'a [Segment],
    pub words: &'a [WordTiming],
}

/// Word timings the cues can follow: finite, each word's start before its end, in order.
fn usable(words: &[WordTiming]) -> bool {
    !words.is_empty()
        && words
            .iter()
            .all(|w| w.start_s.is_finite() && w.end_s.is_finite() && 0.0 <= w.start_s && w.start_s <= w.end_s)
        && words.windows(2).all(|p| p[0].end_s <= p[1].start_s + 1e-6)
}

/// The cues of `scenes`, in order.
pub fn cues(scenes: &[SceneText<'_>]) -> Vec<Cue> {
    let mut out = Vec::new();
    for scene in scenes {
        if usable(scene.words)
            && let Some(mut cues) = timed::cues(scene.words, scene.start_s, scene.duration_s)
        {
            // The scene's last words stay up until the scene ends (the narration's tail
            // of silence), within the longest a cue may show.
            if let Some(last) = cues.last_mut() {
                let scene_end = scene.start_s + scene.duration_s;
                last.end_s = last.end_s.max(scene_end.min(last.start_s + timed::MAX_CUE_S));
            }
            out.extend(cues);
            continue;
        }
        let end = scene.start_s + scene.duration_s;
        let whole = [Segment {
            text: scene.text.to_string(),
            start_s: 0.0,
            end_s: scene.duration_s,
        }];
        let segments = if scene.segments.is_empty() {
            &whole[..]
        } else {
            scene.segments
        };
        for (i, segment) in segments.iter().enumerate() {
            let start = (scene.start_s + segment.start_s).min(end);
            // the scene's last words stay up until the scene ends
            let stop = if i + 1 == segments.len() {
                end
            } else {
                (scene.start_s + segment.end_s).clamp(start, end)
            };
            split_cue(&segment.text, start, stop, &mut out);
        }
    }
    out
}

/// `text` over [start, end) as cues of at most two lines.
fn split_cue(text: &str, start: f64, end: f64, out: &mut Vec<Cue>) {
    let lines = wrap(text, LINE_MAX_CHARS);
    if lines.is_empty() {
        return;
    }
    let chunks: Vec<String> = lines.chunks(LINES_MAX).map(|c| c.join("\n")).collect();
    let weights: Vec<usize> = chunks.iter().map(|c| c.chars().count().max(1)).collect();
    let total: usize = weights.iter().sum();
    let mut t = start;
    for (chunk, weight) in chunks.into_iter().zip(weights) {
        let stop = t + (end - start) * weight as f64 / total as f64;
        out.push(Cue {
            start_s: t,
            end_s: stop,
            text: chunk,
        });
        t = stop;
    }
}

/// Greedy word wrap; a word longer than a line stands on its own line.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// SubRip text of `cues`.
pub fn srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(cue.start_s),
            timestamp(cue.end_s),
            cue.text
        );
    }
    out
}

fn timestamp(seconds: f64) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02},{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_follow_the_segments_on_the_scene_timeline() {
        let segments = [
            Segment {
                text: "The sea is calm.".into(),
                start_s: 0.0,
                end_s: 1.2,
            },
            Segment {
                text: "Gulls cry.".into(),
                start_s: 1.5,
                end_s: 2.0,
            },
        ];
        let cues = cues(&[
            SceneText {
                start_s: 0.0,
                duration_s: 3.0,
                text: "Dawn.",
                segments: &[],
                words: &[],
            },
            SceneText {
                start_s: 3.0,
                duration_s: 2.5,
                text: "The sea is calm. Gulls cry.",
                segments: &segments,
                words: &[],
            },
        ]);
        assert_eq!(cues.len(), 3);
        assert_eq!(
            (cues[0].start_s, cues[0].end_s, cues[0].text.as_str()),
            (0.0, 3.0, "Dawn.")
        );
        assert_eq!((cues[1].start_s, cues[1].end_s), (3.0, 4.2));
        assert_eq!(
            (cues[2].start_s, cues[2].end_s),
            (4.5, 5.5),
            "held to the scene's end"
        );
        let text = srt(&cues);
        assert!(
            text.starts_with("1\n00:00:00,000 --> 00:00:03,000\nDawn.\n\n2\n00:00:03,000 --> 00:00:04,200\n"),
            "{text}"
        );
    }

    #[test]
    fn long_sentences_become_cues_of_two_short_lines_sharing_the_time() {
        let sentence = "The old lighthouse keeper climbed the winding stairs every evening to light the lamp that guided ships safely home through the storm.";
        let cues = cues(&[SceneText {
            start_s: 10.0,
            duration_s: 8.0,
            text: sentence,
            segments: &[],
            words: &[],
        }]);
        assert!(cues.len() >= 2);
        for cue in &cues {
            let lines: Vec<&str> = cue.text.lines().collect();
            assert!(
                lines.len() <= 2 && lines.iter().all(|l| l.chars().count() <= 42),
                "{cue:?}"
            );
        }
        assert_eq!(cues.first().unwrap().start_s, 10.0);
        assert!((cues.last().unwrap().end_s - 18.0).abs() < 1e-9);
        let rejoined: Vec<&str> = cues.iter().flat_map(|c| c.text.split_whitespace()).collect();
        assert_eq!(rejoined.join(" "), sentence);
    }

    #[test]
    fn word_timings_drive_the_cues_and_bad_ones_fall_back() {
        let word = |word: &str, start_s, end_s| WordTiming {
            word: word.into(),
            start_s,
            end_s,
        };
        let words = [
            word("The", 0.1, 0.3),
            word("sea", 0.3, 0.6),
            word("is", 0.6, 0.7),
            word("calm.", 0.7, 1.3),
            word("Gulls", 2.0, 2.4),
            word("cry.", 2.4, 2.9),
        ];
        let scene = |words| SceneText {
            start_s: 3.0,
            duration_s: 3.2,
            text: "The sea is calm. Gulls cry.",
            segments: &[],
            words,
        };
        let timed = cues(&[scene(&words)]);
        // The last cue stays up to the scene's end (6.2).
        let want = [(3.1, 4.3, "The sea is calm."), (5.0, 6.2, "Gulls cry.")];
        assert_eq!(timed.len(), want.len());
        for (cue, (start, end, text)) in timed.iter().zip(want) {
            assert!(
                (cue.start_s - start).abs() < 1e-9 && (cue.end_s - end).abs() < 1e-9,
                "{cue:?}"
            );
            assert_eq!(cue.text, text);
        }
        // out of order: the sentence-proportional cues instead
        let mut shuffled = words.clone();
        shuffled.swap(0, 3);
        let fallback = cues(&[scene(&shuffled)]);
        assert_eq!(fallback.len(), 1);
        assert_eq!((fallback[0].start_s, fallback[0].end_s), (3.0, 6.2));
    }
}

//! Model output -> scene texts.
//!
//! A small instruct model does not keep to the format it is asked for, so parsing is
//! lenient about form and strict about substance:
//!
//! - form: list numbering in its usual variants (`1.`, `1)`, `1:`, `1 -`, `(1)`, `#1`,
//!   `Scene 1:`, `Scene one -`, `**1.**`), bullets, markdown emphasis and headings,
//!   surrounding quotes, blank lines, runs of whitespace, a heading line followed by its
//!   body, and chatter around the list ("Sure! Here are the scenes:", "I hope you enjoy
//!   it!") are all accepted and removed;
//! - substance: a scene needs at least [`MIN_SCENE_WORDS`] words and must not repeat an
//!   earlier one (exactly, or nearly: [`find_duplicate`]); a set needs exactly the number
//!   of scenes asked for, and [`SceneSetError`] says why it does not.
//!
//! Two entry points: [`clean_scene`] for one scene (the scene-by-scene generation of
//! [`crate::prompting`] produces one line per call), and [`split_list`] +
//! [`validate_scene_set`] (or [`parse_story`]) for a reply holding the whole list.

use std::{collections::HashSet, fmt};

/// Fewer words than this and a "scene" is rejected.
pub const MIN_SCENE_WORDS: usize = 3;
/// Longest scene text (`storyreel.common.v1.Scene.text`); longer text is cut at a
/// sentence end (or word boundary) below it.
pub const MAX_SCENE_CHARS: usize = 2000;
/// Word-set Jaccard similarity from which two scenes count as the same scene.
pub const NEAR_DUPLICATE_SIMILARITY: f64 = 0.8;

/// Why a candidate scene is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Nothing left once numbering, markup and quotes are removed.
    Empty,
    /// Fewer than [`MIN_SCENE_WORDS`] words.
    TooShort { words: usize },
    /// Repeats (or nearly repeats) the candidate at 1-based position `of`.
    Duplicate { of: usize },
    /// More words than a scene may have ([`crate::scoring::MAX_WORDS`]).
    TooLong { words: usize },
    /// A "word" of this many letters: words fused together.
    FusedWord { letters: usize },
    /// Does not end with sentence punctuation: cut off mid-sentence.
    Unfinished,
    /// More sentences than a scene may have ([`crate::scoring::MAX_SENTENCES`]).
    TooManySentences { sentences: usize },
    /// Says this phrase twice.
    RepeatedPhrase { phrase: String },
    /// Only restates the title.
    RepeatsTitle,
    /// Its relevance to the title is below [`crate::scoring::MIN_RELEVANCE`].
    OffTopic,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Empty => write!(f, "is empty"),
            Rejection::TooShort { words } => {
                write!(f, "has {words} word(s), fewer than {MIN_SCENE_WORDS}")
            }
            Rejection::Duplicate { of } => write!(f, "repeats candidate {of}"),
            Rejection::TooLong { words } => {
                write!(f, "has {words} words, more than {}", crate::scoring::MAX_WORDS)
            }
            Rejection::FusedWord { letters } => write!(
                f,
                "has a word of {letters} letters, more than {}",
                crate::scoring::MAX_WORD_LETTERS
            ),
            Rejection::Unfinished => write!(f, "does not end with a sentence end"),
            Rejection::RepeatedPhrase { phrase } => write!(f, "says {phrase:?} twice"),
            Rejection::RepeatsTitle => write!(f, "only restates the title"),
            Rejection::OffTopic => write!(
                f,
                "is not about the title (relevance below {})",
                crate::scoring::MIN_RELEVANCE
            ),
            Rejection::TooManySentences { sentences } => write!(
                f,
                "has {sentences} sentences, more than {}",
                crate::scoring::MAX_SENTENCES
            ),
        }
    }
}

/// One unusable candidate of a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedScene {
    /// 1-based position among the candidates.
    pub position: usize,
    pub rejection: Rejection,
    /// The start of the candidate's text, for logs.
    pub excerpt: String,
}

/// A set of candidates that does not hold exactly the wanted number of usable scenes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SceneSetError {
    pub wanted: usize,
    pub usable: usize,
    pub rejected: Vec<RejectedScene>,
}

impl fmt::Display for SceneSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wanted {} usable scenes, got {}", self.wanted, self.usable)?;
        for (i, r) in self.rejected.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(
                f,
                "{sep}candidate {} ({:?}) {}",
                r.position, r.excerpt, r.rejection
            )?;
        }
        Ok(())
    }
}

/// Cleans one scene: whitespace collapsed, markdown, bullets, list numbering and
/// surrounding quotes removed, cut to [`MAX_SCENE_CHARS`]. Idempotent.
pub fn clean_scene(raw: &str) -> Result<String, Rejection> {
    let mut text = remove_inline_markup(&collapse_whitespace(raw));
    loop {
        let before = text.len();
        let trimmed = text.trim();
        let trimmed = strip_block_prefix(trimmed);
        let trimmed = strip_numbering(trimmed).map_or(trimmed, |(_, rest)| rest);
        text = strip_quotes(trimmed.trim()).trim().to_string();
        if text.len() == before {
            break;
        }
    }
    let text = truncate_scene(&collapse_whitespace(&text));
    let words = count_words(&text);
    if words == 0 {
        Err(Rejection::Empty)
    } else if words < MIN_SCENE_WORDS {
        Err(Rejection::TooShort { words })
    } else {
        Ok(text)
    }
}

/// The items of a reply that holds a list of scenes, in order, with chatter removed; each
/// still to be cleaned ([`validate_scene_set`] does). When any line is numbered, only the
/// numbered items count: text before the first item and after a blank line that follows
/// an item is chatter; a line right after an item continues it (a heading's body, a
/// wrapped line). When no line is numbered, every line that is not chatter is an item.
pub fn split_list(output: &str) -> Vec<String> {
    struct Item {
        numbered: bool,
        text: String,
        heading: bool,
    }
    let mut items: Vec<Item> = Vec::new();
    let mut blank_since_item = true;
    for line in output.lines() {
        let raw = line.trim();
        if raw.is_empty() {
            blank_since_item = true;
            continue;
        }
        let plain = remove_inline_markup(raw);
        let plain = strip_block_prefix(plain.trim()).trim();
        if let Some((_, rest)) = strip_numbering(plain) {
            let rest = rest.trim();
            let heading =
                raw.starts_with('#') || raw.ends_with("**") || raw.ends_with("__") || rest.ends_with(':');
            items.push(Item {
                numbered: true,
                text: rest.trim_end_matches(':').trim().to_string(),
                heading,
            });
            blank_since_item = false;
            continue;
        }
        if is_chatter(plain) {
            continue;
        }
        match items.last_mut() {
            Some(last) if last.numbered && !blank_since_item => {
                let joiner = if last.text.is_empty() {
                    ""
                } else if last.heading {
                    ": "
                } else {
                    " "
                };
                last.text = format!("{}{joiner}{plain}", last.text);
                last.heading = false;
            }
            _ => items.push(Item {
                numbered: false,
                text: plain.to_string(),
                heading: false,
            }),
        }
        blank_since_item = false;
    }
    let any_numbered = items.iter().any(|i| i.numbered);
    items
        .into_iter()
        .filter(|i| i.numbered || !any_numbered)
        .map(|i| i.text)
        .collect()
}

/// Cleans every candidate and keeps the usable ones: not too short, not repeating an
/// earlier usable one. Exactly `n` must remain; otherwise the error lists why each
/// rejected candidate was rejected.
pub fn validate_scene_set<S: AsRef<str>>(candidates: &[S], n: usize) -> Result<Vec<String>, SceneSetError> {
    let mut usable: Vec<(usize, String)> = Vec::with_capacity(n);
    let mut rejected = Vec::new();
    for (i, candidate) in candidates.iter().enumerate() {
        let raw = candidate.as_ref();
        let verdict = clean_scene(raw).and_then(|text| {
            let earlier: Vec<&str> = usable.iter().map(|(_, t)| t.as_str()).collect();
            match find_duplicate(&text, &earlier) {
                Some(j) => Err(Rejection::Duplicate { of: usable[j].0 }),
                None => Ok(text),
            }
        });
        match verdict {
            Ok(text) => usable.push((i + 1, text)),
            Err(rejection) => rejected.push(RejectedScene {
                position: i + 1,
                rejection,
                excerpt: excerpt(raw),
            }),
        }
    }
    if usable.len() == n {
        Ok(usable.into_iter().map(|(_, t)| t).collect())
    } else {
        Err(SceneSetError {
            wanted: n,
            usable: usable.len(),
            rejected,
        })
    }
}

/// [`split_list`] then [`validate_scene_set`]: a whole reply -> exactly `n` scenes.
pub fn parse_story(output: &str, n: usize) -> Result<Vec<String>, SceneSetError> {
    validate_scene_set(&split_list(output), n)
}

/// The index in `earlier` of a scene that `text` repeats: the same words ignoring case
/// and punctuation, or word sets with Jaccard similarity >= [`NEAR_DUPLICATE_SIMILARITY`]
/// (a small model often repeats a sentence with one word changed).
pub fn find_duplicate(text: &str, earlier: &[&str]) -> Option<usize> {
    let words = normalized_words(text);
    let set: HashSet<&str> = words.iter().map(String::as_str).collect();
    earlier.iter().position(|other| {
        let other_words = normalized_words(other);
        if other_words == words {
            return true;
        }
        let other_set: HashSet<&str> = other_words.iter().map(String::as_str).collect();
        let union = set.union(&other_set).count();
        union > 0 && set.intersection(&other_set).count() as f64 / union as f64 >= NEAR_DUPLICATE_SIMILARITY
    })
}

fn normalized_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn count_words(text: &str) -> usize {
    text.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Bold, italics and code marks: `**`, `__`, `*`, backticks. A single `_` stays (it
/// occurs inside words).
fn remove_inline_markup(text: &str) -> String {
    text.replace("**", "").replace("__", "").replace(['*', '`'], "")
}

/// Leading heading marks (`#` followed by a space, so `#1` stays), quote marks (`>`),
/// and bullets (`-`, `+`, `•`, `–`, `—` followed by a space).
fn strip_block_prefix(mut text: &str) -> &str {
    loop {
        let before = text.len();
        let hashes = text.trim_start_matches('#');
        if hashes.len() < text.len() && (hashes.is_empty() || hashes.starts_with(char::is_whitespace)) {
            text = hashes.trim_start();
        }
        text = text.trim_start_matches('>').trim_start();
        for bullet in ["- ", "+ ", "• ", "– ", "— "] {
            if let Some(rest) = text.strip_prefix(bullet) {
                text = rest.trim_start();
            }
        }
        if text.len() == before {
            return text;
        }
    }
}

/// Words that may label a numbered item: "Scene 1:", "Part two -".
const ITEM_LABELS: [&str; 5] = ["scene", "part", "chapter", "act", "shot"];
const NUMBER_WORDS: [&str; 12] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
];

/// `(number, rest)` when `text` starts with list numbering. A bare number needs a
/// delimiter (`1.`, `1)`, `1:`, `1 -`, `(1)`, `#1`) so text that starts with a number
/// ("3 friends", "3.5 million", "10:30 pm", "1-year-old") is left alone; a labelled one
/// ("Scene 1", "Scene one:") needs a delimiter or nothing after it.
fn strip_numbering(text: &str) -> Option<(u32, &str)> {
    if let Some(found) = strip_labelled_number(text) {
        return Some(found);
    }
    let (text, opener) = match text.chars().next() {
        Some(c @ ('(' | '#')) => (&text[1..], Some(c)),
        _ => (text, None),
    };
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let number: u32 = text[..digits].parse().ok()?;
    let rest = &text[digits..];
    let rest = match opener {
        Some('(') => after_delimiter(rest.strip_prefix(')')?),
        // "#1 The fox": the hash marks the number; a space is delimiter enough.
        Some(_) if rest.is_empty() || rest.starts_with(char::is_whitespace) => Some(rest.trim_start()),
        _ => delimited_rest(rest),
    };
    rest.map(|r| (number, r))
}

/// "Scene 1: ...", "SCENE two - ...", "Scene 3" (alone).
fn strip_labelled_number(text: &str) -> Option<(u32, &str)> {
    let lower = text.to_ascii_lowercase();
    let label = ITEM_LABELS.iter().find(|l| lower.starts_with(*l))?;
    let after_label = &text[label.len()..];
    let rest = after_label.trim_start();
    if rest.len() == after_label.len() {
        return None; // "Scenery ..."
    }
    let rest = rest.strip_prefix('#').unwrap_or(rest);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let (number, rest) = if digits > 0 && digits <= 3 {
        (rest[..digits].parse().ok()?, &rest[digits..])
    } else {
        let word_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        let word = rest[..word_len].to_ascii_lowercase();
        let index = NUMBER_WORDS.iter().position(|w| *w == word)?;
        (index as u32 + 1, &rest[word_len..])
    };
    if rest.trim().is_empty() {
        return Some((number, ""));
    }
    delimited_rest(rest).map(|r| (number, r))
}

/// What follows a number: `.`/`)`/`:` not followed by a digit (`1.`, `1.)`, `1:`), or a
/// dash followed by whitespace (`1 -`, `1- `, `1 –`).
fn delimited_rest(rest: &str) -> Option<&str> {
    let trimmed = rest.trim_start();
    for dash in ['-', '–', '—'] {
        if let Some(after) = trimmed.strip_prefix(dash) {
            return (after.is_empty() || after.starts_with(char::is_whitespace))
                .then_some(after.trim_start());
        }
    }
    if trimmed.len() != rest.len() {
        return None; // "1 fox": a space but no delimiter
    }
    let after = rest
        .strip_prefix(".)")
        .or_else(|| rest.strip_prefix(['.', ')', ':']))?;
    after_delimiter(after)
}

fn after_delimiter(after: &str) -> Option<&str> {
    if after.starts_with(|c: char| c.is_ascii_digit()) {
        None
    } else {
        Some(after.trim_start())
    }
}

/// Surrounding quotes: a matched pair, or an unmatched double/typographic quote at
/// either end (an apostrophe is removed only as a matched pair: "foxes'").
fn strip_quotes(text: &str) -> &str {
    const PAIRS: [(char, char); 7] = [
        ('"', '"'),
        ('\u{201C}', '\u{201D}'),
        ('\u{201E}', '\u{201C}'),
        ('\u{00AB}', '\u{00BB}'),
        ('\'', '\''),
        ('\u{2018}', '\u{2019}'),
        ('\u{300C}', '\u{300D}'),
    ];
    for (open, close) in PAIRS {
        if text.chars().count() >= 2
            && let Some(inner) = text.strip_prefix(open).and_then(|t| t.strip_suffix(close))
        {
            return inner;
        }
    }
    let mut text = text;
    for (open, close) in PAIRS.iter().filter(|(o, _)| *o != '\'') {
        let count = |c: char| text.chars().filter(|&x| x == c).count();
        if text.starts_with(*open) && count(*open) + usize::from(open != close) * count(*close) == 1 {
            text = &text[open.len_utf8()..];
        }
        if text.ends_with(*close) && count(*close) + usize::from(open != close) * count(*open) == 1 {
            text = &text[..text.len() - close.len_utf8()];
        }
    }
    text
}

/// At most [`MAX_SCENE_CHARS`] characters, cut after the last sentence end in the second
/// half of the allowance, else at the last space.
fn truncate_scene(text: &str) -> String {
    let Some((cut, _)) = text.char_indices().nth(MAX_SCENE_CHARS) else {
        return text.to_string();
    };
    let head = &text[..cut];
    let sentence_end = head
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | '!' | '?'))
        .map(|(i, c)| i + c.len_utf8())
        .next_back()
        .filter(|&end| end >= head.len() / 2);
    let end = sentence_end.or_else(|| head.rfind(' ')).unwrap_or(head.len());
    head[..end].trim_end().to_string()
}

/// Openings of lines that talk about the list instead of being part of it.
const CHATTER_OPENINGS: [&str; 24] = [
    "sure",
    "certainly",
    "of course",
    "absolutely",
    "okay",
    "ok",
    "here is",
    "here are",
    "here's",
    "below is",
    "below are",
    "i hope",
    "hope you",
    "i've written",
    "i have written",
    "i'd be happy",
    "i would be happy",
    "let me know",
    "feel free",
    "enjoy",
    "note:",
    "title:",
    "this story",
    "these scenes",
];

/// A line of chatter: it opens with a known phrase (as whole words), ends with `:` (an
/// introduction such as "The scenes for your video:"), or is "The End".
fn is_chatter(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    if lower.ends_with(':') || lower.trim_end_matches(['.', '!']) == "the end" {
        return true;
    }
    CHATTER_OPENINGS.iter().any(|opening| {
        lower.starts_with(opening)
            && !lower[opening.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '\'')
    })
}

fn excerpt(text: &str) -> String {
    let text = collapse_whitespace(text);
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_scene_removes_numbering_markup_and_quotes() {
        let want = "The fox runs home.";
        let cases = [
            "The fox runs home.",
            "1. The fox runs home.",
            "1) The fox runs home.",
            "1: The fox runs home.",
            "1 - The fox runs home.",
            "1- The fox runs home.",
            "1 – The fox runs home.",
            "1.) The fox runs home.",
            "1.The fox runs home.",
            "(1) The fox runs home.",
            "#1 The fox runs home.",
            "**1.** The fox runs home.",
            "**1. The fox runs home.**",
            "Scene 1: The fox runs home.",
            "SCENE 1 - The fox runs home.",
            "Scene 1. The fox runs home.",
            "Scene One: The fox runs home.",
            "**Scene 1:** The fox runs home.",
            "## Scene 1: The fox runs home.",
            "- 1. The fox runs home.",
            "> 1. The fox runs home.",
            "• The fox runs home.",
            "\"The fox runs home.\"",
            "\u{201C}The fox runs home.\u{201D}",
            "'The fox runs home.'",
            "Scene 1: \"The fox runs home.\"",
            "\"The fox runs home.",
            "The fox runs home.\"",
            "**The fox** runs *home*.",
            "`The fox runs home.`",
            "  The   fox\truns\nhome. ",
            " 3. The fox runs home.",
        ];
        for raw in cases {
            assert_eq!(clean_scene(raw).as_deref(), Ok(want), "{raw:?}");
        }
    }

    #[test]
    fn clean_scene_leaves_text_that_only_looks_numbered() {
        let cases = [
            "3 friends walk home together.",
            "3.5 million birds fly south.",
            "10:30 pm, the fox wakes up.",
            "1-year-old fox cubs play outside.",
            "Scenery fills the wide valley.",
            "Acting quickly, the fox escapes.",
            "Partly cloudy skies hang overhead.",
            "The foxes' den lies empty.",
            "The fox's den lies \"empty\" now.",
        ];
        for raw in cases {
            assert_eq!(clean_scene(raw).as_deref(), Ok(raw), "{raw:?}");
        }
    }

    #[test]
    fn clean_scene_rejects_empty_and_short_scenes() {
        let cases = [
            ("", Rejection::Empty),
            ("   \n ", Rejection::Empty),
            ("**1.**", Rejection::Empty),
            ("Scene 3:", Rejection::Empty),
            ("\"\"", Rejection::Empty),
            ("1. Fox runs.", Rejection::TooShort { words: 2 }),
            ("Scene 2: The End", Rejection::TooShort { words: 2 }),
            ("- ... -", Rejection::Empty),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_scene(raw), Err(want), "{raw:?}");
        }
    }

    #[test]
    fn clean_scene_is_idempotent_and_caps_length() {
        let sentence = "The fox runs across the long field. ";
        let long = sentence.repeat(100);
        let cleaned = clean_scene(&long).unwrap();
        assert!(cleaned.chars().count() <= MAX_SCENE_CHARS);
        assert!(cleaned.ends_with("field."), "cut at a sentence end: {cleaned:?}");
        assert_eq!(clean_scene(&cleaned).unwrap(), cleaned);

        let no_stops = "word ".repeat(600);
        let cleaned = clean_scene(&no_stops).unwrap();
        assert!(cleaned.chars().count() <= MAX_SCENE_CHARS);
        assert!(cleaned.ends_with("word"));
    }

    #[test]
    fn split_list_handles_layouts_and_chatter() {
        let cases: [(&str, &[&str]); 10] = [
            (
                "1. The fox wakes up early.\n2. The fox runs to the river.\n3. The fox drinks cold water.",
                &[
                    "The fox wakes up early.",
                    "The fox runs to the river.",
                    "The fox drinks cold water.",
                ],
            ),
            (
                "Sure! Here are 2 scenes for your story:\n\n1. The fox wakes up early.\n\n2. The fox runs to the river.\n\nI hope you enjoy this story!",
                &["The fox wakes up early.", "The fox runs to the river."],
            ),
            (
                "1) The fox wakes up early.\n2) The fox runs to the river.\n\nLet me know if you want changes.",
                &["The fox wakes up early.", "The fox runs to the river."],
            ),
            (
                "**Scene 1: The Dawn**\nThe fox wakes up early.\n\n**Scene 2: The River**\nThe fox runs to the river.",
                &[
                    "The Dawn: The fox wakes up early.",
                    "The River: The fox runs to the river.",
                ],
            ),
            (
                "Scene 1:\nThe fox wakes up early.\nScene 2:\nThe fox runs to the river.",
                &["The fox wakes up early.", "The fox runs to the river."],
            ),
            (
                "1. The fox runs\nacross the wide field.\n2. The fox rests.",
                &["The fox runs across the wide field.", "The fox rests."],
            ),
            (
                "1. The fox wakes up early.\n2. The fox runs to the river.\n\nMoral: patience pays off.",
                &["The fox wakes up early.", "The fox runs to the river."],
            ),
            (
                "Here is your story:\nThe fox wakes up early.\n\nThe fox runs to the river.\nI hope you like it!",
                &["The fox wakes up early.", "The fox runs to the river."],
            ),
            (
                "- The fox wakes up early.\n- The fox runs to the river.",
                &["The fox wakes up early.", "The fox runs to the river."],
            ),
            ("Okay, here you go:\n\n", &[]),
        ];
        for (output, want) in cases {
            assert_eq!(split_list(output), want, "{output:?}");
        }
    }

    #[test]
    fn chatter_is_matched_on_whole_words() {
        for line in [
            "Sure! Here you go.",
            "Okay.",
            "Enjoy!",
            "The scenes:",
            "Here's the list",
            "The End.",
        ] {
            assert!(is_chatter(line), "{line:?}");
        }
        for line in [
            "Surely the fox knows the way.",
            "Enjoying the sun, the fox naps.",
            "Okapis graze by the river.",
            "Great walls rise over the hills.",
            "The end of the day comes slowly.",
        ] {
            assert!(!is_chatter(line), "{line:?}");
        }
    }

    #[test]
    fn validate_scene_set_wants_exactly_n_distinct_usable_scenes() {
        let ok: &[&str] = &[
            "1. The fox wakes up early.",
            "2. The fox runs to the river.",
            "3. A heron watches from the reeds.",
        ];
        assert_eq!(
            validate_scene_set(ok, 3).unwrap(),
            [
                "The fox wakes up early.",
                "The fox runs to the river.",
                "A heron watches from the reeds."
            ]
        );

        /// (candidates, n, usable, rejections by position)
        type Case<'a> = (&'a [&'a str], usize, usize, &'a [(usize, Rejection)]);
        let cases: [Case; 6] = [
            (&ok[..2], 3, 2, &[]),
            (ok, 2, 3, &[]),
            (
                &[
                    "The fox wakes up early.",
                    "THE FOX WAKES UP EARLY!",
                    "A heron watches.",
                ],
                3,
                2,
                &[(2, Rejection::Duplicate { of: 1 })],
            ),
            (
                &[
                    "The Great Wall of China is a wonder.",
                    "The Great Wall of China is a great wonder.",
                ],
                2,
                1,
                &[(2, Rejection::Duplicate { of: 1 })],
            ),
            (
                &["The fox wakes up early.", "Fox runs.", "", "A heron watches."],
                3,
                2,
                &[(2, Rejection::TooShort { words: 2 }), (3, Rejection::Empty)],
            ),
            (
                &["Too short", "The fox wakes up early.", "the fox wakes up early"],
                2,
                1,
                &[
                    (1, Rejection::TooShort { words: 2 }),
                    (3, Rejection::Duplicate { of: 2 }),
                ],
            ),
        ];
        for (candidates, n, usable, rejections) in cases {
            let err = validate_scene_set(candidates, n).unwrap_err();
            assert_eq!((err.wanted, err.usable), (n, usable), "{candidates:?}");
            let got: Vec<(usize, Rejection)> = err
                .rejected
                .iter()
                .map(|r| (r.position, r.rejection.clone()))
                .collect();
            assert_eq!(got, rejections, "{candidates:?}");
        }
    }

    #[test]
    fn a_rejected_duplicate_does_not_spoil_a_set_that_still_has_n() {
        let candidates = [
            "The fox wakes up early.",
            "The fox wakes up early.",
            "The fox runs to the river.",
        ];
        assert_eq!(validate_scene_set(&candidates, 2).unwrap().len(), 2);
    }

    #[test]
    fn the_error_says_why() {
        let err = validate_scene_set(
            &["The fox wakes up early.", "the fox wakes up early", "Fox runs."],
            3,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "wanted 3 usable scenes, got 1: candidate 2 (\"the fox wakes up early\") repeats candidate 1; \
             candidate 3 (\"Fox runs.\") has 2 word(s), fewer than 3"
        );
    }

    #[test]
    fn distinct_scenes_about_one_subject_are_not_duplicates() {
        assert_eq!(
            find_duplicate(
                "The Great Wall stretches over deserts.",
                &["The Great Wall stretches over mountains."]
            ),
            None
        );
        assert_eq!(
            find_duplicate("The fox runs home.", &["A heron", "the fox, runs home"]),
            Some(1)
        );
    }

    #[test]
    fn parse_story_parses_a_chatty_reply() {
        let reply = "Certainly! Here is a story in 4 scenes:\n\n\
                     **1.** \"The Great Wall winds over misty mountains.\"\n\
                     **2.** The Forbidden City glows at dawn.\n\n\
                     Scene 3 - Petra's rose-red walls rise from the desert.\n\
                     4) Machu Picchu sits above the clouds.\n\n\
                     I hope this helps!";
        assert_eq!(
            parse_story(reply, 4).unwrap(),
            [
                "The Great Wall winds over misty mountains.",
                "The Forbidden City glows at dawn.",
                "Petra's rose-red walls rise from the desert.",
                "Machu Picchu sits above the clouds.",
            ]
        );
        assert_eq!(parse_story(reply, 5).unwrap_err().usable, 4);
    }
}

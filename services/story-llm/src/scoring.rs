//! Choosing a scene among candidates.
//!
//! A 135M model writes a good sentence often, but not every time: it runs on, fuses words
//! into one long string, stops mid-sentence or repeats an earlier scene. So each scene is
//! decoded as several candidates in one batch (different seeds, the same prompt) and the
//! best is kept:
//!
//! 1. a candidate must be a well-formed scene ([`check_shape`]): 4-60 words, at most two
//!    sentences, no word longer than [`MAX_WORD_LETTERS`] letters, no phrase said twice
//!    ("lost in the desert, lost in the desert"), ending with `.`, `!` or `?`; and it must
//!    be new: not the title again, and sharing less than [`MAX_OVERLAP`] of its content
//!    words with any earlier scene;
//! 2. among those, the highest [`score`] wins: the model's own mean token log-probability
//!    (fluent text scores higher than broken text), plus a bonus for naming a content word
//!    of the title (keeps the story on its subject), minus the word overlap with the
//!    closest earlier scene (keeps the scenes apart).
//!
//! The weights are round numbers on the scale of a mean log-probability (about -1 to -3
//! nats per token for fluent SmolLM2 text): naming the title is worth a full nat, and
//! sharing a fifth of its words with an earlier scene (the overlap times
//! [`OVERLAP_PENALTY`]) costs nearly half of one.

use crate::parsing::{Rejection, clean_scene, find_duplicate};
use std::collections::HashSet;

pub const MIN_WORDS: usize = 4;
pub const MAX_WORDS: usize = 60;
pub const MAX_SENTENCES: usize = 2;
/// Longer "words" are fused strings ("theriverranthroughthevalley"), not English.
pub const MAX_WORD_LETTERS: usize = 18;
/// Added to the score of a candidate that names a content word of the title.
pub const TITLE_BONUS: f32 = 1.0;
/// Content-word overlap (Jaccard) with an earlier scene from which a candidate only
/// retells it.
pub const MAX_OVERLAP: f32 = 0.4;
/// Times the word-set overlap (Jaccard, 0-1) with the closest earlier scene.
pub const OVERLAP_PENALTY: f32 = 2.0;

/// One decoded candidate of a scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The raw output, stop string removed.
    pub raw: String,
    /// The sentence end the decoding stopped at (`"."`), appended back: stopping at
    /// `". "` cuts the period with the space.
    pub stopped_at_sentence_end: Option<char>,
    pub mean_logprob: f32,
}

/// The chosen candidate, cleaned.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub index: usize,
    pub text: String,
    pub score: f32,
}

/// The best usable candidate, or why each one was rejected (in candidate order).
pub fn choose(candidates: &[Candidate], title: &str, earlier: &[String]) -> Result<Choice, Vec<Rejection>> {
    let earlier_refs: Vec<&str> = earlier.iter().map(String::as_str).collect();
    let mut best: Option<Choice> = None;
    let mut rejections = Vec::new();
    for (index, candidate) in candidates.iter().enumerate() {
        let verdict = clean_scene(&candidate.completed()).and_then(|text| {
            check_shape(&text)?;
            let words = content_words(&text);
            if words.is_subset(&content_words(title)) || starts_with_title(&text, title) {
                return Err(Rejection::RepeatsTitle);
            }
            let retold = earlier
                .iter()
                .position(|e| jaccard(&words, &content_words(e)) >= MAX_OVERLAP);
            match find_duplicate(&text, &earlier_refs).or(retold) {
                Some(of) => Err(Rejection::Duplicate { of: of + 1 }),
                None => Ok(text),
            }
        });
        match verdict {
            Ok(text) => {
                let score = score(&text, candidate.mean_logprob, title, earlier);
                if best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(Choice { index, text, score });
                }
            }
            Err(rejection) => rejections.push(rejection),
        }
    }
    best.ok_or(rejections)
}

impl Candidate {
    /// The raw text with the sentence end it stopped at put back.
    pub fn completed(&self) -> String {
        match self.stopped_at_sentence_end {
            Some(end) => format!("{}{end}", self.raw.trim_end()),
            None => self.raw.clone(),
        }
    }
}

/// The shape of a well-formed scene (see the module docs); the first flaw found.
pub fn check_shape(text: &str) -> Result<(), Rejection> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    if words.len() < MIN_WORDS {
        return Err(Rejection::TooShort { words: words.len() });
    }
    if words.len() > MAX_WORDS {
        return Err(Rejection::TooLong { words: words.len() });
    }
    if let Some(letters) = words
        .iter()
        .flat_map(|w| w.split(['-', '/']))
        .map(|w| w.chars().filter(|c| c.is_alphabetic()).count())
        .find(|&n| n > MAX_WORD_LETTERS)
    {
        return Err(Rejection::FusedWord { letters });
    }
    if let Some(phrase) = repeated_phrase(&words) {
        return Err(Rejection::RepeatedPhrase { phrase });
    }
    if !ends_sentence(text) {
        return Err(Rejection::Unfinished);
    }
    let sentences = count_sentences(text);
    if sentences > MAX_SENTENCES {
        return Err(Rejection::TooManySentences { sentences });
    }
    Ok(())
}

/// Higher is better; see the module docs.
pub fn score(text: &str, mean_logprob: f32, title: &str, earlier: &[String]) -> f32 {
    let words = content_words(text);
    let names_title = !content_words(title).is_disjoint(&words);
    let overlap = earlier
        .iter()
        .map(|e| jaccard(&words, &content_words(e)))
        .fold(0.0f32, f32::max);
    mean_logprob + if names_title { TITLE_BONUS } else { 0.0 } - OVERLAP_PENALTY * overlap
}

/// "The Baker's Secret - a tale of ...": a line that opens with the title and a dash or
/// colon is a heading, not a scene. A leading article is ignored on both sides.
fn starts_with_title(text: &str, title: &str) -> bool {
    fn without_article(s: &str) -> String {
        let lower = s.trim().to_lowercase();
        for article in ["a ", "an ", "the "] {
            if let Some(rest) = lower.strip_prefix(article) {
                return rest.trim_start().to_string();
            }
        }
        lower
    }
    let (text, title) = (without_article(text), without_article(title));
    !title.is_empty()
        && text
            .strip_prefix(&title)
            .is_some_and(|rest| rest.trim_start().starts_with(['-', '\u{2013}', '\u{2014}', ':']))
}

/// Words said in the same order twice: a phrase of [`REPEATED_PHRASE_WORDS`] words that
/// occurs again in the scene.
pub const REPEATED_PHRASE_WORDS: usize = 3;

fn repeated_phrase(words: &[&str]) -> Option<String> {
    let bare: Vec<String> = words
        .iter()
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .collect();
    let mut seen = HashSet::new();
    bare.windows(REPEATED_PHRASE_WORDS)
        .map(|w| w.join(" "))
        .find(|phrase| !seen.insert(phrase.clone()))
}

fn ends_sentence(text: &str) -> bool {
    text.trim_end_matches(['"', '\'', ')', '\u{201D}', '\u{2019}'])
        .ends_with(['.', '!', '?'])
}

/// Sentence ends followed by a capital letter or the end of the text.
fn count_sentences(text: &str) -> usize {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    tokens
        .iter()
        .enumerate()
        .filter(|(i, token)| {
            ends_sentence(token)
                && tokens
                    .get(i + 1)
                    .and_then(|next| {
                        next.trim_start_matches(['"', '\'', '(', '\u{201C}'])
                            .chars()
                            .next()
                    })
                    .is_none_or(char::is_uppercase)
        })
        .count()
}

/// Lowercase words of 3+ letters, a plural "s" removed: what two texts share in meaning.
fn content_words(text: &str) -> HashSet<String> {
    const COMMON: [&str; 12] = [
        "the", "and", "with", "for", "from", "into", "its", "their", "his", "her", "was", "are",
    ];
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 3 && !COMMON.contains(&w.as_str()))
        .map(|w| match w.strip_suffix('s') {
            Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_string(),
            _ => w,
        })
        .collect()
}

fn jaccard(a: &HashSet<String>, b: &HashSet<String>) -> f32 {
    let union = a.union(b).count();
    if union == 0 {
        0.0
    } else {
        a.intersection(b).count() as f32 / union as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(raw: &str, end: Option<char>, mean_logprob: f32) -> Candidate {
        Candidate {
            raw: raw.into(),
            stopped_at_sentence_end: end,
            mean_logprob,
        }
    }

    #[test]
    fn the_shape_rules_name_the_flaw() {
        assert_eq!(check_shape("A fox wakes up early."), Ok(()));
        assert_eq!(check_shape("Two sentences here. And one more."), Ok(()));
        assert_eq!(
            check_shape("The fox wakes."),
            Err(Rejection::TooShort { words: 3 })
        );
        let long = format!("{}.", vec!["word"; 61].join(" "));
        assert_eq!(check_shape(&long), Err(Rejection::TooLong { words: 61 }));
        assert_eq!(
            check_shape("The fox crossedtheriverandthevalley at dawn."),
            Err(Rejection::FusedWord { letters: 27 })
        );
        assert_eq!(check_shape("The fox runs across the"), Err(Rejection::Unfinished));
        assert_eq!(
            check_shape("The fox runs. It stops. It sleeps again."),
            Err(Rejection::TooManySentences { sentences: 3 })
        );
        assert_eq!(
            check_shape("He is lost in the desert, lost in the desert."),
            Err(Rejection::RepeatedPhrase {
                phrase: "lost in the".into()
            })
        );
        // A period inside a sentence is not a sentence end; a closing quote is allowed.
        assert_eq!(
            check_shape("It costs 3.5 million, said St. john \"loudly.\""),
            Ok(())
        );
    }

    #[test]
    fn the_sentence_end_a_stop_cut_is_put_back() {
        let c = candidate(" The fox wakes at dawn", Some('.'), -1.0);
        assert_eq!(c.completed(), " The fox wakes at dawn.");
        let chosen = choose(&[c], "The Fox", &[]).unwrap();
        assert_eq!(chosen.text, "The fox wakes at dawn.");
    }

    #[test]
    fn the_most_fluent_usable_candidate_wins() {
        let candidates = [
            candidate("The fox runs across the", None, -0.5),
            candidate("A fox naps under an oak tree", Some('.'), -2.5),
            candidate("A fox drinks from the cold stream", Some('.'), -1.5),
        ];
        let chosen = choose(&candidates, "Morning in the Forest", &[]).unwrap();
        assert_eq!(chosen.index, 2);
        assert_eq!(chosen.text, "A fox drinks from the cold stream.");
    }

    #[test]
    fn title_words_and_new_content_tip_the_balance() {
        let earlier = vec!["A fox drinks from the cold stream.".to_string()];
        // A retelling of the earlier scene is refused, however fluent; a scene sharing a
        // little with it loses to an equally fluent new one.
        let candidates = [
            candidate("A fox drinks from the stream again", Some('.'), -0.5),
            candidate("A fox naps under the tall oak", Some('.'), -1.5),
            candidate("Birds sing in the tall pines above", Some('.'), -1.5),
        ];
        assert_eq!(choose(&candidates, "A Quiet Morning", &earlier).unwrap().index, 2);
        // Naming the title's subject outweighs a small fluency gap.
        let candidates = [
            candidate("Birds sing in the tall pines above", Some('.'), -1.5),
            candidate("The old lighthouse glows over the bay", Some('.'), -1.8),
        ];
        assert_eq!(choose(&candidates, "The Lighthouse", &[]).unwrap().index, 1);
    }

    #[test]
    fn the_title_alone_is_not_a_scene() {
        let candidates = [candidate("Midnight at the old museum", Some('.'), -0.2)];
        let rejections = choose(&candidates, "Midnight at the Old Museum", &[]).unwrap_err();
        assert_eq!(rejections, [Rejection::RepeatsTitle]);
        let heading = [candidate(
            "A Baker's Secret Recipe - a story of love and bread",
            Some('.'),
            -0.2,
        )];
        let rejections = choose(&heading, "The Baker's Secret Recipe", &[]).unwrap_err();
        assert_eq!(rejections, [Rejection::RepeatsTitle]);
        for scene in [
            "The baker's secret recipe calls for honey and rye",
            "At dawn the baker mixes flour and honey",
        ] {
            let candidates = [candidate(scene, Some('.'), -1.0)];
            assert!(
                choose(&candidates, "The Baker's Secret Recipe", &[]).is_ok(),
                "{scene}"
            );
        }
    }

    #[test]
    fn no_usable_candidate_gives_every_rejection() {
        let earlier = vec!["A fox drinks from the cold stream.".to_string()];
        let candidates = [
            candidate("Hi", Some('.'), -1.0),
            candidate("A fox drinks from the cold stream", Some('.'), -1.0),
            candidate("", None, -1.0),
        ];
        let rejections = choose(&candidates, "Title", &earlier).unwrap_err();
        assert_eq!(
            rejections,
            [
                Rejection::TooShort { words: 1 },
                Rejection::Duplicate { of: 1 },
                Rejection::Empty
            ]
        );
    }
}

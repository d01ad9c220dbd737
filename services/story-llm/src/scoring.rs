//! Choosing a scene among candidates.
//!
//! A 135M model writes a good sentence often, but not every time: it runs on, fuses words
//! into one long string, stops mid-sentence, drifts off the subject or repeats an earlier
//! scene. So each scene is decoded as several candidates in one batch (different seeds,
//! the same prompt) and the best is kept:
//!
//! 1. a candidate must be a well-formed scene ([`check_shape`]): 4-60 words, at most two
//!    sentences, no word longer than [`MAX_WORD_LETTERS`] letters, no phrase said twice
//!    ("lost in the desert, lost in the desert"), ending with `.`, `!` or `?`;
//! 2. and it must be new: not the title again, and not a retelling of an earlier scene.
//!    A retelling shares at least [`MAX_OVERLAP`] of its content words with an earlier
//!    scene, not counting the title's own words (every scene may name the subject), or
//!    at least [`MAX_SAME_WORDING`] of all its words ("The map was a map of the sea." /
//!    "The map was a map of the world." differ in one noun and say the same thing);
//! 3. among those, the highest [`score`] wins: the model's own mean token log-probability
//!    (fluent text scores higher than broken text), plus a bonus for naming a content word
//!    of the title and the scene's semantic relevance to the title when an encoder is
//!    configured (both keep the story on its subject: "It was a momentous occasion." is
//!    fluent but could be about anything), minus the word overlap with the closest
//!    earlier scene (keeps the scenes apart).
//!
//! The weights are round numbers on the scale of a mean log-probability (about -1 to -3
//! nats per token for fluent SmolLM2 text): naming the title is worth a full nat; the
//! relevance weight makes the usual gap between a sentence about the title and one about
//! something else (a MiniLM cosine of about 0.6 against 0.1) worth a nat as well; sharing a
//! fifth of its words with an earlier scene costs nearly half of one.
//!
//! With an encoder, a candidate whose relevance is below [`MIN_RELEVANCE`] is refused too,
//! so the scene gets another round: a sentence no closer to its title than sentences
//! about other subjects usually are is off the subject, however fluent.
//!
//! When no candidate of any round is usable, the caller may still take the best
//! well-formed candidate refused only as a retelling or as off the subject
//! ([`NoChoice::fallback`]): a story with one weak scene is more use to a viewer than no
//! story.

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
/// All-word overlap (Jaccard, every word counted) with an earlier scene from which a
/// candidate says the same thing in the same words: half the union shared means two thirds
/// of each of two equal sentences.
pub const MAX_SAME_WORDING: f32 = 0.5;
/// Times the content-word overlap (Jaccard, 0-1) with the closest earlier scene.
pub const OVERLAP_PENALTY: f32 = 2.0;
/// Times the cosine of the scene's and the title's sentence embeddings.
pub const RELEVANCE_WEIGHT: f32 = 2.0;
/// The relevance below which a candidate is off the subject: the 95th percentile of
/// all-MiniLM-L6-v2 cosines between scenes and titles they are not about (measured by
/// `make eval` on every run over its 45 titles: README, "Quality").
pub const MIN_RELEVANCE: f32 = 0.25;

/// One decoded candidate of a scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The raw output, stop string removed.
    pub raw: String,
    /// The sentence end the decoding stopped at (`"."`), appended back: stopping at
    /// `". "` cuts the period with the space.
    pub stopped_at_sentence_end: Option<char>,
    pub mean_logprob: f32,
    /// Cosine of the scene's and the title's sentence embeddings, when an encoder is
    /// configured.
    pub relevance: Option<f32>,
}

/// The chosen candidate, cleaned.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub index: usize,
    pub text: String,
    pub score: f32,
}

/// No usable candidate: why each was rejected (in candidate order), and the best
/// well-formed candidate that was refused only as a retelling of an earlier scene (not
/// as a near-copy of one: [`find_duplicate`]) or as off the subject.
#[derive(Debug, Clone, PartialEq)]
pub struct NoChoice {
    pub rejections: Vec<Rejection>,
    pub fallback: Option<Choice>,
}

/// The best usable candidate, or why there is none.
pub fn choose(candidates: &[Candidate], title: &str, earlier: &[String]) -> Result<Choice, NoChoice> {
    let earlier_refs: Vec<&str> = earlier.iter().map(String::as_str).collect();
    let title_words = content_words(title);
    let mut best: Option<Choice> = None;
    let mut fallback: Option<Choice> = None;
    let mut rejections = Vec::new();
    for (index, candidate) in candidates.iter().enumerate() {
        let text =
            match clean_scene(&candidate.completed()).and_then(|text| check_shape(&text).map(|()| text)) {
                Ok(text) => text,
                Err(rejection) => {
                    rejections.push(rejection);
                    continue;
                }
            };
        let words = content_words(&text);
        if words.is_subset(&title_words) || starts_with_title(&text, title) {
            rejections.push(Rejection::RepeatsTitle);
            continue;
        }
        let choice = Choice {
            index,
            score: score(&text, candidate, title, earlier),
            text,
        };
        let keep_better = |slot: &mut Option<Choice>, choice: Choice| {
            if slot.as_ref().is_none_or(|b| choice.score > b.score) {
                *slot = Some(choice);
            }
        };
        // A near-copy is never kept; a retelling or an off-topic scene may be, when
        // nothing else is left.
        if let Some(of) = find_duplicate(&choice.text, &earlier_refs) {
            rejections.push(Rejection::Duplicate { of: of + 1 });
        } else if let Some(of) = retold(&choice.text, title, earlier) {
            rejections.push(Rejection::Duplicate { of: of + 1 });
            keep_better(&mut fallback, choice);
        } else if candidate.relevance.is_some_and(|r| r < MIN_RELEVANCE) {
            rejections.push(Rejection::OffTopic);
            keep_better(&mut fallback, choice);
        } else {
            keep_better(&mut best, choice);
        }
    }
    best.ok_or(NoChoice { rejections, fallback })
}

/// The earlier scene (index) that `text` retells: see the module docs.
fn retold(text: &str, title: &str, earlier: &[String]) -> Option<usize> {
    let words = new_content_words(text, title);
    let all = all_words(text);
    earlier.iter().position(|e| {
        jaccard(&words, &new_content_words(e, title)) >= MAX_OVERLAP
            || jaccard(&all, &all_words(e)) >= MAX_SAME_WORDING
    })
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
pub fn score(text: &str, candidate: &Candidate, title: &str, earlier: &[String]) -> f32 {
    let names_title = !content_words(title).is_disjoint(&content_words(text));
    let words = new_content_words(text, title);
    let overlap = earlier
        .iter()
        .map(|e| jaccard(&words, &new_content_words(e, title)))
        .fold(0.0f32, f32::max);
    candidate.mean_logprob
        + if names_title { TITLE_BONUS } else { 0.0 }
        + RELEVANCE_WEIGHT * candidate.relevance.unwrap_or(0.0)
        - OVERLAP_PENALTY * overlap
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

/// Content words that are not the title's: what a scene adds to the subject.
fn new_content_words(text: &str, title: &str) -> HashSet<String> {
    &content_words(text) - &content_words(title)
}

/// Every lowercase word, punctuation stripped.
fn all_words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
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
            relevance: None,
        }
    }

    fn relevant(c: Candidate, relevance: f32) -> Candidate {
        Candidate {
            relevance: Some(relevance),
            ..c
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
        let rejections = choose(&candidates, "Midnight at the Old Museum", &[])
            .unwrap_err()
            .rejections;
        assert_eq!(rejections, [Rejection::RepeatsTitle]);
        let heading = [candidate(
            "A Baker's Secret Recipe - a story of love and bread",
            Some('.'),
            -0.2,
        )];
        let rejections = choose(&heading, "The Baker's Secret Recipe", &[])
            .unwrap_err()
            .rejections;
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
        let none = choose(&candidates, "Title", &earlier).unwrap_err();
        assert_eq!(
            none.rejections,
            [
                Rejection::TooShort { words: 1 },
                Rejection::Duplicate { of: 1 },
                Rejection::Empty
            ]
        );
        // A copy of an earlier scene is never what is left for a caller that must have one.
        assert_eq!(none.fallback, None);
    }

    #[test]
    fn the_title_words_do_not_make_scenes_retellings() {
        // Both scenes name the subject; what they add is different.
        let earlier = vec!["The Silk Road linked China to Rome.".to_string()];
        let candidates = [candidate(
            "Traders on the Silk Road sold silk in Rome",
            Some('.'),
            -1.5,
        )];
        assert!(choose(&candidates, "The Silk Road", &earlier).is_ok());
        // Under another title the same two scenes share three of seven content words.
        let none = choose(&candidates, "Trade in Asia", &earlier).unwrap_err();
        assert_eq!(none.rejections, [Rejection::Duplicate { of: 1 }]);
    }

    #[test]
    fn the_same_words_with_one_noun_changed_are_a_retelling() {
        let earlier = vec!["The map was a map of the sea.".to_string()];
        let candidates = [candidate("The map was a map of the world", Some('.'), -0.5)];
        let none = choose(&candidates, "The Treasure Map", &earlier).unwrap_err();
        assert_eq!(none.rejections, [Rejection::Duplicate { of: 1 }]);
        // Not a copy: it is what is left when a caller must have a scene.
        assert_eq!(
            none.fallback.map(|c| c.text),
            Some("The map was a map of the world.".into())
        );
        let candidates = [candidate(
            "Pirates buried the gold on a small island",
            Some('.'),
            -1.5,
        )];
        assert!(choose(&candidates, "The Treasure Map", &earlier).is_ok());
    }

    #[test]
    fn relevance_to_the_title_outweighs_a_fluency_gap() {
        // Neither names a title word; the fluent generic sentence loses to the one about
        // the subject when the encoder says so, and wins without it.
        let generic = candidate("It was a momentous occasion for everyone", Some('.'), -1.2);
        let on_topic = candidate("Rockets roared as the crew left the launch pad", Some('.'), -1.8);
        let title = "The First Moon Landing";
        let plain = [generic.clone(), on_topic.clone()];
        assert_eq!(choose(&plain, title, &[]).unwrap().index, 0);
        let scored = [relevant(generic.clone(), 0.3), relevant(on_topic.clone(), 0.65)];
        assert_eq!(choose(&scored, title, &[]).unwrap().index, 1);
        // Below the floor a candidate is refused, and kept only as the fallback.
        let off = [relevant(generic, 0.1)];
        let none = choose(&off, title, &[]).unwrap_err();
        assert_eq!(none.rejections, [Rejection::OffTopic]);
        assert_eq!(none.fallback.map(|c| c.index), Some(0));
        let unscored = [on_topic];
        assert!(choose(&unscored, title, &[]).is_ok(), "no encoder, no floor");
    }
}

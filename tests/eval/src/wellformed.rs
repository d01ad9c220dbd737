//! Is a scene a well-formed piece of narration? One or two complete sentences of 4-60
//! words, no word over 18 letters, at least 85% dictionary words among the lowercase
//! words, ending with sentence punctuation. Written independently of story-llm's own
//! scorer, so the evaluation does not grade the service by its own rules.

use std::{collections::HashSet, path::Path};

pub const MIN_WORDS: usize = 4;
pub const MAX_WORDS: usize = 60;
pub const MAX_SENTENCES: usize = 2;
pub const MAX_WORD_LETTERS: usize = 18;
pub const MIN_DICTIONARY_SHARE: f64 = 0.85;

/// Lowercase English words, one per line (Debian's `wamerican`: /usr/share/dict/words).
pub struct Dictionary(HashSet<String>);

impl Dictionary {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!("dictionary {}: {e} (install Debian's wamerican)", path.display())
        })?;
        let words: HashSet<String> = text
            .lines()
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        anyhow::ensure!(
            words.len() > 10_000,
            "dictionary {}: only {} words",
            path.display(),
            words.len()
        );
        Ok(Self(words))
    }

    /// A word, its possessive or a hyphenated compound of known words.
    pub fn knows(&self, word: &str) -> bool {
        let word = word.strip_suffix("'s").unwrap_or(word);
        self.0.contains(word) || (word.contains('-') && word.split('-').all(|part| self.0.contains(part)))
    }
}

/// Why a scene is not well-formed; empty when it is.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Verdict {
    pub words: usize,
    pub sentences: usize,
    pub longest_word: usize,
    pub dictionary_share: f64,
    pub problems: Vec<String>,
}

impl Verdict {
    pub fn well_formed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Judges one scene text.
pub fn judge(text: &str, dictionary: &Dictionary) -> Verdict {
    let text = text.trim();
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let words: Vec<String> = tokens
        .iter()
        .map(|t| bare(t))
        .filter(|w| w.chars().any(char::is_alphabetic))
        .collect();
    let longest_word = words
        .iter()
        .flat_map(|w| w.split('-'))
        .map(|w| w.chars().filter(|c| c.is_alphabetic()).count())
        .max()
        .unwrap_or(0);
    let lowercase: Vec<&String> = words
        .iter()
        .filter(|w| {
            w.chars().all(|c| !c.is_uppercase())
                && w.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\'')
        })
        .collect();
    let known = lowercase.iter().filter(|w| dictionary.knows(w)).count();
    let dictionary_share = if lowercase.is_empty() {
        0.0
    } else {
        known as f64 / lowercase.len() as f64
    };
    let sentences = count_sentences(&tokens);
    let mut problems = Vec::new();
    if !(MIN_WORDS..=MAX_WORDS).contains(&words.len()) {
        problems.push(format!("{} words, not {MIN_WORDS}-{MAX_WORDS}", words.len()));
    }
    if sentences == 0 || sentences > MAX_SENTENCES {
        problems.push(format!("{sentences} sentences, not 1-{MAX_SENTENCES}"));
    }
    if longest_word > MAX_WORD_LETTERS {
        problems.push(format!("a word of {longest_word} letters"));
    }
    if dictionary_share < MIN_DICTIONARY_SHARE {
        problems.push(format!("{:.0}% dictionary words", dictionary_share * 100.0));
    }
    if !ends_sentence(text) {
        problems.push("does not end with . ! or ?".into());
    }
    Verdict {
        words: words.len(),
        sentences,
        longest_word,
        dictionary_share,
        problems,
    }
}

/// A token without the punctuation around it, lowercase letters kept as they are.
fn bare(token: &str) -> String {
    token
        .trim_matches(|c: char| !c.is_alphanumeric())
        .replace(['\u{2019}'], "'")
}

/// Sentence ends: a token ending in . ! or ? (closing quotes aside) that is the last one
/// or is followed by a capitalised token. "Mr." before a name counts: rare in narration.
fn count_sentences(tokens: &[&str]) -> usize {
    let mut count = 0;
    for (i, token) in tokens.iter().enumerate() {
        if !ends_sentence(token) {
            continue;
        }
        let next_starts = tokens
            .get(i + 1)
            .and_then(|t| t.trim_start_matches(['"', '\'', '(', '\u{201c}']).chars().next());
        if next_starts.is_none_or(char::is_uppercase) {
            count += 1;
        }
    }
    count
}

fn ends_sentence(text: &str) -> bool {
    text.trim_end_matches(['"', '\'', ')', '\u{201d}'])
        .ends_with(['.', '!', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dictionary() -> Dictionary {
        let words = "the a fox runs across frozen river at dawn and stops to listen wind";
        Dictionary(words.split(' ').map(String::from).collect())
    }

    #[test]
    fn a_plain_sentence_is_well_formed() {
        let v = judge("The fox runs across the frozen river at dawn.", &dictionary());
        assert!(v.well_formed(), "{v:?}");
        assert_eq!((v.words, v.sentences), (9, 1));
    }

    #[test]
    fn each_rule_names_its_problem() {
        let d = dictionary();
        assert!(judge("The fox runs.", &d).problems[0].contains("3 words"));
        let three = "The fox runs at dawn. The fox stops. The wind runs across the river.";
        assert!(
            judge(three, &d)
                .problems
                .iter()
                .any(|p| p.contains("3 sentences"))
        );
        let fused = "The fox runsacrossthefrozenriveratdawn and stops.";
        assert!(judge(fused, &d).problems.iter().any(|p| p.contains("letters")));
        let unknown = "The fox zzq qqv xxw at dawn.";
        assert!(
            judge(unknown, &d)
                .problems
                .iter()
                .any(|p| p.contains("dictionary"))
        );
        assert!(
            judge("The fox runs across the river", &d)
                .problems
                .iter()
                .any(|p| p.contains("end"))
        );
    }
}

//! Splits text into sentences, each at most a given length: voices are run sentence by
//! sentence, which bounds their memory and lets a stream start after the first sentence.

/// Abbreviations whose period does not end a sentence (lowercase, without the period).
const NON_FINAL: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "mt", "no", "vs", "etc", "e.g", "i.e", "approx",
    "fig", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "capt",
    "gen", "lt", "col", "sgt", "rev", "ave",
];

/// Sentences of `text` (whitespace collapsed), none longer than `max_chars` characters:
/// a longer sentence is cut at its last clause break (`,;:`) or space before the limit.
pub fn split_sentences(text: &str, max_chars: usize) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut sentences = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        current.push(word);
        let next_starts_sentence = words
            .get(i + 1)
            .and_then(|w| w.trim_start_matches(['"', '\'', '(', '“', '‘']).chars().next())
            .is_none_or(|c| c.is_uppercase() || c.is_numeric());
        if ends_sentence(word) && next_starts_sentence {
            sentences.push(current.join(" "));
            current.clear();
        }
    }
    if !current.is_empty() {
        sentences.push(current.join(" "));
    }
    sentences
        .into_iter()
        .flat_map(|s| cut_long(s, max_chars))
        .collect()
}

fn ends_sentence(word: &str) -> bool {
    let core = word.trim_end_matches(['"', '\'', ')', '”', '’']);
    if core.ends_with(['!', '?', '…']) {
        return true;
    }
    if let Some(stem) = core.strip_suffix('.') {
        let stem = stem.trim_start_matches(['"', '\'', '(']).to_lowercase();
        // "U.S." and single initials ("J.") are abbreviations too.
        let initial = stem.chars().count() == 1 && stem.chars().all(char::is_alphabetic);
        return !(NON_FINAL.contains(&stem.as_str()) || initial);
    }
    false
}

fn cut_long(sentence: String, max_chars: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = sentence.as_str();
    while rest.chars().count() > max_chars {
        let limit = rest.char_indices().nth(max_chars).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..limit];
        let cut = head
            .rfind([',', ';', ':'])
            .map(|i| i + 1)
            .filter(|&i| i > limit / 3)
            .or_else(|| head.rfind(' '))
            .filter(|&i| i > 0)
            .unwrap_or(limit);
        parts.push(rest[..cut].trim().to_string());
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        parts.push(rest.to_string());
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_sentence_ends_but_not_abbreviations() {
        assert_eq!(
            split_sentences(
                "Mr. Fox ran home.  It was 5 p.m. when he slept! Did he dream? Yes.",
                400
            ),
            [
                "Mr. Fox ran home.",
                "It was 5 p.m. when he slept!",
                "Did he dream?",
                "Yes."
            ]
        );
        assert_eq!(split_sentences("No end here", 400), ["No end here"]);
        assert_eq!(
            split_sentences("J. R. Smith came. Then rain.", 400),
            ["J. R. Smith came.", "Then rain."]
        );
        assert!(split_sentences("   ", 400).is_empty());
    }

    #[test]
    fn cuts_long_sentences_at_clauses_then_spaces() {
        let parts = split_sentences("one two three, four five six seven eight nine ten", 20);
        assert_eq!(parts, ["one two three,", "four five six seven", "eight nine ten"]);
        assert!(parts.iter().all(|p| p.chars().count() <= 20));
        let word = "x".repeat(45);
        let parts = split_sentences(&word, 20);
        assert_eq!(parts.concat(), word);
        assert!(parts.iter().all(|p| p.chars().count() <= 20));
    }
}

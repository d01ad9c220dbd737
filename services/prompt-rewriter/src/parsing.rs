//! Model output -> typed fields: one description sentence, lists of short lowercase
//! phrases, colour names, keywords. A small model's lines carry numbering, bullets,
//! quotes, a repeated label or a trailing explanation; they are cleaned here, and what
//! cannot be used is dropped (an attribute list may be empty; a description or a keyword
//! list may not: the caller regenerates).
//!
//! Grounding: SmolLM2-135M drifts (asked for the things in a Great Wall scene it adds "the
//! Tower of Babel"). A description and the visual elements must share a content word with
//! the scene (or the title), keywords with their prompt; what does not is dropped. Colours
//! the scene itself names come first.

/// Longest attribute phrase and keyword, in characters (prompt_rewriter.proto).
pub const PHRASE_MAX_CHARS: usize = 64;
/// Most entries of an attribute list.
pub const LIST_MAX_ENTRIES: usize = 16;
/// Longest attribute phrase, in words: longer ones are sentences, not attributes.
const PHRASE_MAX_WORDS: usize = 4;
/// Longest keyword, in words.
const KEYWORD_MAX_WORDS: usize = 3;
/// A description shorter than this many words says nothing.
const DESCRIPTION_MIN_WORDS: usize = 3;
/// Longest description kept, in characters (the CLIP budget cuts it further).
const DESCRIPTION_MAX_CHARS: usize = 400;

/// Labels a model may repeat at the start of its answer.
const LABELS: [&str; 8] = [
    "description:",
    "visual elements:",
    "colours:",
    "colors:",
    "shapes:",
    "categories:",
    "category:",
    "keywords:",
];

/// Words that carry nothing for search or as an attribute on their own.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "in", "on", "at", "to", "for", "with", "by", "from", "into", "over",
    "under", "is", "are", "was", "were", "be", "been", "its", "it", "this", "that", "these", "those", "as",
    "their", "his", "her", "there", "here", "very", "some", "etc", "none", "n/a", "other", "scene", "image",
    "picture", "video", "clip", "story", "shows", "showing", "which", "who", "while", "through", "about",
];

/// Colour words: an entry of a colour scheme must contain one.
const COLOURS: &[&str] = &[
    "red",
    "green",
    "blue",
    "yellow",
    "orange",
    "purple",
    "violet",
    "pink",
    "brown",
    "black",
    "white",
    "grey",
    "gray",
    "gold",
    "golden",
    "silver",
    "bronze",
    "copper",
    "beige",
    "tan",
    "cream",
    "ivory",
    "navy",
    "teal",
    "turquoise",
    "cyan",
    "aqua",
    "azure",
    "indigo",
    "magenta",
    "crimson",
    "scarlet",
    "maroon",
    "burgundy",
    "olive",
    "lime",
    "emerald",
    "jade",
    "mint",
    "sage",
    "khaki",
    "ochre",
    "amber",
    "rust",
    "coral",
    "salmon",
    "peach",
    "lavender",
    "lilac",
    "mauve",
    "plum",
    "charcoal",
    "slate",
    "ash",
    "sand",
    "sandy",
    "earth",
    "earthy",
    "terracotta",
    "sepia",
    "umber",
    "sienna",
    "vermilion",
    "cerulean",
    "cobalt",
    "sapphire",
    "ruby",
    "pastel",
    "neon",
    "monochrome",
    "rosy",
    "rose",
    "blush",
    "pearl",
    "snow",
    "jet",
    "ebony",
    "chestnut",
    "honey",
    "mustard",
    "lemon",
    "cherry",
    "wine",
    "sky",
    "forest",
    "sea",
    "ocean",
    "stone",
    "dusky",
    "dusk",
    "bluish",
    "greenish",
    "reddish",
    "yellowish",
    "greyish",
    "grayish",
    "pinkish",
    "purplish",
    "brownish",
];

/// Most colours a scheme keeps.
const COLOURS_MAX: usize = 4;
/// Most categories kept.
const CATEGORIES_MAX: usize = 4;

/// The first line of an output, label and wrapping quotes removed, whitespace collapsed.
fn first_line(text: &str) -> String {
    let line = text.trim_start().lines().next().unwrap_or("");
    // A special token the decoder kept (`<|im_end|>`) ends the answer.
    let line = line.split("<|").next().unwrap_or("").trim();
    let mut line = line.to_string();
    for label in LABELS {
        if line.to_lowercase().starts_with(label) {
            line = line[label.len()..].trim().to_string();
        }
    }
    let line = line.trim_matches(|c: char| c == '"' || c == '\'' || c == '`' || c == '*');
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The content words of a text, lowercased, with a plural `s` dropped, for grounding.
pub fn grounding_words(text: &str) -> Vec<String> {
    content_words(text).iter().map(|w| stem(w).to_string()).collect()
}

fn stem(word: &str) -> &str {
    match word.strip_suffix('s') {
        Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem,
        _ => word,
    }
}

/// Whether `phrase` shares a content word with `context` (from [`grounding_words`]).
pub fn is_grounded(phrase: &str, context: &[String]) -> bool {
    content_words(phrase)
        .iter()
        .any(|w| context.iter().any(|c| c == stem(w)))
}

/// The first sentence of a description that is grounded in `context`, or `None` when the
/// output says nothing usable.
pub fn parse_description(text: &str, context: &[String]) -> Option<String> {
    let line = first_line(text);
    // The first sentence: a small model's second one wanders off.
    let end = line
        .char_indices()
        .find(|&(i, c)| matches!(c, '.' | '!' | '?') && line[i + 1..].starts_with(' '))
        .map_or(line.len(), |(i, _)| i);
    let line = &line[..end];
    let words = line
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphabetic))
        .count();
    if words < DESCRIPTION_MIN_WORDS || !is_grounded(line, context) {
        return None;
    }
    let mut line: String = line.chars().take(DESCRIPTION_MAX_CHARS).collect();
    // A description ends without its full stop: it is the head of a comma-separated prompt.
    while line.ends_with(['.', ',', ';', ':', '!']) {
        line.pop();
    }
    Some(line)
}

/// A comma-separated list of short phrases: lowercase, de-numbered, de-duplicated, each
/// 1-64 characters and at most `max_words` words, at most 16 entries.
fn parse_phrases(text: &str, max_words: usize) -> Vec<String> {
    let line = first_line(text);
    let mut out: Vec<String> = Vec::new();
    for raw in line.split([',', ';', '|', '•', '/', '&']) {
        let Some(phrase) = clean_phrase(raw) else { continue };
        let words = phrase.split(' ').count();
        let content = phrase.split(' ').any(|w| !STOPWORDS.contains(&w));
        if words > max_words || phrase.chars().count() > PHRASE_MAX_CHARS || !content {
            continue;
        }
        if !out.contains(&phrase) {
            out.push(phrase);
        }
        if out.len() == LIST_MAX_ENTRIES {
            break;
        }
    }
    out
}

fn clean_phrase(raw: &str) -> Option<String> {
    let lowered = raw.to_lowercase();
    // "(rome)", "- the roman amphitheater": asides.
    let lowered = lowered.split(['(', ':']).next().unwrap_or("");
    let lowered = lowered.split(" - ").next().unwrap_or("");
    let mut phrase = lowered
        .trim()
        .trim_start_matches(|c: char| c.is_ascii_digit() || matches!(c, '.' | ')' | '-' | '*' | '#'))
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_string();
    // "a) landmarks", "b. architecture": lettered enumerations.
    let bytes = phrase.as_bytes();
    if bytes.len() > 2 && bytes[0].is_ascii_alphabetic() && matches!(bytes[1], b')' | b'.') {
        phrase = phrase[2..].trim_start_matches(['.', ')', ' ']).to_string();
    }
    for article in ["and ", "a ", "an ", "the "] {
        if let Some(rest) = phrase.strip_prefix(article) {
            phrase = rest.to_string();
        }
    }
    let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
    let letters = phrase.chars().filter(|c| c.is_alphabetic()).count();
    // English prompts: Latin letters only (a model's stray CJK or Cyrillic line is noise),
    // no digits (list numbers, hex codes), and more than a stray letter or two.
    let latin = phrase.chars().all(|c| !c.is_alphabetic() || (c as u32) <= 0x24F);
    let digits = phrase.chars().any(|c| c.is_ascii_digit());
    (letters >= 3 && latin && !digits).then_some(phrase)
}

/// Shapes: short phrases.
pub fn parse_attribute_list(text: &str) -> Vec<String> {
    parse_phrases(text, PHRASE_MAX_WORDS)
}

/// Visual elements: short phrases grounded in the scene or title (`context`).
pub fn parse_visual_elements(text: &str, context: &[String]) -> Vec<String> {
    parse_phrases(text, PHRASE_MAX_WORDS)
        .into_iter()
        .filter(|p| is_grounded(p, context))
        .collect()
}

/// Categories: short phrases, "landscape and architecture" split in two, at most 4.
pub fn parse_categories(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for phrase in parse_phrases(text, PHRASE_MAX_WORDS) {
        for part in phrase.split(" and ") {
            let part = part.trim().to_string();
            if part.chars().filter(|c| c.is_alphabetic()).count() >= 3 && !out.contains(&part) {
                out.push(part);
            }
        }
    }
    out.truncate(CATEGORIES_MAX);
    out
}

/// Whether a phrase names a colour ("slate blue", "golden", "dark green").
pub fn is_colour_phrase(phrase: &str) -> bool {
    phrase.split([' ', '-']).any(|word| COLOURS.contains(&word))
}

/// A colour scheme: the listed phrases that name a colour, those the scene (`scene`) names
/// first, at most 4.
pub fn parse_colour_scheme(text: &str, scene: &str) -> Vec<String> {
    let scene_words = content_words(scene);
    let (mut named, others): (Vec<String>, Vec<String>) = parse_phrases(text, PHRASE_MAX_WORDS)
        .into_iter()
        .filter(|p| is_colour_phrase(p))
        .partition(|p| p.split(' ').any(|w| scene_words.iter().any(|s| s == w)));
    named.extend(others);
    named.truncate(COLOURS_MAX);
    named
}

/// Keywords: short lowercase phrases grounded in the prompt (`context`), at most `max`.
pub fn parse_keywords(text: &str, context: &[String], max: usize) -> Vec<String> {
    let mut keywords: Vec<String> = parse_phrases(text, KEYWORD_MAX_WORDS)
        .into_iter()
        .filter(|k| is_grounded(k, context))
        .collect();
    keywords.truncate(max);
    keywords
}

/// The content words of a prompt, in order, de-duplicated: search terms grounded in the
/// prompt itself, used to complete a short keyword list.
pub fn content_words(prompt: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in prompt
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '-')
    {
        let word = word.trim_matches('-');
        if word.chars().count() < 3 || STOPWORDS.contains(&word) || !word.chars().any(char::is_alphabetic) {
            continue;
        }
        if !out.iter().any(|w| w == word) {
            out.push(word.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall() -> Vec<String> {
        grounding_words("The Great Wall of China winds over misty hills. Eight Wonders")
    }

    #[test]
    fn descriptions_keep_their_first_grounded_sentence() {
        assert_eq!(
            parse_description(
                " \"The Great Wall winds over misty green hills at dawn.\"\nMore text",
                &wall()
            )
            .unwrap(),
            "The Great Wall winds over misty green hills at dawn"
        );
        assert_eq!(
            parse_description(
                "Description: A long wall on the hills. It was built by many.<|im_end|>",
                &wall()
            )
            .unwrap(),
            "A long wall on the hills"
        );
        // Nothing of the scene: drifted.
        assert_eq!(
            parse_description(" A painting by Leonardo da Vinci.", &wall()),
            None
        );
        assert_eq!(parse_description(" ok.", &wall()), None);
        assert_eq!(parse_description("\n\n", &wall()), None);
    }

    #[test]
    fn visual_elements_must_be_in_the_scene() {
        assert_eq!(
            parse_visual_elements(
                " The Great Wall of China; The Tower of Babel; 2. the hills (misty)",
                &wall()
            ),
            ["great wall of china", "hills"]
        );
    }

    #[test]
    fn categories_split_pairs_and_drop_noise() {
        assert_eq!(
            parse_categories(" Landscape and Architecture, a). landmarks, d, e, 1876, 年上浦西京"),
            ["landscape", "architecture", "landmarks"]
        );
    }

    #[test]
    fn lists_are_cleaned_and_deduplicated() {
        assert_eq!(
            parse_attribute_list(" 1. The Great Wall, mountains; Mist, mountains, and a watchtower, the"),
            ["great wall", "mountains", "mist", "watchtower"]
        );
        assert_eq!(
            parse_attribute_list(" arches (round) - many, blue or green #8713"),
            ["arches"]
        );
        // Sentences are not attributes.
        assert_eq!(
            parse_attribute_list(" a long wall that goes over the hills, towers"),
            ["towers"]
        );
        let many: Vec<String> = (0..30u8)
            .map(|i| format!("{}{}x", char::from(b'a' + i / 26), char::from(b'a' + i % 26)))
            .collect();
        assert_eq!(parse_attribute_list(&many.join(", ")).len(), LIST_MAX_ENTRIES);
    }

    #[test]
    fn colour_schemes_keep_only_colours_scene_colours_first() {
        assert_eq!(
            parse_colour_scheme(
                " Ochre, slate blue, happy, dark green, bluish, stones",
                "A dark green valley"
            ),
            ["dark green", "ochre", "slate blue", "bluish"]
        );
        assert_eq!(
            parse_colour_scheme(" red, white, blue, green, black, gold", "").len(),
            4
        );
        assert!(is_colour_phrase("golden"));
        assert!(!is_colour_phrase("mountain"));
    }

    #[test]
    fn keywords_are_short_grounded_and_bounded() {
        let prompt = grounding_words("The Great Wall of China at sunrise over hills");
        assert_eq!(
            parse_keywords(
                " great wall, china, ancient fortification wall on hills, sunrise, paris",
                &prompt,
                8
            ),
            ["great wall", "china", "sunrise"]
        );
        assert_eq!(
            parse_keywords(" walls, hills, china", &prompt, 2),
            ["walls", "hills"]
        );
        assert!(parse_keywords(" the, of, and", &prompt, 8).is_empty());
    }

    #[test]
    fn content_words_skip_stopwords_and_repeats() {
        assert_eq!(
            content_words("The Great Wall of China, the wall at dawn, 4k"),
            ["great", "wall", "china", "dawn"]
        );
    }
}

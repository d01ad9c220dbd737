//! Composing the diffusion prompt S^P from a scene's fields within a CLIP token budget.
//!
//! The prompt is a comma-separated list in priority order: the description, the style,
//! the visual elements, the colour scheme (`"ochre and slate blue tones"`), the shapes,
//! the first category. Pieces are added greedily while the whole stays within the budget
//! (BOS and EOS counted); a piece that does not fit is skipped and a smaller later one
//! may still fit. A description that alone exceeds the budget is cut word by word, so
//! the prompt is never empty and never truncated by the text encoder.

use crate::service::SceneAttributes;
use storyreel_nn::clip_text::ClipTokenizer;

/// Counts a text's CLIP tokens, BOS and EOS included.
pub trait TokenCounter: Send + Sync {
    fn count(&self, text: &str) -> Result<usize, String>;
}

impl TokenCounter for ClipTokenizer {
    fn count(&self, text: &str) -> Result<usize, String> {
        self.count_tokens(text).map_err(|e| e.to_string())
    }
}

/// Colours named in the prompt's colour piece.
const PROMPT_COLOURS: usize = 3;
/// Shapes named in the prompt.
const PROMPT_SHAPES: usize = 2;

/// A text and its token count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub text: String,
    pub tokens: usize,
}

/// S^P from the description and attributes, within `budget` tokens.
pub fn compose_prompt(
    description: &str,
    style: Option<&str>,
    attributes: &SceneAttributes,
    budget: usize,
    counter: &dyn TokenCounter,
) -> Result<Counted, String> {
    let head = fit_words(description, budget, counter)?;
    let mut pieces: Vec<String> = Vec::new();
    pieces.extend(style.map(str::to_string));
    pieces.extend(attributes.visual_elements.iter().cloned());
    if !attributes.colour_scheme.is_empty() {
        let colours: Vec<&str> = attributes
            .colour_scheme
            .iter()
            .take(PROMPT_COLOURS)
            .map(String::as_str)
            .collect();
        pieces.push(format!("{} tones", join_and(&colours)));
    }
    pieces.extend(attributes.shapes.iter().take(PROMPT_SHAPES).cloned());
    pieces.extend(attributes.categories.first().cloned());

    let mut prompt = head;
    let described = words_of(&prompt.text);
    for piece in pieces {
        // An element the description already names adds nothing.
        if described.contains(&words_of(&piece)) {
            continue;
        }
        let candidate = format!("{}, {piece}", prompt.text);
        let tokens = counter.count(&candidate)?;
        if tokens <= budget {
            prompt = Counted {
                text: candidate,
                tokens,
            };
        }
    }
    Ok(prompt)
}

/// `text` cut at comma-separated items, then at words, to fit `budget` tokens (the
/// negative prompt).
pub fn fit_list(text: &str, budget: usize, counter: &dyn TokenCounter) -> Result<Counted, String> {
    let tokens = counter.count(text)?;
    if tokens <= budget {
        return Ok(Counted {
            text: text.to_string(),
            tokens,
        });
    }
    let items: Vec<&str> = text.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let first = items.first().copied().unwrap_or_default();
    let mut fitted = fit_words(first, budget, counter)?;
    for item in &items[1..] {
        let candidate = format!("{}, {item}", fitted.text);
        let tokens = counter.count(&candidate)?;
        if tokens > budget {
            break;
        }
        fitted = Counted {
            text: candidate,
            tokens,
        };
    }
    Ok(fitted)
}

/// The longest word prefix of `text` within `budget` tokens (binary search on words).
fn fit_words(text: &str, budget: usize, counter: &dyn TokenCounter) -> Result<Counted, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let count_prefix = |n: usize| -> Result<Counted, String> {
        let text = words[..n].join(" ");
        let tokens = counter.count(&text)?;
        Ok(Counted { text, tokens })
    };
    let whole = count_prefix(words.len())?;
    if whole.tokens <= budget {
        return Ok(whole);
    }
    // Invariant: prefix `lo` fits, prefix `hi` does not.
    let (mut lo, mut hi) = (0, words.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if count_prefix(mid)?.tokens <= budget {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    count_prefix(lo)
}

/// Lowercase words between spaces (` great wall `), for whole-word containment.
fn words_of(text: &str) -> String {
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    format!(" {} ", words.join(" "))
}

/// "a", "a and b", "a, b and c".
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiny CLIP tokenizer transformers 5.23 saved (scripts/fixtures/encoders.py): a
    /// real CLIP BPE tokenizer.json, with a small vocabulary.
    fn tokenizer() -> ClipTokenizer {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/nn/tests/fixtures/clip_text/tokenizer.json"
        );
        ClipTokenizer::from_file(path).unwrap()
    }

    fn attributes() -> SceneAttributes {
        SceneAttributes {
            visual_elements: vec!["great wall".into(), "mountains".into(), "mist".into()],
            colour_scheme: vec!["ochre".into(), "slate blue".into(), "green".into(), "grey".into()],
            shapes: vec!["long winding line".into(), "towers".into(), "arches".into()],
            categories: vec!["architecture".into(), "landscape".into()],
        }
    }

    #[test]
    fn a_roomy_budget_takes_every_piece_in_order() {
        let tok = tokenizer();
        let prompt = compose_prompt(
            "The Great Wall winds over misty hills at dawn",
            Some("watercolour"),
            &attributes(),
            1000,
            &tok,
        )
        .unwrap();
        assert_eq!(
            prompt.text,
            "The Great Wall winds over misty hills at dawn, watercolour, mountains, mist, \
             ochre, slate blue and green tones, long winding line, towers, architecture"
        );
        assert_eq!(prompt.tokens, tok.count_tokens(&prompt.text).unwrap());
    }

    #[test]
    fn every_budget_is_kept_and_the_description_comes_first() {
        let tok = tokenizer();
        let description = "The Great Wall winds over misty hills at dawn";
        for budget in 8..=77 {
            let prompt = compose_prompt(description, None, &attributes(), budget, &tok).unwrap();
            assert!(prompt.tokens <= budget, "budget {budget}: {prompt:?}");
            assert_eq!(prompt.tokens, tok.count_tokens(&prompt.text).unwrap());
            assert!(!prompt.text.is_empty());
            let first_word = prompt.text.split(' ').next().unwrap();
            assert_eq!(first_word, "The", "budget {budget}");
        }
    }

    #[test]
    fn lists_are_cut_at_items_then_words() {
        let tok = tokenizer();
        let negative = "blurry, low quality, distorted, watermark, text";
        let whole = fit_list(negative, 77, &tok).unwrap();
        assert_eq!(whole.text, negative);
        let cut = fit_list(negative, whole.tokens - 1, &tok).unwrap();
        assert!(negative.starts_with(&cut.text) && cut.text.len() < negative.len());
        assert!(!cut.text.ends_with(','));
        assert!(cut.tokens < whole.tokens);
    }

    #[test]
    fn joins_read_naturally() {
        assert_eq!(join_and(&["a"]), "a");
        assert_eq!(join_and(&["a", "b"]), "a and b");
        assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
    }
}

//! Is a prompt's visual element grounded in its own scene? Yes when one of its content
//! words (3+ letters, not a stop word) appears in the scene text, compared by a crude
//! stem (lowercase, a plural ending removed). "snowy peaks" is grounded in "snow covers
//! the peaks"; "dragon" is not grounded in a scene about a lighthouse.

use std::collections::HashSet;

const STOP_WORDS: &[&str] = &[
    "the", "and", "with", "for", "from", "into", "onto", "over", "under", "its", "their", "his", "her",
    "our", "your", "this", "that", "these", "those", "are", "was", "were", "has", "have", "some", "many",
];

/// Crude stem: lowercase letters, a final "es"/"s" removed from words of 4+ letters.
pub fn stem(word: &str) -> String {
    let w: String = word
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    if w.len() > 4 && w.ends_with("ies") {
        format!("{}y", &w[..w.len() - 3])
    } else if w.len() > 4 && (w.ends_with("ches") || w.ends_with("shes") || w.ends_with("xes")) {
        w[..w.len() - 2].to_string()
    } else if w.len() >= 4 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_string()
    } else {
        w
    }
}

fn content_stems(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3 && !STOP_WORDS.contains(&w.to_lowercase().as_str()))
        .map(stem)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Whether `element` shares a content word with `scene`.
pub fn grounded(element: &str, scene: &str) -> bool {
    let scene: HashSet<String> = content_stems(scene).into_iter().collect();
    content_stems(element).iter().any(|s| scene.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_content_words_ground_an_element() {
        let scene = "Snow covers the mountain peaks while two foxes play.";
        assert!(grounded("snowy peaks", scene));
        assert!(grounded("a fox", scene));
        assert!(grounded("Mountains", scene));
        assert!(!grounded("dragon", scene));
        assert!(
            !grounded("the sky", scene),
            "stop words and unrelated words do not count"
        );
        assert_eq!(stem("berries"), "berry");
        assert_eq!(stem("glass"), "glass");
    }
}

//! Checks of free-text request fields, shared by every service's validation: the errors
//! name the field and the limit.

use crate::ValidationError;

/// At most `max` characters (Unicode scalar values, not bytes).
pub fn check_max_chars(field: &str, value: &str, max: usize) -> Result<(), ValidationError> {
    let chars = value.chars().count();
    if chars > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters, got {chars}"),
        ));
    }
    Ok(())
}

/// Between `min` and `max` characters, as given (not trimmed).
pub fn check_char_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), ValidationError> {
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(ValidationError::new(
            field,
            format!("must be {min}-{max} characters, got {chars}"),
        ));
    }
    Ok(())
}

/// Between `min` and `max` characters after trimming; returns the trimmed text.
pub fn check_trimmed_len<'a>(
    field: &str,
    value: &'a str,
    min: usize,
    max: usize,
) -> Result<&'a str, ValidationError> {
    let trimmed = value.trim();
    let chars = trimmed.chars().count();
    if chars < min || chars > max {
        let what = if chars == 0 {
            "empty".to_string()
        } else {
            format!("{chars} characters")
        };
        return Err(ValidationError::new(
            field,
            format!("must be {min}-{max} characters (after trimming), got {what}"),
        ));
    }
    Ok(trimmed)
}

/// Whitespace (newlines, tabs) is allowed and normalised later; other control characters
/// are refused.
pub fn check_no_control_chars(field: &str, value: &str) -> Result<(), ValidationError> {
    match value.chars().find(|c| c.is_control() && !c.is_whitespace()) {
        Some(c) => Err(ValidationError::new(
            field,
            format!("must not contain control characters, found U+{:04X}", c as u32),
        )),
        None => Ok(()),
    }
}

/// The first `max_chars` characters of `text`, with `...` when it was longer: for quoting
/// user input in an error message.
pub fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_counted_in_characters() {
        assert!(check_max_chars("title", "ééé", 3).is_ok());
        let err = check_max_chars("title", "éééé", 3).unwrap_err();
        assert_eq!(err.to_string(), "`title` must be at most 3 characters, got 4");
    }

    #[test]
    fn lengths_as_given_are_checked_both_ways() {
        assert!(check_char_len("licence", "MIT", 1, 64).is_ok());
        let err = check_char_len("licence", "", 1, 64).unwrap_err();
        assert_eq!(err.to_string(), "`licence` must be 1-64 characters, got 0");
        assert!(check_char_len("licence", &"x".repeat(65), 1, 64).is_err());
    }

    #[test]
    fn trimmed_lengths_name_empty_input() {
        assert_eq!(check_trimmed_len("t", "  a b ", 1, 5).unwrap(), "a b");
        let err = check_trimmed_len("scenes[2].text", "   ", 1, 2000).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`scenes[2].text` must be 1-2000 characters (after trimming), got empty"
        );
        assert!(
            check_trimmed_len("t", "abcdef", 1, 5)
                .unwrap_err()
                .to_string()
                .contains("got 6")
        );
    }

    #[test]
    fn control_characters_other_than_whitespace_are_refused() {
        assert!(check_no_control_chars("t", "a\tb\nc").is_ok());
        let err = check_no_control_chars("t", "a\u{7}b").unwrap_err();
        assert!(err.to_string().contains("U+0007"), "{err}");
    }

    #[test]
    fn excerpts_end_with_an_ellipsis_when_cut() {
        assert_eq!(excerpt("abcdef", 3), "abc...");
        assert_eq!(excerpt("abc", 3), "abc");
    }
}

//! Common English abbreviations, read as a person reads them. A few depend on their
//! neighbours: "St." is Saint before a name and Street after one ("St. Paul", "Baker
//! St."), "Dr." likewise Doctor or Drive, "No." is "number" only before a number.

/// Abbreviation (as written, with its periods) -> spoken form; these never depend on
/// their neighbours.
const FIXED: &[(&str, &str)] = &[
    ("Mr.", "Mister"),
    ("Mrs.", "Missus"),
    ("Ms.", "Miz"),
    ("Prof.", "Professor"),
    ("Mt.", "Mount"),
    ("Jr.", "Junior"),
    ("Sr.", "Senior"),
    ("Capt.", "Captain"),
    ("Gen.", "General"),
    ("Col.", "Colonel"),
    ("Lt.", "Lieutenant"),
    ("Sgt.", "Sergeant"),
    ("Rev.", "Reverend"),
    ("Ave.", "Avenue"),
    ("Rd.", "Road"),
    ("Blvd.", "Boulevard"),
    ("Inc.", "Incorporated"),
    ("Ltd.", "Limited"),
    ("Co.", "Company"),
    ("Fig.", "figure"),
    ("vs.", "versus"),
    ("vs", "versus"),
    ("etc.", "et cetera"),
    ("e.g.", "for example"),
    ("i.e.", "that is"),
    ("approx.", "approximately"),
    ("ca.", "circa"),
    ("a.m.", "A M"),
    ("p.m.", "P M"),
    ("A.M.", "A M"),
    ("P.M.", "P M"),
    ("&", "and"),
];

/// What surrounds a token: the neighbouring tokens without their punctuation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Neighbours<'a> {
    pub previous: Option<&'a str>,
    pub next: Option<&'a str>,
}

fn starts_upper(word: Option<&str>) -> bool {
    word.and_then(|w| w.chars().next())
        .is_some_and(char::is_uppercase)
}

fn starts_digit(word: Option<&str>) -> bool {
    word.and_then(|w| w.chars().next())
        .is_some_and(|c| c.is_ascii_digit())
}

/// The spoken form of the abbreviation `bare` (the token without trailing punctuation
/// other than periods), or `None` when it is not one.
pub fn expand(bare: &str, around: Neighbours<'_>) -> Option<String> {
    if let Some((_, spoken)) = FIXED.iter().find(|(a, _)| *a == bare) {
        return Some((*spoken).to_string());
    }
    // a name follows: Saint / Doctor; a name precedes and none follows: Street / Drive
    let place_after_name = starts_upper(around.previous) && !starts_upper(around.next);
    match bare {
        "St." => Some(if place_after_name { "Street" } else { "Saint" }.into()),
        "Dr." => Some(if place_after_name { "Drive" } else { "Doctor" }.into()),
        "No." | "no." | "Nos." if starts_digit(around.next) => Some("number".into()),
        // "a.m." written "am" after a number ("10 am", "10 PM")
        "am" | "AM" if starts_digit(around.previous) => Some("A M".into()),
        "pm" | "PM" if starts_digit(around.previous) => Some("P M".into()),
        _ => initialism(bare),
    }
}

/// "U.S." -> "U S", "U.S.A." -> "U S A": single letters each followed by a period.
fn initialism(bare: &str) -> Option<String> {
    let letters: Vec<char> = bare
        .split('.')
        .filter(|p| !p.is_empty())
        .flat_map(str::chars)
        .collect();
    let pairs = bare.len() == 2 * letters.len() && letters.len() >= 2;
    let shaped = pairs
        && bare
            .chars()
            .enumerate()
            .all(|(i, c)| if i % 2 == 0 { c.is_alphabetic() } else { c == '.' });
    shaped.then(|| {
        letters
            .iter()
            .map(|c| c.to_uppercase().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Whether the abbreviation's final period may also end the sentence: a title before a
/// name never does.
pub fn period_can_end_sentence(bare: &str) -> bool {
    !matches!(
        bare,
        "Mr." | "Mrs." | "Ms." | "Dr." | "Prof." | "Capt." | "Gen." | "Col." | "Lt." | "Sgt." | "Rev."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn around<'a>(previous: Option<&'a str>, next: Option<&'a str>) -> Neighbours<'a> {
        Neighbours { previous, next }
    }

    #[test]
    fn expands_by_context() {
        let none = Neighbours::default();
        let cases = [
            ("Mr.", none, Some("Mister")),
            ("St.", around(Some("visited"), Some("Paul's")), Some("Saint")),
            ("St.", around(Some("Baker"), None), Some("Street")),
            ("St.", around(Some("Baker"), Some("today")), Some("Street")),
            ("Dr.", around(Some("Mulholland"), Some("at")), Some("Drive")),
            ("Dr.", around(Some("met"), Some("Smith")), Some("Doctor")),
            ("No.", around(None, Some("9")), Some("number")),
            ("No.", around(None, Some("way")), None),
            ("pm", around(Some("10"), None), Some("P M")),
            ("pm", none, None),
            ("U.S.", none, Some("U S")),
            ("U.S.A.", none, Some("U S A")),
            ("e.g.", none, Some("for example")),
            ("A.", none, None),
            ("x.y", none, None),
            ("word", none, None),
        ];
        for (bare, around, want) in cases {
            assert_eq!(expand(bare, around).as_deref(), want, "{bare} {around:?}");
        }
    }
}

//! Spells out what a voice would otherwise read letter by letter or digit by digit:
//! numbers (cardinals, decimals, ordinals, years, money, percentages) and common English
//! abbreviations. Word by word; punctuation around a word is kept.

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [&str; 5] = ["", "thousand", "million", "billion", "trillion"];

/// Abbreviation (as written, with its periods) -> spoken form.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("Mr.", "Mister"),
    ("Mrs.", "Missus"),
    ("Ms.", "Miz"),
    ("Dr.", "Doctor"),
    ("Prof.", "Professor"),
    ("St.", "Saint"),
    ("Mt.", "Mount"),
    ("Jr.", "Junior"),
    ("Sr.", "Senior"),
    ("Capt.", "Captain"),
    ("Gen.", "General"),
    ("Lt.", "Lieutenant"),
    ("Sgt.", "Sergeant"),
    ("vs.", "versus"),
    ("etc.", "et cetera"),
    ("e.g.", "for example"),
    ("i.e.", "that is"),
    ("approx.", "approximately"),
    ("a.m.", "A M"),
    ("p.m.", "P M"),
    ("km", "kilometres"),
    ("kg", "kilograms"),
    ("&", "and"),
];

/// `text` with numbers and abbreviations spelled out.
pub fn normalize(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let next_is_number = words
            .get(i + 1)
            .is_some_and(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()));
        let last = i + 1 == words.len();
        out.push(normalize_word(word, next_is_number, last));
    }
    out.join(" ")
}

fn normalize_word(word: &str, next_is_number: bool, last: bool) -> String {
    let bare = word.trim_end_matches([',', ';', ':', '!', '?', ')', '"']);
    let tail = &word[bare.len()..];
    if let Some((_, spoken)) = ABBREVIATIONS.iter().find(|(a, _)| *a == bare) {
        // An abbreviation's period that also ends the text still ends it.
        let end = if last && tail.is_empty() && bare.ends_with('.') {
            "."
        } else {
            ""
        };
        return format!("{spoken}{end}{tail}");
    }
    if (word == "No." || word == "no.") && next_is_number {
        return "number".into();
    }
    let mut start = word
        .find(|c: char| c.is_alphanumeric() || c == '$' || c == '£' || c == '€')
        .unwrap_or(word.len());
    // a minus sign belongs to the number
    if start > 0 && word[..start].ends_with('-') {
        start -= 1;
    }
    let end = word
        .rfind(|c: char| c.is_alphanumeric() || c == '%')
        .map_or(start, |i| i + word[i..].chars().next().map_or(1, char::len_utf8));
    if start >= end {
        return word.to_string();
    }
    let (lead, core, trail) = (&word[..start], &word[start..end], &word[end..]);
    match spell(core) {
        Some(spoken) => format!("{lead}{spoken}{trail}"),
        None => word.to_string(),
    }
}

/// The spoken form of a numeric token, or `None` when it is not one.
fn spell(core: &str) -> Option<String> {
    let (currency, rest) = match core.chars().next()? {
        '$' => (Some(("dollar", "dollars", "cent", "cents")), &core[1..]),
        '£' => (
            Some(("pound", "pounds", "penny", "pence")),
            &core['£'.len_utf8()..],
        ),
        '€' => (Some(("euro", "euros", "cent", "cents")), &core['€'.len_utf8()..]),
        _ => (None, core),
    };
    let (rest, percent) = match rest.strip_suffix('%') {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let (negative, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let sign = if negative { "minus " } else { "" };
    // ordinals: 1st, 22nd, 103rd, 4th
    for suffix in ["st", "nd", "rd", "th"] {
        let digits = rest
            .strip_suffix(suffix)
            .or_else(|| rest.strip_suffix(&suffix.to_uppercase()));
        if let Some(digits) = digits
            && currency.is_none()
            && !percent
            && digits.chars().all(|c| c.is_ascii_digit())
        {
            return Some(format!("{sign}{}", ordinal(&cardinal(digits.parse().ok()?))));
        }
    }
    let plain: String = rest.chars().filter(|&c| c != ',').collect();
    let (whole, fraction) = match plain.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (plain.as_str(), None),
    };
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if fraction.is_some_and(|f| f.is_empty() || !f.chars().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let value: u64 = whole.parse().ok()?;
    let spoken = if let Some((one, many, cent, cents)) = currency {
        let mut s = format!("{} {}", cardinal(value), if value == 1 { one } else { many });
        if let Some(f) = fraction {
            let c: u64 = format!("{f:0<2}")[..2].parse().ok()?;
            if c > 0 {
                s += &format!(" and {} {}", cardinal(c), if c == 1 { cent } else { cents });
            }
        }
        s
    } else {
        let mut s = match fraction {
            None if !percent && !core.contains(',') && whole.len() == 4 && is_year(value) => year(value),
            _ => cardinal(value),
        };
        if let Some(f) = fraction {
            s += " point";
            for d in f.chars() {
                s += " ";
                s += ONES[d.to_digit(10)? as usize];
            }
        }
        s
    };
    Some(format!("{sign}{spoken}{}", if percent { " percent" } else { "" }))
}

fn is_year(value: u64) -> bool {
    (1100..=1999).contains(&value) || (2010..=2099).contains(&value)
}

/// 1984 -> "nineteen eighty-four", 1900 -> "nineteen hundred", 2015 -> "twenty fifteen".
fn year(value: u64) -> String {
    let (hi, lo) = (value / 100, value % 100);
    match lo {
        0 => format!("{} hundred", cardinal(hi)),
        1..=9 => format!("{} oh {}", cardinal(hi), cardinal(lo)),
        _ => format!("{} {}", cardinal(hi), cardinal(lo)),
    }
}

/// English cardinal of `n`: 1234 -> "one thousand two hundred thirty-four".
pub fn cardinal(n: u64) -> String {
    if n == 0 {
        return ONES[0].into();
    }
    let mut groups = Vec::new();
    let mut rest = n;
    let mut scale = 0;
    while rest > 0 {
        let group = rest % 1000;
        if group > 0 {
            let words = below_thousand(group);
            groups.push(match SCALES.get(scale) {
                Some(&"") => words,
                Some(s) => format!("{words} {s}"),
                None => {
                    return n
                        .to_string()
                        .chars()
                        .map(|d| ONES[d as usize - '0' as usize])
                        .collect::<Vec<_>>()
                        .join(" ");
                }
            });
        }
        rest /= 1000;
        scale += 1;
    }
    groups.reverse();
    groups.join(" ")
}

fn below_thousand(n: u64) -> String {
    let (hundreds, rest) = (n / 100, n % 100);
    let mut parts = Vec::new();
    if hundreds > 0 {
        parts.push(format!("{} hundred", ONES[hundreds as usize]));
    }
    if rest > 0 {
        parts.push(if rest < 20 {
            ONES[rest as usize].to_string()
        } else if rest % 10 == 0 {
            TENS[(rest / 10) as usize].to_string()
        } else {
            format!("{}-{}", TENS[(rest / 10) as usize], ONES[(rest % 10) as usize])
        });
    }
    parts.join(" ")
}

/// "twenty-one" -> "twenty-first".
fn ordinal(cardinal: &str) -> String {
    let split = cardinal.rfind([' ', '-']).map_or(0, |i| i + 1);
    let (head, last) = cardinal.split_at(split);
    let last = match last {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "five" => "fifth".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "twelve" => "twelfth".to_string(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    };
    format!("{head}{last}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spells_numbers() {
        let cases = [
            ("0", "zero"),
            ("7", "seven"),
            ("42", "forty-two"),
            ("100", "one hundred"),
            ("1,234", "one thousand two hundred thirty-four"),
            ("2000", "two thousand"),
            ("1000000", "one million"),
            ("3.14", "three point one four"),
            ("-5", "minus five"),
            ("1984", "nineteen eighty-four"),
            ("1905", "nineteen oh five"),
            ("2024", "twenty twenty-four"),
            ("1st", "first"),
            ("22nd", "twenty-second"),
            ("13th", "thirteenth"),
            ("40th", "fortieth"),
            ("$5", "five dollars"),
            ("$1.50", "one dollar and fifty cents"),
            ("50%", "fifty percent"),
        ];
        for (text, spoken) in cases {
            assert_eq!(normalize(text), spoken, "{text}");
        }
    }

    #[test]
    fn keeps_punctuation_and_expands_abbreviations() {
        assert_eq!(
            normalize("Dr. Smith met Mr. Fox at 3 p.m., in 1999."),
            "Doctor Smith met Mister Fox at three P M, in nineteen ninety-nine."
        );
        assert_eq!(
            normalize("They sold No. 9 (for $20)!"),
            "They sold number nine (for twenty dollars)!"
        );
        assert_eq!(normalize("apples, pears etc."), "apples, pears et cetera.");
        assert_eq!(normalize("the ABC of it"), "the ABC of it");
    }
}

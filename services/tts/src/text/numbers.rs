//! Numbers as words: cardinals, ordinals, years, decades, decimals. Values beyond the
//! trillions are read digit by digit, as a person reads a serial number.

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

/// A number as written: sign, digits before and after the decimal point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number<'a> {
    pub negative: bool,
    /// Digits only (group commas removed); may be empty for ".5".
    pub whole: String,
    pub fraction: Option<&'a str>,
    /// Written with group commas ("1,234"): never a year.
    pub grouped: bool,
}

impl Number<'_> {
    /// The integer value, when it is one and fits.
    pub fn integer(&self) -> Option<u64> {
        match self.fraction {
            None if !self.negative => self.whole.parse().ok(),
            _ => None,
        }
    }

    /// Exactly one (singular units and currencies).
    pub fn is_one(&self) -> bool {
        self.integer() == Some(1)
    }

    /// "minus three point one four".
    pub fn spoken(&self) -> String {
        let sign = if self.negative { "minus " } else { "" };
        let whole = if self.whole.is_empty() {
            String::new()
        } else {
            cardinal_digits(&self.whole)
        };
        let mut out = format!("{sign}{whole}");
        if let Some(fraction) = self.fraction {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            out.push_str("point ");
            out.push_str(&digits(fraction));
        }
        out
    }
}

/// `text` as a number: optional minus (`-` or `−`), digits with optional group commas,
/// optional decimal part. `None` for anything else.
pub fn parse_number(text: &str) -> Option<Number<'_>> {
    let (negative, rest) = match text.strip_prefix('-').or_else(|| text.strip_prefix('−')) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = match rest.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (rest, None),
    };
    if fraction.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    if whole.is_empty() && fraction.is_none() {
        return None;
    }
    let grouped = whole.contains(',');
    if grouped && !valid_groups(whole) {
        return None;
    }
    let digits_only: String = whole.chars().filter(|&c| c != ',').collect();
    if !digits_only.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(Number {
        negative,
        whole: digits_only,
        fraction,
        grouped,
    })
}

/// "1,234,567": a first group of 1-3 digits, then groups of exactly 3.
fn valid_groups(whole: &str) -> bool {
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or("");
    (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// Non-empty and ASCII digits only (`str::parse` would also take a leading `+`).
pub fn is_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Digits only -> a cardinal, or digit by digit when too large.
pub fn cardinal_digits(digits_text: &str) -> String {
    match digits_text.parse::<u64>() {
        Ok(n) => cardinal(n),
        Err(_) => digits(digits_text),
    }
}

/// "042" -> "zero four two".
pub fn digits(text: &str) -> String {
    text.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| ONES[d as usize])
        .collect::<Vec<_>>()
        .join(" ")
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
            match SCALES.get(scale) {
                Some(&"") => groups.push(below_thousand(group)),
                Some(s) => groups.push(format!("{} {s}", below_thousand(group))),
                None => return digits(&n.to_string()),
            }
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
        parts.push(below_hundred(rest));
    }
    parts.join(" ")
}

fn below_hundred(n: u64) -> String {
    if n < 20 {
        ONES[n as usize].to_string()
    } else if n.is_multiple_of(10) {
        TENS[(n / 10) as usize].to_string()
    } else {
        format!("{}-{}", TENS[(n / 10) as usize], ONES[(n % 10) as usize])
    }
}

/// 22 -> "twenty-second".
pub fn ordinal(n: u64) -> String {
    ordinal_of(&cardinal(n))
}

/// "twenty-one" -> "twenty-first".
fn ordinal_of(cardinal: &str) -> String {
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

/// "22nd" -> 22: digits followed by an English ordinal suffix (any case).
pub fn parse_ordinal(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits_text, suffix) = text.split_at(split);
    if !is_digits(digits_text) {
        return None;
    }
    let n: u64 = digits_text.parse().ok()?;
    // "2th" is still read as an ordinal: the suffix says what the writer meant
    let suffix = suffix.to_ascii_lowercase();
    matches!(suffix.as_str(), "st" | "nd" | "rd" | "th").then_some(n)
}

/// A four-digit number a person reads as a year when it stands alone.
pub fn reads_as_year(n: u64) -> bool {
    (1100..=2099).contains(&n)
}

/// 1984 -> "nineteen eighty-four", 1900 -> "nineteen hundred", 2005 -> "two thousand
/// five", 2015 -> "twenty fifteen", 1805 -> "eighteen oh five".
pub fn year(n: u64) -> String {
    let (hi, lo) = (n / 100, n % 100);
    if !(1000..=9999).contains(&n) || (2000..=2009).contains(&n) {
        return cardinal(n);
    }
    match lo {
        0 => format!("{} hundred", cardinal(hi)),
        1..=9 => format!("{} oh {}", cardinal(hi), cardinal(lo)),
        _ => format!("{} {}", cardinal(hi), cardinal(lo)),
    }
}

/// A decade or century: 1990 -> "nineteen nineties", 1900 -> "nineteen hundreds",
/// 2000 -> "two thousands", 90 -> "nineties". `None` when `n` does not end in 0.
pub fn decade(n: u64) -> Option<String> {
    if !n.is_multiple_of(10) {
        return None;
    }
    let words = if n < 100 { cardinal(n) } else { year(n) };
    Some(plural_of_last(&words))
}

/// "nineteen ninety" -> "nineteen nineties".
fn plural_of_last(words: &str) -> String {
    match words.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{words}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinals_ordinals_years_decades() {
        let cardinals = [
            (0, "zero"),
            (15, "fifteen"),
            (40, "forty"),
            (101, "one hundred one"),
            (1_000_001, "one million one"),
            (2_000_000_000, "two billion"),
        ];
        for (n, want) in cardinals {
            assert_eq!(cardinal(n), want);
        }
        assert_eq!(cardinal(u64::MAX).split(' ').count(), 20, "digit by digit");
        let ordinals = [
            (1, "first"),
            (12, "twelfth"),
            (22, "twenty-second"),
            (103, "one hundred third"),
        ];
        for (n, want) in ordinals {
            assert_eq!(ordinal(n), want);
        }
        let years = [
            (1999, "nineteen ninety-nine"),
            (2005, "two thousand five"),
            (2000, "two thousand"),
            (1900, "nineteen hundred"),
            (1805, "eighteen oh five"),
            (2024, "twenty twenty-four"),
        ];
        for (n, want) in years {
            assert_eq!(year(n), want);
        }
        assert_eq!(decade(1990).as_deref(), Some("nineteen nineties"));
        assert_eq!(decade(1900).as_deref(), Some("nineteen hundreds"));
        assert_eq!(decade(2000).as_deref(), Some("two thousands"));
        assert_eq!(decade(90).as_deref(), Some("nineties"));
        assert_eq!(decade(1995), None);
    }

    #[test]
    fn parses_numbers_and_ordinals() {
        let n = parse_number("-1,234.50").unwrap();
        assert!(n.negative && n.grouped);
        assert_eq!(
            n.spoken(),
            "minus one thousand two hundred thirty-four point five zero"
        );
        assert_eq!(parse_number(".5").unwrap().spoken(), "point five");
        for bad in ["", "-", "1,23", "1.", "1.2.3", "12a", "."] {
            assert_eq!(parse_number(bad), None, "{bad}");
        }
        assert_eq!(parse_ordinal("103rd"), Some(103));
        assert_eq!(parse_ordinal("11TH"), Some(11));
        assert_eq!(parse_ordinal("5x"), None);
        assert_eq!(parse_ordinal("5"), None);
    }
}

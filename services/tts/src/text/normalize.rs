//! Spells out what a voice would otherwise read letter by letter or digit by digit:
//! numbers (cardinals, decimals, negatives, ordinals, years, decades, ranges), dates and
//! times ([`super::dates`]), money and units ([`super::units`]), percentages and common
//! abbreviations ([`super::abbreviations`]).
//!
//! Token by token (a token is a run of non-space characters), each read in the light of
//! its neighbours ("4" after "July" is "fourth"; "km" after a number is "kilometres"), so
//! that every spoken word comes from exactly one written token: [`normalize_words`] keeps
//! that mapping, which word timings use to refer to the text as written. Punctuation
//! around a token is kept; a token that is none of the above is left as written.

use super::{
    abbreviations::{self, Neighbours},
    dates, numbers,
    numbers::{Number, parse_number},
    units,
};

/// One written token and how it is spoken (one or more words, or the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedWord {
    pub original: String,
    pub spoken: String,
}

/// `text` with numbers and abbreviations spelled out.
pub fn normalize(text: &str) -> String {
    spoken_text(&normalize_words(text))
}

/// The spoken forms of `words`, as one text.
pub fn spoken_text(words: &[NormalizedWord]) -> String {
    let spoken: Vec<&str> = words
        .iter()
        .map(|w| w.spoken.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    spoken.join(" ")
}

/// Each whitespace-separated token of `text`, as written and as spoken.
pub fn normalize_words(text: &str) -> Vec<NormalizedWord> {
    let tokens: Vec<Token<'_>> = text.split_whitespace().map(Token::new).collect();
    (0..tokens.len())
        .map(|i| NormalizedWord {
            original: tokens[i].text.to_string(),
            spoken: spoken_token(&tokens, i),
        })
        .collect()
}

/// Opening punctuation kept before a token's spoken form.
const LEAD: &[char] = &['"', '(', '[', '{', '“', '«', '‘'];
/// Closing punctuation kept after it.
const TRAIL: &[char] = &[
    '"', '\'', ')', ']', '}', '”', '»', '’', ',', ';', ':', '!', '?', '.', '…',
];

/// A token split into opening punctuation, core and closing punctuation.
#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    lead: &'a str,
    core: &'a str,
    trail: &'a str,
}

impl<'a> Token<'a> {
    fn new(text: &'a str) -> Self {
        let after_lead = text.trim_start_matches(LEAD);
        let lead = &text[..text.len() - after_lead.len()];
        let core = after_lead.trim_end_matches(TRAIL);
        let trail = &after_lead[core.len()..];
        Token {
            text,
            lead,
            core,
            trail,
        }
    }

    /// The token without its opening punctuation and its closing punctuation other than
    /// periods ("(e.g.," -> "e.g."), and what follows that.
    fn abbreviation(&self) -> (&'a str, &'a str) {
        let after_lead = &self.text[self.lead.len()..];
        let bare = after_lead.trim_end_matches(|c: char| c != '.' && TRAIL.contains(&c));
        (bare, &after_lead[bare.len()..])
    }

    fn wrap(&self, spoken: &str) -> String {
        format!("{}{spoken}{}", self.lead, self.trail)
    }
}

fn spoken_token(tokens: &[Token<'_>], i: usize) -> String {
    let token = tokens[i];
    let core_at = |j: Option<usize>| j.and_then(|j| tokens.get(j)).map(|t| t.core);
    let around = Neighbours {
        previous: core_at(i.checked_sub(1)),
        next: core_at(Some(i + 1)),
    };
    let last = i + 1 == tokens.len();
    if let Some(spoken) = abbreviation(&token, around, last) {
        return spoken;
    }
    let previous = i.checked_sub(1).map(|j| tokens[j]);
    if let Some(spoken) = after_quantity(&token, previous) {
        return token.wrap(&spoken);
    }
    let context = Context {
        previous: around.previous,
        before_previous: core_at(i.checked_sub(2)),
        next: around.next,
        joined_to_next: token.trail.is_empty(),
    };
    match numeric(token.core, &context) {
        Some(spoken) => token.wrap(&spoken),
        None => token.text.to_string(),
    }
}

/// An abbreviation with its punctuation, or `None`.
fn abbreviation(token: &Token<'_>, around: Neighbours<'_>, last: bool) -> Option<String> {
    let (bare, rest) = token.abbreviation();
    let next_is_number = around
        .next
        .and_then(|n| n.chars().next())
        .is_some_and(|c| c.is_ascii_digit());
    let previous_is_number = around
        .previous
        .and_then(|p| p.chars().next())
        .is_some_and(|c| c.is_ascii_digit());
    let month = dates::abbreviated_month(bare)
        .filter(|_| bare.ends_with('.') || next_is_number || previous_is_number)
        .map(String::from);
    let spoken = abbreviations::expand(bare, around).or(month)?;
    // an abbreviation's period that also ends the text still ends it
    let ends = last && bare.ends_with('.') && rest.is_empty() && abbreviations::period_can_end_sentence(bare);
    Some(format!(
        "{}{spoken}{}{rest}",
        token.lead,
        if ends { "." } else { "" }
    ))
}

/// A unit after a quantity ("5 km", "5-10 km"), or a scale word after money ("$2
/// billion" -> "two billion dollars").
fn after_quantity(token: &Token<'_>, previous: Option<Token<'_>>) -> Option<String> {
    let previous = previous.filter(|p| p.trail.is_empty())?;
    if units::SCALE_WORDS.contains(&token.core) {
        let money = units::parse_money(previous.core).filter(units::Money::takes_scale_word)?;
        return Some(money.currency_after_scale(token.core));
    }
    let one = match parse_number(previous.core) {
        Some(n) => n.is_one(),
        None => range(previous.core).map(|_| false)?,
    };
    units::unit(token.core, one).map(String::from)
}

/// What the numeric rules look at around a token.
struct Context<'a> {
    previous: Option<&'a str>,
    before_previous: Option<&'a str>,
    next: Option<&'a str>,
    /// No punctuation between this token and the next.
    joined_to_next: bool,
}

impl Context<'_> {
    fn after_month(&self) -> bool {
        self.previous.and_then(dates::any_month).is_some()
    }

    /// "July 4, 1776": a year after a month's day.
    fn after_month_day(&self) -> bool {
        self.before_previous.and_then(dates::any_month).is_some()
            && self.previous.and_then(dates::day_number).is_some()
    }

    fn before_month(&self) -> bool {
        self.joined_to_next && self.next.and_then(dates::any_month).is_some()
    }

    fn before_am_pm(&self) -> bool {
        self.next.is_some_and(|n| {
            matches!(
                n.to_ascii_lowercase().as_str(),
                "am" | "pm" | "a.m" | "p.m" | "a.m." | "p.m."
            )
        })
    }
}

/// The spoken form of a numeric core, or `None` when it is not one.
fn numeric(core: &str, context: &Context<'_>) -> Option<String> {
    if !core.contains(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if let Some(date) = dates::iso_date(core).or_else(|| dates::slash_date(core)) {
        return Some(date);
    }
    if let Some(time) = dates::time_of_day(core, context.before_am_pm()).or_else(|| dates::glued_am_pm(core))
    {
        return Some(time);
    }
    if let Some(decade) = decade(core) {
        return Some(decade);
    }
    if let Some(money) = units::parse_money(core) {
        let scale_follows = context.joined_to_next
            && money.takes_scale_word()
            && context.next.is_some_and(|n| units::SCALE_WORDS.contains(&n));
        return Some(money.spoken(scale_follows));
    }
    if let Some(amount) = core.strip_suffix('%') {
        let amount = parse_number(amount)
            .map(|n| n.spoken())
            .or_else(|| range(amount))?;
        return Some(format!("{amount} percent"));
    }
    if let Some(quantity) = units::glued_quantity(core) {
        return Some(quantity);
    }
    if let Some(day) = dates::day_number(core).filter(|_| context.before_month()) {
        return Some(format!("the {} of", numbers::ordinal(day)));
    }
    if let Some(n) = numbers::parse_ordinal(core) {
        return Some(numbers::ordinal(n));
    }
    if let Some(range) = range(core) {
        return Some(range);
    }
    let number = parse_number(core)?;
    if context.after_month()
        && let Some(day) = dates::day_number(core)
    {
        return Some(numbers::ordinal(day));
    }
    if let Some(year) =
        dates::year_number(core).filter(|_| context.after_month() || context.after_month_day())
    {
        return Some(numbers::year(year));
    }
    Some(plain(&number))
}

/// A number standing alone: four digits in the usual span read as a year.
fn plain(number: &Number<'_>) -> String {
    match number.integer() {
        Some(n) if !number.grouped && number.whole.len() == 4 && numbers::reads_as_year(n) => {
            numbers::year(n)
        }
        _ => number.spoken(),
    }
}

/// "1990-1995" -> "nineteen ninety to nineteen ninety-five", "5-10" -> "five to ten".
fn range(core: &str) -> Option<String> {
    let split = core
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c == '-' || c == '–')?
        .0;
    let (left, right) = (&core[..split], &core[split..]);
    let right = right.strip_prefix(['-', '–'])?;
    let (left, right) = (parse_number(left)?, parse_number(right)?);
    if right.negative {
        return None;
    }
    Some(format!("{} to {}", plain(&left), plain(&right)))
}

/// "1990s" -> "nineteen nineties", "'90s" -> "nineties".
fn decade(core: &str) -> Option<String> {
    let stem = core.strip_suffix('s')?;
    let (digits_text, short) = match stem.strip_prefix(['\'', '’']) {
        Some(d) => (d, true),
        None => (stem, false),
    };
    let fits = if short {
        digits_text.len() == 2
    } else {
        matches!(digits_text.len(), 2 | 4)
    };
    if !fits || !numbers::is_digits(digits_text) {
        return None;
    }
    numbers::decade(digits_text.parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cases: &[(&str, &str)]) {
        for (text, spoken) in cases {
            assert_eq!(normalize(text), *spoken, "{text}");
        }
    }

    #[test]
    fn numbers_ordinals_years() {
        check(&[
            ("0", "zero"),
            ("7", "seven"),
            ("42", "forty-two"),
            ("100", "one hundred"),
            ("1,234", "one thousand two hundred thirty-four"),
            ("1,000,000", "one million"),
            ("2000", "two thousand"),
            ("1000000", "one million"),
            ("3.14", "three point one four"),
            ("0.5", "zero point five"),
            ("-5", "minus five"),
            ("−2.5", "minus two point five"),
            ("1984", "nineteen eighty-four"),
            ("1999", "nineteen ninety-nine"),
            ("1905", "nineteen oh five"),
            ("2005", "two thousand five"),
            ("2024", "twenty twenty-four"),
            ("1st", "first"),
            ("22nd", "twenty-second"),
            ("103rd", "one hundred third"),
            ("13th", "thirteenth"),
            ("40th", "fortieth"),
            ("1900s", "nineteen hundreds"),
            ("1990s", "nineteen nineties"),
            ("'90s", "nineties"),
            ("’60s", "sixties"),
            ("1990-1995", "nineteen ninety to nineteen ninety-five"),
            ("1990–1995", "nineteen ninety to nineteen ninety-five"),
            ("5-10", "five to ten"),
            (
                "12345678901234567890123",
                "one two three four five six seven eight nine zero one two three four five six seven eight nine zero one two three",
            ),
        ]);
    }

    #[test]
    fn money_percentages_and_units() {
        check(&[
            ("$5", "five dollars"),
            ("$1.50", "one dollar and fifty cents"),
            ("$3.50", "three dollars and fifty cents"),
            ("€20", "twenty euros"),
            ("£1m", "one million pounds"),
            ("$2 billion", "two billion dollars"),
            ("$2.5 million", "two point five million dollars"),
            ("50%", "fifty percent"),
            ("12.5%", "twelve point five percent"),
            ("5-10%", "five to ten percent"),
            ("5 km", "five kilometres"),
            ("1 km", "one kilometre"),
            ("10kg", "ten kilograms"),
            ("3 m", "three metres"),
            ("100 km/h", "one hundred kilometres per hour"),
            ("25°C", "twenty-five degrees Celsius"),
            ("6 ft", "six feet"),
            ("5-10 km", "five to ten kilometres"),
            ("km", "km"),
            ("I am here", "I am here"),
        ]);
    }

    #[test]
    fn dates_and_times() {
        check(&[
            ("4 July 1776", "the fourth of July seventeen seventy-six"),
            ("July 4, 1776", "July fourth, seventeen seventy-six"),
            ("on 2024-03-05.", "on March fifth, twenty twenty-four."),
            ("5/3/2024", "May third, twenty twenty-four"),
            ("Jan. 5", "January fifth"),
            ("Sept 1939", "September nineteen thirty-nine"),
            ("the 4th of July", "the fourth of July"),
            ("Dec. 25th", "December twenty-fifth"),
            ("May 2024", "May twenty twenty-four"),
            ("10:30", "ten thirty"),
            ("at 9:05 p.m.", "at nine oh five P M."),
            ("10am", "ten A M"),
            ("Jan is here", "Jan is here"),
        ]);
    }

    #[test]
    fn abbreviations() {
        check(&[
            ("Dr. Smith", "Doctor Smith"),
            ("Mr. and Mrs. Fox", "Mister and Missus Fox"),
            ("St. Paul", "Saint Paul"),
            ("on Baker St.", "on Baker Street."),
            ("e.g., apples", "for example, apples"),
            ("i.e. pears", "that is pears"),
            ("cats vs. dogs", "cats versus dogs"),
            ("No. 9", "number nine"),
            ("no way", "no way"),
            ("the U.S. army", "the U S army"),
            ("(etc.)", "(et cetera)"),
            ("salt & pepper", "salt and pepper"),
        ]);
    }

    #[test]
    fn sentences_mixing_several() {
        check(&[
            (
                "Dr. Smith met Mr. Fox at 3 p.m., in 1999.",
                "Doctor Smith met Mister Fox at three P M, in nineteen ninety-nine.",
            ),
            (
                "They sold No. 9 (for $20)!",
                "They sold number nine (for twenty dollars)!",
            ),
            ("apples, pears etc.", "apples, pears et cetera."),
            ("the ABC of it", "the ABC of it"),
            (
                "On 4 July 1776, 56 men signed; by the 1800s the U.S. had grown 12.5%.",
                "On the fourth of July seventeen seventy-six, fifty-six men signed; by the eighteen hundreds the U S had grown twelve point five percent.",
            ),
            (
                "The 3rd car drove 100 km/h at -5°C on Jan. 2, 2005.",
                "The third car drove one hundred kilometres per hour at minus five degrees Celsius on January second, two thousand five.",
            ),
            (
                "It cost £1m in the '90s, i.e. $2 billion today.",
                "It cost one million pounds in the nineties, that is two billion dollars today.",
            ),
        ]);
    }

    #[test]
    fn every_token_keeps_its_spoken_form() {
        let words = normalize_words("It cost $3.50 on 5/3/2024, e.g. today.");
        let originals: Vec<&str> = words.iter().map(|w| w.original.as_str()).collect();
        assert_eq!(
            originals,
            ["It", "cost", "$3.50", "on", "5/3/2024,", "e.g.", "today."]
        );
        assert_eq!(words[2].spoken, "three dollars and fifty cents");
        assert_eq!(words[4].spoken, "May third, twenty twenty-four,");
        assert_eq!(words[5].spoken, "for example");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text: no panic, one entry per token, each token as written.
        #[test]
        fn any_text_keeps_its_tokens(text in "\\PC{0,60}") {
            let words = normalize_words(&text);
            let tokens: Vec<&str> = text.split_whitespace().collect();
            prop_assert_eq!(words.len(), tokens.len());
            for (word, token) in words.iter().zip(tokens) {
                prop_assert_eq!(word.original.as_str(), token);
            }
            let _ = normalize(&text);
        }

        /// Text made of the characters the rules look at, densely mixed.
        #[test]
        fn numeric_looking_text_does_not_panic(text in "[0-9$£€%°CkmgsthndrdJulyanSept.,:/'’\\-– ]{0,40}") {
            let _ = normalize(&text);
        }

        /// Words without digits or abbreviations are left as written.
        #[test]
        fn plain_words_pass_through(text in "[a-z]{1,8}( [a-z]{1,8}){0,6}") {
            prop_assume!(!text.split(' ').any(|w| matches!(w, "vs" | "am" | "pm")));
            prop_assert_eq!(normalize(&text), text);
        }
    }
}

//! Dates, months and times of day.
//!
//! Convention: numeric dates with slashes are read month first, as in the US ("5/3/2024"
//! is May third), unless the first number cannot be a month ("25/12/2024" is December
//! twenty-fifth). ISO dates ("2024-03-05") are year-month-day. A spelled date is read as
//! written: "July 4, 1776" -> "July fourth, seventeen seventy-six", "4 July 1776" -> "the
//! fourth of July seventeen seventy-six".

use super::numbers::{cardinal, is_digits, ordinal, parse_number, year};

pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Abbreviated month (without its period) -> month number 1-12.
const MONTH_ABBREVIATIONS: &[(&str, usize)] = &[
    ("Jan", 1),
    ("Feb", 2),
    ("Mar", 3),
    ("Apr", 4),
    ("Jun", 6),
    ("Jul", 7),
    ("Aug", 8),
    ("Sep", 9),
    ("Sept", 9),
    ("Oct", 10),
    ("Nov", 11),
    ("Dec", 12),
];

/// The full name of a month written in full (capitalised: "may" is a verb).
pub fn full_month(word: &str) -> Option<&'static str> {
    MONTHS.iter().copied().find(|m| *m == word)
}

/// The full name of an abbreviated month, with or without its period ("Jan." "Sept").
pub fn abbreviated_month(word: &str) -> Option<&'static str> {
    let stem = word.strip_suffix('.').unwrap_or(word);
    MONTH_ABBREVIATIONS
        .iter()
        .find(|(a, _)| *a == stem)
        .map(|&(_, m)| MONTHS[m - 1])
}

/// A month written in full or abbreviated.
pub fn any_month(word: &str) -> Option<&'static str> {
    full_month(word).or_else(|| abbreviated_month(word))
}

/// A day of the month as written: "4" or "4th", 1-31.
pub fn day_number(core: &str) -> Option<u64> {
    let day = if is_digits(core) {
        if core.len() > 2 {
            return None;
        }
        core.parse().ok()?
    } else {
        super::numbers::parse_ordinal(core)?
    };
    (1..=31).contains(&day).then_some(day)
}

/// A year as it follows a month: four digits.
pub fn year_number(core: &str) -> Option<u64> {
    (core.len() == 4 && is_digits(core))
        .then(|| core.parse::<u64>().ok())
        .flatten()
        .filter(|y| (1000..=2999).contains(y))
}

fn spoken_date(year_value: u64, month: u64, day: u64) -> Option<String> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some(format!(
        "{} {}, {}",
        MONTHS[month as usize - 1],
        ordinal(day),
        year(year_value)
    ))
}

/// "2024-03-05" -> "March fifth, twenty twenty-four".
pub fn iso_date(core: &str) -> Option<String> {
    let mut parts = core.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || !(1..=2).contains(&m.len()) || !(1..=2).contains(&d.len()) {
        return None;
    }
    if ![y, m, d].iter().all(|p| is_digits(p)) {
        return None;
    }
    spoken_date(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
}

/// "5/3/2024" -> "May third, twenty twenty-four" (month first unless it cannot be).
pub fn slash_date(core: &str) -> Option<String> {
    let mut parts = core.split('/');
    let (a, b, y) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || !(1..=2).contains(&a.len()) || !(1..=2).contains(&b.len()) {
        return None;
    }
    if ![a, b, y].iter().all(|p| is_digits(p)) {
        return None;
    }
    let (a, b, y): (u64, u64, u64) = (a.parse().ok()?, b.parse().ok()?, y.parse().ok()?);
    let (month, day) = if a > 12 { (b, a) } else { (a, b) };
    spoken_date(y, month, day)
}

/// "10:30" -> "ten thirty", "9:05" -> "nine oh five", "10:00" -> "ten o'clock" (or "ten"
/// when `before_am_pm`, as in "10:00 a.m.").
pub fn time_of_day(core: &str, before_am_pm: bool) -> Option<String> {
    let (h, m) = core.split_once(':')?;
    if !(1..=2).contains(&h.len()) || m.len() != 2 || !is_digits(h) || !is_digits(m) {
        return None;
    }
    let (hour, minute): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    if hour > 23 || minute > 59 {
        return None;
    }
    Some(match minute {
        0 if before_am_pm => cardinal(hour),
        0 => format!("{} o'clock", cardinal(hour)),
        1..=9 => format!("{} oh {}", cardinal(hour), cardinal(minute)),
        _ => format!("{} {}", cardinal(hour), cardinal(minute)),
    })
}

/// A time glued to its half of the day: "10am", "7:30pm", "10AM".
pub fn glued_am_pm(core: &str) -> Option<String> {
    let lower = core.to_ascii_lowercase();
    let (time, half) = if let Some(t) = lower.strip_suffix("am") {
        (t, "A M")
    } else {
        (lower.strip_suffix("pm")?, "P M")
    };
    let time = time.strip_suffix('.').unwrap_or(time);
    let spoken = match time_of_day(time, true) {
        Some(t) => t,
        None => {
            let hour = parse_number(time)?.integer().filter(|h| (1..=12).contains(h))?;
            cardinal(hour)
        }
    };
    Some(format!("{spoken} {half}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates_and_times() {
        assert_eq!(
            iso_date("2024-03-05").as_deref(),
            Some("March fifth, twenty twenty-four")
        );
        assert_eq!(iso_date("2024-13-05"), None);
        assert_eq!(iso_date("1990-1995"), None);
        assert_eq!(
            slash_date("5/3/2024").as_deref(),
            Some("May third, twenty twenty-four")
        );
        assert_eq!(
            slash_date("25/12/2024").as_deref(),
            Some("December twenty-fifth, twenty twenty-four")
        );
        assert_eq!(slash_date("3/4"), None);
        assert_eq!(time_of_day("9:05", false).as_deref(), Some("nine oh five"));
        assert_eq!(time_of_day("10:00", false).as_deref(), Some("ten o'clock"));
        assert_eq!(time_of_day("25:00", false), None);
        assert_eq!(glued_am_pm("10am").as_deref(), Some("ten A M"));
        assert_eq!(glued_am_pm("7:30PM").as_deref(), Some("seven thirty P M"));
        assert_eq!(glued_am_pm("spam"), None);
        assert_eq!(abbreviated_month("Sept."), Some("September"));
        assert_eq!(any_month("May"), Some("May"));
        assert_eq!(any_month("may"), None);
        assert_eq!(day_number("31st"), Some(31));
        assert_eq!(day_number("32"), None);
    }
}

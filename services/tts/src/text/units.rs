//! Units of measure and money: "5 km", "10kg", "25°C", "100 km/h", "$3.50", "£1m",
//! "$2 billion".

use super::numbers::{Number, cardinal, parse_number};

/// Symbol as written -> (singular, plural). A unit is read as one only after a number
/// ("3 m", "3m"); alone it is left as written.
const UNITS: &[(&str, &str, &str)] = &[
    ("km/h", "kilometre per hour", "kilometres per hour"),
    ("kph", "kilometre per hour", "kilometres per hour"),
    ("mph", "mile per hour", "miles per hour"),
    ("m/s", "metre per second", "metres per second"),
    ("km", "kilometre", "kilometres"),
    ("m", "metre", "metres"),
    ("cm", "centimetre", "centimetres"),
    ("mm", "millimetre", "millimetres"),
    ("mi", "mile", "miles"),
    ("ft", "foot", "feet"),
    ("yd", "yard", "yards"),
    ("kg", "kilogram", "kilograms"),
    ("g", "gram", "grams"),
    ("mg", "milligram", "milligrams"),
    ("lb", "pound", "pounds"),
    ("lbs", "pound", "pounds"),
    ("oz", "ounce", "ounces"),
    ("l", "litre", "litres"),
    ("L", "litre", "litres"),
    ("ml", "millilitre", "millilitres"),
    ("mL", "millilitre", "millilitres"),
    ("°C", "degree Celsius", "degrees Celsius"),
    ("°F", "degree Fahrenheit", "degrees Fahrenheit"),
    ("°", "degree", "degrees"),
    ("ms", "millisecond", "milliseconds"),
    ("sec", "second", "seconds"),
    ("min", "minute", "minutes"),
    ("hr", "hour", "hours"),
    ("hrs", "hour", "hours"),
    ("kW", "kilowatt", "kilowatts"),
    ("kWh", "kilowatt hour", "kilowatt hours"),
    ("Hz", "hertz", "hertz"),
    ("kHz", "kilohertz", "kilohertz"),
    ("MHz", "megahertz", "megahertz"),
    ("GHz", "gigahertz", "gigahertz"),
    ("KB", "kilobyte", "kilobytes"),
    ("MB", "megabyte", "megabytes"),
    ("GB", "gigabyte", "gigabytes"),
    ("TB", "terabyte", "terabytes"),
];

/// The spoken unit of `symbol` after a quantity (`one`: exactly one).
pub fn unit(symbol: &str, one: bool) -> Option<&'static str> {
    UNITS
        .iter()
        .find(|(s, _, _)| *s == symbol)
        .map(|&(_, singular, plural)| if one { singular } else { plural })
}

/// A number with its unit glued on: "10kg", "25°C", "-5°C", "100km/h".
pub fn glued_quantity(core: &str) -> Option<String> {
    UNITS.iter().find_map(|&(symbol, singular, plural)| {
        let number = parse_number(core.strip_suffix(symbol)?)?;
        let unit = if number.is_one() { singular } else { plural };
        Some(format!("{} {unit}", number.spoken()))
    })
}

/// A currency: symbol, singular, plural, and its hundredth (singular, plural).
struct Currency {
    symbol: char,
    one: &'static str,
    many: &'static str,
    cent: &'static str,
    cents: &'static str,
}

const CURRENCIES: &[Currency] = &[
    Currency {
        symbol: '$',
        one: "dollar",
        many: "dollars",
        cent: "cent",
        cents: "cents",
    },
    Currency {
        symbol: '£',
        one: "pound",
        many: "pounds",
        cent: "penny",
        cents: "pence",
    },
    Currency {
        symbol: '€',
        one: "euro",
        many: "euros",
        cent: "cent",
        cents: "cents",
    },
    Currency {
        symbol: '¥',
        one: "yen",
        many: "yen",
        cent: "sen",
        cents: "sen",
    },
];

/// Scale suffixes glued to an amount ("£1m", "$3bn", "$10k").
const SCALE_SUFFIXES: &[(&str, &str)] = &[("bn", "billion"), ("m", "million"), ("k", "thousand")];

/// Scale words that may follow an amount ("$2 billion").
pub const SCALE_WORDS: &[&str] = &["thousand", "million", "billion", "trillion"];

/// An amount of money as written: currency, number, glued scale.
pub struct Money<'a> {
    currency: &'static Currency,
    number: Number<'a>,
    scale: Option<&'static str>,
}

/// `core` as money: "$3.50", "€20", "£1m", "-$5" is not (a sign goes after the symbol).
pub fn parse_money(core: &str) -> Option<Money<'_>> {
    let symbol = core.chars().next()?;
    let currency = CURRENCIES.iter().find(|c| c.symbol == symbol)?;
    let rest = &core[symbol.len_utf8()..];
    let (rest, scale) = SCALE_SUFFIXES
        .iter()
        .find_map(|&(suffix, word)| Some((rest.strip_suffix(suffix)?, Some(word))))
        .filter(|(r, _)| parse_number(r).is_some())
        .unwrap_or((rest, None));
    let number = parse_number(rest)?;
    Some(Money {
        currency,
        number,
        scale,
    })
}

impl Money<'_> {
    /// The amount spoken; with `scale_follows` ("$2 billion") the number only, the
    /// currency name going after the scale word (see [`Money::currency_after_scale`]).
    pub fn spoken(&self, scale_follows: bool) -> String {
        let c = self.currency;
        if scale_follows {
            return self.number.spoken();
        }
        if let Some(scale) = self.scale {
            return format!("{} {scale} {}", self.number.spoken(), c.many);
        }
        let whole: u64 = match self.number.whole.parse() {
            Ok(w) => w,
            Err(_) if self.number.whole.is_empty() => 0,
            Err(_) => return format!("{} {}", self.number.spoken(), c.many),
        };
        let sign = if self.number.negative { "minus " } else { "" };
        let cents = match self.number.fraction {
            None => None,
            Some(f) if f.len() <= 2 => format!("{f:0<2}").parse::<u64>().ok().filter(|&c| c > 0),
            // more than two decimals: not cents ("$1.005")
            Some(_) => return format!("{} {}", self.number.spoken(), c.many),
        };
        let unit = |n: u64, one, many| format!("{} {}", cardinal(n), if n == 1 { one } else { many });
        match cents {
            None => format!("{sign}{}", unit(whole, c.one, c.many)),
            Some(cents) if whole == 0 => format!("{sign}{}", unit(cents, c.cent, c.cents)),
            Some(cents) => format!(
                "{sign}{} and {}",
                unit(whole, c.one, c.many),
                unit(cents, c.cent, c.cents)
            ),
        }
    }

    /// "billion" after "$2" -> "billion dollars".
    pub fn currency_after_scale(&self, scale_word: &str) -> String {
        format!("{scale_word} {}", self.currency.many)
    }

    /// Whether a scale word may follow ("$2 billion", not "$2.50 billion" or "£1m billion").
    pub fn takes_scale_word(&self) -> bool {
        self.scale.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_quantities() {
        let money = [
            ("$3.50", "three dollars and fifty cents"),
            ("$1", "one dollar"),
            ("$0.99", "ninety-nine cents"),
            ("€20", "twenty euros"),
            ("£1m", "one million pounds"),
            ("$2.5bn", "two point five billion dollars"),
            ("£1.01", "one pound and one penny"),
        ];
        for (text, want) in money {
            assert_eq!(parse_money(text).unwrap().spoken(false), want, "{text}");
        }
        assert!(parse_money("$").is_none() && parse_money("$x").is_none() && parse_money("5").is_none());
        let glued = [
            ("10kg", "ten kilograms"),
            ("1km", "one kilometre"),
            ("25°C", "twenty-five degrees Celsius"),
            ("-5°C", "minus five degrees Celsius"),
            ("100km/h", "one hundred kilometres per hour"),
            ("2.5m", "two point five metres"),
        ];
        for (text, want) in glued {
            assert_eq!(glued_quantity(text).as_deref(), Some(want), "{text}");
        }
        assert_eq!(glued_quantity("km"), None);
        assert_eq!(unit("ft", false), Some("feet"));
        assert_eq!(unit("ft", true), Some("foot"));
    }
}

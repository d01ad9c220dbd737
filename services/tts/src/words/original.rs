//! Spans of the spoken words -> spans of the written tokens: normalisation turns one
//! token into one or more spoken words ("$3.50" -> "three dollars and fifty cents"), and
//! the token is heard from its first spoken word's start to its last one's end.

use super::WordSpan;

/// One span per token; `spoken_counts[t]` is how many spoken words token `t` became, in
/// order, and `spoken` holds a span per spoken word. A token of no spoken word, or of
/// silent words only, gets an empty span where it stands.
pub fn token_spans(spoken_counts: &[usize], spoken: &[WordSpan]) -> Vec<WordSpan> {
    let mut out = Vec::with_capacity(spoken_counts.len());
    let mut next = 0;
    let mut position = 0;
    for &count in spoken_counts {
        let words = spoken
            .get(next..(next + count).min(spoken.len()))
            .unwrap_or_default();
        next += count;
        let sounding: Vec<&WordSpan> = words.iter().filter(|w| !w.is_empty()).collect();
        let span = match (sounding.first(), sounding.last()) {
            (Some(first), Some(last)) => WordSpan {
                start: first.start,
                end: last.end.max(first.start),
            },
            _ => {
                let at = words.first().map_or(position, |w| w.start.max(position));
                WordSpan { start: at, end: at }
            }
        };
        position = span.end;
        out.push(span);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: usize, end: usize) -> WordSpan {
        WordSpan { start, end }
    }

    #[test]
    fn a_token_covers_the_words_it_became() {
        // "It cost $3.50 — today": "$3.50" became five words, "—" one silent word
        let spoken = [
            span(0, 10),
            span(12, 20),
            span(22, 30),
            span(30, 40),
            span(41, 45),
            span(46, 50),
            span(50, 60),
            span(60, 60),
            span(70, 90),
        ];
        let tokens = token_spans(&[1, 1, 5, 1, 1], &spoken);
        assert_eq!(
            tokens,
            [
                span(0, 10),
                span(12, 20),
                span(22, 60),
                span(60, 60),
                span(70, 90)
            ]
        );
        assert_eq!(token_spans(&[0, 1], &[span(5, 9)]), [span(0, 0), span(5, 9)]);
        // fewer spans than words (a voice that lost some): no panic
        assert_eq!(token_spans(&[2, 1], &[span(0, 4)]), [span(0, 4), span(4, 4)]);
    }
}

//! Generated ids to text, incrementally, and stop strings checked on that text.
//!
//! Decoding follows text-generation-inference's scheme: decode a short window of ids twice
//! (without and with the newest ids) and keep the difference once it no longer ends in a
//! partial UTF-8 character, so multi-byte characters split over tokens and tokenizers that
//! strip a leading space come out right. The window starts with the last few prompt ids.
//!
//! Streamed text never contains a stop string: text that could be the start of one is held
//! back until it is not, so the streamed pieces always add up to the final text.

use super::GenerationError;

/// Turns token ids into text. Implemented for `tokenizers::Tokenizer` (special tokens
/// skipped); tests and other tokenizers implement it directly.
pub trait Detokenizer {
    fn detokenize(&self, ids: &[u32]) -> Result<String, String>;
}

impl Detokenizer for tokenizers::Tokenizer {
    fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        self.decode(ids, true).map_err(|e| e.to_string())
    }
}

/// How many prompt ids open the decode window.
const PROMPT_CONTEXT: usize = 5;

/// One sequence's decoded output and stop-string state.
#[derive(Debug)]
pub(crate) struct IncrementalText {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
    text: String,
    streamed: usize,
    stop_strings: Vec<String>,
    longest_stop: usize,
    matched: Option<usize>,
}

impl IncrementalText {
    pub fn new(prompt_ids: &[u32], stop_strings: &[String]) -> Self {
        let ids = prompt_ids[prompt_ids.len().saturating_sub(PROMPT_CONTEXT)..].to_vec();
        IncrementalText {
            read_offset: ids.len(),
            ids,
            prefix_offset: 0,
            text: String::new(),
            streamed: 0,
            stop_strings: stop_strings.to_vec(),
            longest_stop: stop_strings.iter().map(String::len).max().unwrap_or(0),
            matched: None,
        }
    }

    /// Adds a generated id; returns the index of the stop string it completed, if any.
    pub fn push(&mut self, detok: &dyn Detokenizer, id: u32) -> Result<Option<usize>, GenerationError> {
        self.ids.push(id);
        let prefix = decode(detok, &self.ids[self.prefix_offset..self.read_offset])?;
        let full = decode(detok, &self.ids[self.prefix_offset..])?;
        if full.len() > prefix.len()
            && !full.ends_with('\u{FFFD}')
            && let Some(delta) = full.get(prefix.len()..)
        {
            self.append(delta);
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
        }
        Ok(self.matched)
    }

    /// Decodes whatever is still pending (a final partial character comes out as U+FFFD);
    /// returns the index of a stop string this completed, if any.
    pub fn flush(&mut self, detok: &dyn Detokenizer) -> Result<Option<usize>, GenerationError> {
        if self.read_offset < self.ids.len() && self.matched.is_none() {
            let prefix = decode(detok, &self.ids[self.prefix_offset..self.read_offset])?;
            let full = decode(detok, &self.ids[self.prefix_offset..])?;
            let delta = full.get(prefix.len()..).unwrap_or_default().to_owned();
            self.append(&delta);
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
        }
        Ok(self.matched)
    }

    /// The text not streamed yet that is safe to stream: all of it once `finished`, else all
    /// but a tail that could still grow into a stop string.
    pub fn take_streamable(&mut self, finished: bool) -> String {
        let end = if finished || self.matched.is_some() {
            self.text.len()
        } else {
            self.text.len() - self.held_back()
        };
        let end = end.max(self.streamed);
        let out = self.text[self.streamed..end].to_owned();
        self.streamed = end;
        out
    }

    pub fn stop_string(&self, index: usize) -> &str {
        &self.stop_strings[index]
    }

    /// The output text, ending before a matched stop string.
    pub fn into_text(self) -> String {
        self.text
    }

    fn append(&mut self, delta: &str) {
        if self.matched.is_some() {
            return;
        }
        let old_len = self.text.len();
        self.text.push_str(delta);
        if self.stop_strings.is_empty() {
            return;
        }
        // a new match must end in the new text, so it starts after old_len - longest + 1
        let mut from = old_len.saturating_sub(self.longest_stop.saturating_sub(1));
        while !self.text.is_char_boundary(from) {
            from -= 1;
        }
        let found = self
            .stop_strings
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.text[from..].find(s.as_str()).map(|pos| (from + pos, i)))
            .min();
        if let Some((pos, i)) = found {
            self.text.truncate(pos);
            self.matched = Some(i);
        }
    }

    /// Bytes at the end of the text that are a proper prefix of some stop string.
    fn held_back(&self) -> usize {
        self.stop_strings
            .iter()
            .filter_map(|s| {
                (1..s.len())
                    .rev()
                    .find(|&k| s.is_char_boundary(k) && self.text.ends_with(&s[..k]))
            })
            .max()
            .unwrap_or(0)
    }
}

fn decode(detok: &dyn Detokenizer, ids: &[u32]) -> Result<String, GenerationError> {
    if ids.is_empty() {
        return Ok(String::new());
    }
    detok.detokenize(ids).map_err(GenerationError::Detokenize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-level: id = byte (lossy UTF-8), ids >= 256 are "special" and skipped.
    struct Bytes;
    impl Detokenizer for Bytes {
        fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
            let bytes: Vec<u8> = ids.iter().filter(|&&i| i < 256).map(|&i| i as u8).collect();
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
    }

    fn feed(text: &mut IncrementalText, s: &str) -> (String, Option<usize>) {
        let mut streamed = String::new();
        let mut matched = None;
        for b in s.bytes() {
            matched = text.push(&Bytes, b as u32).unwrap();
            streamed += &text.take_streamable(false);
            if matched.is_some() {
                break;
            }
        }
        (streamed, matched)
    }

    #[test]
    fn multibyte_characters_wait_for_their_last_byte() {
        let mut t = IncrementalText::new(&[b'a' as u32], &[]);
        t.push(&Bytes, 0xC3).unwrap();
        assert_eq!(t.take_streamable(false), "");
        t.push(&Bytes, 0xA9).unwrap();
        assert_eq!(t.take_streamable(false), "é");
        assert_eq!(t.into_text(), "é");
    }

    #[test]
    fn stop_strings_cut_the_text_and_are_never_streamed() {
        let stops = vec!["\n\n".to_string(), "END".to_string()];
        let mut t = IncrementalText::new(&[1], &stops);
        let (streamed, matched) = feed(&mut t, "one\ntwo EN then\n\nrest");
        assert_eq!(matched, Some(0));
        let rest = t.take_streamable(true);
        assert_eq!(streamed + &rest, "one\ntwo EN then");
        assert_eq!(t.into_text(), "one\ntwo EN then");
    }

    #[test]
    fn the_earliest_stop_string_wins() {
        let stops = vec!["cd".to_string(), "bcde".to_string()];
        let mut t = IncrementalText::new(&[1], &stops);
        let (_, matched) = feed(&mut t, "abcdef");
        assert_eq!(matched, Some(0));
        assert_eq!(t.into_text(), "ab");
    }

    #[test]
    fn a_partial_stop_prefix_is_released_when_it_does_not_complete() {
        let stops = vec!["END".to_string()];
        let mut t = IncrementalText::new(&[1], &stops);
        let (streamed, matched) = feed(&mut t, "xEN");
        assert_eq!((streamed.as_str(), matched), ("x", None));
        let (streamed, _) = feed(&mut t, "d");
        assert_eq!(streamed, "ENd");
    }
}

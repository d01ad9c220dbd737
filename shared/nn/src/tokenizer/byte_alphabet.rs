//! GPT-2's byte-to-character table (`bytes_to_unicode` in transformers and tokenizers): the
//! byte-level BPE vocabulary spells every byte as one printable character, so a token is a
//! string over these 256 characters.

use std::collections::HashSet;

/// The character that spells each byte.
pub fn byte_to_char() -> [char; 256] {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut table = ['\0'; 256];
    let mut next_unprintable = 256u32;
    for b in 0..=255u8 {
        table[b as usize] = if printable(b) {
            char::from(b)
        } else {
            let c = char::from_u32(next_unprintable).unwrap_or('\u{FFFD}');
            next_unprintable += 1;
            c
        };
    }
    table
}

/// The 256 characters of the byte alphabet.
pub fn alphabet() -> HashSet<char> {
    byte_to_char().into_iter().collect()
}

/// `token` spelled in the byte alphabet: itself when it already is, else its UTF-8 bytes
/// mapped one by one (transformers' `byte_level_tokenizer` does the same for GGUF tokens).
pub fn spell_in_byte_alphabet(token: &str, alphabet: &HashSet<char>, table: &[char; 256]) -> String {
    if token.chars().all(|c| alphabet.contains(&c)) {
        token.to_string()
    } else {
        token.bytes().map(|b| table[b as usize]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_gpt2_table() {
        let table = byte_to_char();
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[b'a' as usize], 'a');
        assert_eq!(table[0], 'Ā');
        assert_eq!(alphabet().len(), 256);
    }

    #[test]
    fn respells_only_tokens_outside_the_alphabet() {
        let (alphabet, table) = (alphabet(), byte_to_char());
        assert_eq!(spell_in_byte_alphabet("Ġhello", &alphabet, &table), "Ġhello");
        assert_eq!(spell_in_byte_alphabet(" a", &alphabet, &table), "Ġa");
    }
}

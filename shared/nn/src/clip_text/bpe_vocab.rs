//! CLIP's BPE vocabulary as the original release ships it (`bpe_simple_vocab_16e6.txt`: a
//! version line, then merges, one `a b` pair per line), turned into the `tokenizer.json`
//! that transformers' `CLIPTokenizer` saves (the structure [`super::ClipTokenizer`] loads).
//!
//! The vocabulary is built as CLIP's `SimpleTokenizer` builds it: the 256 byte symbols of
//! the GPT-2 byte-to-unicode table, the same with the `</w>` end-of-word suffix, then one
//! token per merge (the first 48 894 merges, for 49 408 tokens in all), then
//! `<|startoftext|>` and `<|endoftext|>`. SD 1.x and 2.x text encoders use this vocabulary.

use serde_json::{Value, json};

/// Merges CLIP uses: 49 408 tokens - 256 bytes - 256 end-of-word bytes - 2 specials.
pub const CLIP_MERGES: usize = 49_152 - 256 - 2;

const BOS: &str = "<|startoftext|>";
const EOS: &str = "<|endoftext|>";
/// CLIP's pre-tokenisation pattern (transformers' `CLIPConverter`).
const SPLIT_PATTERN: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

#[derive(Debug, thiserror::Error)]
pub enum BpeVocabError {
    #[error("the merges file is empty")]
    Empty,
    #[error("merges line {line}: expected two space-separated symbols, got {text:?}")]
    BadLine { line: usize, text: String },
    #[error("the merges file has {found} merges; {wanted} are needed")]
    TooFew { found: usize, wanted: usize },
}

/// GPT-2's table from bytes to printable characters, in its order (printable bytes first).
pub fn bytes_to_unicode() -> Vec<char> {
    let mut bytes: Vec<u32> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .map(u32::from)
        .collect();
    let mut chars = bytes.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    chars
        .into_iter()
        .map(|c| char::from_u32(c).expect("valid code point"))
        .collect()
}

/// Parses `merges_text` (version line first) and keeps the first `n_merges` merges.
pub fn parse_merges(merges_text: &str, n_merges: usize) -> Result<Vec<(String, String)>, BpeVocabError> {
    let mut lines = merges_text.lines();
    lines.next().ok_or(BpeVocabError::Empty)?;
    let mut merges = Vec::with_capacity(n_merges);
    for (i, line) in lines.enumerate().take(n_merges) {
        let mut parts = line.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty() => {
                merges.push((a.to_string(), b.to_string()))
            }
            _ => {
                return Err(BpeVocabError::BadLine {
                    line: i + 2,
                    text: line.to_string(),
                });
            }
        }
    }
    if merges.len() < n_merges {
        return Err(BpeVocabError::TooFew {
            found: merges.len(),
            wanted: n_merges,
        });
    }
    Ok(merges)
}

/// The token list in id order: bytes, bytes + `</w>`, merges, BOS, EOS.
pub fn vocabulary(merges: &[(String, String)]) -> Vec<String> {
    let bytes = bytes_to_unicode();
    let mut vocab: Vec<String> = bytes.iter().map(|c| c.to_string()).collect();
    vocab.extend(bytes.iter().map(|c| format!("{c}</w>")));
    vocab.extend(merges.iter().map(|(a, b)| format!("{a}{b}")));
    vocab.push(BOS.into());
    vocab.push(EOS.into());
    vocab
}

/// The `tokenizer.json` of a CLIP tokenizer with these merges.
pub fn tokenizer_json(merges: &[(String, String)]) -> Value {
    let vocab = vocabulary(merges);
    let bos_id = vocab.len() - 2;
    let eos_id = vocab.len() - 1;
    let vocab_map: serde_json::Map<String, Value> = vocab
        .iter()
        .enumerate()
        .map(|(id, token)| (token.clone(), json!(id)))
        .collect();
    let merges_json: Vec<Value> = merges.iter().map(|(a, b)| json!([a, b])).collect();
    let special = |id: usize, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [special(bos_id, BOS), special(eos_id, EOS)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
            {"type": "Lowercase"}
        ]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": SPLIT_PATTERN}, "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}
        ]},
        "post_processor": {"type": "RobertaProcessing", "sep": [EOS, eos_id], "cls": [BOS, bos_id],
                           "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": EOS, "continuing_subword_prefix": "",
            "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab_map, "merges": merges_json
        }
    })
}

/// The `tokenizer_config.json` beside it: SD 1.x conventions (pad with `<|endoftext|>`,
/// 77 positions).
pub fn tokenizer_config_json() -> Value {
    json!({
        "backend": "tokenizers",
        "bos_token": BOS,
        "eos_token": EOS,
        "pad_token": EOS,
        "unk_token": EOS,
        "model_max_length": super::CLIP_MAX_LENGTH,
        "tokenizer_class": "CLIPTokenizer"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/clip_text/tokenizer.json"
    );

    /// The tiny CLIP tokenizer that transformers 5.23 saved (scripts/fixtures/encoders.py)
    /// was built the way CLIP builds its vocabulary; from its merges we must rebuild it.
    #[test]
    fn rebuilds_the_transformers_tokenizer_from_its_merges() {
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
        let merges: Vec<(String, String)> = saved["model"]["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m[0].as_str().unwrap().to_string(),
                    m[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let ours = tokenizer_json(&merges);
        assert_eq!(ours["model"]["vocab"], saved["model"]["vocab"]);
        for key in ["normalizer", "pre_tokenizer", "decoder"] {
            assert_eq!(ours[key], saved[key], "{key}");
        }
        assert_eq!(ours["model"]["merges"], saved["model"]["merges"]);
        assert_eq!(
            ours["model"]["end_of_word_suffix"],
            saved["model"]["end_of_word_suffix"]
        );
    }

    #[test]
    fn the_byte_table_is_a_permutation_of_printable_characters() {
        let table = bytes_to_unicode();
        assert_eq!(table.len(), 256);
        assert_eq!((table[0], table[93]), ('!', '~'));
        let mut unique = table.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 256);
    }

    #[test]
    fn bad_merge_files_name_the_line() {
        let err = parse_merges("#version\na b\nc\n", 2).unwrap_err();
        assert!(matches!(err, BpeVocabError::BadLine { line: 3, .. }), "{err}");
        let err = parse_merges("#version\na b\n", 2).unwrap_err();
        assert!(
            matches!(err, BpeVocabError::TooFew { found: 1, wanted: 2 }),
            "{err}"
        );
    }
}

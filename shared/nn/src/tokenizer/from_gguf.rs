//! Builds the `tokenizers::Tokenizer` transformers builds from the same GGUF (transformers
//! 5.23.0, `integrations/gguf/gguf_tokenizer_mapping.py`: `byte_level_tokenizer`,
//! `add_gguf_special_tokens`, `set_split_regex`, then `TokenizersBackend`):
//!
//! - model: BPE over the file's tokens (respelled in the byte alphabet where needed) and
//!   merges, no unknown token, no dropout;
//! - normaliser: none;
//! - pre-tokenizer: `ByteLevel(add_prefix_space=false)` with GPT-2's regex, or, for the
//!   `tokenizer.ggml.pre` values transformers knows, a `Split` on that family's regex followed
//!   by `ByteLevel` without a regex;
//! - added tokens: CONTROL tokens (type 3) as special, USER_DEFINED (type 4) as plain added
//!   tokens, and the BOS/EOS/UNK/PAD tokens as special, none normalised;
//! - post-processor: a template adding BOS/EOS only where `add_bos_token`/`add_eos_token`;
//! - decoder: `ByteLevel`.

use super::{
    GgufVocab, TokenizerError,
    byte_alphabet::{alphabet, byte_to_char, spell_in_byte_alphabet},
    gguf_vocab::{TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED},
    pre_tokenizer_splits::split_regex,
};
use tokenizers::{
    AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer,
    decoders::byte_level::ByteLevel as ByteLevelDecoder,
    models::bpe::{BPE, Vocab},
    pre_tokenizers::{
        byte_level::ByteLevel,
        sequence::Sequence,
        split::{Split, SplitPattern},
    },
    processors::template::TemplateProcessing,
};

/// Builds the tokenizer; only byte-level BPE (`tokenizer.ggml.model = gpt2`) is supported.
pub fn build_tokenizer(vocab: &GgufVocab) -> Result<Tokenizer, TokenizerError> {
    if vocab.model != "gpt2" {
        return Err(TokenizerError::UnsupportedModel {
            model: vocab.model.clone(),
        });
    }
    let build = |e: Box<dyn std::error::Error + Send + Sync>| TokenizerError::Build(e.to_string());

    let (alphabet, table) = (alphabet(), byte_to_char());
    // As in transformers' dict comprehension, a later token with the same spelling wins.
    let bpe_vocab: Vocab = vocab
        .tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (spell_in_byte_alphabet(token, &alphabet, &table), id as u32))
        .collect();
    let merges = split_merges(&vocab.merges)?;
    let bpe = BPE::builder()
        .vocab_and_merges(bpe_vocab.clone(), merges)
        .build()
        .map_err(build)?;

    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(vocab.pre.as_deref())?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    tokenizer.with_post_processor(Some(post_processor(vocab)?));

    let control: Vec<AddedToken> = vocab
        .tokens
        .iter()
        .zip(&vocab.token_types)
        .filter(|&(token, &kind)| {
            // a CONTROL token spelled outside the byte alphabet is a llama.cpp mislabel that
            // transformers skips: adding it would grow the vocabulary past the model's
            kind == TOKEN_TYPE_CONTROL && token.chars().all(|c| alphabet.contains(&c))
        })
        .map(|(token, _)| AddedToken::from(token.as_str(), true).normalized(false))
        .collect();
    tokenizer.add_special_tokens(&control);
    let named_specials: Vec<AddedToken> = [
        vocab.bos_token(),
        vocab.eos_token(),
        vocab.unk_token(),
        vocab.pad_token(),
    ]
    .into_iter()
    .flatten()
    .map(|token| AddedToken::from(token, true).normalized(false))
    .collect();
    tokenizer.add_special_tokens(&named_specials);
    let user_defined: Vec<AddedToken> = vocab
        .tokens
        .iter()
        .zip(&vocab.token_types)
        .filter(|&(token, &kind)| kind == TOKEN_TYPE_USER_DEFINED && bpe_vocab.contains_key(token))
        .map(|(token, _)| AddedToken::from(token.as_str(), false).normalized(false))
        .collect();
    tokenizer.add_tokens(&user_defined);
    Ok(tokenizer)
}

fn split_merges(merges: &[String]) -> Result<Vec<(String, String)>, TokenizerError> {
    merges
        .iter()
        .enumerate()
        .map(|(index, merge)| {
            let mut parts = merge.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some(left), Some(right), None) => Ok((left.to_string(), right.to_string())),
                _ => Err(TokenizerError::BadMerge {
                    index,
                    merge: merge.clone(),
                }),
            }
        })
        .collect()
}

fn pre_tokenizer(pre: Option<&str>) -> Result<PreTokenizerWrapper, TokenizerError> {
    let Some(regex) = pre.and_then(split_regex) else {
        return Ok(ByteLevel::new(false, true, true).into());
    };
    let split = Split::new(
        SplitPattern::Regex(regex.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| TokenizerError::Build(e.to_string()))?;
    Ok(Sequence::new(vec![split.into(), ByteLevel::new(false, true, false).into()]).into())
}

/// transformers' `TokenizersBackend.update_post_processor`: `[bos] $A [eos]` and
/// `[bos] $A [eos] [bos] $B [eos]`, each special token present only when its flag is set.
fn post_processor(vocab: &GgufVocab) -> Result<TemplateProcessing, TokenizerError> {
    let bos = vocab
        .bos_token()
        .zip(vocab.bos_token_id)
        .filter(|_| vocab.add_bos_token);
    let eos = vocab
        .eos_token()
        .zip(vocab.eos_token_id)
        .filter(|_| vocab.add_eos_token);
    let piece = |token: Option<(&str, u32)>, type_id: u8| token.map(|(t, _)| format!("{t}:{type_id}"));
    let template = |sequence: &str, type_id: u8| -> Vec<String> {
        [
            piece(bos, type_id),
            Some(format!("${sequence}:{type_id}")),
            piece(eos, type_id),
        ]
        .into_iter()
        .flatten()
        .collect()
    };
    let single = template("A", 0);
    let pair: Vec<String> = single.iter().cloned().chain(template("B", 1)).collect();
    let special_tokens: Vec<(String, u32)> = [bos, eos]
        .into_iter()
        .flatten()
        .map(|(t, id)| (t.to_string(), id))
        .collect();
    TemplateProcessing::builder()
        .try_single(single)
        .and_then(|b| b.try_pair(pair))
        .map_err(|e| TokenizerError::Build(e.to_string()))?
        .special_tokens(special_tokens)
        .build()
        .map_err(|e| TokenizerError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_vocab() -> GgufVocab {
        let tokens = [
            "<|endoftext|>",
            "<|im_start|>",
            "<think>",
            "h",
            "i",
            "Ġ",
            "hi",
            "Ġhi",
            "✨",
        ];
        GgufVocab {
            model: "gpt2".to_string(),
            pre: Some("smollm".to_string()),
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            token_types: vec![3, 3, 4, 1, 1, 1, 1, 1, 1],
            merges: vec!["h i".to_string(), "Ġ hi".to_string()],
            bos_token_id: Some(1),
            eos_token_id: Some(0),
            unk_token_id: None,
            pad_token_id: None,
            add_bos_token: false,
            add_eos_token: false,
            chat_template: None,
        }
    }

    fn ids(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
        tokenizer.encode(text, true).unwrap().get_ids().to_vec()
    }

    #[test]
    fn merges_and_keeps_special_tokens_whole() {
        let tokenizer = build_tokenizer(&tiny_vocab()).unwrap();
        assert_eq!(ids(&tokenizer, "hi hi"), [6, 7]);
        assert_eq!(ids(&tokenizer, "<|im_start|>hi<think>"), [1, 6, 2]);
        assert_eq!(tokenizer.decode(&[1, 6, 7], false).unwrap(), "<|im_start|>hi hi");
        assert_eq!(tokenizer.decode(&[1, 6, 7], true).unwrap(), "hi hi");
        // a token outside the byte alphabet is respelled as its bytes
        let table = byte_to_char();
        let spelled: String = "✨".bytes().map(|b| table[b as usize]).collect();
        assert_eq!(tokenizer.token_to_id(&spelled), Some(8));
    }

    #[test]
    fn bos_and_eos_follow_the_flags() {
        let mut vocab = tiny_vocab();
        vocab.add_bos_token = true;
        vocab.add_eos_token = true;
        let tokenizer = build_tokenizer(&vocab).unwrap();
        assert_eq!(ids(&tokenizer, "hi"), [1, 6, 0]);
        assert_eq!(
            tokenizer.encode("hi", false).unwrap().get_ids(),
            [6],
            "add_special_tokens=false adds neither"
        );
    }

    #[test]
    fn bad_inputs_are_errors() {
        let mut vocab = tiny_vocab();
        vocab.model = "llama".to_string();
        let err = build_tokenizer(&vocab).unwrap_err().to_string();
        assert!(err.contains("`llama`"), "{err}");

        let mut vocab = tiny_vocab();
        vocab.merges.push("a b c".to_string());
        let err = build_tokenizer(&vocab).unwrap_err().to_string();
        assert!(err.contains("entry 2") && err.contains("a b c"), "{err}");

        let mut vocab = tiny_vocab();
        vocab.merges.push("x y".to_string());
        assert!(
            build_tokenizer(&vocab).is_err(),
            "merges of unknown tokens are rejected"
        );
    }
}

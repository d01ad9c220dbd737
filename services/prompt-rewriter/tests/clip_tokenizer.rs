//! The real CLIP tokenizer `make models` builds (`storyreel-convert clip-bpe`, from CLIP's
//! released merges in open_clip_torch 3.3.0) against CLIP's own `SimpleTokenizer` and
//! transformers 5.23.0's `CLIPTokenizer`, which agree on every prompt of the fixture
//! (`fixtures/clip_tokenizer.json`, made by `scripts/fixtures/clip_tokenizer.py`).

use serde_json::Value;
use storyreel_nn::clip_text::{CLIP_MAX_LENGTH, ClipTokenizer};
use storyreel_prompt_rewriter::PromptRewriterConfig;

const EOS: i64 = 49407;

#[test]
fn token_ids_and_counts_equal_the_references() {
    let path = PromptRewriterConfig::default().clip_tokenizer;
    assert!(
        path.is_file(),
        "the CLIP tokenizer is missing at {}: run `make models`",
        path.display()
    );
    let tokenizer = ClipTokenizer::from_file(&path).unwrap();
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/clip_tokenizer.json")).expect("the fixture parses");
    let prompts = fixture["prompts"].as_array().unwrap();
    assert!(prompts.len() >= 10);
    let mut truncated = 0;
    for prompt in prompts {
        let text = prompt["text"].as_str().unwrap();
        let reference: Vec<i64> = prompt["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(tokenizer.count_tokens(text).unwrap(), reference.len(), "{text:?}");
        // As the SD pipelines call it: truncated to 77 keeping EOS, padded with EOS.
        let mut expected = reference.clone();
        if expected.len() > CLIP_MAX_LENGTH {
            expected.truncate(CLIP_MAX_LENGTH - 1);
            expected.push(EOS);
            truncated += 1;
        }
        expected.resize(CLIP_MAX_LENGTH, EOS);
        assert_eq!(tokenizer.encode_ids(text).unwrap(), expected, "{text:?}");
    }
    assert!(truncated >= 1, "one prompt must exercise truncation");
}

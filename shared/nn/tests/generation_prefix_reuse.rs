//! Prefix reuse: a request that starts from the KV cache an earlier call left behind
//! decodes exactly what it decodes from scratch, alone and inside a padded batch.
//!
//! Fixtures: `scripts/fixtures/llm.py` (torch 2.13.0, transformers 5.23.0) wrote the tiny
//! random models in `tests/fixtures/{llama,qwen2}/tiny/` and transformers'
//! `generate(do_sample=False)` continuations (20 tokens) of one prompt alone
//! (`greedy_single`), of a shorter prompt alone (`greedy_short`) and of both in a
//! left-padded batch (`greedy_batch`); those continuations are the expected outputs here.

use std::{collections::HashMap, path::PathBuf};
use storyreel_nn::{
    DType, DeviceSpec,
    generation::{
        CachedPrefix, Detokenizer, GenerationError, GenerationRequest, NoStream, ReusingOutput, generate,
        generate_reusing,
    },
    llama::LlamaForCausalLM,
};
use tch::Tensor;

const MODELS: [&str; 2] = ["llama/tiny", "qwen2/tiny"];

fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference(name: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(fixture_dir(name).join("reference.safetensors"))
        .unwrap()
        .into_iter()
        .collect()
}

fn load(name: &str) -> LlamaForCausalLM {
    LlamaForCausalLM::load(fixture_dir(name), DeviceSpec::Cpu, DType::F32).unwrap()
}

fn ids(t: &Tensor) -> Vec<u32> {
    Vec::<i64>::try_from(t.flatten(0, -1))
        .unwrap()
        .into_iter()
        .map(|i| i as u32)
        .collect()
}

struct Words;
impl Detokenizer for Words {
    fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        Ok(ids.iter().map(|i| format!("t{i} ")).collect())
    }
}

/// (long prompt, its greedy continuation, short prompt, its greedy continuation)
fn prompts(r: &HashMap<String, Tensor>) -> (Vec<u32>, Vec<u32>, Vec<u32>, Vec<u32>) {
    (
        ids(&r["single_input_ids"]),
        ids(&r["greedy_single"]),
        ids(&r["batch_input_ids"].get(1).narrow(0, 5, 6)),
        ids(&r["greedy_short"]),
    )
}

fn run(
    model: &LlamaForCausalLM,
    requests: &[GenerationRequest],
    prefixes: &[Option<&CachedPrefix>],
) -> Vec<ReusingOutput> {
    generate_reusing(model, &Words, requests, prefixes, &mut NoStream).unwrap()
}

#[test]
fn a_prompt_extending_an_earlier_sequence_decodes_the_same_from_its_cache() {
    for name in MODELS {
        let model = load(name);
        let (prompt, greedy, ..) = prompts(&reference(name));
        // The first call feeds the prompt and 6 of its 7 output tokens.
        let first = run(&model, &[GenerationRequest::new(prompt.clone(), 7)], &[None]);
        assert_eq!(first[0].output.token_ids, greedy[..7], "{name}");
        assert_eq!(first[0].reused_prompt_tokens, 0);
        let cache = &first[0].cache;
        assert_eq!(cache.len(), prompt.len() + 6, "{name}");
        assert_eq!(cache.token_ids()[..prompt.len()], prompt[..]);
        assert!(cache.byte_size() > 0);

        // The next prompt is the first and 10 output tokens: 17 of its 21 come from the cache.
        let mut extended = prompt.clone();
        extended.extend_from_slice(&greedy[..10]);
        let second = run(&model, &[GenerationRequest::new(extended, 10)], &[Some(cache)]);
        assert_eq!(second[0].reused_prompt_tokens, prompt.len() + 6, "{name}");
        assert_eq!(
            second[0].output.token_ids,
            greedy[10..20],
            "{name}: reused decode"
        );
    }
}

#[test]
fn reused_and_fresh_rows_share_a_padded_batch() {
    for name in MODELS {
        let model = load(name);
        let r = reference(name);
        let (long, _, short, _) = prompts(&r);
        let want = &r["greedy_batch"];
        // A cache of the long prompt's first 7 tokens; one of a prompt that agrees with the
        // short one on 3 tokens only.
        let head = run(&model, &[GenerationRequest::new(long[..7].to_vec(), 1)], &[None]);
        let mut diverging = short[..3].to_vec();
        diverging.extend([short[3] ^ 1, short[4] ^ 1]);
        let other = run(&model, &[GenerationRequest::new(diverging, 1)], &[None]);
        assert_eq!(head[0].cache.len(), 7);

        let batch = [
            GenerationRequest::new(long.clone(), 20),
            GenerationRequest::new(short.clone(), 20),
        ];
        for prefixes in [
            [Some(&head[0].cache), None],
            [None, Some(&other[0].cache)],
            [Some(&head[0].cache), Some(&other[0].cache)],
        ] {
            let out = run(&model, &batch, &prefixes);
            let reused: Vec<usize> = out.iter().map(|o| o.reused_prompt_tokens).collect();
            let expected: Vec<usize> = prefixes.iter().map(|p| p.map_or(0, CachedPrefix::len)).collect();
            let expected = [expected[0], expected[1].min(3)];
            assert_eq!(reused, expected, "{name}");
            assert_eq!(
                out[0].output.token_ids,
                ids(&want.get(0)),
                "{name}: row 0 {reused:?}"
            );
            assert_eq!(
                out[1].output.token_ids,
                ids(&want.get(1)),
                "{name}: row 1 {reused:?}"
            );
            // each row's cache is its whole sequence but the last token
            for (o, prompt) in out.iter().zip([&long, &short]) {
                assert_eq!(o.cache.len(), prompt.len() + 19);
            }
        }
    }
}

#[test]
fn a_whole_prompt_in_the_cache_still_computes_its_last_token() {
    let model = load("llama/tiny");
    let (prompt, greedy, ..) = prompts(&reference("llama/tiny"));
    let mut longer = prompt.clone();
    longer.extend_from_slice(&greedy[..5]);
    let cached = run(&model, &[GenerationRequest::new(longer, 3)], &[None]);
    // the cache holds more than the prompt: all but the prompt's last token are reused
    let out = run(
        &model,
        &[GenerationRequest::new(prompt.clone(), 4)],
        &[Some(&cached[0].cache)],
    );
    assert_eq!(out[0].reused_prompt_tokens, prompt.len() - 1);
    assert_eq!(out[0].output.token_ids, greedy[..4]);
}

#[test]
fn plain_generate_equals_reuse_without_prefixes() {
    let model = load("qwen2/tiny");
    let (prompt, ..) = prompts(&reference("qwen2/tiny"));
    let req = [GenerationRequest::new(prompt, 12)];
    let plain = generate(&model, &Words, &req, &mut NoStream).unwrap();
    let reusing = run(&model, &req, &[None]);
    assert_eq!(plain[0], reusing[0].output);
}

#[test]
fn one_prefix_slot_per_request_is_required() {
    let model = load("llama/tiny");
    let (prompt, ..) = prompts(&reference("llama/tiny"));
    let req = [GenerationRequest::new(prompt, 2)];
    let err = generate_reusing(&model, &Words, &req, &[], &mut NoStream).unwrap_err();
    assert!(
        matches!(
            err,
            GenerationError::Invalid {
                field: "prefixes",
                ..
            }
        ),
        "{err}"
    );
}

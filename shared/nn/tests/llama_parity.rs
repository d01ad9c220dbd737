//! Parity of the Llama-family decoder with transformers on tiny random models.
//!
//! Fixtures: `scripts/fixtures/llm.py` (torch 2.13.0, transformers 5.23.0) wrote
//! `tests/fixtures/{llama,qwen2}/*/` — weights as `save_pretrained` writes them (the Qwen2 one
//! sharded), transformers' logits for one prompt and for a left-padded batch of two, and
//! `generate(do_sample=False)` continuations of 20 tokens.
//!
//! Checks: logits within 1e-4 relative (max |a - b| / max |b|) of transformers; greedy
//! continuations identical; a padded batch equal to the prompts run alone; KV-cache decoding
//! (token by token and in chunks) equal to full recomputation; strict loading of tied,
//! untied and sharded checkpoints.

use std::{collections::HashMap, path::PathBuf};
use storyreel_nn::{
    DType, DeviceSpec,
    generation::{Detokenizer, GenerationRequest, NoStream, generate},
    llama::{LlamaConfig, LlamaError, LlamaForCausalLM, weight_files},
};
use storyreel_test_support::relative_error;
use tch::{Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;
const MODELS: [&str; 5] = [
    "llama/tiny",
    "llama/rope_linear",
    "llama/rope_llama3",
    "llama/rope_dynamic",
    "qwen2/tiny",
];

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

/// Tiny vocabularies have no tokenizer: every id is its own "word".
struct Words;
impl Detokenizer for Words {
    fn detokenize(&self, ids: &[u32]) -> Result<String, String> {
        Ok(ids.iter().map(|i| format!("t{i} ")).collect())
    }
}

#[test]
fn logits_of_one_prompt_match_transformers() {
    for name in MODELS {
        let model = load(name);
        let r = reference(name);
        let got = model.forward(&r["single_input_ids"], None, None, None).unwrap();
        let err = relative_error(&got, &r["single_logits"]);
        eprintln!("{name}: single-prompt logits, relative error {err:.2e}");
        assert!(
            err <= TOLERANCE,
            "{name}: relative error {err:.2e} > {TOLERANCE:.0e}"
        );
    }
}

#[test]
fn logits_of_a_left_padded_batch_match_transformers() {
    for name in MODELS {
        let model = load(name);
        let r = reference(name);
        let mask = &r["batch_attention_mask"];
        let got = model
            .forward(
                &r["batch_input_ids"],
                Some(mask),
                Some(&r["batch_position_ids"]),
                None,
            )
            .unwrap();
        // also with the positions derived from the mask, as generate() does
        let derived = model
            .forward(&r["batch_input_ids"], Some(mask), None, None)
            .unwrap();
        assert_eq!(relative_error(&derived, &got), 0.0, "{name}");
        // padded positions are garbage in both implementations: compare real tokens only
        let real = mask.unsqueeze(-1).to_kind(Kind::Bool);
        let got = got.masked_select(&real);
        let want = r["batch_logits"].masked_select(&real);
        let err = relative_error(&got, &want);
        eprintln!("{name}: padded-batch logits, relative error {err:.2e}");
        assert!(
            err <= TOLERANCE,
            "{name}: relative error {err:.2e} > {TOLERANCE:.0e}"
        );
    }
}

#[test]
fn a_padded_batch_computes_what_each_prompt_computes_alone() {
    // dynamic RoPE is left out: its frequencies depend on the longest position in the call,
    // so batch rows are not independent (in transformers either)
    for name in MODELS.iter().filter(|n| !n.contains("dynamic")) {
        let model = load(name);
        let r = reference(name);
        let batch = model
            .forward(
                &r["batch_input_ids"],
                Some(&r["batch_attention_mask"]),
                None,
                None,
            )
            .unwrap();
        let long = model.forward(&r["single_input_ids"], None, None, None).unwrap();
        let short_ids = r["batch_input_ids"].get(1).narrow(0, 5, 6).unsqueeze(0);
        let short = model.forward(&short_ids, None, None, None).unwrap();
        let e0 = relative_error(&batch.get(0), &long.get(0));
        let e1 = relative_error(&batch.get(1).narrow(0, 5, 6), &short.get(0));
        eprintln!("{name}: padded vs alone, relative error {e0:.2e} / {e1:.2e}");
        assert!(e0 <= TOLERANCE && e1 <= TOLERANCE, "{name}: {e0:.2e} {e1:.2e}");
    }
}

#[test]
fn greedy_continuations_equal_transformers() {
    for name in MODELS {
        let model = load(name);
        let r = reference(name);
        let long = ids(&r["single_input_ids"]);
        let short = ids(&r["batch_input_ids"].get(1).narrow(0, 5, 6));
        let alone = |prompt: &Vec<u32>| {
            let req = GenerationRequest::new(prompt.clone(), 20);
            generate(&model, &Words, &[req], &mut NoStream)
                .unwrap()
                .remove(0)
                .token_ids
        };
        assert_eq!(alone(&long), ids(&r["greedy_single"]), "{name}: prompt 0");
        assert_eq!(alone(&short), ids(&r["greedy_short"]), "{name}: prompt 1");

        let batch = [
            GenerationRequest::new(long, 20),
            GenerationRequest::new(short, 20),
        ];
        let out = generate(&model, &Words, &batch, &mut NoStream).unwrap();
        let want = &r["greedy_batch"];
        assert_eq!(out[0].token_ids, ids(&want.get(0)), "{name}: batch row 0");
        assert_eq!(out[1].token_ids, ids(&want.get(1)), "{name}: batch row 1");
    }
}

#[test]
fn kv_cache_decoding_equals_full_recomputation() {
    // dynamic RoPE is left out: cached keys keep the base they were rotated with while a full
    // recomputation rotates every key with the latest base (transformers behaves the same;
    // its greedy continuation, made with a cache, is matched above)
    for name in MODELS.iter().filter(|n| !n.contains("dynamic")) {
        let model = load(name);
        let r = reference(name);
        let prompt = &r["single_input_ids"];
        let all = Tensor::cat(&[prompt, &r["greedy_single"]], 1);
        let total = all.size()[1];
        let full = model.forward(&all, None, None, None).unwrap();

        // prefill, then one token at a time
        let mut cache = model.new_cache(1, 4); // too small on purpose: the cache grows
        let p = prompt.size()[1];
        let mut steps = vec![model.forward(prompt, None, None, Some(&mut cache)).unwrap()];
        for i in p..total {
            steps.push(
                model
                    .forward(&all.narrow(1, i, 1), None, None, Some(&mut cache))
                    .unwrap(),
            );
        }
        assert_eq!(cache.len() as i64, total);
        let err = relative_error(&Tensor::cat(&steps, 1), &full);
        eprintln!("{name}: token-by-token cache vs full, relative error {err:.2e}");
        assert!(err <= TOLERANCE, "{name}: {err:.2e}");

        // chunks of 7 (several new tokens after cached ones: the explicit-mask path)
        let mut cache = model.new_cache(1, total as usize);
        let chunks: Vec<Tensor> = (0..total)
            .step_by(7)
            .map(|s| {
                let len = 7.min(total - s);
                model
                    .forward(&all.narrow(1, s, len), None, None, Some(&mut cache))
                    .unwrap()
            })
            .collect();
        let err = relative_error(&Tensor::cat(&chunks, 1), &full);
        assert!(err <= TOLERANCE, "{name}: chunked {err:.2e}");
    }
}

#[test]
fn kv_cache_decoding_of_a_padded_batch_equals_full_recomputation() {
    let name = "qwen2/tiny";
    let model = load(name);
    let r = reference(name);
    let all = Tensor::cat(&[&r["batch_input_ids"], &r["greedy_batch"]], 1);
    let mask = Tensor::cat(&[&r["batch_attention_mask"], &r["greedy_batch"].ones_like()], 1);
    let full = model.forward(&all, Some(&mask), None, None).unwrap();
    let p = r["batch_input_ids"].size()[1];
    let total = all.size()[1];
    let mut cache = model.new_cache(2, total as usize);
    let mut steps = vec![
        model
            .forward(
                &all.narrow(1, 0, p),
                Some(&mask.narrow(1, 0, p)),
                None,
                Some(&mut cache),
            )
            .unwrap(),
    ];
    for i in p..total {
        let step_mask = mask.narrow(1, 0, i + 1);
        steps.push(
            model
                .forward(&all.narrow(1, i, 1), Some(&step_mask), None, Some(&mut cache))
                .unwrap(),
        );
    }
    let real = mask.unsqueeze(-1).to_kind(Kind::Bool);
    let got = Tensor::cat(&steps, 1).masked_select(&real);
    let err = relative_error(&got, &full.masked_select(&real));
    eprintln!("{name}: padded batch, cache vs full, relative error {err:.2e}");
    assert!(err <= TOLERANCE, "{err:.2e}");
}

#[test]
fn tied_untied_and_sharded_checkpoints_load_strictly() {
    let tied = fixture_dir("llama/tiny");
    assert_eq!(weight_files(&tied).unwrap(), vec![tied.join("model.safetensors")]);
    let sharded = weight_files(&fixture_dir("qwen2/tiny")).unwrap();
    assert_eq!(sharded.len(), 2, "{sharded:?}");

    // a tied checkpoint read as untied misses lm_head.weight: an error naming it
    let mut config = LlamaConfig::from_file(tied.join("config.json")).unwrap();
    config.tie_word_embeddings = false;
    let err = LlamaForCausalLM::load_files(
        config,
        &[tied.join("model.safetensors")],
        DeviceSpec::Cpu,
        DType::F32,
    )
    .unwrap_err();
    assert!(matches!(err, LlamaError::Weights(_)), "{err}");
    assert!(err.to_string().contains("lm_head.weight"), "{err}");

    // an untied checkpoint read as tied has an unexpected lm_head.weight
    let untied = fixture_dir("llama/rope_linear");
    let mut config = LlamaConfig::from_file(untied.join("config.json")).unwrap();
    config.tie_word_embeddings = true;
    let err = LlamaForCausalLM::load_files(
        config,
        &[untied.join("model.safetensors")],
        DeviceSpec::Cpu,
        DType::F32,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("unexpected") && err.to_string().contains("lm_head.weight"),
        "{err}"
    );

    // Qwen2 without its biases would leave q/k/v bias unexpected
    let qwen = fixture_dir("qwen2/tiny");
    let mut config = LlamaConfig::from_file(qwen.join("config.json")).unwrap();
    config.qkv_bias = false;
    let err = LlamaForCausalLM::load_files(config, &sharded, DeviceSpec::Cpu, DType::F32).unwrap_err();
    assert!(err.to_string().contains("self_attn.q_proj.bias"), "{err}");

    let missing = LlamaForCausalLM::load(fixture_dir("llama"), DeviceSpec::Cpu, DType::F32).unwrap_err();
    assert!(missing.to_string().contains("config.json"), "{missing}");
}

#[test]
fn half_precision_runs_close_to_f32() {
    let name = "llama/tiny";
    let r = reference(name);
    for dtype in [DType::Bf16, DType::F16] {
        let model = LlamaForCausalLM::load(fixture_dir(name), DeviceSpec::Cpu, dtype).unwrap();
        assert_eq!(model.kind(), dtype.kind());
        let got = model.forward(&r["single_input_ids"], None, None, None).unwrap();
        assert_eq!(got.kind(), dtype.kind());
        let err = relative_error(&got, &r["single_logits"]);
        eprintln!("{name}: {dtype:?} logits vs transformers f32, relative error {err:.2e}");
        assert!(err < 5e-2, "{dtype:?}: {err:.2e}");
    }
}

#[test]
fn bad_inputs_are_errors_naming_the_input() {
    let model = load("llama/tiny");
    let ids = Tensor::from_slice(&[3i64, 4, 5]).view([1, 3]);
    let floats = ids.to_kind(Kind::Float);
    let err = model.forward(&floats, None, None, None).unwrap_err().to_string();
    assert!(err.contains("`input_ids` must be int64"), "{err}");
    let err = model
        .forward(&ids.view([3]), None, None, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`input_ids` must be (batch, seq)"), "{err}");
    let mask = Tensor::ones([1, 4], (Kind::Int64, Device::Cpu));
    let err = model
        .forward(&ids, Some(&mask), None, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`attention_mask` must be (batch, cached + new) = (1, 3)"),
        "{err}"
    );
    let mut cache = model.new_cache(2, 8);
    let err = model
        .forward(&ids, None, None, Some(&mut cache))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`cache` holds 2 rows"), "{err}");
    let out_of_vocab = Tensor::from_slice(&[300i64]).view([1, 1]);
    assert!(model.forward(&out_of_vocab, None, None, None).is_err());
}

#[test]
fn models_and_caches_can_move_to_a_worker_thread() {
    fn send<T: Send>() {}
    send::<LlamaForCausalLM>();
    send::<storyreel_nn::llama::KvCache>();
    let model = load("llama/tiny");
    let handle = std::thread::spawn(move || model.config().vocab_size);
    assert_eq!(handle.join().unwrap(), 256);
}

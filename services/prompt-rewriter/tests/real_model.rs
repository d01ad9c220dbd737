//! prompt-rewriter over gRPC on 127.0.0.1:0 with the real SmolLM2-135M-Instruct weights
//! and the real CLIP tokenizer (from open_clip_torch's BPE vocabulary, `make models`).

mod common;

use std::collections::HashSet;
use storyreel_nn::clip_text::ClipTokenizer;
use storyreel_proto::{
    common::{SamplingParams, Scene},
    prompt_rewriter::{KeywordsRequest, RewriteRequest, RewriteResponse},
};
use tonic::Code;

const TITLE: &str = "Eight Great Wonders of the China and World (4 each)";

/// Scenes of the kind story-llm writes for the title.
const SCENES: [&str; 4] = [
    "The Great Wall of China winds for thousands of miles over misty green mountains.",
    "The Forbidden City in Beijing glows with red walls and golden roofs at sunset.",
    "The pyramids of Giza rise from the desert sand under a clear blue sky.",
    "The Colosseum in Rome stands as a giant stone ring of arches in the old city.",
];

fn scenes(n: usize) -> Vec<Scene> {
    SCENES[..n]
        .iter()
        .enumerate()
        .map(|(i, text)| Scene {
            index: i as u32,
            text: text.to_string(),
        })
        .collect()
}

fn rewrite(n: usize, seed: u64, max_clip_tokens: Option<u32>) -> RewriteRequest {
    RewriteRequest {
        title: TITLE.into(),
        scenes: scenes(n),
        seed: Some(seed),
        max_clip_tokens,
        sampling: Some(SamplingParams {
            max_new_tokens: Some(32),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn clip() -> ClipTokenizer {
    ClipTokenizer::from_file(common::config().clip_tokenizer).unwrap()
}

/// Every prompt and negative prompt within `budget` by an independent count.
fn assert_within(response: &RewriteResponse, budget: u32, clip: &ClipTokenizer) {
    for p in &response.prompts {
        assert!(!p.prompt.trim().is_empty(), "{p:?}");
        assert!(!p.negative_prompt.trim().is_empty(), "{p:?}");
        let prompt_tokens = clip.count_tokens(&p.prompt).unwrap() as u32;
        let negative_tokens = clip.count_tokens(&p.negative_prompt).unwrap() as u32;
        assert_eq!(p.prompt_clip_tokens, prompt_tokens, "{p:?}");
        assert_eq!(p.negative_prompt_clip_tokens, negative_tokens, "{p:?}");
        assert!(
            prompt_tokens <= budget,
            "{prompt_tokens} > {budget}: {:?}",
            p.prompt
        );
        assert!(
            negative_tokens <= budget,
            "{negative_tokens} > {budget}: {:?}",
            p.negative_prompt
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_stay_within_the_clip_limit() {
    let mut server = common::start().await;
    let clip = clip();
    let response = server
        .client
        .rewrite(rewrite(3, 7, None))
        .await
        .expect("prompts")
        .into_inner();
    eprintln!("{:#?}", response.prompts);
    assert_eq!(response.prompts.len(), 3);
    for (i, p) in response.prompts.iter().enumerate() {
        assert_eq!(p.scene_index, i as u32);
        let attributes = p.attributes.as_ref().expect("attributes");
        for list in [
            &attributes.visual_elements,
            &attributes.colour_scheme,
            &attributes.shapes,
            &attributes.categories,
        ] {
            assert!(list.len() <= 16);
            for entry in list {
                assert!((1..=64).contains(&entry.chars().count()), "{entry:?}");
                assert_eq!(entry, &entry.to_lowercase());
            }
        }
    }
    assert_within(&response, 77, &clip);
    let model = response.model.expect("model info");
    assert_eq!(model.name, "smollm2-135m-instruct");
    assert_eq!(model.weights_sha256.len(), 64);
    assert!(response.usage.expect("usage").generated_tokens > 0);

    // A tight budget cuts every prompt and the negative prompt to it.
    let tight = server
        .client
        .rewrite(rewrite(1, 7, Some(16)))
        .await
        .expect("prompts")
        .into_inner();
    eprintln!("{:#?}", tight.prompts);
    assert_within(&tight, 16, &clip);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_output() {
    let mut server = common::start().await;
    let first = server
        .client
        .rewrite(rewrite(1, 11, None))
        .await
        .unwrap()
        .into_inner();
    let second = server
        .client
        .rewrite(rewrite(1, 11, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.prompts, second.prompts);
    assert_eq!(first.seed, 11);

    let keywords = |seed| KeywordsRequest {
        prompts: vec![Scene {
            index: 0,
            text: first.prompts[0].prompt.clone(),
        }],
        seed: Some(seed),
        ..Default::default()
    };
    let a = server.client.keywords(keywords(5)).await.unwrap().into_inner();
    let b = server.client.keywords(keywords(5)).await.unwrap().into_inner();
    assert_eq!(a.keywords, b.keywords);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keywords_are_short_distinct_search_terms() {
    let mut server = common::start().await;
    let prompts: Vec<Scene> = scenes(3);
    let response = server
        .client
        .keywords(KeywordsRequest {
            prompts: prompts.clone(),
            max_keywords: Some(6),
            seed: Some(3),
            ..Default::default()
        })
        .await
        .expect("keywords")
        .into_inner();
    eprintln!("{:#?}", response.keywords);
    assert_eq!(response.keywords.len(), 3);
    for (scene, prompt) in response.keywords.iter().zip(&prompts) {
        assert_eq!(scene.scene_index, prompt.index);
        assert!((1..=6).contains(&scene.keywords.len()), "{scene:?}");
        let distinct: HashSet<&String> = scene.keywords.iter().collect();
        assert_eq!(distinct.len(), scene.keywords.len(), "{scene:?}");
        for keyword in &scene.keywords {
            assert!((1..=64).contains(&keyword.chars().count()), "{keyword:?}");
            assert_eq!(keyword, &keyword.to_lowercase());
        }
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_invalid_argument_naming_the_field() {
    let mut server = common::start().await;
    let cases: Vec<(RewriteRequest, &str)> = vec![
        (
            RewriteRequest {
                title: String::new(),
                ..rewrite(1, 1, None)
            },
            "`title`",
        ),
        (
            RewriteRequest {
                title: "t".repeat(501),
                ..rewrite(1, 1, None)
            },
            "`title`",
        ),
        (
            RewriteRequest {
                scenes: vec![],
                ..rewrite(1, 1, None)
            },
            "`scenes`",
        ),
        (
            RewriteRequest {
                scenes: (0..9)
                    .map(|i| Scene {
                        index: i % 8,
                        text: "x".into(),
                    })
                    .collect(),
                ..rewrite(1, 1, None)
            },
            "`scenes`",
        ),
        (rewrite(1, 1, Some(78)), "`max_clip_tokens`"),
    ];
    for (request, field) in cases {
        let status = server.client.rewrite(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(field), "{field}: {}", status.message());
    }
    let status = server
        .client
        .keywords(KeywordsRequest {
            prompts: scenes(1),
            max_keywords: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("`max_keywords`"),
        "{}",
        status.message()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_stops_decoding_within_one_step() {
    use std::time::{Duration, Instant};
    use storyreel_llm::WorkerStats;
    let server = common::start().await;
    let stats = server.service.stats();
    let get = |c: &std::sync::atomic::AtomicU64| WorkerStats::get(c);
    let (cancelled_before, after_before) = (get(&stats.cancelled_sequences), get(&stats.tokens_after_cancel));
    let tokens_before = get(&stats.generated_tokens);
    let mut client = server.client.clone();
    let call = tokio::spawn(async move { client.rewrite(rewrite(2, 3, None)).await });
    // Cancel once decoding is under way: the client drops the call.
    let until = Instant::now() + Duration::from_secs(120);
    while get(&stats.generated_tokens) == tokens_before {
        assert!(Instant::now() < until, "decoding never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    call.abort();
    let until = Instant::now() + Duration::from_secs(60);
    while get(&stats.cancelled_sequences) == cancelled_before {
        assert!(Instant::now() < until, "the server never saw the cancellation");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Decoding stops: the batch under way ends (its other sequences see the cancellation
    // at their next token), and no other batch starts.
    let until = Instant::now() + Duration::from_secs(60);
    while get(&stats.finished_batches) < get(&stats.batches) {
        assert!(Instant::now() < until, "decoding went on after the cancellation");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let batches = get(&stats.batches);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get(&stats.batches),
        batches,
        "a batch started after the cancellation"
    );
    // No sequence of the call decoded more than one token past the step that saw the
    // cancellation.
    let cancelled = get(&stats.cancelled_sequences) - cancelled_before;
    let after = get(&stats.tokens_after_cancel) - after_before;
    eprintln!("{cancelled} sequences cancelled, {after} tokens decoded after the cancellation");
    assert!(
        after <= cancelled,
        "{after} tokens after cancelling {cancelled} sequences"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_and_describes_the_service() {
    let server = common::start().await;
    let endpoint = server.endpoint().to_string();
    storyreel_test_support::check_reflection(
        &endpoint,
        storyreel_prompt_rewriter::SERVICE_NAME,
        &["Rewrite", "Keywords"],
    )
    .await;
    server.shutdown().await;
}

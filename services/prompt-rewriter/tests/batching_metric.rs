//! 8 concurrent prompt-rewriter calls over gRPC, real SmolLM2: all are answered, and the
//! batching shows in the Prometheus metric `storyreel_llm_batch_size` scraped from the
//! telemetry endpoint (its own test binary: telemetry installs process-wide globals).

mod common;

use std::time::Instant;
use storyreel_proto::{common::Scene, prompt_rewriter::KeywordsRequest};
use storyreel_runtime::telemetry::{self, TelemetryConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROMPTS: [&str; 8] = [
    "The Great Wall of China over misty green mountains at dawn",
    "The Forbidden City with red walls and golden roofs at sunset",
    "The Terracotta Army in long rows of clay soldiers",
    "The Temple of Heaven with a round blue roof in a park",
    "The pyramids of Giza in golden desert sand under a blue sky",
    "The Colosseum in Rome, a stone ring of arches",
    "Machu Picchu on a green mountain ridge above the clouds",
    "The Taj Mahal, white marble domes reflected in a long pool",
];

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("metrics endpoint");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

/// The value of the prompt-rewriter's `storyreel_llm_batch_size<suffix>` series whose
/// labels contain `labels`.
fn sample(metrics: &str, suffix: &str, labels: &str) -> Option<f64> {
    let name = format!("storyreel_llm_batch_size{suffix}{{");
    metrics
        .lines()
        .find(|l| l.starts_with(&name) && l.contains("worker=\"prompt-rewriter\"") && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_requests_are_batched_and_answered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let _telemetry = telemetry::init(
        "prompt-rewriter",
        "test",
        &TelemetryConfig {
            metrics_listen: Some(port),
            ..Default::default()
        },
    )
    .expect("telemetry");
    let server = common::start().await;
    let started = Instant::now();
    let calls = PROMPTS.iter().enumerate().map(|(i, prompt)| {
        let mut client = server.client.clone();
        let request = KeywordsRequest {
            prompts: vec![Scene {
                index: 0,
                text: prompt.to_string(),
            }],
            seed: Some(i as u64),
            ..Default::default()
        };
        tokio::spawn(async move { client.keywords(request).await })
    });
    let responses = futures::future::join_all(calls).await;
    for response in responses {
        let keywords = response.unwrap().expect("an answer").into_inner();
        assert!(!keywords.keywords[0].keywords.is_empty());
    }
    eprintln!(
        "8 concurrent keyword calls in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The histogram: one sample per `generate` call; batches of one fall in `le="1"`.
    let metrics = scrape(port).await;
    let (Some(batches), Some(singles), Some(sequences)) = (
        sample(&metrics, "_count", ""),
        sample(&metrics, "_bucket", "le=\"1\""),
        sample(&metrics, "_sum", ""),
    ) else {
        panic!("no storyreel_llm_batch_size histogram for prompt-rewriter in:\n{metrics}");
    };
    eprintln!("{sequences} sequences in {batches} batches, {singles} of size 1");
    assert!(sequences >= 8.0, "{sequences}");
    assert!(
        singles < batches,
        "nothing was batched: every one of {batches} batches had size 1"
    );
    assert!(batches < sequences, "{batches} batches for {sequences} sequences");
    let stats = server.service.stats();
    assert_eq!(storyreel_llm::WorkerStats::get(&stats.batches) as f64, batches);
    server.shutdown().await;
}

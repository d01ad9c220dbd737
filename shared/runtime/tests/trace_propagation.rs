//! One trace across two in-process tonic hops, exported over OTLP to a fake collector
//! (crate fake-opentelemetry-collector), and the Prometheus endpoint counting the calls.
//! Telemetry is process-global, so this file is its own test binary with one test.

mod common;

use common::{TestService, start};
use fake_opentelemetry_collector::FakeCollectorServer;
use opentelemetry::trace::TraceContextExt;
use std::time::Duration;
use storyreel_proto::prompt_rewriter::{
    RewriteRequest, prompt_rewriter_service_client::PromptRewriterServiceClient,
};
use storyreel_runtime::{
    ServerConfig,
    client::{ClientInterceptor, channel},
    telemetry::{TelemetryConfig, init},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const REWRITE: &str = "/storyreel.prompt_rewriter.v1.PromptRewriterService/Rewrite";
const KEYWORDS: &str = "/storyreel.prompt_rewriter.v1.PromptRewriterService/Keywords";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    stream.read_to_string(&mut body).await.unwrap();
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_id_across_two_hops_reaches_the_collector() {
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let metrics_addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let config = TelemetryConfig {
        otlp_endpoint: Some(collector.endpoint()),
        metrics_listen: Some(metrics_addr),
        log_filter: "info".into(),
        ..Default::default()
    };
    let telemetry = init("runtime-test", "0.0.0", &config).unwrap();

    let downstream = start(TestService::default(), ServerConfig::default(), true).await;
    let upstream_service = TestService {
        downstream: Some(downstream.client_config()),
        ..Default::default()
    };
    let upstream = start(upstream_service, ServerConfig::default(), true).await;

    let root = tracing::info_span!("test.root");
    let root_trace_id = root.context().span().span_context().trace_id().to_string();
    let client_config = upstream.client_config();
    async {
        let mut client = PromptRewriterServiceClient::with_interceptor(
            channel(&client_config).unwrap(),
            ClientInterceptor::new(&client_config),
        );
        client.rewrite(RewriteRequest::default()).await.unwrap();
    }
    .instrument(root)
    .await;

    telemetry.flush();
    let spans = collector.exported_spans(3, Duration::from_secs(10)).await;
    let find = |name: &str| {
        spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
            panic!(
                "no span {name} in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
    };
    let rewrite = find(REWRITE);
    let keywords = find(KEYWORDS);
    let root = find("test.root");
    assert_eq!(root.trace_id, root_trace_id);
    assert_eq!(
        rewrite.trace_id, root_trace_id,
        "hop 1 is not in the caller's trace"
    );
    assert_eq!(
        keywords.trace_id, root_trace_id,
        "hop 2 is not in the caller's trace"
    );
    assert_eq!(rewrite.parent_span_id, root.span_id);
    // Hop 2's parent is hop 1's server span: the context came through gRPC metadata.
    assert_eq!(keywords.parent_span_id, rewrite.span_id);
    assert_eq!(rewrite.kind, "SPAN_KIND_SERVER");

    let metrics = scrape(metrics_addr).await;
    let counted = metrics.lines().any(|line| {
        line.starts_with("storyreel_grpc_requests_total")
            && line.contains(&format!("method=\"{KEYWORDS}\""))
            && line.contains("code=\"0\"")
            && line.contains("service=\"runtime-test\"")
    });
    assert!(counted, "no request counter for {KEYWORDS} in:\n{metrics}");
    assert!(
        metrics.contains("storyreel_grpc_request_duration_seconds"),
        "{metrics}"
    );

    upstream.shutdown().await.unwrap();
    downstream.shutdown().await.unwrap();
    drop(telemetry);
    collector.abort();
}

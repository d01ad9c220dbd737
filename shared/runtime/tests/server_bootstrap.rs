//! The gRPC server bootstrap on a real port-0 listener: health and readiness, reflection,
//! the load-shedding concurrency limit, the request timeout, and graceful shutdown that
//! finishes an in-flight call.

mod common;

use common::{SERVICE_NAME, TestService, client, raw_channel, start};
use std::time::Duration;
use storyreel_proto::prompt_rewriter::{KeywordsRequest, RewriteRequest};
use storyreel_runtime::ServerConfig;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

async fn health_status(endpoint: &str, service: &str) -> ServingStatus {
    let mut health = HealthClient::new(raw_channel(endpoint).await);
    let response = health
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .unwrap();
    response.into_inner().status()
}

#[tokio::test]
async fn health_follows_readiness_and_reflection_lists_services() {
    let server = start(TestService::default(), ServerConfig::default(), false).await;
    let endpoint = server.endpoint();
    assert_eq!(health_status(&endpoint, "").await, ServingStatus::NotServing);
    assert_eq!(
        health_status(&endpoint, SERVICE_NAME).await,
        ServingStatus::NotServing
    );
    server.health.set_ready(true).await;
    assert_eq!(health_status(&endpoint, "").await, ServingStatus::Serving);
    assert_eq!(
        health_status(&endpoint, SERVICE_NAME).await,
        ServingStatus::Serving
    );

    let mut reflection = ServerReflectionClient::new(raw_channel(&endpoint).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response: {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        SERVICE_NAME,
        "storyreel.keyframe.v1.KeyframeService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    // Reflection also serves the file that declares a symbol (what grpcurl uses).
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(SERVICE_NAME.to_string())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    assert!(matches!(
        response.message_response,
        Some(MessageResponse::FileDescriptorResponse(_))
    ));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_in_flight_call() {
    let service = TestService {
        delay: Duration::from_millis(600),
        ..Default::default()
    };
    let server = start(service, ServerConfig::default(), true).await;
    let endpoint = server.endpoint();
    let mut rewriter = client(&endpoint).await;
    let in_flight = tokio::spawn(async move { rewriter.rewrite(RewriteRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(150)).await; // the call is now being handled

    let started = std::time::Instant::now();
    server.shutdown().await.unwrap();
    let response = in_flight.await.unwrap().expect("the in-flight call completes");
    assert_eq!(response.into_inner().seed, 42);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "shutdown did not wait for the call"
    );

    // After shutdown nothing listens any more.
    let refused = tonic::transport::Endpoint::from_shared(endpoint)
        .unwrap()
        .connect()
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn shutdown_grace_bounds_the_wait() {
    let service = TestService {
        delay: Duration::from_secs(30),
        ..Default::default()
    };
    let config = ServerConfig {
        shutdown_grace_ms: 200,
        ..Default::default()
    };
    let server = start(service, config, true).await;
    let mut rewriter = client(&server.endpoint()).await;
    let in_flight = tokio::spawn(async move { rewriter.rewrite(RewriteRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    server.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    in_flight.abort();
}

#[tokio::test]
async fn over_the_concurrency_limit_calls_are_shed_and_health_still_answers() {
    let service = TestService {
        delay: Duration::from_millis(800),
        ..Default::default()
    };
    let config = ServerConfig {
        concurrency_limit: 1,
        ..Default::default()
    };
    let server = start(service, config, true).await;
    let endpoint = server.endpoint();
    let mut first = client(&endpoint).await;
    let in_flight = tokio::spawn(async move { first.rewrite(RewriteRequest::default()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut second = client(&endpoint).await;
    let status = second.rewrite(RewriteRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("server.concurrency_limit"),
        "{}",
        status.message()
    );
    assert_eq!(health_status(&endpoint, "").await, ServingStatus::Serving);

    in_flight.await.unwrap().unwrap();
    // The slot is free again.
    second.rewrite(RewriteRequest::default()).await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_request_timeout_cuts_a_slow_call() {
    let service = TestService {
        delay: Duration::from_secs(10),
        ..Default::default()
    };
    let config = ServerConfig {
        request_timeout_ms: 200,
        ..Default::default()
    };
    let server = start(service, config, true).await;
    let mut rewriter = client(&server.endpoint()).await;
    let started = std::time::Instant::now();
    let status = rewriter.rewrite(RewriteRequest::default()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded),
        "{status:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let config = ServerConfig {
        max_message_bytes: 1024,
        ..Default::default()
    };
    let server = start(TestService::default(), config, true).await;
    let mut rewriter = client(&server.endpoint()).await;
    let request = RewriteRequest {
        title: "x".repeat(4096),
        ..Default::default()
    };
    let status = rewriter.rewrite(request).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn calls_are_counted_and_timed_when_their_response_ends_with_its_code() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.01, 0.1, 1.0, 10.0])
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    // the server, its connections and the client all run on this thread
    let _local = metrics::set_default_local_recorder(&recorder);
    let service = TestService {
        delay: Duration::from_secs(10),
        ..Default::default()
    };
    let config = ServerConfig {
        request_timeout_ms: 200,
        ..Default::default()
    };
    let server = start(service, config, true).await;
    let mut rewriter = client(&server.endpoint()).await;
    rewriter.keywords(KeywordsRequest::default()).await.unwrap();
    rewriter.rewrite(RewriteRequest::default()).await.unwrap_err();
    let method = |name: &str| format!("/storyreel.prompt_rewriter.v1.PromptRewriterService/{name}");
    let until = std::time::Instant::now() + Duration::from_secs(5);
    let rendered = loop {
        let rendered = handle.render();
        let keywords_done = rendered.contains(&format!(
            "storyreel_grpc_requests_total{{method=\"{}\",code=\"0\"}} 1",
            method("Keywords")
        ));
        // the server's timeout answers DEADLINE_EXCEEDED (4) or CANCELLED (1)
        let rewrite_done = ["4", "1"].iter().any(|code| {
            rendered.contains(&format!(
                "storyreel_grpc_requests_total{{method=\"{}\",code=\"{code}\"}} 1",
                method("Rewrite")
            ))
        });
        if keywords_done && rewrite_done {
            break rendered;
        }
        assert!(std::time::Instant::now() < until, "not recorded:\n{rendered}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // latency is a histogram (buckets), so replicas' figures can be summed
    assert!(
        rendered.contains("storyreel_grpc_request_duration_seconds_bucket{"),
        "{rendered}"
    );
    server.shutdown().await.unwrap();
}

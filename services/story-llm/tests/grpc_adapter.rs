//! The gRPC adapter over a real server on 127.0.0.1:0, started by `run`: validation,
//! error codes, the event stream, deadlines, cancellation, readiness.
//!
//! The `StoryLlm` here is a MOCK FOR ADAPTER TESTS ONLY: it replays scripted events or
//! errors and records what it was asked. It generates nothing; these tests check the
//! adapter's plumbing, not stories (the model-backed tests use the real weights).

use futures::StreamExt;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};
use storyreel_proto::{
    common::{self, JobContext, SamplingParams},
    story_llm::{
        GenerateRequest, GenerateResponse, GenerateStreamRequest, GenerateStreamResponse, SceneEvent,
        TokenEvent, generate_stream_response::Event, story_llm_service_client::StoryLlmServiceClient,
    },
};
use storyreel_story_llm::{
    ModelState, SERVICE_NAME, Story, StoryEvent, StoryLlm, StoryLlmConfig, StoryLlmError, StoryLlmStage,
    StoryRequest,
    parsing::validate_scene_set,
    service::{ModelInfo, SceneDone, StageStats, StoryEventStream, StoryProgress, TokenPiece, TokenUsage},
};
use storyreel_test_support::TestServer;
use tokio::sync::watch;
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

// ---------------------------------------------------------------------------------------
// The mock (adapter tests only).

/// What the mock does when called.
#[derive(Clone)]
enum Script {
    /// Streams these events, then ends.
    Events(Vec<StoryEvent>),
    /// Streams these events, then fails with the error.
    EventsThenError(Vec<StoryEvent>, fn() -> StoryLlmError),
    /// Streams these events, then never yields again (a model still decoding).
    EventsThenHang(Vec<StoryEvent>),
    /// Refuses the call before any event.
    Fail(fn() -> StoryLlmError),
}

/// MOCK `StoryLlm` for the adapter tests: replays a [`Script`], records requests, and
/// notes when the adapter drops its stream (the cancellation path).
struct MockStoryLlm {
    script: Script,
    requests: Mutex<Vec<StoryRequest>>,
    stream_dropped: Arc<AtomicBool>,
    state: watch::Sender<ModelState>,
}

impl MockStoryLlm {
    fn new(script: Script) -> Arc<Self> {
        Arc::new(Self {
            script,
            requests: Mutex::default(),
            stream_dropped: Arc::default(),
            state: watch::Sender::new(ModelState::Ready(model())),
        })
    }

    fn requests(&self) -> Vec<StoryRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// Sets its flag when dropped; travels inside the mock's stream.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl StoryLlm for MockStoryLlm {
    async fn generate_stream(&self, request: StoryRequest) -> Result<StoryEventStream, StoryLlmError> {
        self.requests.lock().unwrap().push(request);
        let (events, tail): (Vec<StoryEvent>, Tail) = match self.script.clone() {
            Script::Fail(err) => return Err(err()),
            Script::Events(events) => (events, Tail::End),
            Script::EventsThenError(events, err) => (events, Tail::Error(err)),
            Script::EventsThenHang(events) => (events, Tail::Hang),
        };
        let guard = DropFlag(self.stream_dropped.clone());
        let head = futures::stream::iter(events.into_iter().map(Ok));
        let tail = futures::stream::once(async move {
            let _guard = guard;
            match tail {
                Tail::End => None,
                Tail::Error(err) => Some(Err(err())),
                Tail::Hang => std::future::pending().await,
            }
        })
        .filter_map(|item| async move { item });
        Ok(head.chain(tail).boxed())
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.state.subscribe()
    }
}

enum Tail {
    End,
    Error(fn() -> StoryLlmError),
    Hang,
}

fn model() -> ModelInfo {
    ModelInfo {
        name: "smollm2-135m-instruct".into(),
        version: "test".into(),
        weights_sha256: "0".repeat(64),
        components: vec![],
        random_init: false,
    }
}

fn story(scenes: &[&str]) -> Story {
    Story {
        scenes: scenes.iter().map(|s| s.to_string()).collect(),
        model: model(),
        usage: TokenUsage {
            prompt_tokens: 120,
            generated_tokens: 40,
            reused_prompt_tokens: 90,
        },
        seed: 7,
        attempts: 2,
        stats: StageStats {
            cache_hit: false,
            queue_time: Duration::from_millis(5),
            compute_time: Duration::from_millis(1500),
        },
    }
}

fn token(attempt: u32, scene_index: u32, token_id: u32, text: &str) -> StoryEvent {
    StoryEvent::Token(TokenPiece {
        attempt,
        scene_index,
        token_id,
        text: text.into(),
    })
}

fn scene(attempt: u32, index: u32, text: &str) -> StoryEvent {
    StoryEvent::Scene(SceneDone {
        attempt,
        index,
        text: text.into(),
    })
}

fn progress(scenes_done: u32, n_scenes: u32) -> StoryEvent {
    StoryEvent::Progress(StoryProgress {
        scenes_done,
        n_scenes,
        message: format!("scene {scenes_done} of {n_scenes}"),
    })
}

// ---------------------------------------------------------------------------------------
// The server.

struct Running {
    server: TestServer,
}

impl Running {
    async fn client(&self) -> StoryLlmServiceClient<Channel> {
        StoryLlmServiceClient::connect(self.server.endpoint.clone())
            .await
            .unwrap()
    }

    async fn health(&self, service: &str) -> ServingStatus {
        let channel = Channel::from_shared(self.server.endpoint.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    }

    async fn shutdown(self) {
        tokio::time::timeout(Duration::from_secs(10), self.server.shutdown())
            .await
            .expect("the server stops");
    }
}

async fn start(service: Arc<dyn StoryLlm>) -> Running {
    Running {
        server: TestServer::stage::<StoryLlmStage>(StoryLlmConfig::default(), service).await,
    }
}

fn generate(title: &str, n_scenes: Option<u32>) -> GenerateRequest {
    GenerateRequest {
        title: title.into(),
        n_scenes,
        ..Default::default()
    }
}

fn generate_stream(title: &str, n_scenes: Option<u32>) -> GenerateStreamRequest {
    GenerateStreamRequest {
        title: title.into(),
        n_scenes,
        ..Default::default()
    }
}

/// Polls `check` for up to 5 s.
async fn eventually(mut check: impl AsyncFnMut() -> bool, what: &str) {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

// ---------------------------------------------------------------------------------------
// Tests.

#[tokio::test]
async fn bad_input_is_invalid_argument_naming_the_field_and_limit() {
    let mock = MockStoryLlm::new(Script::Events(vec![]));
    let server = start(mock.clone()).await;
    let mut client = server.client().await;
    let long_title = "x".repeat(501);
    let cases = [
        (
            "",
            None,
            "`title` must be 1-500 characters (after trimming), got empty",
        ),
        (
            "   ",
            None,
            "`title` must be 1-500 characters (after trimming), got empty",
        ),
        (
            long_title.as_str(),
            None,
            "`title` must be 1-500 characters (after trimming), got 501 characters",
        ),
        ("A fox", Some(0), "`n_scenes` must be between 1 and 8, got 0"),
        ("A fox", Some(9), "`n_scenes` must be between 1 and 8, got 9"),
    ];
    for (title, n_scenes, message) in cases {
        let status = client.generate(generate(title, n_scenes)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), message);
        assert_eq!(
            status.metadata().get("storyreel-error-code").unwrap(),
            "validation"
        );

        let status = client
            .generate_stream(generate_stream(title, n_scenes))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(status.message(), message);
    }
    let status = client
        .generate(GenerateRequest {
            sampling: Some(SamplingParams {
                top_p: Some(0.0),
                ..Default::default()
            }),
            ..generate("A fox", None)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "`sampling.top_p` must be > 0 and <= 1, got 0");

    assert!(mock.requests().is_empty(), "invalid requests reached the service");
    server.shutdown().await;
}

#[tokio::test]
async fn generate_applies_defaults_and_returns_the_story() {
    let scenes = ["A fox wakes at dawn.", "It runs to the river."];
    let mock = MockStoryLlm::new(Script::Events(vec![
        scene(1, 0, scenes[0]),
        scene(1, 1, scenes[1]),
        StoryEvent::Finished(story(&scenes)),
    ]));
    let server = start(mock.clone()).await;
    let before = Instant::now();
    let response = server
        .client()
        .await
        .generate(generate("  The Fox  ", None))
        .await
        .unwrap()
        .into_inner();

    assert_eq!(
        response,
        GenerateResponse {
            scenes: vec![
                common::Scene {
                    index: 0,
                    text: scenes[0].into()
                },
                common::Scene {
                    index: 1,
                    text: scenes[1].into()
                },
            ],
            model: Some(common::ModelInfo {
                name: "smollm2-135m-instruct".into(),
                version: "test".into(),
                weights_sha256: "0".repeat(64),
                components: vec![],
                random_init: false,
            }),
            usage: Some(common::TokenUsage {
                prompt_tokens: 120,
                generated_tokens: 40,
                reused_prompt_tokens: 90,
            }),
            seed: 7,
            attempts: 2,
            stats: Some(common::StageStats {
                cache_hit: false,
                queue_time: Some(prost_types::Duration {
                    seconds: 0,
                    nanos: 5_000_000
                }),
                compute_time: Some(prost_types::Duration {
                    seconds: 1,
                    nanos: 500_000_000
                }),
            }),
        }
    );

    let requests = mock.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.title, "The Fox");
    assert_eq!(request.n_scenes, 4);
    assert_eq!(request.language, "en");
    assert_eq!(request.sampling.temperature, 0.7);
    assert_eq!(request.sampling.top_p, 0.9);
    assert_eq!(request.sampling.repetition_penalty, 1.0);
    // No job or gRPC deadline: the server's request timeout (600 s by default).
    let deadline = request.deadline.expect("the server timeout sets a deadline");
    assert!(deadline > before + Duration::from_secs(590));
    server.shutdown().await;
}

#[tokio::test]
async fn service_errors_map_to_their_codes() {
    let cases: [(fn() -> StoryLlmError, Code); 6] = [
        (
            || StoryLlmError::Overloaded { capacity: 64 },
            Code::ResourceExhausted,
        ),
        (
            || StoryLlmError::NotReady {
                reason: "loading".into(),
            },
            Code::Unavailable,
        ),
        (|| StoryLlmError::DeadlineExceeded, Code::DeadlineExceeded),
        (|| StoryLlmError::Cancelled, Code::Cancelled),
        (
            || StoryLlmError::UnusableOutput {
                attempts: 3,
                last: validate_scene_set(&["a b c"], 2).unwrap_err(),
            },
            // The reason reaches the caller.
            Code::Aborted,
        ),
        (|| StoryLlmError::model("worker panicked"), Code::Internal),
    ];
    for (err, code) in cases {
        let server = start(MockStoryLlm::new(Script::Fail(err))).await;
        let mut client = server.client().await;
        let status = client.generate(generate("A fox", None)).await.unwrap_err();
        assert_eq!(status.code(), code, "generate: {status:?}");
        let status = client
            .generate_stream(generate_stream("A fox", None))
            .await
            .unwrap_err();
        assert_eq!(status.code(), code, "generate_stream: {status:?}");
        if code == Code::Internal {
            assert_eq!(status.message(), "internal error; see the service log");
        } else {
            assert_eq!(status.message(), err().to_string());
        }
        server.shutdown().await;
    }
}

#[tokio::test]
async fn the_stream_delivers_events_in_order_and_ends_with_the_result() {
    let scenes = ["A fox wakes at dawn.", "It runs to the river."];
    let events = vec![
        token(1, 0, 11, " A"),
        token(1, 0, 12, " fox"),
        scene(1, 0, "A fox."),
        progress(1, 2),
        // Attempt 1 is discarded (say its second scene repeated the first): start over.
        token(2, 0, 13, " A"),
        scene(2, 0, scenes[0]),
        progress(1, 2),
        token(2, 1, 14, " It"),
        token(2, 1, 15, ""),
        scene(2, 1, scenes[1]),
        progress(2, 2),
        StoryEvent::Finished(story(&scenes)),
    ];
    let server = start(MockStoryLlm::new(Script::Events(events.clone()))).await;
    let received: Vec<GenerateStreamResponse> = server
        .client()
        .await
        .generate_stream(generate_stream("The Fox", Some(2)))
        .await
        .unwrap()
        .into_inner()
        .map(|item| item.unwrap())
        .collect()
        .await;

    let expected: Vec<GenerateStreamResponse> = events.into_iter().map(Into::into).collect();
    assert_eq!(received, expected);
    // Spot-check the wire shape of a few events.
    assert_eq!(
        received[0].event,
        Some(Event::Token(TokenEvent {
            attempt: 1,
            scene_index: 0,
            token_id: 11,
            text: " A".into()
        }))
    );
    assert_eq!(
        received[9].event,
        Some(Event::Scene(SceneEvent {
            attempt: 2,
            scene: Some(common::Scene {
                index: 1,
                text: scenes[1].into()
            })
        }))
    );
    let Some(Event::Progress(progress)) = &received[10].event else {
        panic!("{:?}", received[10])
    };
    assert_eq!(
        (progress.step, progress.total_steps, progress.fraction),
        (2, 2, 1.0)
    );
    assert_eq!(progress.stage(), common::Stage::Story);
    let Some(Event::Result(result)) = &received.last().unwrap().event else {
        panic!("the last event is not the result")
    };
    assert_eq!(result.scenes.len(), 2);
    assert_eq!(result.seed, 7);
    server.shutdown().await;
}

#[tokio::test]
async fn an_error_mid_stream_follows_the_events_before_it() {
    let server = start(MockStoryLlm::new(Script::EventsThenError(
        vec![token(1, 0, 1, " A"), scene(1, 0, "A fox wakes up.")],
        || StoryLlmError::Cancelled,
    )))
    .await;
    let mut stream = server
        .client()
        .await
        .generate_stream(generate_stream("The Fox", Some(2)))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(stream.next().await, Some(Ok(_))));
    assert!(matches!(stream.next().await, Some(Ok(_))));
    let status = stream.next().await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Cancelled);
    assert!(stream.next().await.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn a_passed_job_deadline_fails_before_reaching_the_service() {
    let mock = MockStoryLlm::new(Script::Events(vec![]));
    let server = start(mock.clone()).await;
    let context = Some(JobContext {
        deadline: Some((SystemTime::now() - Duration::from_secs(1)).into()),
        ..Default::default()
    });
    let mut client = server.client().await;
    let status = client
        .generate(GenerateRequest {
            context: context.clone(),
            ..generate("The Fox", None)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let status = client
        .generate_stream(GenerateStreamRequest {
            context,
            ..generate_stream("The Fox", None)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(mock.requests().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn a_job_deadline_stops_a_unary_call_and_its_generation() {
    let mock = MockStoryLlm::new(Script::EventsThenHang(vec![token(1, 0, 1, " A")]));
    let server = start(mock.clone()).await;
    let started = Instant::now();
    let status = server
        .client()
        .await
        .generate(GenerateRequest {
            context: Some(JobContext {
                deadline: Some((SystemTime::now() + Duration::from_millis(300)).into()),
                ..Default::default()
            }),
            ..generate("The Fox", None)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        mock.stream_dropped.load(Ordering::SeqCst),
        "generation kept running"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_stream_past_its_grpc_deadline_ends_with_deadline_exceeded() {
    let mock = MockStoryLlm::new(Script::EventsThenHang(vec![token(1, 0, 1, " A")]));
    let server = start(mock.clone()).await;
    let mut request = tonic::Request::new(generate_stream("The Fox", None));
    request.set_timeout(Duration::from_millis(300));
    let mut stream = server
        .client()
        .await
        .generate_stream(request)
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(stream.next().await, Some(Ok(_))));
    let status = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the deadline ends the stream")
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(stream.next().await.is_none());
    eventually(
        async || mock.stream_dropped.load(Ordering::SeqCst),
        "the service stream to be dropped",
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_cancelled_stream_drops_the_service_stream() {
    let mock = MockStoryLlm::new(Script::EventsThenHang(vec![token(1, 0, 1, " A")]));
    let server = start(mock.clone()).await;
    let mut stream = server
        .client()
        .await
        .generate_stream(generate_stream("The Fox", None))
        .await
        .unwrap()
        .into_inner();
    assert!(matches!(stream.next().await, Some(Ok(_))));
    assert!(!mock.stream_dropped.load(Ordering::SeqCst));
    drop(stream);
    eventually(
        async || mock.stream_dropped.load(Ordering::SeqCst),
        "the service stream to be dropped after the client cancelled",
    )
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn readiness_follows_the_model_state() {
    let mock = MockStoryLlm::new(Script::Events(vec![]));
    mock.state.send_replace(ModelState::Loading);
    let server = start(mock.clone()).await;
    for service in ["", SERVICE_NAME] {
        assert_eq!(server.health(service).await, ServingStatus::NotServing);
    }

    mock.state.send_replace(ModelState::Ready(model()));
    for service in ["", SERVICE_NAME] {
        eventually(
            async || server.health(service).await == ServingStatus::Serving,
            "SERVING once the model is ready",
        )
        .await;
    }

    mock.state
        .send_replace(ModelState::Failed("worker crashed".into()));
    eventually(
        async || server.health(SERVICE_NAME).await == ServingStatus::NotServing,
        "NOT_SERVING once the model failed",
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_and_describes_the_service() {
    let server = start(MockStoryLlm::new(Script::Events(vec![]))).await;
    let endpoint = server.server.endpoint.clone();
    storyreel_test_support::check_reflection(&endpoint, SERVICE_NAME, &["Generate", "GenerateStream"]).await;
    server.shutdown().await;
}

//! keyframe over gRPC on 127.0.0.1:0 with a real redis-server and the default tiny
//! pipeline (`make models`): progress per step then latents in Redis, non-square sizes,
//! the stage cache (byte-identical on a hit and on a recompute), reference-guided
//! generation, cancellation that stores nothing, and each bad input's code and field.

use futures::StreamExt;
use std::sync::{Arc, atomic::Ordering};
use storyreel_keyframe::{Keyframe, KeyframeConfig, KeyframeStage};
use storyreel_proto::{
    common::{Dtype as WireDType, FrameSize, JobContext, TensorRef as WireRef},
    keyframe::{
        GenerateRequest, GenerateResult, generate_response::Event,
        keyframe_service_client::KeyframeServiceClient,
    },
};
use storyreel_runtime::tensor_ref::{from_wire, to_wire};
use storyreel_stage::worker::WorkerCounters;
use storyreel_tensors::{Tensor, TensorStore, testing::RedisServer};
use storyreel_test_support::TestServer;
use tonic::{Code, transport::Channel};

struct Running {
    client: KeyframeServiceClient<Channel>,
    counters: Arc<WorkerCounters>,
    store: Arc<dyn TensorStore>,
    server: TestServer,
    _redis: RedisServer,
}

async fn start() -> Running {
    let redis = RedisServer::start().expect("redis-server starts (apt-get install redis-server)");
    let mut config = KeyframeConfig {
        tensors: redis.store_config(),
        ..KeyframeConfig::default()
    };
    config.model_dir = storyreel_test_support::model_dir("keyframe-tiny", "model_index.json");
    let service = storyreel_keyframe::start_service(&config)
        .await
        .expect("the service starts");
    let model = service.wait_ready().await.expect("the tiny pipeline loads");
    assert_eq!(model.components.len(), 3);
    let store = storyreel_tensors::open_store(&config.tensors).await.unwrap();
    let counters = service.worker_counters().clone();
    let server = TestServer::stage::<KeyframeStage>(config, service as Arc<dyn Keyframe>).await;
    let client = KeyframeServiceClient::new(server.channel().await);
    Running {
        client,
        counters,
        store,
        server,
        _redis: redis,
    }
}

fn request(width: u32, height: u32, frames: u32, steps: u32) -> GenerateRequest {
    GenerateRequest {
        context: Some(JobContext {
            job_id: "job-7".into(),
            scene_index: Some(1),
            ..Default::default()
        }),
        prompt: "a red fox runs along a misty river at dawn".into(),
        negative_prompt: "blurry".into(),
        seed: Some(11),
        steps: Some(steps),
        guidance_scale: Some(7.5),
        size: Some(FrameSize { width, height }),
        n_frames: Some(frames),
        ..Default::default()
    }
}

/// Runs a Generate to its end: the steps reported and the result.
async fn generate(
    client: &mut KeyframeServiceClient<Channel>,
    request: GenerateRequest,
) -> (Vec<u32>, GenerateResult) {
    let mut events = client.generate(request).await.unwrap().into_inner();
    let mut steps = Vec::new();
    while let Some(message) = events.next().await {
        match message.unwrap().event.unwrap() {
            Event::Progress(p) => steps.push(p.step),
            Event::Preview(_) => {}
            Event::Result(result) => return (steps, result),
        }
    }
    panic!("the stream ended without a result");
}

async fn latents(store: &Arc<dyn TensorStore>, result: &GenerateResult) -> Vec<f32> {
    let wire = result.latents.as_ref().unwrap();
    store
        .get(&from_wire("latents", wire).unwrap())
        .await
        .unwrap()
        .to_vec()
        .unwrap()
}

fn mse(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latents_of_any_aspect_with_progress_and_the_stage_cache() {
    let mut running = start().await;
    // 16:9-like (2:1 here, to stay small) and 9:16-like sizes, not only squares
    for (width, height) in [(128, 64), (64, 128)] {
        let (steps, result) = generate(&mut running.client, request(width, height, 3, 3)).await;
        assert_eq!(steps, [1, 2, 3]);
        let wire = result.latents.as_ref().unwrap();
        assert_eq!(wire.shape, [1, 4, 3, height as i64 / 8, width as i64 / 8]);
        assert_eq!(result.steps_run, 3);
        assert_eq!(result.seed, 11);
        assert!(!result.stats.unwrap().cache_hit);
        let values = latents(&running.store, &result).await;
        assert!(values.iter().all(|v| v.is_finite()));
    }

    // the same request: a cache hit, the same entry
    let (_, first) = generate(&mut running.client, request(128, 64, 3, 3)).await;
    assert!(first.stats.unwrap().cache_hit);
    // bypassing the cache samples again, byte-identical, stored under the job
    let mut bypass = request(128, 64, 3, 3);
    bypass.context.as_mut().unwrap().bypass_cache = true;
    let (steps, again) = generate(&mut running.client, bypass).await;
    assert_eq!(steps.len(), 3);
    let (a, b) = (first.latents.unwrap(), again.latents.unwrap());
    assert_eq!(b.key, "storyreel:job-7:keyframe:1:latents");
    assert_eq!(a.checksum, b.checksum);
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_come_every_n_steps_and_after_the_last() {
    let mut running = start().await;
    let mut request = request(128, 64, 2, 3);
    request.preview_every = Some(2);
    request.context.as_mut().unwrap().bypass_cache = true;
    let mut events = running.client.generate(request).await.unwrap().into_inner();
    let mut previews = Vec::new();
    while let Some(message) = events.next().await {
        if let Some(Event::Preview(preview)) = message.unwrap().event {
            previews.push(preview);
        }
    }
    let steps: Vec<u32> = previews.iter().map(|p| p.step).collect();
    assert_eq!(steps, [2, 3]);
    let image = previews.last().unwrap().image.as_ref().unwrap();
    assert_eq!(image.key, "storyreel:job-7:keyframe:1:preview");
    assert_eq!(image.shape, [2, 3, 8, 16]);
    assert_eq!(image.dtype(), WireDType::U8);
    let stored = running
        .store
        .get(&from_wire("image", image).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.as_bytes().len(), 2 * 3 * 8 * 16);
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_guided_generation_stays_closer_at_low_strength() {
    let mut running = start().await;
    let shape = vec![1usize, 4, 2, 8, 8];
    let reference: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let key = running
        .store
        .keys()
        .tensor("job-7", "reference", 1, "latents")
        .unwrap();
    let stored = running
        .store
        .put(&key, &Tensor::from_slice(shape, &reference).unwrap(), None)
        .await
        .unwrap();
    let guided = |strength: f32| {
        let mut r = request(64, 64, 2, 10);
        r.reference_latents = Some(to_wire(&stored));
        r.reference_strength = Some(strength);
        r
    };
    let (steps_low, low) = generate(&mut running.client, guided(0.3)).await;
    let (_, high) = generate(&mut running.client, guided(0.9)).await;
    assert_eq!((low.steps_run, steps_low.len()), (3, 3));
    assert_eq!(high.steps_run, 9);
    let near = mse(&latents(&running.store, &low).await, &reference);
    let far = mse(&latents(&running.store, &high).await, &reference);
    assert!(near < far, "MSE to the reference: strength 0.3 {near}, 0.9 {far}");
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_stores_nothing_and_the_worker_goes_on() {
    let mut running = start().await;
    let mut long = request(128, 128, 8, 150);
    long.context.as_mut().unwrap().bypass_cache = true;
    let mut events = running.client.generate(long).await.unwrap().into_inner();
    // a first step is done: the call is running
    let first = events.next().await.unwrap().unwrap();
    assert!(matches!(first.event, Some(Event::Progress(_))));
    drop(events);
    // the worker stops at its next step (at most one more runs) and takes the next call;
    // nothing was stored
    let mut short = request(64, 64, 1, 1);
    short.context.as_mut().unwrap().job_id = "job-8".into();
    let (_, result) = generate(&mut running.client, short).await;
    assert_eq!(result.steps_run, 1);
    let stopped = running.counters.stopped_jobs.load(Ordering::SeqCst);
    let steps = running.counters.units_of_stopped_jobs.load(Ordering::SeqCst);
    assert_eq!(stopped, 1, "the cancelled job is counted as stopped");
    assert!(
        (1..150).contains(&steps),
        "the cancelled job stopped after {steps} of 150 steps"
    );
    let after_cancel = running.counters.units_after_cancel.load(Ordering::SeqCst);
    assert!(after_cancel <= 1, "{after_cancel} steps ran after the cancel");
    let key = running
        .store
        .keys()
        .tensor("job-7", "keyframe", 1, "latents")
        .unwrap();
    assert!(!running.store.exists(&key).await.unwrap());
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_code_and_names_the_field() {
    let mut running = start().await;
    let missing = WireRef {
        key: "storyreel:job-7:reference:1:latents".into(),
        dtype: WireDType::F32.into(),
        shape: vec![1, 4, 2, 8, 8],
        byte_len: 10,
        checksum: format!("xxh3-128:{}", "0".repeat(32)),
    };
    let wrong_shape = WireRef {
        shape: vec![1, 4, 2, 16, 16],
        ..missing.clone()
    };
    let cases: Vec<(GenerateRequest, Code, &str)> = vec![
        (request(100, 64, 2, 2), Code::InvalidArgument, "size.width"),
        (request(64, 2048, 2, 2), Code::InvalidArgument, "size.height"),
        (request(64, 64, 33, 2), Code::InvalidArgument, "n_frames"),
        (request(64, 64, 2, 0), Code::InvalidArgument, "steps"),
        (
            GenerateRequest {
                preview_every: Some(151),
                ..request(64, 64, 2, 2)
            },
            Code::InvalidArgument,
            "preview_every",
        ),
        (
            GenerateRequest {
                prompt: "fox ".repeat(100),
                ..request(64, 64, 2, 2)
            },
            Code::InvalidArgument,
            "prompt",
        ),
        (
            GenerateRequest {
                guidance_scale: Some(f32::NAN),
                ..request(64, 64, 2, 2)
            },
            Code::InvalidArgument,
            "guidance_scale",
        ),
        (
            request(1024, 1024, 32, 2),
            Code::ResourceExhausted,
            "max_frame_pixels",
        ),
        (
            GenerateRequest {
                reference_latents: Some(wrong_shape),
                ..request(64, 64, 2, 2)
            },
            Code::InvalidArgument,
            "reference_latents.shape",
        ),
        (
            GenerateRequest {
                reference_latents: Some(missing),
                ..request(64, 64, 2, 2)
            },
            Code::FailedPrecondition,
            "storyreel:job-7:reference:1:latents",
        ),
    ];
    for (request, code, named) in cases {
        let status = match running.client.generate(request).await {
            Err(status) => status,
            Ok(response) => response.into_inner().next().await.unwrap().unwrap_err(),
        };
        assert_eq!(status.code(), code, "{named}: {}", status.message());
        assert!(status.message().contains(named), "{named}: {}", status.message());
    }
    // the service stays healthy
    let (_, result) = generate(&mut running.client, request(64, 64, 1, 1)).await;
    assert_eq!(result.latents.unwrap().dtype(), WireDType::F32);
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_and_describes_the_service() {
    let running = start().await;
    let endpoint = running.server.endpoint.clone();
    storyreel_test_support::check_reflection(&endpoint, storyreel_keyframe::SERVICE_NAME, &["Generate"])
        .await;
    running.server.shutdown().await;
}

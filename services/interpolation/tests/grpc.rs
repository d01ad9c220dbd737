//! interpolation over gRPC on 127.0.0.1:0 with a real redis-server, the tiny interpolation
//! model, the keyframe pipeline's text encoder and the real RIFE weights (`make models`):
//! LATENT and PIXEL at 4x and 16x, the stage cache, and each bad input's code and field.

use futures::StreamExt;
use std::sync::Arc;
use storyreel_interpolation::{InterpolateConfig, Interpolation, InterpolationStage};
use storyreel_proto::{
    common::{Dtype as WireDType, InterpolationSpace, JobContext, TensorRef as WireRef},
    interpolation::{
        InterpolateRequest, InterpolateResult, interpolate_response::Event,
        interpolation_service_client::InterpolationServiceClient,
    },
};
use storyreel_runtime::tensor_ref::{from_wire, to_wire};
use storyreel_tensors::{Tensor, TensorStore, testing::RedisServer};
use storyreel_test_support::{TestServer, model_dir};
use tonic::{Code, transport::Channel};

struct Running {
    client: InterpolationServiceClient<Channel>,
    store: Arc<dyn TensorStore>,
    server: TestServer,
    _redis: RedisServer,
}

async fn start() -> Running {
    let redis = RedisServer::start().expect("redis-server starts (apt-get install redis-server)");
    let config = InterpolateConfig {
        tensors: redis.store_config(),
        model_dir: model_dir("interpolation-tiny", "interpolation_config.json"),
        text_encoder_dir: model_dir("keyframe-tiny", "model_index.json"),
        rife_dir: model_dir("rife-4.0", "flownet.safetensors"),
        ..InterpolateConfig::default()
    };
    let service = storyreel_interpolation::start_service(&config)
        .await
        .expect("the service starts");
    let model = service.wait_ready().await.expect("the models load");
    assert_eq!(model.components.len(), 3);
    let store = storyreel_tensors::open_store(&config.tensors).await.unwrap();
    let server = TestServer::stage::<InterpolationStage>(config, service as Arc<dyn Interpolation>).await;
    let client = InterpolationServiceClient::new(server.channel().await);
    Running {
        client,
        store,
        server,
        _redis: redis,
    }
}

async fn put(store: &Arc<dyn TensorStore>, name: &str, tensor: Tensor) -> WireRef {
    let key = store.keys().tensor("job-5", "test", 0, name).unwrap();
    to_wire(&store.put(&key, &tensor, None).await.unwrap())
}

fn request(
    key_frames: &WireRef,
    space: InterpolationSpace,
    factor: u32,
    bypass_cache: bool,
) -> InterpolateRequest {
    InterpolateRequest {
        context: Some(JobContext {
            job_id: "job-5".into(),
            scene_index: Some(0),
            bypass_cache,
            ..Default::default()
        }),
        key_frames: Some(key_frames.clone()),
        factor: Some(factor),
        space: space.into(),
        prompt: "a fox by the river".into(),
        seed: Some(4),
        steps: Some(2),
        scheduler: None,
    }
}

async fn interpolate(
    client: &mut InterpolationServiceClient<Channel>,
    request: InterpolateRequest,
) -> (Vec<(u32, u32)>, InterpolateResult) {
    let mut events = client.interpolate(request).await.unwrap().into_inner();
    let mut progress = Vec::new();
    while let Some(message) = events.next().await {
        match message.unwrap().event.unwrap() {
            Event::Progress(p) => progress.push((p.step, p.total_steps)),
            Event::Result(result) => return (progress, result),
        }
    }
    panic!("no result");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latent_key_frames_become_4x_and_16x_frames() {
    let mut running = start().await;
    let values: Vec<f32> = (0..4 * 2 * 8 * 16)
        .map(|i| ((i * 7 % 23) as f32 / 11.0) - 1.0)
        .collect();
    let keys = put(
        &running.store,
        "keys",
        Tensor::from_slice(vec![1, 4, 2, 8, 16], &values).unwrap(),
    )
    .await;
    let (progress, four) = interpolate(
        &mut running.client,
        request(&keys, InterpolationSpace::Latent, 4, false),
    )
    .await;
    assert_eq!(progress, [(1, 2), (2, 2)]);
    let frames = four.frames.unwrap();
    assert_eq!(frames.shape, [1, 4, 5, 8, 16]);
    assert_eq!(four.seed, 4);
    // the key frames stay in place
    let out: Vec<f32> = running
        .store
        .get(&from_wire("frames", &frames).unwrap())
        .await
        .unwrap()
        .to_vec()
        .unwrap();
    let at = |v: &[f32], t: usize, frames: usize| -> Vec<f32> {
        (0..4)
            .flat_map(|c| v[(c * frames + t) * 128..(c * frames + t + 1) * 128].to_vec())
            .collect()
    };
    assert_eq!(at(&out, 4, 5), at(&values, 1, 2));

    let (progress, sixteen) = interpolate(
        &mut running.client,
        request(&keys, InterpolationSpace::Latent, 16, false),
    )
    .await;
    assert_eq!(progress.last(), Some(&(4, 4)));
    assert_eq!(sixteen.frames.unwrap().shape, [1, 4, 17, 8, 16]);

    // the same request: a cache hit; bypassed: byte-identical
    let (_, hit) = interpolate(
        &mut running.client,
        request(&keys, InterpolationSpace::Latent, 4, false),
    )
    .await;
    assert!(hit.stats.unwrap().cache_hit);
    let (_, again) = interpolate(
        &mut running.client,
        request(&keys, InterpolationSpace::Latent, 4, true),
    )
    .await;
    let again = again.frames.unwrap();
    assert_eq!(again.key, "storyreel:job-5:interpolation:0:frames");
    assert_eq!(again.checksum, frames.checksum);
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pixel_key_frames_become_4x_and_16x_frames_with_rife() {
    let mut running = start().await;
    let (h, w) = (32usize, 48usize);
    let pixels: Vec<u8> = (0..2 * 3 * h * w)
        .map(|i| ((i / w + i % w) * 3 % 256) as u8)
        .collect();
    let keys = put(
        &running.store,
        "pixels",
        Tensor::new(storyreel_tensors::DType::U8, vec![2, 3, h, w], pixels).unwrap(),
    )
    .await;
    let (progress, four) = interpolate(
        &mut running.client,
        request(&keys, InterpolationSpace::Pixel, 4, false),
    )
    .await;
    // 1 pair, then 2: three frame pairs
    assert_eq!(progress, [(1, 3), (2, 3), (3, 3)]);
    let frames = four.frames.unwrap();
    assert_eq!(frames.shape, [5, 3, h as i64, w as i64]);
    assert_eq!(frames.dtype(), WireDType::U8);
    assert_eq!(four.seed, 0);
    let (_, sixteen) = interpolate(
        &mut running.client,
        request(&keys, InterpolationSpace::Pixel, 16, false),
    )
    .await;
    assert_eq!(sixteen.frames.unwrap().shape, [17, 3, h as i64, w as i64]);
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_code_and_names_the_field() {
    let mut running = start().await;
    let latents = put(
        &running.store,
        "keys",
        Tensor::from_slice(vec![1, 4, 2, 8, 8], &[0.0f32; 512]).unwrap(),
    )
    .await;
    let mut one_key = latents.clone();
    one_key.shape = vec![1, 4, 1, 8, 8];
    let mut huge = latents.clone();
    huge.shape = vec![1, 4, 64, 128, 128];
    let mut missing = latents.clone();
    missing.key = "storyreel:job-5:test:0:gone".into();
    let cases: Vec<(InterpolateRequest, Code, &str)> = vec![
        (
            request(&latents, InterpolationSpace::Latent, 8, false),
            Code::InvalidArgument,
            "factor",
        ),
        (
            request(&one_key, InterpolationSpace::Latent, 4, false),
            Code::InvalidArgument,
            "key_frames.shape",
        ),
        (
            request(&latents, InterpolationSpace::Pixel, 4, false),
            Code::InvalidArgument,
            "key_frames.dtype",
        ),
        (
            request(&huge, InterpolationSpace::Latent, 16, false),
            Code::ResourceExhausted,
            "max_frame_pixels",
        ),
        (
            InterpolateRequest {
                steps: Some(0),
                ..request(&latents, InterpolationSpace::Latent, 4, false)
            },
            Code::InvalidArgument,
            "steps",
        ),
        (
            request(&missing, InterpolationSpace::Latent, 4, true),
            Code::FailedPrecondition,
            "gone",
        ),
    ];
    for (request, code, named) in cases {
        let status = match running.client.interpolate(request).await {
            Err(status) => status,
            Ok(response) => response.into_inner().next().await.unwrap().unwrap_err(),
        };
        assert_eq!(status.code(), code, "{named}: {}", status.message());
        assert!(status.message().contains(named), "{named}: {}", status.message());
    }
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_and_describes_the_service() {
    let running = start().await;
    let endpoint = running.server.endpoint.clone();
    storyreel_test_support::check_reflection(
        &endpoint,
        storyreel_interpolation::SERVICE_NAME,
        &["Interpolate"],
    )
    .await;
    running.server.shutdown().await;
}

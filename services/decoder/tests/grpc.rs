//! decoder over gRPC on 127.0.0.1:0 with a real redis-server, the tiny pipeline's VAE and
//! the real Real-ESRGAN weights (`make models`): latents -> frames -> latents, frames ->
//! x2 frames, the stage cache, and each bad input's code and field.

use futures::StreamExt;
use std::sync::Arc;
use storyreel_decoder::{Decoder, DecoderConfig, DecoderStage};
use storyreel_proto::{
    common::{Dtype as WireDType, JobContext, UpsampleMode},
    decoder::{
        DecodeRequest, DecodeResult, EncodeRequest, UpsampleRequest, UpsampleResult, decode_response,
        decoder_service_client::DecoderServiceClient, upsample_response,
    },
};
use storyreel_runtime::tensor_ref::{from_wire, to_wire};
use storyreel_tensors::{Tensor, TensorStore, testing::RedisServer};
use storyreel_test_support::TestServer;
use tonic::{Code, transport::Channel};

struct Running {
    client: DecoderServiceClient<Channel>,
    store: Arc<dyn TensorStore>,
    server: TestServer,
    _redis: RedisServer,
}

async fn start() -> Running {
    let redis = RedisServer::start().expect("redis-server starts (apt-get install redis-server)");
    let mut config = DecoderConfig {
        tensors: redis.store_config(),
        ..DecoderConfig::default()
    };
    config.vae_dir = storyreel_test_support::model_dir("keyframe-tiny/vae", "config.json");
    config.realesrgan_dir =
        storyreel_test_support::model_dir("realesrgan", "realesr-animevideov3.safetensors");
    let service = storyreel_decoder::start_service(&config)
        .await
        .expect("the service starts");
    let model = service.wait_ready().await.expect("the models load");
    assert_eq!(model.components.len(), 2);
    let store = storyreel_tensors::open_store(&config.tensors).await.unwrap();
    let server = TestServer::stage::<DecoderStage>(config, service as Arc<dyn Decoder>).await;
    let client = DecoderServiceClient::new(server.channel().await);
    Running {
        client,
        store,
        server,
        _redis: redis,
    }
}

fn context(bypass_cache: bool) -> Option<JobContext> {
    Some(JobContext {
        job_id: "job-3".into(),
        scene_index: Some(2),
        bypass_cache,
        ..Default::default()
    })
}

async fn put(store: &Arc<dyn TensorStore>, name: &str, tensor: Tensor) -> storyreel_proto::common::TensorRef {
    let key = store.keys().tensor("job-3", "test", 2, name).unwrap();
    to_wire(&store.put(&key, &tensor, None).await.unwrap())
}

async fn decode(
    client: &mut DecoderServiceClient<Channel>,
    request: DecodeRequest,
) -> (Vec<u32>, DecodeResult) {
    let mut events = client.decode(request).await.unwrap().into_inner();
    let mut done = Vec::new();
    while let Some(message) = events.next().await {
        match message.unwrap().event.unwrap() {
            decode_response::Event::Progress(p) => done.push(p.step),
            decode_response::Event::Result(result) => return (done, result),
        }
    }
    panic!("no result");
}

async fn upsample(client: &mut DecoderServiceClient<Channel>, request: UpsampleRequest) -> UpsampleResult {
    let mut events = client.upsample(request).await.unwrap().into_inner();
    while let Some(message) = events.next().await {
        if let upsample_response::Event::Result(result) = message.unwrap().event.unwrap() {
            return result;
        }
    }
    panic!("no result");
}

/// Scaled latents (1, 4, F, h, w) with some structure.
fn latents(frames: usize, h: usize, w: usize) -> Tensor {
    let n = 4 * frames * h * w;
    let values: Vec<f32> = (0..n).map(|i| ((i * 13 % 29) as f32 / 14.0) - 1.0).collect();
    Tensor::from_slice(vec![1, 4, frames, h, w], &values).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latents_to_frames_to_latents_and_frames_upsampled() {
    let mut running = start().await;
    // a 2:1 frame (128 x 64), three frames decoded two at a time
    let input = put(&running.store, "latents", latents(3, 8, 16)).await;
    let request = |bypass| DecodeRequest {
        context: context(bypass),
        latents: Some(input.clone()),
        slice_frames: Some(2),
    };
    let (done, decoded) = decode(&mut running.client, request(false)).await;
    assert_eq!(done, [2, 3]);
    let pixels = decoded.pixels.unwrap();
    assert_eq!(pixels.shape, [3, 3, 64, 128]);
    assert_eq!(pixels.dtype(), WireDType::U8);
    assert!(!decoded.stats.unwrap().cache_hit);
    // again: a cache hit; bypassed: decoded again, byte-identical, under the job
    let (_, hit) = decode(&mut running.client, request(false)).await;
    assert!(hit.stats.unwrap().cache_hit);
    assert_eq!(hit.pixels.unwrap().key, pixels.key);
    let (_, again) = decode(&mut running.client, request(true)).await;
    let again = again.pixels.unwrap();
    assert_eq!(again.key, "storyreel:job-3:decode:2:frames");
    assert_eq!(again.checksum, pixels.checksum);

    // the frames encoded back: (1, 4, F, h, w) latents for the keyframe stage, f16 asked
    let encoded = running
        .client
        .encode(EncodeRequest {
            context: context(false),
            pixels: Some(pixels.clone()),
            latent_dtype: WireDType::F16.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let latents = encoded.latents.unwrap();
    assert_eq!(latents.shape, [1, 4, 3, 8, 16]);
    assert_eq!(latents.dtype(), WireDType::F16);

    // x2 upsampling with Real-ESRGAN, in tiles; NONE passes the frames through
    let up = upsample(
        &mut running.client,
        UpsampleRequest {
            context: context(false),
            pixels: Some(pixels.clone()),
            mode: UpsampleMode::RealesrganX2.into(),
            tile_size: Some(48),
            tile_overlap: Some(8),
            ..Default::default()
        },
    )
    .await;
    let up_pixels = up.pixels.unwrap();
    assert_eq!(up_pixels.shape, [3, 3, 128, 256]);
    let stored = running
        .store
        .get(&from_wire("pixels", &up_pixels).unwrap())
        .await
        .unwrap();
    let distinct: std::collections::HashSet<u8> = stored.as_bytes().iter().copied().collect();
    assert!(distinct.len() > 8, "a picture, not a flat buffer");
    let none = upsample(
        &mut running.client,
        UpsampleRequest {
            context: context(false),
            pixels: Some(pixels.clone()),
            mode: UpsampleMode::None.into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(none.pixels.unwrap().key, pixels.key);
    assert!(none.model.is_none());
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_code_and_names_the_field() {
    let mut running = start().await;
    let good = put(&running.store, "latents", latents(2, 8, 8)).await;
    let floats = put(
        &running.store,
        "floats",
        Tensor::from_slice(vec![1, 3, 64, 64], &vec![0.5f32; 3 * 64 * 64]).unwrap(),
    )
    .await;
    let mut corrupt = good.clone();
    corrupt.checksum = format!("xxh3-128:{}", "0".repeat(32));
    let mut missing = good.clone();
    missing.key = "storyreel:job-3:test:2:gone".into();
    let decode_status = |latents| DecodeRequest {
        context: context(true),
        latents: Some(latents),
        slice_frames: None,
    };
    let mut wrong_shape = good.clone();
    wrong_shape.shape = vec![1, 3, 2, 8, 8];
    let cases: Vec<(DecodeRequest, Code, &str)> = vec![
        (decode_status(wrong_shape), Code::InvalidArgument, "latents.shape"),
        (
            decode_status(missing),
            Code::FailedPrecondition,
            "storyreel:job-3:test:2:gone",
        ),
        (decode_status(corrupt), Code::DataLoss, "checksum"),
        (
            DecodeRequest {
                slice_frames: Some(65),
                ..decode_status(good.clone())
            },
            Code::InvalidArgument,
            "slice_frames",
        ),
    ];
    for (request, code, named) in cases {
        let status = match running.client.decode(request).await {
            Err(status) => status,
            Ok(response) => response.into_inner().next().await.unwrap().unwrap_err(),
        };
        assert_eq!(status.code(), code, "{named}: {}", status.message());
        assert!(status.message().contains(named), "{named}: {}", status.message());
    }
    let status = running
        .client
        .encode(EncodeRequest {
            context: context(false),
            pixels: Some(floats),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("pixels.dtype"), "{}", status.message());
    let mut huge = good.clone();
    huge.shape = vec![1000, 3, 1024, 1024];
    huge.dtype = WireDType::U8.into();
    let status = running
        .client
        .upsample(UpsampleRequest {
            context: context(false),
            pixels: Some(huge),
            mode: UpsampleMode::RealesrganX4.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("max_frame_pixels"),
        "{}",
        status.message()
    );
    // the service stays healthy
    let (_, decoded) = decode(&mut running.client, decode_status(good)).await;
    assert_eq!(decoded.pixels.unwrap().shape, [2, 3, 64, 64]);
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_and_describes_the_service() {
    let running = start().await;
    let endpoint = running.server.endpoint.clone();
    storyreel_test_support::check_reflection(
        &endpoint,
        storyreel_decoder::SERVICE_NAME,
        &["Encode", "Decode", "Upsample"],
    )
    .await;
    running.server.shutdown().await;
}

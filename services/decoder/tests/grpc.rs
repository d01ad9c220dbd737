//! decoder over gRPC on 127.0.0.1:0 with a real redis-server, the tiny pipeline's VAE, the
//! real Real-ESRGAN weights and the tiny diffusion x4 upscaler (`make models`): latents ->
//! frames -> latents, frames -> x2 frames, frames -> x4 frames by the diffusion upscaler
//! (progress per step, seeds, tiles), the stage cache, and each bad input's code and field.

use futures::StreamExt;
use std::sync::{Arc, atomic::Ordering};
use storyreel_decoder::{Decoder, DecoderConfig, DecoderStage};
use storyreel_proto::{
    common::{Dtype as WireDType, JobContext, Scheduler, SchedulerConfig, UpsampleMode},
    decoder::{
        DecodeRequest, DecodeResult, DiffusionUpscaleParams, EncodeRequest, UpsampleRequest, UpsampleResult,
        decode_response, decoder_service_client::DecoderServiceClient, upsample_response,
    },
};
use storyreel_runtime::tensor_ref::{from_wire, to_wire};
use storyreel_stage::worker::WorkerCounters;
use storyreel_tensors::{Tensor, TensorStore, testing::RedisServer};
use storyreel_test_support::TestServer;
use tonic::{Code, transport::Channel};

struct Running {
    client: DecoderServiceClient<Channel>,
    counters: Arc<WorkerCounters>,
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
    config.upscaler_dir = storyreel_test_support::model_dir("upscaler-tiny", "model_index.json");
    let service = storyreel_decoder::start_service(&config)
        .await
        .expect("the service starts");
    let model = service.wait_ready().await.expect("the models load");
    assert_eq!(model.components.len(), 3);
    assert!(model.random_init, "the tiny models are marked random-initialised");
    let store = storyreel_tensors::open_store(&config.tensors).await.unwrap();
    let counters = service.worker_counters().clone();
    let server = TestServer::stage::<DecoderStage>(config, service as Arc<dyn Decoder>).await;
    let client = DecoderServiceClient::new(server.channel().await);
    Running {
        client,
        counters,
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
    upsample_with_progress(client, request).await.1
}

/// The progress events' (step, total, message) and the result.
async fn upsample_with_progress(
    client: &mut DecoderServiceClient<Channel>,
    request: UpsampleRequest,
) -> (Vec<(u32, u32, String)>, UpsampleResult) {
    let mut events = client.upsample(request).await.unwrap().into_inner();
    let mut progress = Vec::new();
    while let Some(message) = events.next().await {
        match message.unwrap().event.unwrap() {
            upsample_response::Event::Progress(p) => progress.push((p.step, p.total_steps, p.message)),
            upsample_response::Event::Result(result) => return (progress, result),
        }
    }
    panic!("no result");
}

/// u8 frames (F, 3, h, w) with some structure.
fn frames(f: usize, h: usize, w: usize) -> Tensor {
    let bytes: Vec<u8> = (0..f * 3 * h * w)
        .map(|i| ((i * 37 + i / 97) % 251) as u8)
        .collect();
    Tensor::new(storyreel_tensors::DType::U8, vec![f, 3, h, w], bytes).unwrap()
}

fn diffusion(seed: Option<u64>, steps: u32) -> Option<DiffusionUpscaleParams> {
    Some(DiffusionUpscaleParams {
        prompt: "a lighthouse on a cliff at dawn".into(),
        negative_prompt: "blurry".into(),
        steps: Some(steps),
        guidance_scale: Some(7.5),
        noise_level: Some(20),
        seed,
        scheduler: None,
    })
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
async fn diffusion_x4_upscales_with_progress_per_step_and_seeds() {
    let mut running = start().await;
    let input = put(&running.store, "small", frames(2, 32, 32)).await;
    let request = |seed, bypass| UpsampleRequest {
        context: context(bypass),
        pixels: Some(input.clone()),
        mode: UpsampleMode::DiffusionX4.into(),
        diffusion: diffusion(seed, 3),
        ..Default::default()
    };
    let (progress, first) = upsample_with_progress(&mut running.client, request(Some(5), false)).await;
    let pixels = first.pixels.unwrap();
    assert_eq!(pixels.shape, [2, 3, 128, 128]);
    assert_eq!(pixels.dtype(), WireDType::U8);
    assert!(!first.stats.unwrap().cache_hit);
    assert_eq!(first.model.unwrap().components.len(), 3);
    // one event per denoising step of each frame
    let steps: Vec<(u32, u32)> = progress.iter().map(|(s, t, _)| (*s, *t)).collect();
    assert_eq!(steps, (1..=6).map(|s| (s, 6)).collect::<Vec<_>>());
    assert_eq!(progress[0].2, "1 of 6 denoising steps");
    let stored = running
        .store
        .get(&from_wire("pixels", &pixels).unwrap())
        .await
        .unwrap();
    let distinct: std::collections::HashSet<u8> = stored.as_bytes().iter().copied().collect();
    assert!(distinct.len() > 8, "a picture, not a flat buffer");

    // the same request: a cache hit; bypassed: computed again, byte-identical
    let hit = upsample(&mut running.client, request(Some(5), false)).await;
    assert!(hit.stats.unwrap().cache_hit);
    assert_eq!(hit.pixels.unwrap().key, pixels.key);
    let again = upsample(&mut running.client, request(Some(5), true)).await;
    assert!(!again.stats.unwrap().cache_hit);
    let again = again.pixels.unwrap();
    assert_eq!(again.key, "storyreel:job-3:upsample:2:frames");
    assert_eq!(again.checksum, pixels.checksum);
    // another seed: another sample, another cache entry
    let other = upsample(&mut running.client, request(Some(6), false)).await;
    let other = other.pixels.unwrap();
    assert_ne!(other.checksum, pixels.checksum);
    assert_ne!(other.key, pixels.key);

    // in overlapping tiles: a 48x40 frame in 32-pixel tiles with 8 pixels of context is
    // 2 x 2 tiles, each taking every step
    let wide = put(&running.store, "wide", frames(1, 40, 48)).await;
    let (progress, tiled) = upsample_with_progress(
        &mut running.client,
        UpsampleRequest {
            context: context(false),
            pixels: Some(wide),
            mode: UpsampleMode::DiffusionX4.into(),
            tile_size: Some(32),
            tile_overlap: Some(8),
            diffusion: Some(DiffusionUpscaleParams {
                scheduler: Some(SchedulerConfig {
                    scheduler: Scheduler::DpmSolverPp2m.into(),
                    karras_sigmas: true,
                }),
                ..diffusion(Some(5), 2).unwrap()
            }),
        },
    )
    .await;
    assert_eq!(tiled.pixels.unwrap().shape, [1, 3, 160, 192]);
    assert_eq!(progress.last().map(|p| (p.0, p.1)), Some((8, 8)));
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_diffusion_upsample_stops_at_the_next_step_and_stores_nothing() {
    let mut running = start().await;
    let input = put(&running.store, "small", frames(2, 32, 32)).await;
    let large = put(&running.store, "large", frames(4, 64, 64)).await;
    let (frames_long, steps_long) = (4, 150);
    let long = UpsampleRequest {
        context: context(true),
        pixels: Some(large),
        mode: UpsampleMode::DiffusionX4.into(),
        diffusion: diffusion(Some(1), steps_long),
        ..Default::default()
    };
    let mut events = running.client.upsample(long).await.unwrap().into_inner();
    // a first step is done: the call is running
    let first = events.next().await.unwrap().unwrap();
    let Some(upsample_response::Event::Progress(first)) = first.event else {
        panic!("the first event is progress: {first:?}");
    };
    // every tile of every frame takes the steps
    assert!(first.total_steps >= frames_long * steps_long, "{first:?}");
    drop(events);
    // the worker stops the job at its next step boundary and takes the next call, which waits
    // behind it on the one worker; nothing of the cancelled call is stored
    let short = UpsampleRequest {
        context: Some(JobContext {
            job_id: "job-4".into(),
            ..context(true).unwrap()
        }),
        pixels: Some(input),
        mode: UpsampleMode::DiffusionX4.into(),
        diffusion: diffusion(Some(1), 1),
        ..Default::default()
    };
    let result = upsample(&mut running.client, short).await;
    assert_eq!(result.pixels.unwrap().shape, [2, 3, 128, 128]);
    let counters = &running.counters;
    let stopped = counters.stopped_jobs.load(Ordering::SeqCst);
    let units = counters.units_of_stopped_jobs.load(Ordering::SeqCst);
    let after_cancel = counters.units_after_cancel.load(Ordering::SeqCst);
    eprintln!(
        "the cancelled call stopped after {units} of {} steps, {after_cancel} after the cancel",
        first.total_steps
    );
    assert_eq!(stopped, 1, "the cancelled job is counted as stopped");
    assert!(
        units >= u64::from(first.step) && units < u64::from(first.total_steps),
        "the cancelled job stopped after {units} of {} steps",
        first.total_steps
    );
    assert!(after_cancel <= 1, "{after_cancel} steps ran after the cancel");
    let key = running
        .store
        .keys()
        .tensor("job-3", "upsample", 2, "frames")
        .unwrap();
    assert!(!running.store.exists(&key).await.unwrap());
    running.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_diffusion_params_name_the_field_and_the_limit() {
    let mut running = start().await;
    let input = put(&running.store, "small", frames(1, 32, 32)).await;
    let with = |params: DiffusionUpscaleParams| UpsampleRequest {
        context: context(false),
        pixels: Some(input.clone()),
        mode: UpsampleMode::DiffusionX4.into(),
        diffusion: Some(params),
        ..Default::default()
    };
    let base = diffusion(Some(1), 2).unwrap();
    let long = "a very long and winding description of a scene ".repeat(12);
    let cases: Vec<(DiffusionUpscaleParams, &str, &str)> = vec![
        (
            DiffusionUpscaleParams {
                steps: Some(0),
                ..base.clone()
            },
            "diffusion.steps",
            "150",
        ),
        (
            DiffusionUpscaleParams {
                steps: Some(151),
                ..base.clone()
            },
            "diffusion.steps",
            "150",
        ),
        (
            DiffusionUpscaleParams {
                guidance_scale: Some(30.5),
                ..base.clone()
            },
            "diffusion.guidance_scale",
            "30",
        ),
        (
            DiffusionUpscaleParams {
                noise_level: Some(351),
                ..base.clone()
            },
            "diffusion.noise_level",
            "350",
        ),
        (
            DiffusionUpscaleParams {
                prompt: long.clone(),
                ..base.clone()
            },
            "diffusion.prompt",
            "77 CLIP tokens",
        ),
        (
            DiffusionUpscaleParams {
                negative_prompt: long,
                ..base.clone()
            },
            "diffusion.negative_prompt",
            "77 CLIP tokens",
        ),
        (
            DiffusionUpscaleParams {
                scheduler: Some(SchedulerConfig {
                    scheduler: 42,
                    karras_sigmas: false,
                }),
                ..base.clone()
            },
            "diffusion.scheduler.scheduler",
            "DPM_SOLVER_PP_2M",
        ),
        (
            DiffusionUpscaleParams {
                scheduler: Some(SchedulerConfig {
                    scheduler: Scheduler::Ddim.into(),
                    karras_sigmas: true,
                }),
                ..base.clone()
            },
            "diffusion.scheduler.karras_sigmas",
            "EULER",
        ),
    ];
    for (params, field, limit) in cases {
        let status = running.client.upsample(with(params)).await.unwrap_err();
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{field}: {}",
            status.message()
        );
        let message = status.message();
        assert!(
            message.contains(field) && message.contains(limit),
            "{field}: {message}"
        );
    }
    // the memory budget holds for the x4 output
    let mut huge = input.clone();
    huge.shape = vec![64, 3, 1024, 1024];
    let status = running
        .client
        .upsample(UpsampleRequest {
            pixels: Some(huge),
            ..with(base)
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("max_frame_pixels") && status.message().contains("4096x4096"),
        "{}",
        status.message()
    );
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

//! The tts service over gRPC on 127.0.0.1:0 with a real redis-server (the tensor store)
//! and real voices (libespeak-ng; the Piper voice that `make models` converts): durations
//! and sample rates, audible audio, the stream equal to the unary result (sample for
//! sample with a seeded Piper voice; espeak-ng is not bit-reproducible across calls), and
//! INVALID_ARGUMENT naming the field for bad input.

use futures::StreamExt;
use std::{path::PathBuf, sync::Arc};
use storyreel_proto::{
    common::{JobContext, Scene},
    tts::{
        AudioEncoding, ListVoicesRequest, SynthesizeRequest, SynthesizeStreamRequest, VoiceBackend,
        synthesize_stream_response::Event, tts_service_client::TtsServiceClient,
    },
};
use storyreel_runtime::tensor_ref::from_wire;
use storyreel_tensors::{TensorStore, testing::RedisServer};
use storyreel_tts::{Tts, TtsConfig};
use tokio::sync::oneshot;
use tonic::{Code, transport::Channel};

const PIPER: &str = "piper:en_US-joe-medium";

struct Running {
    client: TtsServiceClient<Channel>,
    store: Arc<dyn TensorStore>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), storyreel_runtime::server::ServerError>>,
    _redis: RedisServer,
}

fn piper_dir() -> PathBuf {
    let cache = match std::env::var("STORYREEL_CACHE") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/storyreel"),
    };
    let dir = cache.join("models/piper-en_US-joe-medium");
    assert!(
        dir.join("model.safetensors").is_file(),
        "the Piper voice is missing from {}: run `make models`",
        dir.display()
    );
    dir
}

async fn start(with_piper: bool) -> Running {
    let redis = RedisServer::start().expect("redis-server starts (apt-get install redis-server)");
    let mut config = TtsConfig {
        tensors: redis.store_config(),
        ..TtsConfig::default()
    };
    config.piper.enabled = with_piper;
    if with_piper {
        config.piper.model_dir = piper_dir();
    }
    let service = storyreel_tts::start_service(&config)
        .await
        .expect("the voices load");
    let store = storyreel_tensors::open_store(&config.tensors).await.unwrap();
    let listener = storyreel_runtime::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(storyreel_tts::run(
        config,
        service as Arc<dyn Tts>,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let client = TtsServiceClient::connect(endpoint).await.unwrap();
    Running {
        client,
        store,
        stop,
        task,
        _redis: redis,
    }
}

impl Running {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

fn scenes(texts: &[&str]) -> Vec<Scene> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Scene {
            index: i as u32 + 2,
            text: t.to_string(),
        })
        .collect()
}

/// Equal sample for sample; on a difference, where (not the whole clips).
fn assert_same(got: &[Vec<f32>], want: &[Vec<f32>], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: scene count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let first = g.iter().zip(w).position(|(a, b)| a != b);
        assert!(
            g.len() == w.len() && first.is_none(),
            "{what}: scene {i}: {} vs {} samples, first difference at {first:?}",
            g.len(),
            w.len()
        );
    }
}

fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

const TEXTS: [&str; 2] = [
    "The fox found 3 apples by the river. It ate them slowly.",
    "Dr. Owl watched from the old oak tree!",
];

/// The unary result's samples per scene, read back from Redis, checked on the way.
async fn synthesize(
    running: &mut Running,
    voice: &str,
    sample_rate: Option<u32>,
    seed: u64,
) -> Vec<Vec<f32>> {
    let response = running
        .client
        .synthesize(SynthesizeRequest {
            context: Some(JobContext {
                job_id: "job-tts-1".into(),
                ..Default::default()
            }),
            scenes: scenes(&TEXTS),
            voice: voice.into(),
            speaking_rate: None,
            sample_rate_hz: sample_rate,
            seed: Some(seed),
        })
        .await
        .expect("synthesize succeeds")
        .into_inner();
    let expected_voice = if voice.is_empty() {
        "espeak-ng:en-us"
    } else {
        voice
    };
    assert_eq!(response.voice, expected_voice, "an empty voice is the default");
    assert_eq!(response.scenes.len(), 2);
    let model = response.model.expect("the voice's model");
    assert_eq!(model.weights_sha256.len(), 64);
    let mut out = Vec::new();
    for (i, scene) in response.scenes.iter().enumerate() {
        assert_eq!(scene.scene_index, i as u32 + 2);
        let rate = sample_rate.unwrap_or(22050);
        assert_eq!(scene.sample_rate_hz, rate);
        let wire = scene.audio.as_ref().expect("audio ref");
        assert_eq!(wire.key, format!("storyreel:job-tts-1:tts:{}:audio", i + 2));
        let samples: Vec<f32> = running
            .store
            .get(&from_wire("audio", wire).unwrap())
            .await
            .expect("the audio is in redis")
            .to_vec()
            .unwrap();
        // the duration is the samples over the rate, and a plausible time to say the text
        assert!((scene.duration_s - samples.len() as f64 / rate as f64).abs() < 1e-9);
        assert!(
            (1.0..8.0).contains(&scene.duration_s),
            "scene {i}: {} s",
            scene.duration_s
        );
        assert!(rms(&samples) > 0.02, "scene {i} is silent: rms {}", rms(&samples));
        assert!(samples.iter().all(|s| s.abs() <= 1.0));
        // one segment per sentence, in order, within the clip
        let sentences = if i == 0 { 2 } else { 1 };
        assert_eq!(scene.segments.len(), sentences, "{:?}", scene.segments);
        let first = [
            "The fox found 3 apples by the river.",
            "Dr. Owl watched from the old oak tree!",
        ][i];
        assert_eq!(scene.segments[0].text, first, "the text as given, not as spoken");
        for s in &scene.segments {
            assert!(s.start_s < s.end_s && s.end_s <= scene.duration_s + 1e-9, "{s:?}");
        }
        out.push(samples);
    }
    out
}

/// The stream's samples per scene (F32LE), its chunks checked on the way.
async fn stream(running: &mut Running, voice: &str, sample_rate: Option<u32>, seed: u64) -> Vec<Vec<f32>> {
    let mut events = running
        .client
        .synthesize_stream(SynthesizeStreamRequest {
            scenes: scenes(&TEXTS),
            voice: voice.into(),
            sample_rate_hz: sample_rate,
            seed: Some(seed),
            encoding: AudioEncoding::PcmF32le as i32,
            chunk_ms: Some(100),
            ..Default::default()
        })
        .await
        .expect("the stream starts")
        .into_inner();
    let first = events.next().await.unwrap().unwrap().event;
    let Some(Event::Header(header)) = first else {
        panic!("the first message is the header: {first:?}")
    };
    assert_eq!(header.voice, voice);
    assert_eq!(header.sample_rate_hz, sample_rate.unwrap_or(22050));
    let mut scenes: Vec<Vec<f32>> = Vec::new();
    let mut current: Vec<f32> = Vec::new();
    let mut chunks = 0;
    while let Some(message) = events.next().await {
        match message.unwrap().event.unwrap() {
            Event::Chunk(chunk) => {
                assert_eq!(chunk.scene_index, scenes.len() as u32 + 2);
                assert_eq!(chunk.sample_offset, current.len() as u64);
                assert_eq!(chunk.pcm.len() % 4, 0);
                current.extend(
                    chunk
                        .pcm
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                chunks += 1;
            }
            Event::SceneEnd(end) => {
                assert_eq!(end.total_samples, current.len() as u64);
                scenes.push(std::mem::take(&mut current));
            }
            Event::Header(h) => panic!("a second header: {h:?}"),
        }
    }
    assert_eq!(scenes.len(), 2);
    assert!(chunks > 10, "{chunks} chunks of 100 ms");
    scenes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_synthesize_and_stream_agree() {
    let mut running = start(false).await;
    let unary = synthesize(&mut running, "espeak-ng:en-us", Some(16000), 7).await;
    let streamed = stream(&mut running, "espeak-ng:en-us", Some(16000), 7).await;
    // libespeak-ng carries wave-generator state from one utterance to the next (see
    // `Espeak::synthesize`), so two calls differ by a few samples: the same length within
    // 2% and the same loudness within 10% (the Piper test below checks sample equality)
    for (s, u) in streamed.iter().zip(&unary) {
        let ratio = s.len() as f64 / u.len() as f64;
        assert!(
            (0.98..1.02).contains(&ratio),
            "{} vs {} samples",
            s.len(),
            u.len()
        );
        let loudness = rms(s) / rms(u);
        assert!((0.9..1.1).contains(&loudness), "rms ratio {loudness}");
    }
    // the default voice at its native rate
    let native = synthesize(&mut running, "", None, 7).await;
    assert!(native[0].len() > unary[0].len());
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_synthesize_and_stream_agree() {
    let mut running = start(true).await;
    let unary = synthesize(&mut running, PIPER, None, 42).await;
    let streamed = stream(&mut running, PIPER, None, 42).await;
    assert_same(
        &streamed,
        &unary,
        "the same seed gives the same audio, streamed or not",
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voices_and_bad_input() {
    let mut running = start(false).await;
    let voices = running
        .client
        .list_voices(ListVoicesRequest {
            language: "en".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .voices;
    assert_eq!(voices[0].id, "espeak-ng:en-us");
    assert!(voices[0].is_default);
    assert_eq!(voices[0].backend(), VoiceBackend::EspeakNg);
    assert!(voices.iter().any(|v| v.id == "espeak-ng:en-gb"));

    let request = |text: &str, voice: &str| SynthesizeRequest {
        scenes: vec![Scene {
            index: 0,
            text: text.into(),
        }],
        voice: voice.into(),
        ..Default::default()
    };
    let long = "word ".repeat(1001);
    let cases = [
        (request("", ""), "`scenes[0].text` must contain words to speak"),
        (
            request("Hello.", "piper:nobody"),
            "`voice` must be one of [espeak-ng:en-us, espeak-ng:en-gb]",
        ),
        (
            request(&long, ""),
            "`scenes[0].text` must be at most 5000 characters, got 5005",
        ),
    ];
    for (request, message) in cases {
        let status = running.client.synthesize(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(message), "{:?}", status.message());
    }
    let status = running
        .client
        .synthesize_stream(SynthesizeStreamRequest {
            scenes: scenes(&["Hello."]),
            chunk_ms: Some(5),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "`chunk_ms` must be between 20 and 1000, got 5");
    running.shutdown().await;
}

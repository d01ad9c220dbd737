//! The tts service over gRPC on 127.0.0.1:0 with a real redis-server (the tensor store)
//! and real voices (libespeak-ng; the Piper voice that `make models` converts): durations
//! and sample rates, audible audio, the stream equal to the unary result (sample for
//! sample with a seeded Piper voice; espeak-ng is not bit-reproducible across calls), and
//! INVALID_ARGUMENT naming the field for bad input; the stage cache (a repeated request
//! answered from Redis with the audio a fresh synthesis makes, keyed on the seed only for
//! a seeded voice, bypassed on request, refilled when an entry lost a tensor); one word
//! timing per written word, unary, streamed and cached; with the Piper voice installed it
//! is the default.

use futures::StreamExt;
use std::{path::PathBuf, sync::Arc};
use storyreel_proto::{
    common::{JobContext, Scene},
    tts::{
        AudioEncoding, ListVoicesRequest, SynthesizeRequest, SynthesizeResponse, SynthesizeStreamRequest,
        VoiceBackend, WordTiming, synthesize_stream_response::Event, tts_service_client::TtsServiceClient,
    },
};
use storyreel_runtime::tensor_ref::from_wire;
use storyreel_tensors::{TensorStore, testing::RedisServer};
use storyreel_test_support::TestServer;
use storyreel_tts::{Tts, TtsConfig, TtsStage};
use tonic::{Code, transport::Channel};

const PIPER: &str = "piper:en_US-joe-medium";

struct Running {
    client: TtsServiceClient<Channel>,
    store: Arc<dyn TensorStore>,
    /// The server keeps Synthesize's outputs in cache entries (`cache_outputs`).
    cached: bool,
    server: TestServer,
    _redis: RedisServer,
}

fn piper_dir() -> PathBuf {
    storyreel_test_support::model_dir("piper-en_US-joe-medium", "model.safetensors")
}

/// The server with the default config (stage cache on) but for the Piper voice.
async fn start(with_piper: bool) -> Running {
    start_with(with_piper, true).await
}

async fn start_with(with_piper: bool, cache_outputs: bool) -> Running {
    let redis = RedisServer::start().expect("redis-server starts (apt-get install redis-server)");
    let mut config = TtsConfig {
        tensors: redis.store_config(),
        cache_outputs,
        ..TtsConfig::default()
    };
    config.piper.enabled = with_piper;
    if with_piper {
        config.piper.model_dir = piper_dir();
    }
    let service = storyreel_tts::start_service(&config)
        .await
        .expect("the service starts");
    service.wait_ready().await.expect("the voices load");
    let store = storyreel_tensors::open_store(&config.tensors).await.unwrap();
    let server = TestServer::stage::<TtsStage>(config, service as Arc<dyn Tts>).await;
    let client = TtsServiceClient::new(server.channel().await);
    Running {
        client,
        store,
        cached: cache_outputs,
        server,
        _redis: redis,
    }
}

impl Running {
    async fn shutdown(self) {
        self.server.shutdown().await;
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

/// Synthesize of [`TEXTS`] as job `job-tts-1`.
async fn synthesize_response(
    running: &mut Running,
    voice: &str,
    sample_rate: Option<u32>,
    seed: u64,
    bypass_cache: bool,
) -> SynthesizeResponse {
    running
        .client
        .synthesize(SynthesizeRequest {
            context: Some(JobContext {
                job_id: "job-tts-1".into(),
                bypass_cache,
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
        .into_inner()
}

/// The unary result's samples per scene, read back from Redis, checked on the way.
async fn synthesize(
    running: &mut Running,
    voice: &str,
    sample_rate: Option<u32>,
    seed: u64,
) -> Vec<Vec<f32>> {
    let response = synthesize_response(running, voice, sample_rate, seed, false).await;
    checked_samples(running, &response, voice, sample_rate, !running.cached).await
}

/// Each scene's samples of `response`, read back from Redis, after checking the response:
/// voice, model, scene indices, rates, key (under the job, or in a cache entry), duration,
/// loudness and segments.
async fn checked_samples(
    running: &Running,
    response: &SynthesizeResponse,
    voice: &str,
    sample_rate: Option<u32>,
    under_job: bool,
) -> Vec<Vec<f32>> {
    let expected_voice = if voice.is_empty() {
        "espeak-ng:en-us"
    } else {
        voice
    };
    assert_eq!(response.voice, expected_voice, "an empty voice is the default");
    assert_eq!(response.scenes.len(), 2);
    let model = response.model.as_ref().expect("the voice's model");
    assert_eq!(model.weights_sha256.len(), 64);
    let mut out = Vec::new();
    for (i, scene) in response.scenes.iter().enumerate() {
        assert_eq!(scene.scene_index, i as u32 + 2);
        let rate = sample_rate.unwrap_or(22050);
        assert_eq!(scene.sample_rate_hz, rate);
        let wire = scene.audio.as_ref().expect("audio ref");
        if under_job {
            assert_eq!(wire.key, format!("storyreel:job-tts-1:tts:{}:audio", i + 2));
        } else {
            let entry = wire
                .key
                .strip_prefix("storyreel:cache:")
                .expect("a cache tensor key");
            assert!(entry.contains(&format!(":audio-{i}:")), "{}", wire.key);
        }
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
        check_words(&scene.words, TEXTS[i], scene.duration_s);
        out.push(samples);
    }
    out
}

/// One timing per written word of `text`, in order, not overlapping, within the audio.
fn check_words(words: &[WordTiming], text: &str, duration_s: f64) {
    let written: Vec<&str> = words.iter().map(|w| w.word.as_str()).collect();
    assert_eq!(written, text.split_whitespace().collect::<Vec<_>>());
    let mut previous_end = 0.0;
    for w in words {
        assert!(
            previous_end <= w.start_s && w.start_s < w.end_s && w.end_s <= duration_s + 1e-9,
            "{w:?} after {previous_end}"
        );
        previous_end = w.end_s;
    }
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
                check_words(&end.words, TEXTS[scenes.len()], end.duration_s);
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
    // installed, the Piper voice is the default ("auto")
    let voices = running
        .client
        .list_voices(ListVoicesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .voices;
    assert_eq!((voices[0].id.as_str(), voices[0].is_default), (PIPER, true));
    assert!(voices[1..].iter().all(|v| !v.is_default));
    let default = synthesize_response(&mut running, "", None, 42, false).await;
    assert_eq!(default.voice, PIPER, "an empty voice is the default");
    let unary = synthesize(&mut running, PIPER, None, 42).await;
    let streamed = stream(&mut running, PIPER, None, 42).await;
    assert_same(
        &streamed,
        &unary,
        "the same seed gives the same audio, streamed or not",
    );
    // two servers (two worker threads in this process) speaking at once: the noise is the
    // request's own, not drawn from libtorch's process-global generator
    let mut other = start(true).await;
    let (a, b) = tokio::join!(
        stream(&mut running, PIPER, None, 42),
        stream(&mut other, PIPER, None, 42)
    );
    assert_same(&a, &unary, "server A while B speaks");
    assert_same(&b, &unary, "server B while A speaks");
    other.shutdown().await;
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

fn cache_hit(response: &SynthesizeResponse) -> bool {
    response.stats.as_ref().expect("stats").cache_hit
}

fn audio_keys(response: &SynthesizeResponse) -> Vec<String> {
    response
        .scenes
        .iter()
        .map(|s| s.audio.as_ref().expect("audio ref").key.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_cache_answers_repeated_requests() {
    let mut running = start(true).await;
    // a first call speaks and fills the entry
    let first = synthesize_response(&mut running, PIPER, None, 42, false).await;
    assert!(!cache_hit(&first));
    let spoken = checked_samples(&running, &first, PIPER, None, false).await;

    // the same request again is answered from the entry: the same tensors and segments
    let again = synthesize_response(&mut running, PIPER, None, 42, false).await;
    assert!(cache_hit(&again));
    assert_eq!(again.scenes, first.scenes);

    // the entry holds what a fresh synthesis makes (bypass: spoken again, under the job)
    let fresh = synthesize_response(&mut running, PIPER, None, 42, true).await;
    assert!(!cache_hit(&fresh));
    let fresh_samples = checked_samples(&running, &fresh, PIPER, None, true).await;
    assert_same(&fresh_samples, &spoken, "the cached audio vs a fresh synthesis");
    for (f, c) in fresh.scenes.iter().zip(&first.scenes) {
        assert_eq!(f.segments, c.segments);
        assert_eq!(f.words, c.words);
        assert_eq!(f.duration_s, c.duration_s);
    }

    // Piper's noise depends on the seed: another seed is another entry
    let other_seed = synthesize_response(&mut running, PIPER, None, 43, false).await;
    assert!(!cache_hit(&other_seed));
    let other_keys = audio_keys(&other_seed);
    assert!(other_keys.iter().all(|k| !audio_keys(&first).contains(k)));

    // espeak-ng ignores the seed: any seed hits its entry; another rate does not
    let espeak = synthesize_response(&mut running, "espeak-ng:en-us", Some(16000), 1, false).await;
    assert!(!cache_hit(&espeak));
    let espeak_again = synthesize_response(&mut running, "espeak-ng:en-us", Some(16000), 2, false).await;
    assert!(cache_hit(&espeak_again));
    assert_eq!(espeak_again.scenes, espeak.scenes);
    let espeak_rate = synthesize_response(&mut running, "espeak-ng:en-us", Some(22050), 1, false).await;
    assert!(!cache_hit(&espeak_rate));

    // an entry that lost a tensor (evicted) is a miss and is filled again; the other
    // entries are untouched
    let lost = running.store.keys().parse(&audio_keys(&first)[1]).unwrap();
    assert!(running.store.delete(&lost).await.unwrap());
    let refilled = synthesize_response(&mut running, PIPER, None, 42, false).await;
    assert!(!cache_hit(&refilled));
    let refilled_samples = checked_samples(&running, &refilled, PIPER, None, false).await;
    assert_same(&refilled_samples, &spoken, "the refilled entry vs the first");
    assert!(cache_hit(
        &synthesize_response(&mut running, PIPER, None, 42, false).await
    ));
    checked_samples(&running, &other_seed, PIPER, None, false).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_cache_off_stores_under_the_job() {
    let mut running = start_with(false, false).await;
    for _ in 0..2 {
        let response = synthesize_response(&mut running, "", Some(16000), 7, false).await;
        assert!(!cache_hit(&response));
        checked_samples(&running, &response, "", Some(16000), true).await;
    }
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_v1alpha_lists_and_describes_the_service() {
    let running = start(false).await;
    let endpoint = running.server.endpoint.clone();
    storyreel_test_support::check_reflection(
        &endpoint,
        storyreel_tts::SERVICE_NAME,
        &["Synthesize", "SynthesizeStream", "ListVoices"],
    )
    .await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_voice_that_is_not_served_fails_loading_and_calls_are_unavailable() {
    let mut config = TtsConfig {
        default_voice: "espeak-ng:xx".into(),
        tensors: storyreel_tensors::StoreConfig {
            backend: storyreel_tensors::Backend::Memory,
            ..Default::default()
        },
        ..TtsConfig::default()
    };
    config.piper.enabled = false;
    let service = storyreel_tts::start_service(&config)
        .await
        .expect("the service starts");
    let err = service.wait_ready().await.expect_err("loading fails");
    assert!(
        err.to_string().contains("`default_voice` `espeak-ng:xx`"),
        "{err}"
    );
    let server = TestServer::stage::<TtsStage>(config, service as Arc<dyn Tts>).await;
    let mut client = TtsServiceClient::new(server.channel().await);
    let status = client
        .synthesize(SynthesizeRequest {
            scenes: vec![Scene {
                index: 0,
                text: "Hello.".into(),
            }],
            ..Default::default()
        })
        .await
        .expect_err("no voices");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("default_voice"), "{}", status.message());
    server.shutdown().await;
}

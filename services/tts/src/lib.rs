//! tts: the narration of each scene of S^D (Algorithm 1, line 13), over gRPC.
//!
//! - [`espeak`]: libespeak-ng (synthesis, IPA phonemisation), one locked engine;
//! - [`voice`]: the [`voice::Voice`] trait and its backends, espeak-ng and Piper VITS;
//! - [`text`]: sentence splitting and normalisation (numbers, abbreviations);
//! - [`words`]: word timings (Piper's durations, espeak-ng's word events) and their
//!   mapping back to the text as written;
//! - [`resample`]: sample-rate conversion;
//! - [`worker`]: the voices on the stage's model worker thread;
//! - [`service`]: the plain trait [`Tts`] and [`WorkerTts`] (worker + tensor store);
//! - [`stage_cache`]: Synthesize's content-addressed cache entries;
//! - [`validation`]: wire requests -> typed requests; [`grpc`]: the thin tonic adapter;
//! - [`config`]: the `[tts]` table; [`default_voice`]: which voice is the default ("auto"); [`error`]: [`TtsError`] and its codes;
//! - [`TtsStage`]: the stage on the shared skeleton (`storyreel_stage`).

pub mod config;
pub mod default_voice;
pub mod error;
pub mod espeak;
pub mod grpc;
pub mod resample;
pub mod service;
pub mod stage_cache;
pub mod text;
pub mod validation;
pub mod voice;
pub mod words;
pub mod worker;

pub use config::TtsConfig;
pub use error::TtsError;
pub use service::{Tts, WorkerTts};

use default_voice::VoiceChoice;
use std::sync::Arc;
use storyreel_proto::tts::tts_service_server::TtsServiceServer;
use storyreel_runtime::ModelState;
use storyreel_runtime::with_message_limits;
use storyreel_stage::{Adapter, Stage, metrics::MODEL_BUCKETS};
use storyreel_tensors::StageCache;
use tokio::sync::watch;
use tonic::service::Routes;
use voice::{Voice, espeak::EspeakVoice, piper::PiperVoice};
use worker::{SynthesisWorker, VoiceLoader};

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.tts.v1.TtsService";
/// The stage name: process, metric label, thread name, stage-cache keys.
pub const STAGE: &str = "tts";

/// The voice loaders of `config` as `choice` resolves it, the default voice first.
pub fn voice_loaders(config: &TtsConfig, choice: &VoiceChoice) -> Vec<VoiceLoader> {
    let mut loaders: Vec<(String, VoiceLoader)> = config
        .espeak_voices
        .iter()
        .map(|name| {
            let (id, name) = (format!("espeak-ng:{name}"), name.clone());
            let loader: VoiceLoader = Box::new(move || {
                EspeakVoice::load(&name)
                    .map(|v| Box::new(v) as Box<dyn Voice>)
                    .map_err(|e| TtsError::Load {
                        voice: format!("espeak-ng:{name}"),
                        reason: e.to_string(),
                    })
            });
            (id, loader)
        })
        .collect();
    if choice.piper {
        let piper = config.piper.clone();
        let id = PiperVoice::id_of(&piper.model_dir);
        let loader: VoiceLoader = Box::new(move || {
            PiperVoice::load(&piper.model_dir, piper.threads, &piper.model_version)
                .map(|v| Box::new(v) as Box<dyn Voice>)
                .map_err(|e| TtsError::Load {
                    voice: format!("piper ({})", piper.model_dir.display()),
                    reason: e.to_string(),
                })
        });
        loaders.push((id, loader));
    }
    // the default voice loads first, so that it is the served model
    loaders.sort_by_key(|(id, _)| *id != choice.default_voice);
    loaders.into_iter().map(|(_, loader)| loader).collect()
}

/// The service of `config`: its voices on the worker thread (loading in the background:
/// health is SERVING once they are loaded, calls before that are UNAVAILABLE) and its
/// tensor store.
pub async fn start_service(config: &TtsConfig) -> Result<Arc<WorkerTts>, TtsError> {
    let store = storyreel_tensors::open_store(&config.tensors).await?;
    start_service_on(config, store).await
}

/// [`start_service`] on a store the caller shares (the embedded pipeline's).
pub async fn start_service_on(
    config: &TtsConfig,
    store: Arc<dyn storyreel_tensors::TensorStore>,
) -> Result<Arc<WorkerTts>, TtsError> {
    let choice = default_voice::choose(config);
    let worker = SynthesisWorker::start(
        voice_loaders(config, &choice),
        config.worker(),
        &choice.default_voice,
    )?;
    let cache = StageCache::new(store, STAGE, config.cache_outputs);
    Ok(Arc::new(WorkerTts::new(worker, cache)))
}

storyreel_stage::stage_config!(TtsConfig);

/// The tts stage: served by `storyreel_stage::serve::serve::<TtsStage>`, its process is
/// `storyreel_stage::serve::main::<TtsStage>()`.
pub struct TtsStage;

#[async_trait::async_trait]
impl Stage for TtsStage {
    const NAME: &'static str = STAGE;
    const CONFIG_TABLE: &'static str = "tts";
    const SERVICE_NAME: &'static str = SERVICE_NAME;
    const LATENCY_BUCKETS: &'static [f64] = MODEL_BUCKETS;
    type Config = TtsConfig;
    type Service = dyn Tts;

    async fn start_with_store(
        config: &TtsConfig,
        store: Arc<dyn storyreel_tensors::TensorStore>,
    ) -> anyhow::Result<Arc<dyn Tts>> {
        Ok(start_service_on(config, store).await?)
    }

    fn model_state(service: &dyn Tts) -> watch::Receiver<ModelState> {
        service.model_state()
    }

    fn routes(service: Arc<dyn Tts>, config: &TtsConfig) -> Routes {
        let adapter = grpc::TtsGrpc(Adapter::new(service, config));
        Routes::new(with_message_limits!(
            TtsServiceServer::new(adapter),
            &config.server
        ))
    }
}

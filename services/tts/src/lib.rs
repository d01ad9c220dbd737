//! tts: the narration of each scene of S^D (Algorithm 1, line 13), over gRPC.
//!
//! - [`espeak`]: libespeak-ng (synthesis, IPA phonemisation), one locked engine;
//! - [`voice`]: the [`voice::Voice`] trait and its backends, espeak-ng and Piper VITS;
//! - [`text`]: sentence splitting and normalisation (numbers, abbreviations);
//! - [`resample`]: sample-rate conversion;
//! - [`worker`]: the synthesis thread that owns the voices;
//! - [`service`]: the plain trait [`Tts`] and [`WorkerTts`] (worker + tensor store);
//! - [`stage_cache`]: Synthesize's content-addressed cache entries;
//! - [`validation`]: wire requests -> typed requests; [`grpc`]: the thin tonic adapter;
//! - [`config`]: the `[tts]` table; [`error`]: [`TtsError`] and its codes.

pub mod config;
pub mod error;
pub mod espeak;
pub mod grpc;
pub mod resample;
pub mod service;
pub mod stage_cache;
pub mod text;
pub mod validation;
pub mod voice;
pub mod worker;

pub use config::TtsConfig;
pub use error::TtsError;
pub use service::{Tts, WorkerTts};

use std::{future::Future, sync::Arc};
use storyreel_runtime::{model::serve_model_service, server::ServerError};
use tokio::net::TcpListener;
use tonic::service::Routes;
use voice::{Voice, espeak::EspeakVoice, piper::PiperVoice};
use worker::{SynthesisWorker, VoiceLoader};

/// The fully-qualified gRPC service name (health status, reflection).
pub const SERVICE_NAME: &str = "storyreel.tts.v1.TtsService";

/// The voice loaders of `config`, the default voice first.
pub fn voice_loaders(config: &TtsConfig) -> Vec<VoiceLoader> {
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
    if config.piper.enabled {
        let piper = config.piper.clone();
        let id = PiperVoice::id_of(&piper.model_dir);
        let loader: VoiceLoader = Box::new(move || {
            PiperVoice::load(&piper.model_dir, piper.threads)
                .map(|v| Box::new(v) as Box<dyn Voice>)
                .map_err(|e| TtsError::Load {
                    voice: format!("piper ({})", piper.model_dir.display()),
                    reason: e.to_string(),
                })
        });
        loaders.push((id, loader));
    }
    // the default voice loads first, so that it is the served model
    loaders.sort_by_key(|(id, _)| *id != config.default_voice);
    loaders.into_iter().map(|(_, loader)| loader).collect()
}

/// The service of `config`: its voices on the worker thread and its tensor store.
pub async fn start_service(config: &TtsConfig) -> Result<Arc<WorkerTts>, TtsError> {
    if config.keep_freed_memory && !storyreel_nn::allocator::keep_freed_memory() {
        tracing::warn!("`keep_freed_memory` is set but this allocator does not take the tuning");
    }
    let store = storyreel_tensors::open_store(&config.tensors).await?;
    let worker = SynthesisWorker::start(voice_loaders(config), config.queue_capacity)?;
    if !worker.voices().iter().any(|v| v.id == config.default_voice) {
        return Err(TtsError::Load {
            voice: config.default_voice.clone(),
            reason: "`default_voice` is none of the configured voices".into(),
        });
    }
    Ok(Arc::new(WorkerTts::new(worker, store, config.cache_outputs)))
}

/// Serves `service` on `listener` until `shutdown` resolves, then drains in-flight calls.
/// Health is SERVING while the synthesis worker runs.
pub async fn run(
    config: TtsConfig,
    service: Arc<dyn Tts>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let state = service.model_state();
    let routes = Routes::new(grpc::TtsGrpc::new(service, &config).into_server(&config.server));
    serve_model_service(config.server, SERVICE_NAME, state, listener, routes, shutdown).await
}

//! The synthesis worker: one OS thread that owns every voice (tch tensors are not `Sync`;
//! libespeak-ng keeps global state) and speaks queued jobs sentence by sentence, sending
//! each sentence's audio back as soon as it is made. Dropping the handle stops the thread
//! after the sentence under way.

use crate::{
    error::TtsError,
    resample::resample,
    voice::{SpeechParams, Voice, VoiceDescription},
};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};
use storyreel_runtime::{ModelInfo, ModelState};
use tokio::sync::{mpsc, watch};

/// A voice made on the worker thread.
pub type VoiceLoader = Box<dyn FnOnce() -> Result<Box<dyn Voice>, TtsError> + Send>;

/// One sentence to speak: the text as given (for subtitles) and as spoken (normalised).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    pub spoken: String,
}

/// One scene of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SceneText {
    pub index: u32,
    pub sentences: Vec<Sentence>,
}

/// A validated synthesis job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub voice: String,
    pub scenes: Vec<SceneText>,
    pub rate: f32,
    /// Output sample rate (Hz).
    pub sample_rate: u32,
    pub seed: u64,
    /// Silence after each sentence but a scene's last.
    pub pause_ms: u32,
}

/// What the worker reports about a job, in order.
#[derive(Debug)]
pub enum WorkEvent {
    /// The worker took the job.
    Started { queue_time: Duration },
    /// One sentence of scene `scene` (a position in `Job::scenes`): its samples at the
    /// job's sample rate, then `pause` samples of silence that belong to the scene too.
    Sentence {
        scene: usize,
        text: String,
        samples: Vec<f32>,
        pause: usize,
    },
    /// Scene `scene` is complete.
    SceneEnd { scene: usize },
    /// The job stopped; nothing follows.
    Failed(TtsError),
}

struct Queued {
    job: Job,
    events: mpsc::Sender<WorkEvent>,
    enqueued: Instant,
}

/// The handle of the worker thread.
pub struct SynthesisWorker {
    queue: mpsc::Sender<Queued>,
    voices: Vec<VoiceDescription>,
    state: watch::Receiver<ModelState>,
    capacity: usize,
}

impl SynthesisWorker {
    /// Starts the thread and loads the voices on it (in order; the first is the default);
    /// returns once they are loaded, or the first loading error.
    pub fn start(loaders: Vec<VoiceLoader>, capacity: usize) -> Result<Self, TtsError> {
        let (queue, mut jobs) = mpsc::channel::<Queued>(capacity);
        let (loaded_tx, loaded_rx) = std::sync::mpsc::channel();
        let (state_tx, state) = watch::channel(ModelState::Loading);
        std::thread::Builder::new()
            .name("tts-worker".into())
            .spawn(move || {
                let mut voices: HashMap<String, Box<dyn Voice>> = HashMap::new();
                let mut descriptions = Vec::new();
                for load in loaders {
                    match load() {
                        Ok(voice) => {
                            descriptions.push(voice.description().clone());
                            voices.insert(voice.description().id.clone(), voice);
                        }
                        Err(err) => {
                            let _ = state_tx.send(ModelState::Failed(err.to_string()));
                            let _ = loaded_tx.send(Err(err));
                            return;
                        }
                    }
                }
                let _ = state_tx.send(ModelState::Ready(served_model(&descriptions)));
                let _ = loaded_tx.send(Ok(descriptions));
                while let Some(queued) = jobs.blocking_recv() {
                    run_job(&mut voices, queued);
                }
            })
            .map_err(|e| TtsError::Internal(format!("cannot start the worker thread: {e}")))?;
        let voices = loaded_rx
            .recv()
            .map_err(|_| TtsError::Internal("the worker thread died while loading voices".into()))??;
        Ok(SynthesisWorker {
            queue,
            voices,
            state,
            capacity,
        })
    }

    /// The loaded voices, the default first.
    pub fn voices(&self) -> &[VoiceDescription] {
        &self.voices
    }

    pub fn model_state(&self) -> watch::Receiver<ModelState> {
        self.state.clone()
    }

    /// Queues `job`; its events arrive on the returned channel. RESOURCE_EXHAUSTED when
    /// the queue is full.
    pub fn submit(&self, job: Job) -> Result<mpsc::Receiver<WorkEvent>, TtsError> {
        let (events, receiver) = mpsc::channel(64);
        let queued = Queued {
            job,
            events,
            enqueued: Instant::now(),
        };
        self.queue.try_send(queued).map_err(|err| match err {
            mpsc::error::TrySendError::Full(_) => TtsError::Overloaded {
                capacity: self.capacity,
            },
            mpsc::error::TrySendError::Closed(_) => TtsError::NotReady {
                reason: "the worker has stopped".into(),
            },
        })?;
        Ok(receiver)
    }
}

/// The served model: the default voice's, with every voice as a component.
fn served_model(voices: &[VoiceDescription]) -> ModelInfo {
    let mut model = voices.first().map(|v| v.model.clone()).unwrap_or_default();
    model.components = voices.iter().map(|v| v.model.clone()).collect();
    model
}

fn run_job(voices: &mut HashMap<String, Box<dyn Voice>>, queued: Queued) {
    let Queued {
        job,
        events,
        enqueued,
    } = queued;
    if events.is_closed() {
        return;
    }
    let send = |event| events.blocking_send(event).is_ok();
    if !send(WorkEvent::Started {
        queue_time: enqueued.elapsed(),
    }) {
        return;
    }
    let Some(voice) = voices.get_mut(&job.voice) else {
        send(WorkEvent::Failed(TtsError::Internal(format!(
            "voice `{}` is not loaded",
            job.voice
        ))));
        return;
    };
    let native = voice.description().native_sample_rate;
    let pause = (job.sample_rate as u64 * job.pause_ms as u64 / 1000) as usize;
    for (position, scene) in job.scenes.iter().enumerate() {
        for (i, sentence) in scene.sentences.iter().enumerate() {
            let params = SpeechParams {
                rate: job.rate,
                // one seed per sentence, so the audio does not depend on how it is streamed
                seed: job
                    .seed
                    .wrapping_add((scene.index as u64) << 32)
                    .wrapping_add(i as u64),
            };
            let samples = match voice.speak(&sentence.spoken, &params) {
                Ok(samples) => resample(&samples, native, job.sample_rate),
                Err(source) => {
                    send(WorkEvent::Failed(TtsError::Voice {
                        voice: job.voice.clone(),
                        source,
                    }));
                    return;
                }
            };
            let last = i + 1 == scene.sentences.len();
            if !send(WorkEvent::Sentence {
                scene: position,
                text: sentence.text.clone(),
                samples,
                pause: if last { 0 } else { pause },
            }) {
                return; // the caller went away: stop here
            }
        }
        if !send(WorkEvent::SceneEnd { scene: position }) {
            return;
        }
    }
}

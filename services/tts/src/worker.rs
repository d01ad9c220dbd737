//! The synthesis worker: the voices as a [`StageModel`] on the stage's generic model
//! worker (one OS thread that owns every voice: tch tensors are not `Sync`, libespeak-ng
//! keeps global state; bounded queue, readiness, panic isolation, queue metrics). It
//! speaks queued jobs one at a time, sentence by sentence, sending each sentence's audio
//! back as soon as it is made. Dropping the handle stops the thread after the job under
//! way.

use crate::{
    error::TtsError,
    resample::resample,
    text::{NormalizedWord, normalize::spoken_text, normalize_words},
    voice::{SpeechParams, Voice, VoiceDescription},
    words::{WordSpan, original::token_spans, proportional, rescale},
};
use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};
use storyreel_runtime::{ModelInfo, ModelState};
use storyreel_stage::{BatchControl, ModelWorker, StageModel, WorkerConfig, WorkerJob, WorkerSettings};
use tokio::sync::{mpsc, watch};

/// A voice made on the worker thread.
pub type VoiceLoader = Box<dyn FnOnce() -> Result<Box<dyn Voice>, TtsError> + Send>;

/// One sentence to speak: the text as given (for subtitles) and as spoken (normalised),
/// and each written token with what it became (for word timings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    pub spoken: String,
    pub words: Vec<NormalizedWord>,
}

impl Sentence {
    /// `text` normalised.
    pub fn new(text: String) -> Self {
        let words = normalize_words(&text);
        Sentence {
            spoken: spoken_text(&words),
            text,
            words,
        }
    }
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
    /// job's sample rate, then `pause` samples of silence that belong to the scene too;
    /// each written token of the sentence with its span in `samples`.
    Sentence {
        scene: usize,
        text: String,
        samples: Vec<f32>,
        pause: usize,
        words: Vec<(String, WordSpan)>,
    },
    /// Scene `scene` is complete.
    SceneEnd { scene: usize },
    /// The job stopped; nothing follows.
    Failed(TtsError),
}

/// A job on the worker's queue.
pub struct Queued {
    job: Job,
    events: mpsc::Sender<WorkEvent>,
    enqueued: Instant,
}

impl WorkerJob for Queued {
    fn fail(&mut self, error: storyreel_stage::WorkerError) {
        let _ = self.events.blocking_send(WorkEvent::Failed(error.into()));
    }
}

/// The voices, as the worker's model.
struct Voices(HashMap<String, Box<dyn Voice>>);

impl StageModel for Voices {
    type Job = Queued;

    fn run_batch(&mut self, batch: &mut [Queued], _: &BatchControl) -> Result<(), String> {
        for queued in batch {
            run_job(&mut self.0, queued);
        }
        Ok(())
    }
}

/// The handle of the synthesis worker.
pub struct SynthesisWorker {
    worker: ModelWorker<Queued>,
    voices: Arc<OnceLock<Vec<VoiceDescription>>>,
}

impl SynthesisWorker {
    /// Starts the worker, which loads the voices (in order; the first is the default) on
    /// its thread; [`SynthesisWorker::wait_ready`] waits for them. Loading fails (the
    /// service then reports NOT_SERVING with the reason) when a voice does not load or
    /// `default_voice` is none of them.
    pub fn start(
        loaders: Vec<VoiceLoader>,
        config: WorkerConfig,
        default_voice: &str,
    ) -> Result<Self, TtsError> {
        let default_voice = default_voice.to_string();
        let voices = Arc::new(OnceLock::new());
        let loaded = voices.clone();
        let worker = ModelWorker::spawn(WorkerSettings::new(crate::STAGE, config), move || {
            let mut voices = HashMap::new();
            let mut descriptions = Vec::new();
            for load in loaders {
                let voice = load().map_err(|e| e.to_string())?;
                descriptions.push(voice.description().clone());
                voices.insert(voice.description().id.clone(), voice);
            }
            if !descriptions.iter().any(|v| v.id == default_voice) {
                let loaded: Vec<&str> = descriptions.iter().map(|v| v.id.as_str()).collect();
                return Err(format!(
                    "`default_voice` `{default_voice}` is none of the configured voices ({})",
                    loaded.join(", ")
                ));
            }
            let model = served_model(&descriptions);
            let _ = loaded.set(descriptions);
            Ok((Voices(voices), model))
        })?;
        Ok(SynthesisWorker { worker, voices })
    }

    /// Waits until the voices are loaded; the reason when loading failed.
    pub async fn wait_ready(&self) -> Result<ModelInfo, TtsError> {
        Ok(self.worker.wait_ready().await?)
    }

    /// The loaded voices, the default first (none while loading).
    pub fn voices(&self) -> &[VoiceDescription] {
        self.voices.get().map(Vec::as_slice).unwrap_or_default()
    }

    pub fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }

    /// Queues `job`; its events arrive on the returned channel. RESOURCE_EXHAUSTED when
    /// the queue is full.
    pub fn submit(&self, job: Job) -> Result<mpsc::Receiver<WorkEvent>, TtsError> {
        let (events, receiver) = mpsc::channel(64);
        self.worker.submit(Queued {
            job,
            events,
            enqueued: Instant::now(),
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

fn run_job(voices: &mut HashMap<String, Box<dyn Voice>>, queued: &Queued) {
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
            let (samples, words) = match voice.speak(&sentence.spoken, &params) {
                Ok(speech) => {
                    let samples = resample(&speech.samples, native, job.sample_rate);
                    let spans = rescale(&speech.words, native, job.sample_rate, samples.len());
                    let words = written_word_spans(sentence, spans, samples.len());
                    (samples, words)
                }
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
                words,
            }) {
                return; // the caller went away: stop here
            }
        }
        if !send(WorkEvent::SceneEnd { scene: position }) {
            return;
        }
    }
}

/// The written tokens of `sentence` with their spans, from the spans of its spoken words
/// (`total` samples); should a voice report another number of spans than words, the
/// words share the sentence by their lengths instead.
fn written_word_spans(sentence: &Sentence, spans: Vec<WordSpan>, total: usize) -> Vec<(String, WordSpan)> {
    let counts: Vec<usize> = sentence
        .words
        .iter()
        .map(|w| w.spoken.split_whitespace().count())
        .collect();
    let spans = if spans.len() == counts.iter().sum::<usize>() {
        spans
    } else {
        let spoken: Vec<&str> = sentence.spoken.split_whitespace().collect();
        proportional(&spoken, total)
    };
    sentence
        .words
        .iter()
        .zip(token_spans(&counts, &spans))
        .map(|(word, span)| (word.original.clone(), span))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_words_cover_their_spoken_words() {
        let sentence = Sentence::new("It cost $2.".into());
        assert_eq!(sentence.spoken, "It cost two dollars.");
        let span = |start, end| WordSpan { start, end };
        let spans = vec![span(0, 10), span(10, 20), span(25, 30), span(30, 40)];
        let words = written_word_spans(&sentence, spans, 50);
        assert_eq!(
            words,
            [
                ("It".to_string(), span(0, 10)),
                ("cost".to_string(), span(10, 20)),
                ("$2.".to_string(), span(25, 40))
            ]
        );
        // a voice that lost a span: lengths instead
        let words = written_word_spans(&sentence, vec![span(0, 50)], 50);
        assert_eq!(words.len(), 3);
        assert_eq!(words[2].1.end, 50);
    }
}

//! The plain service trait [`Tts`] (no tonic types) and its implementation over the
//! synthesis worker and a tensor store: [`WorkerTts`].

use crate::{
    error::TtsError,
    stage_cache::{self, SpokenScene},
    voice::VoiceDescription,
    words::WordSpan,
    worker::{Job, SynthesisWorker, WorkEvent},
};
use futures::stream::BoxStream;
use std::time::{Duration, Instant};
use storyreel_runtime::{JobInfo, ModelInfo, ModelState, StageStats};
use storyreel_tensors::{CacheKey, StageCache, Tensor, TensorRef};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// A validated Synthesize / SynthesizeStream.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthesisRequest {
    /// Job id (`None`: an ad-hoc call; the server makes one for the tensor keys), seed,
    /// model pin, request id.
    pub job: JobInfo,
    pub deadline: Option<Instant>,
    /// `job.voice` is the resolved voice id; `job.seed` the resolved base seed.
    pub synthesis: Job,
}

/// A sentence of a scene and when it is heard.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub text: String,
    pub start_s: f64,
    pub end_s: f64,
}

impl Segment {
    /// The sentence `text` heard from sample `start` to `end` at `sample_rate`.
    pub(crate) fn from_samples(text: String, start: usize, end: usize, sample_rate: u32) -> Self {
        let rate = sample_rate as f64;
        Segment {
            text,
            start_s: start as f64 / rate,
            end_s: end as f64 / rate,
        }
    }
}

/// A written word of a scene and when it is heard: from the start of the first word it
/// is spoken as to the end of the last ("$3.50" is heard as five words).
#[derive(Debug, Clone, PartialEq)]
pub struct WordTiming {
    pub word: String,
    pub start_s: f64,
    pub end_s: f64,
}

impl WordTiming {
    pub(crate) fn from_samples(word: String, start: usize, end: usize, sample_rate: u32) -> Self {
        let rate = sample_rate as f64;
        WordTiming {
            word,
            start_s: start as f64 / rate,
            end_s: end as f64 / rate,
        }
    }
}

/// The narration of one scene, stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneAudio {
    pub scene_index: u32,
    pub audio: TensorRef,
    pub duration_s: f64,
    pub sample_rate: u32,
    pub segments: Vec<Segment>,
    /// Every written word of the scene, in order.
    pub words: Vec<WordTiming>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Synthesis {
    pub scenes: Vec<SceneAudio>,
    pub model: ModelInfo,
    pub voice: String,
    pub stats: StageStats,
}

/// What SynthesizeStream yields: the header first, then per scene its samples in order
/// and its end.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Header {
        model: ModelInfo,
        voice: String,
        sample_rate: u32,
    },
    Samples {
        scene_index: u32,
        offset: u64,
        samples: Vec<f32>,
    },
    SceneEnd {
        scene_index: u32,
        total_samples: u64,
        duration_s: f64,
        segments: Vec<Segment>,
        words: Vec<WordTiming>,
    },
}

pub type StreamEvents = BoxStream<'static, Result<StreamEvent, TtsError>>;

#[async_trait::async_trait]
pub trait Tts: Send + Sync {
    /// The voices, the default first.
    fn voices(&self) -> Vec<VoiceDescription>;
    /// Readiness follows this.
    fn model_state(&self) -> watch::Receiver<ModelState>;
    /// Speaks every scene and stores each scene's audio.
    async fn synthesize(&self, request: SynthesisRequest) -> Result<Synthesis, TtsError>;
    /// Speaks every scene, yielding samples in chunks of `chunk_samples` as they are made.
    fn synthesize_stream(&self, request: SynthesisRequest, chunk_samples: usize) -> StreamEvents;
}

/// [`Tts`] over the [`SynthesisWorker`] and a tensor store.
pub struct WorkerTts {
    worker: SynthesisWorker,
    /// Synthesize answers from and fills [`stage_cache`] entries (when `cache_outputs`).
    cache: StageCache,
}

impl WorkerTts {
    pub fn new(worker: SynthesisWorker, cache: StageCache) -> Self {
        WorkerTts { worker, cache }
    }

    /// Waits until the voices are loaded; why, when they could not be.
    pub async fn wait_ready(&self) -> Result<ModelInfo, TtsError> {
        self.worker.wait_ready().await
    }

    fn voice(&self, id: &str) -> Result<&VoiceDescription, TtsError> {
        self.worker
            .voices()
            .iter()
            .find(|v| v.id == id)
            .ok_or_else(|| TtsError::Internal(format!("voice `{id}` passed validation but is not loaded")))
    }

    fn start(&self, request: &SynthesisRequest) -> Result<(ModelInfo, mpsc::Receiver<WorkEvent>), TtsError> {
        let model = self.voice(&request.synthesis.voice)?.model.clone();
        request.job.check_model_pin(&model)?;
        let events = self.worker.submit(request.synthesis.clone())?;
        Ok((model, events))
    }
}

/// Builds a scene's samples, segments and word timings from the worker's sentences.
#[derive(Default)]
struct SceneBuilder {
    samples: Vec<f32>,
    /// Each sentence's text (as given) and its first and end sample.
    sentences: Vec<(String, usize, usize)>,
    /// Each written word and its first and end sample.
    words: Vec<(String, WordSpan)>,
}

impl SceneBuilder {
    /// Appends a sentence (its words' spans relative to its first sample); returns the
    /// new samples (speech, then pause).
    fn push(
        &mut self,
        text: String,
        mut samples: Vec<f32>,
        pause: usize,
        words: Vec<(String, WordSpan)>,
    ) -> Vec<f32> {
        let start = self.samples.len();
        self.sentences.push((text, start, start + samples.len()));
        self.words.extend(words.into_iter().map(|(word, span)| {
            let span = WordSpan {
                start: start + span.start,
                end: start + span.end,
            };
            (word, span)
        }));
        samples.resize(samples.len() + pause, 0.0);
        self.samples.extend_from_slice(&samples);
        samples
    }

    fn bounds(&self) -> Vec<(usize, usize)> {
        self.sentences
            .iter()
            .map(|&(_, start, end)| (start, end))
            .collect()
    }

    fn word_bounds(&self) -> Vec<(usize, usize)> {
        self.words.iter().map(|(_, s)| (s.start, s.end)).collect()
    }

    /// The sentences and the words with their times at `sample_rate`.
    fn timings(self, sample_rate: u32) -> (Vec<Segment>, Vec<WordTiming>) {
        let segments = self
            .sentences
            .into_iter()
            .map(|(text, start, end)| Segment::from_samples(text, start, end, sample_rate))
            .collect();
        let words = self
            .words
            .into_iter()
            .map(|(word, s)| WordTiming::from_samples(word, s.start, s.end, sample_rate))
            .collect();
        (segments, words)
    }
}

async fn next_event(
    events: &mut mpsc::Receiver<WorkEvent>,
    deadline: Option<Instant>,
) -> Result<Option<WorkEvent>, TtsError> {
    match deadline {
        Some(deadline) => tokio::time::timeout_at(deadline.into(), events.recv())
            .await
            .map_err(|_| TtsError::DeadlineExceeded),
        None => Ok(events.recv().await),
    }
}

fn worker_gone() -> TtsError {
    TtsError::NotReady {
        reason: "the synthesis worker stopped during the request".into(),
    }
}

/// A scene of only punctuation speaks nothing: one silent sample keeps the stored
/// tensor's shape valid (dimensions >= 1).
fn stored_samples(builder: &SceneBuilder) -> &[f32] {
    if builder.samples.is_empty() {
        &[0.0]
    } else {
        &builder.samples
    }
}

/// What the stage cache holds for a request.
enum Lookup {
    Hit(Vec<SceneAudio>),
    /// No entry, or one that lost a tensor (the store then drops it).
    Miss,
    /// An entry whose outputs do not fit the request.
    Unfit,
}

impl WorkerTts {
    async fn cached(&self, key: &CacheKey, job: &Job) -> Result<Lookup, TtsError> {
        let Some(refs) = self.cache.lookup(key).await? else {
            return Ok(Lookup::Miss);
        };
        Ok(
            match stage_cache::scenes(self.cache.store().as_ref(), job, &refs).await? {
                Some(scenes) => Lookup::Hit(scenes),
                None => Lookup::Unfit,
            },
        )
    }

    /// Stores the scenes as the entry at `key` and answers with the entry's refs (another
    /// call's, if it stored the same entry first: hence the bounds are read back from the
    /// entry, one small round trip, rather than taken from `builders`).
    async fn store_in_cache(
        &self,
        key: &CacheKey,
        job: &Job,
        builders: &[SceneBuilder],
    ) -> Result<Vec<SceneAudio>, TtsError> {
        let spoken: Vec<SpokenScene<'_>> = builders
            .iter()
            .map(|b| SpokenScene {
                samples: stored_samples(b),
                bounds: b.bounds(),
                words: b.word_bounds(),
            })
            .collect();
        let refs = self.cache.fill(key, &stage_cache::outputs(&spoken)?).await?;
        stage_cache::scenes(self.cache.store().as_ref(), job, &refs)
            .await?
            .ok_or_else(|| {
                TtsError::Internal(format!(
                    "the tts cache entry {key} does not fit the request that wrote it"
                ))
            })
    }

    /// Stores each scene's audio under the job's keys.
    async fn store_under_job(
        &self,
        request: &SynthesisRequest,
        builders: Vec<SceneBuilder>,
    ) -> Result<Vec<SceneAudio>, TtsError> {
        let job = &request.synthesis;
        let job_id = request.job.job_id_for_keys();
        let store = self.cache.store();
        let mut items = Vec::with_capacity(builders.len());
        for (scene, builder) in job.scenes.iter().zip(&builders) {
            let key = store.keys().tensor(&job_id, crate::STAGE, scene.index, "audio")?;
            let samples = stored_samples(builder);
            items.push((key, Tensor::from_slice(vec![samples.len()], samples)?));
        }
        let refs = store.put_many(&items, None).await?;
        Ok(job
            .scenes
            .iter()
            .zip(builders)
            .zip(refs)
            .map(|((scene, builder), audio)| {
                let (segments, words) = builder.timings(job.sample_rate);
                SceneAudio {
                    scene_index: scene.index,
                    duration_s: audio.numel() as f64 / job.sample_rate as f64,
                    audio,
                    sample_rate: job.sample_rate,
                    segments,
                    words,
                }
            })
            .collect())
    }
}

#[async_trait::async_trait]
impl Tts for WorkerTts {
    fn voices(&self) -> Vec<VoiceDescription> {
        self.worker.voices().to_vec()
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.model_state()
    }

    async fn synthesize(&self, request: SynthesisRequest) -> Result<Synthesis, TtsError> {
        let job = &request.synthesis;
        let submitted = Instant::now();
        let voice = self.voice(&job.voice)?;
        request.job.check_model_pin(&voice.model)?;
        let mut cache_key = stage_cache::key(&self.cache, voice, job, request.job.bypass_cache)?;
        if let Some(key) = &cache_key {
            match self.cached(key, job).await? {
                Lookup::Hit(scenes) => {
                    return Ok(Synthesis {
                        scenes,
                        model: voice.model.clone(),
                        voice: job.voice.clone(),
                        stats: StageStats {
                            cache_hit: true,
                            queue_time: Duration::ZERO,
                            compute_time: submitted.elapsed(),
                        },
                    });
                }
                Lookup::Miss => {}
                Lookup::Unfit => {
                    // the entry stays (first writer wins): this call stores under the job
                    self.cache.count_unfit();
                    tracing::warn!(%key, "a tts cache entry does not fit its request; speaking again");
                    cache_key = None;
                }
            }
        }
        // the voice and the model pin are checked above
        let mut events = self.worker.submit(job.clone())?;
        let mut queue_time = Duration::ZERO;
        let mut builders: Vec<SceneBuilder> = job.scenes.iter().map(|_| SceneBuilder::default()).collect();
        let mut done = 0;
        while done < job.scenes.len() {
            match next_event(&mut events, request.deadline)
                .await?
                .ok_or_else(worker_gone)?
            {
                WorkEvent::Started { queue_time: q } => queue_time = q,
                WorkEvent::Sentence {
                    scene,
                    text,
                    samples,
                    pause,
                    words,
                } => {
                    builders[scene].push(text, samples, pause, words);
                }
                WorkEvent::SceneEnd { .. } => done += 1,
                WorkEvent::Failed(err) => return Err(err),
            }
        }
        let scenes = match &cache_key {
            Some(key) => self.store_in_cache(key, job, &builders).await?,
            None => self.store_under_job(&request, builders).await?,
        };
        Ok(Synthesis {
            scenes,
            model: voice.model.clone(),
            voice: job.voice.clone(),
            stats: StageStats {
                cache_hit: false,
                queue_time,
                compute_time: submitted.elapsed().saturating_sub(queue_time),
            },
        })
    }

    fn synthesize_stream(&self, request: SynthesisRequest, chunk_samples: usize) -> StreamEvents {
        let (model, mut events) = match self.start(&request) {
            Ok(started) => started,
            Err(err) => return Box::pin(futures::stream::once(async { Err(err) })),
        };
        let (tx, rx) = mpsc::channel(16);
        let chunk_samples = chunk_samples.max(1);
        tokio::spawn(async move {
            let job = request.synthesis;
            let rate = job.sample_rate;
            let header = StreamEvent::Header {
                model,
                voice: job.voice.clone(),
                sample_rate: rate,
            };
            if tx.send(Ok(header)).await.is_err() {
                return;
            }
            let mut builder = SceneBuilder::default();
            // samples made but not yet sent, and the offset of the first of them
            let mut pending: Vec<f32> = Vec::new();
            let mut sent: u64 = 0;
            loop {
                let event = match next_event(&mut events, request.deadline).await {
                    Ok(Some(event)) => event,
                    Ok(None) => {
                        let _ = tx.send(Err(worker_gone())).await;
                        return;
                    }
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                };
                let out = match event {
                    WorkEvent::Started { .. } => continue,
                    WorkEvent::Failed(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                    WorkEvent::Sentence {
                        scene,
                        text,
                        samples,
                        pause,
                        words,
                    } => {
                        pending.extend(builder.push(text, samples, pause, words));
                        let mut out = Vec::new();
                        while pending.len() >= chunk_samples {
                            let rest = pending.split_off(chunk_samples);
                            let chunk = std::mem::replace(&mut pending, rest);
                            out.push(StreamEvent::Samples {
                                scene_index: job.scenes[scene].index,
                                offset: sent,
                                samples: chunk,
                            });
                            sent += chunk_samples as u64;
                        }
                        out
                    }
                    WorkEvent::SceneEnd { scene } => {
                        let index = job.scenes[scene].index;
                        let finished = std::mem::take(&mut builder);
                        let mut out = Vec::new();
                        let mut tail = std::mem::take(&mut pending);
                        if finished.samples.is_empty() {
                            tail.push(0.0); // as Synthesize stores: at least one sample
                        }
                        let total = sent + tail.len() as u64;
                        if !tail.is_empty() {
                            out.push(StreamEvent::Samples {
                                scene_index: index,
                                offset: sent,
                                samples: tail,
                            });
                        }
                        let (segments, words) = finished.timings(rate);
                        out.push(StreamEvent::SceneEnd {
                            scene_index: index,
                            total_samples: total,
                            duration_s: total as f64 / rate as f64,
                            segments,
                            words,
                        });
                        sent = 0;
                        let last = scene + 1 == job.scenes.len();
                        for event in out {
                            if tx.send(Ok(event)).await.is_err() {
                                return;
                            }
                        }
                        if last {
                            return;
                        }
                        continue;
                    }
                };
                for event in out {
                    if tx.send(Ok(event)).await.is_err() {
                        return; // the caller went away; dropping `events` stops the worker
                    }
                }
            }
        });
        Box::pin(ReceiverStream::new(rx))
    }
}

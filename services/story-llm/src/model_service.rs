//! [`ModelBackedStoryLlm`]: the [`StoryLlm`] that writes stories with the model worker.
//!
//! A request is driven by a task that asks the worker for one scene at a time
//! ([`crate::prompting::scene_prompt`]: the list so far in the assistant turn, the next
//! number forced). Each scene is decoded as `candidates` continuations with different
//! seeds, queued together so the worker decodes them in one batch; the best usable one is
//! kept ([`crate::scoring::choose`], with each candidate's relevance to the title when a
//! [`TitleRelevance`] encoder is configured), and its tokens are streamed, then the scene.
//! A scene none of whose candidates is usable gets another round with changed seeds,
//! sampled hotter and with a mild repetition penalty ([`crate::rounds`]), up to
//! `max_attempts` rounds. After the last round the
//! best well-formed candidate refused only as a retelling of an earlier scene or as off
//! the subject is taken (logged), so a story is not lost to one weak scene; when no round
//! gave even that, the request fails with [`StoryLlmError::UnusableOutput`] naming the reason. Only
//! accepted text is streamed, so a client never has to discard tokens (every event's
//! `attempt` is 1).
//!
//! Each story has at most one scene's candidates in the worker's queue at a time. Its
//! first scene is queued before the stream is returned, so a full queue is refused up
//! front ([`StoryLlmError::Overloaded`]); a later scene that meets a full queue ends the
//! stream with the same error.
//!
//! The scenes of a story share one prefix key ([`LlmJob::prefix_key`]): each scene's
//! prompt extends the previous one, so the worker prefills only the scene just written
//! and the next number, not the whole story again.
//!
//! Dropping the returned stream sets the job's cancel flag and ends the task, so the
//! worker stops decoding the request within one decode step; past the request's deadline
//! the stream ends with [`StoryLlmError::DeadlineExceeded`] and decoding stops alike.

use crate::{
    config::StoryLlmConfig,
    error::StoryLlmError,
    parsing::clean_scene,
    parsing::{RejectedScene, SceneSetError},
    prompting::{PromptSpec, SENTENCE_STOPS, scene_prompt, scene_stops},
    relevance::TitleRelevance,
    rounds::sampling_for_round,
    scoring::{self, Candidate, Choice},
    service::{
        ModelInfo, ModelState, SceneDone, StageStats, Story, StoryEvent, StoryEventStream, StoryLlm,
        StoryProgress, StoryRequest, TokenPiece, TokenUsage,
    },
};
use futures::StreamExt;
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Instant,
};
use storyreel_llm::{
    CancelOnDrop, ChatPrompt, JobSampling, LlmJob, LlmOutput, ModelWorker, WorkerEvent, WorkerStats, seed,
};
use storyreel_nn::generation::FinishReason;
use tokio::sync::{mpsc, watch};

/// Events buffered between the driving task and the caller.
const EVENT_BUFFER: usize = 256;
/// Characters of a rejected scene quoted in the error.
const EXCERPT_CHARS: usize = 60;
/// Numbers the stories of this process, for their prefix keys.
static NEXT_STORY: AtomicU64 = AtomicU64::new(1);

/// SmolLM2 (or any Llama-family chat model) behind the [`StoryLlm`] trait.
pub struct ModelBackedStoryLlm {
    worker: Arc<ModelWorker>,
    max_attempts: u32,
    /// Candidates decoded per scene, >= 1.
    candidates: usize,
    relevance: Option<TitleRelevance>,
}

impl ModelBackedStoryLlm {
    /// Starts the model worker; the model loads in the background ([`StoryLlm::model_state`]
    /// says when it is ready).
    /// The relevance encoder, when configured, loads here: a missing one fails the start.
    pub fn start(config: &StoryLlmConfig) -> Result<Self, StoryLlmError> {
        let relevance = if config.relevance_encoder_dir.as_os_str().is_empty() {
            None
        } else {
            Some(TitleRelevance::load(&config.relevance_encoder_dir)?)
        };
        Ok(Self {
            worker: Arc::new(ModelWorker::spawn(config.worker_settings())?),
            max_attempts: config.max_attempts,
            candidates: config.candidates.max(1) as usize,
            relevance,
        })
    }

    /// Over a given worker (tests use a scripted one).
    /// One candidate per scene; see [`Self::with_candidates`].
    pub fn with_worker(worker: ModelWorker, max_attempts: u32) -> Self {
        Self {
            worker: Arc::new(worker),
            max_attempts,
            candidates: 1,
            relevance: None,
        }
    }

    /// Decodes `candidates` (at least 1) continuations per scene and keeps the best.
    pub fn with_candidates(mut self, candidates: usize) -> Self {
        self.candidates = candidates.max(1);
        self
    }

    /// The worker's counters (batches, cancellations).
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.worker.stats().clone()
    }

    /// Waits until the model is loaded; the reason when loading failed.
    pub async fn wait_ready(&self) -> Result<ModelInfo, String> {
        storyreel_runtime::model::wait_ready(self.worker.state()).await
    }
}

#[async_trait::async_trait]
impl StoryLlm for ModelBackedStoryLlm {
    async fn generate_stream(&self, request: StoryRequest) -> Result<StoryEventStream, StoryLlmError> {
        let model = self.worker.ready_model()?;
        request.job.check_model_pin(&model)?;
        if request.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(StoryLlmError::DeadlineExceeded);
        }
        let cancelled = Arc::new(AtomicBool::new(false));
        let driver = Driver {
            worker: self.worker.clone(),
            spec: PromptSpec::from(&request),
            request,
            model,
            max_attempts: self.max_attempts,
            candidates: self.candidates,
            relevance: self.relevance.clone(),
            cancelled: cancelled.clone(),
            prefix_key: format!("story-{}", NEXT_STORY.fetch_add(1, Ordering::Relaxed)),
        };
        // The first scene is queued here, so a full queue is refused before any event.
        let first = driver.submit(1, &[])?;
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        tokio::spawn(driver.run(first, tx));
        let guard = CancelOnDrop(cancelled);
        Ok(
            futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
                rx.recv().await.map(|item| (item, (rx, guard)))
            })
            .boxed(),
        )
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }
}

type EventSender = mpsc::Sender<Result<StoryEvent, StoryLlmError>>;

/// Why a request stopped early.
enum Stop {
    /// The caller is gone: nothing more to send.
    CallerGone,
    /// Send this error and end.
    Error(StoryLlmError),
}

struct Driver {
    worker: Arc<ModelWorker>,
    request: StoryRequest,
    spec: PromptSpec,
    model: ModelInfo,
    max_attempts: u32,
    candidates: usize,
    relevance: Option<TitleRelevance>,
    cancelled: Arc<AtomicBool>,
    /// Unique to this story: its scenes reuse each other's KV cache, nothing else's.
    prefix_key: String,
}

#[derive(Default)]
struct Totals {
    usage: TokenUsage,
    stats: StageStats,
}

impl Driver {
    /// Queues the candidates of round `round` (1-based) of the scene after `so_far`, seeded
    /// with [`seed::for_attempt`] of the request seed and sampled as
    /// [`sampling_for_round`] says. Candidate 0 of round 1 draws the scene's own seed, so
    /// one candidate decodes exactly what a single generation would.
    fn submit(&self, round: u32, so_far: &[String]) -> Result<Vec<CandidateEvents>, StoryLlmError> {
        let prompt = scene_prompt(&self.spec, so_far);
        let scene_seed = seed::for_scene(seed::for_attempt(self.request.seed, round), so_far.len());
        (0..self.candidates)
            .map(|c| {
                let (events, rx) = mpsc::unbounded_channel();
                self.worker.submit(LlmJob {
                    prompt: ChatPrompt {
                        messages: prompt.messages.clone(),
                        assistant_prefix: prompt.assistant_prefix.clone(),
                    },
                    stop_strings: scene_stops(so_far.len()),
                    sampling: sampling_for_round(
                        JobSampling::new(
                            &self.request.sampling,
                            seed::for_attempt(scene_seed, c as u32 + 1),
                        ),
                        round,
                    ),
                    deadline: self.request.deadline,
                    cancelled: self.cancelled.clone(),
                    events,
                    enqueued_at: Instant::now(),
                    prefix_key: Some(self.prefix_key.clone()),
                })?;
                Ok(rx)
            })
            .collect()
    }

    async fn run(self, first: Vec<CandidateEvents>, tx: EventSender) {
        match self.write_story(first, &tx).await {
            Ok(story) => {
                let _ = tx.send(Ok(StoryEvent::Finished(story))).await;
            }
            Err(Stop::CallerGone) => {
                self.cancelled.store(true, Ordering::SeqCst);
                tracing::debug!("story request cancelled by the caller");
            }
            Err(Stop::Error(err)) => {
                self.cancelled.store(true, Ordering::SeqCst);
                match &err {
                    StoryLlmError::UnusableOutput { .. } | StoryLlmError::Model(_) => {
                        tracing::warn!(error = %err, title = %self.request.title, "story failed")
                    }
                    _ => tracing::debug!(error = %err, "story stopped"),
                }
                let _ = tx.send(Err(err)).await;
            }
        }
    }

    /// Writes the scenes in order. A scene none of whose candidates is usable gets another
    /// round of candidates with changed seeds and hotter sampling ([`Self::submit`]), up
    /// to `max_attempts` rounds; the scenes already accepted stay.
    async fn write_story(&self, first: Vec<CandidateEvents>, tx: &EventSender) -> Result<Story, Stop> {
        let n = self.request.n_scenes;
        let mut totals = Totals::default();
        let mut pending = Some(first);
        let mut scenes: Vec<String> = Vec::with_capacity(n);
        let mut most_rounds = 1;
        while scenes.len() < n {
            let index = scenes.len();
            let mut accepted = false;
            let mut failure = None;
            let mut fallback: Option<(Choice, Vec<(u32, String)>)> = None;
            for round in 1..=self.max_attempts {
                let rxs = match pending.take() {
                    Some(rxs) => rxs,
                    None => self.submit(round, &scenes).map_err(Stop::Error)?,
                };
                let decoded = self.decode_candidates(rxs, tx).await?;
                for candidate in &decoded {
                    totals.usage.add(&candidate.output);
                }
                // The candidates share their batches: the scene waited and computed once.
                totals.stats.queue_time += decoded
                    .iter()
                    .map(|d| d.output.queue_time)
                    .max()
                    .unwrap_or_default();
                totals.stats.compute_time += decoded
                    .iter()
                    .map(|d| d.output.compute_time)
                    .max()
                    .unwrap_or_default();
                let candidates = self.candidates_of(&decoded).await;
                match scoring::choose(&candidates, &self.request.title, &scenes) {
                    Ok(choice) => {
                        most_rounds = most_rounds.max(round);
                        let tokens = &decoded[choice.index].tokens;
                        self.accept(index, choice, tokens, &mut scenes, tx).await?;
                        accepted = true;
                        break;
                    }
                    Err(none) => {
                        tracing::debug!(round, scene = index, rejections = ?none.rejections, "no usable candidate");
                        if let Some(choice) = none.fallback
                            && fallback
                                .as_ref()
                                .is_none_or(|(kept, _)| choice.score > kept.score)
                        {
                            let tokens = decoded[choice.index].tokens.clone();
                            fallback = Some((choice, tokens));
                        }
                        failure = Some(SceneSetError {
                            wanted: n,
                            usable: scenes.len(),
                            rejected: none
                                .rejections
                                .into_iter()
                                .zip(&decoded)
                                .map(|(rejection, d)| RejectedScene {
                                    position: index + 1,
                                    rejection,
                                    excerpt: d.output.text.trim().chars().take(EXCERPT_CHARS).collect(),
                                })
                                .take(1)
                                .collect(),
                        });
                    }
                }
            }
            if !accepted && let Some((choice, tokens)) = fallback {
                tracing::warn!(
                    scene = index,
                    title = %self.request.title,
                    text = %choice.text,
                    "no usable scene after every round; keeping the best retelling or off-topic one"
                );
                most_rounds = self.max_attempts;
                self.accept(index, choice, &tokens, &mut scenes, tx).await?;
                accepted = true;
            }
            if !accepted {
                return Err(Stop::Error(StoryLlmError::UnusableOutput {
                    attempts: self.max_attempts,
                    last: failure.unwrap_or(SceneSetError {
                        wanted: n,
                        usable: scenes.len(),
                        rejected: vec![],
                    }),
                }));
            }
        }
        Ok(Story {
            scenes,
            model: self.model.clone(),
            usage: totals.usage,
            seed: self.request.seed,
            attempts: most_rounds,
            stats: totals.stats,
        })
    }

    /// The decoded outputs as [`Candidate`]s, with their relevance to the title.
    async fn candidates_of(&self, decoded: &[Decoded]) -> Vec<Candidate> {
        let mut candidates: Vec<Candidate> = decoded.iter().map(|d| candidate(&d.output)).collect();
        let Some(relevance) = &self.relevance else {
            return candidates;
        };
        // Only candidates that clean into a scene can be chosen; the others are not embedded.
        let cleaned: Vec<(usize, String)> = candidates
            .iter()
            .enumerate()
            .filter_map(|(i, c)| clean_scene(&c.completed()).ok().map(|text| (i, text)))
            .collect();
        let texts = cleaned.iter().map(|(_, text)| text.clone()).collect();
        if let Some(cosines) = relevance.cosines(&self.request.title, texts).await {
            for ((i, _), cosine) in cleaned.iter().zip(cosines) {
                candidates[*i].relevance = Some(cosine);
            }
        }
        candidates
    }

    /// Streams the chosen candidate's tokens, then the scene and the progress.
    async fn accept(
        &self,
        index: usize,
        choice: Choice,
        tokens: &[(u32, String)],
        scenes: &mut Vec<String>,
        tx: &EventSender,
    ) -> Result<(), Stop> {
        for (token_id, text) in tokens {
            let piece = TokenPiece {
                attempt: 1,
                scene_index: index as u32,
                token_id: *token_id,
                text: text.clone(),
            };
            send(tx, StoryEvent::Token(piece)).await?;
        }
        let done = SceneDone {
            attempt: 1,
            index: index as u32,
            text: choice.text.clone(),
        };
        scenes.push(choice.text);
        send(tx, StoryEvent::Scene(done)).await?;
        let n = self.request.n_scenes;
        let progress = StoryProgress {
            scenes_done: scenes.len() as u32,
            n_scenes: n as u32,
            message: format!("scene {} of {n}", scenes.len()),
        };
        send(tx, StoryEvent::Progress(progress)).await
    }

    /// Waits for every candidate of a scene: their raw outputs and tokens, in order.
    async fn decode_candidates(
        &self,
        rxs: Vec<CandidateEvents>,
        tx: &EventSender,
    ) -> Result<Vec<Decoded>, Stop> {
        let deadline = self.request.deadline.map(tokio::time::Instant::from_std);
        let past_deadline = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let all = futures::future::try_join_all(rxs.into_iter().map(collect_candidate));
        tokio::select! {
            _ = tx.closed() => Err(Stop::CallerGone),
            _ = past_deadline => Err(Stop::Error(StoryLlmError::DeadlineExceeded)),
            decoded = all => decoded.map_err(Stop::Error),
        }
    }
}

/// The events of one candidate's decoding.
type CandidateEvents = mpsc::UnboundedReceiver<WorkerEvent>;

/// A decoded candidate: the worker's output and the tokens it streamed.
struct Decoded {
    output: LlmOutput,
    tokens: Vec<(u32, String)>,
}

async fn collect_candidate(mut rx: CandidateEvents) -> Result<Decoded, StoryLlmError> {
    let mut tokens = Vec::new();
    loop {
        match rx.recv().await {
            Some(WorkerEvent::Token { token_id, text }) => tokens.push((token_id, text)),
            Some(WorkerEvent::Done(Ok(output))) => return Ok(Decoded { output, tokens }),
            Some(WorkerEvent::Done(Err(err))) => return Err(err.into()),
            None => {
                return Err(StoryLlmError::model(
                    "the model worker stopped before the scene was written",
                ));
            }
        }
    }
}

/// A worker output as a [`Candidate`]: the sentence end its stop string cut is noted.
fn candidate(output: &LlmOutput) -> Candidate {
    let stopped_at_sentence_end = match &output.finish_reason {
        FinishReason::StopString(stop) if SENTENCE_STOPS.contains(&stop.as_str()) => stop.chars().next(),
        _ => None,
    };
    Candidate {
        raw: output.text.clone(),
        stopped_at_sentence_end,
        mean_logprob: output.mean_logprob,
        relevance: None,
    }
}

async fn send(tx: &EventSender, event: StoryEvent) -> Result<(), Stop> {
    tx.send(Ok(event)).await.map_err(|_| Stop::CallerGone)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{JobInfo, Sampling, SeedOrigin};
    use std::sync::Mutex;

    fn request(n_scenes: usize, seed: u64) -> StoryRequest {
        StoryRequest {
            title: "A fox and the river".into(),
            n_scenes,
            style: None,
            language: "en".into(),
            seed,
            seed_origin: SeedOrigin::Request,
            sampling: Sampling {
                temperature: 0.7,
                top_p: 0.9,
                top_k: 0,
                repetition_penalty: 1.3,
                max_new_tokens: 16,
            },
            deadline: None,
            job: JobInfo::default(),
        }
    }

    fn service(answer: impl FnMut(&LlmJob) -> String + Send + 'static) -> ModelBackedStoryLlm {
        ModelBackedStoryLlm::with_worker(ModelWorker::scripted(answer), 3)
    }

    /// The number the assistant prefix asks for next (`"1. ...\n2."` -> 2).
    fn next_number(job: &LlmJob) -> String {
        let last = job.prompt.assistant_prefix.rsplit('\n').next().unwrap();
        last.trim_end_matches('.').to_string()
    }

    #[tokio::test]
    async fn scenes_are_written_one_by_one_and_streamed_in_order() {
        let llm = service(|job| {
            match next_number(job).as_str() {
                "1" => " The fox wakes under an old oak.",
                "2" => " It runs across the frozen river.",
                _ => " At night it sleeps in a warm den.",
            }
            .to_string()
        });
        let mut events = llm.generate_stream(request(3, 5)).await.unwrap();
        let mut kinds = vec![];
        let mut finished = None;
        while let Some(event) = events.next().await {
            match event.unwrap() {
                StoryEvent::Scene(scene) => kinds.push(format!("scene {}", scene.index)),
                StoryEvent::Progress(p) => kinds.push(format!("progress {}/{}", p.scenes_done, p.n_scenes)),
                StoryEvent::Finished(story) => finished = Some(story),
                StoryEvent::Token(_) => {}
            }
        }
        assert_eq!(
            kinds,
            [
                "scene 0",
                "progress 1/3",
                "scene 1",
                "progress 2/3",
                "scene 2",
                "progress 3/3"
            ]
        );
        let story = finished.expect("a finished story");
        assert_eq!(
            story.scenes,
            [
                "The fox wakes under an old oak.",
                "It runs across the frozen river.",
                "At night it sleeps in a warm den."
            ]
        );
        assert_eq!((story.attempts, story.seed), (1, 5));
        assert_eq!(story.usage.generated_tokens, 15);
    }

    #[tokio::test]
    async fn a_repeated_scene_gets_another_round_and_the_earlier_scenes_stay() {
        // Scene 2 first repeats scene 1; its second round, with other seeds, does not.
        let samplings = Arc::new(Mutex::new(vec![]));
        let seen = samplings.clone();
        let llm = service(move |job| {
            let mut seen = seen.lock().unwrap();
            seen.push(job.sampling);
            if seen.len() <= 2 {
                "The fox runs home.".into()
            } else {
                "Snow falls on the quiet valley.".into()
            }
        });
        let story = llm.generate(request(2, 9)).await.unwrap();
        assert_eq!(
            story.scenes,
            ["The fox runs home.", "Snow falls on the quiet valley."]
        );
        assert_eq!((story.attempts, story.seed), (2, 9));
        let samplings = samplings.lock().unwrap();
        assert_eq!(samplings.len(), 3, "scene 1 is not written again");
        let (first_round, second_round) = (samplings[1], samplings[2]);
        assert_ne!(first_round.seed, second_round.seed, "a new round draws new seeds");
        assert_eq!(first_round.temperature, samplings[0].temperature);
        assert!(
            second_round.temperature > first_round.temperature
                && second_round.repetition_penalty >= first_round.repetition_penalty,
            "a new round samples hotter: {second_round:?} after {first_round:?}"
        );
    }

    #[tokio::test]
    async fn each_scene_is_decoded_as_candidates_and_a_usable_one_is_kept() {
        // Of each scene's three candidates only the third is usable.
        let jobs = Arc::new(Mutex::new(vec![]));
        let seen = jobs.clone();
        let llm = service(move |job| {
            let mut jobs = seen.lock().unwrap();
            jobs.push((next_number(job), job.sampling.seed));
            let scene: Vec<u64> = jobs
                .iter()
                .filter(|(n, _)| *n == next_number(job))
                .map(|j| j.1)
                .collect();
            if scene.len() < 3 {
                return "Hi".into();
            }
            match next_number(job).as_str() {
                "1" => " The fox wakes under an old oak.".into(),
                _ => " It runs across the frozen river.".into(),
            }
        })
        .with_candidates(3);
        let story = llm.generate(request(2, 4)).await.unwrap();
        assert_eq!(
            story.scenes,
            [
                "The fox wakes under an old oak.",
                "It runs across the frozen river."
            ]
        );
        assert_eq!(story.attempts, 1);
        let jobs = jobs.lock().unwrap();
        assert_eq!(jobs.len(), 6, "three candidates per scene, one round each");
        let first: std::collections::HashSet<u64> = jobs[..3].iter().map(|j| j.1).collect();
        assert_eq!(first.len(), 3, "each candidate draws its own seed");
        assert_eq!(story.usage.generated_tokens, 30, "every candidate's tokens count");
    }

    #[tokio::test]
    async fn unusable_output_after_max_attempts_names_the_reason() {
        let llm = service(|_| "The fox runs home.".into());
        let err = llm.generate(request(2, 1)).await.unwrap_err();
        let StoryLlmError::UnusableOutput { attempts, last } = &err else {
            panic!("expected unusable output, got {err:?}");
        };
        assert_eq!(*attempts, 3);
        assert_eq!((last.wanted, last.usable), (2, 1));
        assert!(err.to_string().contains("repeats candidate 1"), "{err}");

        let llm = service(|_| "Hi".into());
        let err = llm.generate(request(1, 1)).await.unwrap_err();
        assert!(err.to_string().contains("fewer than"), "{err}");
    }

    #[tokio::test]
    async fn a_retelling_is_kept_when_no_round_gives_a_new_scene() {
        // Scene 2 only ever says scene 1's words with one noun changed: after the last
        // round that is kept rather than the story lost.
        let llm = service(|job| match next_number(job).as_str() {
            "1" => " The map was a map of the sea.".into(),
            _ => " The map was a map of the world.".into(),
        });
        let story = llm.generate(request(2, 3)).await.unwrap();
        assert_eq!(
            story.scenes,
            ["The map was a map of the sea.", "The map was a map of the world."]
        );
        assert_eq!(story.attempts, 3, "every round was tried first");
    }

    #[tokio::test]
    async fn a_call_pinned_to_another_model_version_is_refused() {
        let llm = service(|_| "The fox runs home.".into());
        let mut pinned = request(1, 1);
        pinned.job.model_version = Some("other".into());
        let Err(err) = llm.generate_stream(pinned).await else {
            panic!("a pinned call to another version must fail");
        };
        assert!(matches!(err, StoryLlmError::ModelPin(_)), "{err:?}");
        assert_eq!(
            storyreel_runtime::to_status(&err).code(),
            tonic::Code::FailedPrecondition
        );
        let mut same = request(1, 1);
        same.job.model_version = Some("scripted".into());
        assert!(llm.generate(same).await.is_ok());
    }
}

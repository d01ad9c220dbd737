//! [`ModelBackedPromptRewriter`]: the [`PromptRewriter`] that writes prompts and keywords
//! with the model worker.
//!
//! A request becomes independent field jobs ([`crate::prompting`]): five per scene for a
//! rewrite (description, visual elements, colours, shapes, categories), one per prompt for
//! keywords. They are queued at most `batching.max_batch_size` at a time per request, so
//! the worker batches the fields of one request with each other and with other requests'.
//! A required field whose output is unusable (no description; no keyword, even after
//! completing the list with the prompt's own content words) is regenerated with the next
//! attempt's seed, up to `max_attempts`. Then a description falls back to the scene's own
//! text (a scene is already a visual sentence; the prompt is fitted to the CLIP budget
//! all the same), and keywords fail the request with
//! [`PromptRewriterError::UnusableOutput`]. Attribute lists may come back empty. Visual
//! elements must be named in the scene itself: an element grounded only in the title is
//! something this scene does not show.
//!
//! Dropping a call's future sets the request's cancel flag: the worker drops its queued
//! jobs and stops decoding the running ones within one decode step. Past the request's
//! deadline the call answers [`PromptRewriterError::DeadlineExceeded`] and decoding stops
//! alike (the jobs carry the deadline).

use crate::{
    compose::{TokenCounter, compose_prompt, fit_list},
    config::PromptRewriterConfig,
    error::PromptRewriterError,
    parsing,
    prompting::{FIELD_STOP, Field, keywords_prompt, scene_field_prompt},
    service::{
        Keywords, KeywordsRequest, ModelInfo, ModelState, PromptRewriter, Rewrite, RewriteRequest,
        SceneAttributes, SceneKeywords, ScenePrompt, StageStats, TokenUsage,
    },
};
use futures::{StreamExt, TryStreamExt};
use std::{
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};
use storyreel_llm::{
    CancelOnDrop, ChatPrompt, JobSampling, LlmJob, ModelWorker, Sampling, WorkerEvent, WorkerStats, seed,
};
use storyreel_nn::clip_text::ClipTokenizer;
use tokio::sync::{mpsc, watch};

/// The prompt rewriter over a language model and the CLIP tokenizer.
pub struct ModelBackedPromptRewriter {
    worker: Arc<ModelWorker>,
    clip: Arc<dyn TokenCounter>,
    max_attempts: u32,
    negative_prompt: String,
    max_in_flight: usize,
}

impl ModelBackedPromptRewriter {
    /// Loads the CLIP tokenizer and starts the model worker; the model loads in the
    /// background ([`PromptRewriter::model_state`] says when it is ready).
    pub fn start(config: &PromptRewriterConfig) -> Result<Self, PromptRewriterError> {
        let clip = ClipTokenizer::from_file(&config.clip_tokenizer).map_err(|e| {
            PromptRewriterError::Tokenizer(format!(
                "loading {} (run `make models`): {e}",
                config.clip_tokenizer.display()
            ))
        })?;
        let worker = ModelWorker::spawn(config.worker_settings())?;
        Ok(Self::with_parts(worker, Arc::new(clip), config))
    }

    /// Over a given worker and token counter (tests use a scripted worker).
    pub fn with_parts(
        worker: ModelWorker,
        clip: Arc<dyn TokenCounter>,
        config: &PromptRewriterConfig,
    ) -> Self {
        Self {
            worker: Arc::new(worker),
            clip,
            max_attempts: config.max_attempts,
            negative_prompt: config.negative_prompt.clone(),
            max_in_flight: config.batching.max_batch_size,
        }
    }

    /// The worker's counters (batches, cancellations).
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.worker.stats().clone()
    }

    /// Waits until the model is loaded; the reason when loading failed.
    pub async fn wait_ready(&self) -> Result<ModelInfo, String> {
        storyreel_runtime::model::wait_ready(self.worker.state()).await
    }

    /// The shared context of one request's field jobs, and the guard that cancels them
    /// when the request's future is dropped.
    fn call(&self, sampling: Sampling, seed: u64, deadline: Option<Instant>) -> (Call<'_>, CancelOnDrop) {
        let cancelled = Arc::new(AtomicBool::new(false));
        let call = Call {
            worker: &self.worker,
            sampling,
            seed,
            max_attempts: self.max_attempts,
            deadline,
            cancelled: cancelled.clone(),
        };
        (call, CancelOnDrop(cancelled))
    }

    /// The model, once the request may run on it.
    fn admit(
        &self,
        job: &storyreel_runtime::JobInfo,
        deadline: Option<Instant>,
    ) -> Result<ModelInfo, PromptRewriterError> {
        let model = self.worker.ready_model()?;
        job.check_model_pin(&model)?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(PromptRewriterError::DeadlineExceeded);
        }
        Ok(model)
    }
}

/// What the field jobs of one request share.
struct Call<'a> {
    worker: &'a ModelWorker,
    sampling: Sampling,
    seed: u64,
    max_attempts: u32,
    deadline: Option<Instant>,
    cancelled: Arc<AtomicBool>,
}

/// One field's result and what it cost.
struct FieldOutput<T> {
    value: T,
    usage: TokenUsage,
    queue_time: Duration,
}

impl Call<'_> {
    /// Generates a field until `parse` accepts the output, at most `max_attempts` times,
    /// then answers `fallback` when there is one. `item` keeps the seeds of the request's
    /// fields apart.
    async fn field<T>(
        &self,
        prompt: &ChatPrompt,
        field: Field,
        scene_index: u32,
        parse: impl Fn(&str) -> Option<T>,
        fallback: Option<T>,
    ) -> Result<FieldOutput<T>, PromptRewriterError> {
        let item = scene_index as usize * 8 + field.ordinal();
        let mut usage = TokenUsage::default();
        let mut queue_time = Duration::ZERO;
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            let item_seed = seed::for_scene(seed::for_attempt(self.seed, attempt), item);
            let output = self.generate(prompt, item_seed).await?;
            usage.add(&output);
            queue_time = queue_time.max(output.queue_time);
            if let Some(value) = parse(&output.text) {
                return Ok(FieldOutput {
                    value,
                    usage,
                    queue_time,
                });
            }
            tracing::debug!(field = field.name(), scene_index, attempt, text = %output.text, "unusable field");
            last = output.text;
        }
        if let Some(value) = fallback {
            tracing::debug!(field = field.name(), scene_index, "field falls back");
            return Ok(FieldOutput {
                value,
                usage,
                queue_time,
            });
        }
        Err(PromptRewriterError::UnusableOutput {
            field: field.name(),
            scene_index,
            attempts: self.max_attempts,
            last: last.trim().chars().take(80).collect(),
        })
    }

    async fn generate(
        &self,
        prompt: &ChatPrompt,
        item_seed: u64,
    ) -> Result<storyreel_llm::LlmOutput, PromptRewriterError> {
        let (events, mut rx) = mpsc::unbounded_channel();
        self.worker.submit(LlmJob {
            prompt: prompt.clone(),
            stop_strings: vec![FIELD_STOP.to_string()],
            sampling: JobSampling::new(&self.sampling, item_seed),
            deadline: self.deadline,
            cancelled: self.cancelled.clone(),
            events,
            enqueued_at: Instant::now(),
            // the fields of a scene are decoded side by side, in one batch: no prompt
            // extends another's output, so nothing to reuse
            prefix_key: None,
        })?;
        let done = async {
            loop {
                match rx.recv().await {
                    Some(WorkerEvent::Token { .. }) => {}
                    Some(WorkerEvent::Done(result)) => return result.map_err(PromptRewriterError::from),
                    None => {
                        return Err(PromptRewriterError::Internal(
                            "the model worker dropped a job without an answer".into(),
                        ));
                    }
                }
            }
        };
        match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), done)
                .await
                .map_err(|_| PromptRewriterError::DeadlineExceeded)?,
            None => done.await,
        }
    }
}

/// Sums usage and keeps the longest queue wait; compute is the rest of the wall time.
fn totals<T>(outputs: &[FieldOutput<T>], started: Instant) -> (TokenUsage, StageStats) {
    let mut usage = TokenUsage::default();
    let mut queue_time = Duration::ZERO;
    for output in outputs {
        usage.prompt_tokens += output.usage.prompt_tokens;
        usage.generated_tokens += output.usage.generated_tokens;
        queue_time = queue_time.max(output.queue_time);
    }
    let stats = StageStats {
        cache_hit: false,
        queue_time,
        compute_time: started.elapsed().saturating_sub(queue_time),
    };
    (usage, stats)
}

/// The typed value of one rewrite field.
enum FieldValue {
    Description(String),
    List(Vec<String>),
}

#[async_trait::async_trait]
impl PromptRewriter for ModelBackedPromptRewriter {
    async fn rewrite(&self, request: RewriteRequest) -> Result<Rewrite, PromptRewriterError> {
        let started = Instant::now();
        let model = self.admit(&request.job, request.deadline)?;
        let (call, _guard) = self.call(request.sampling, request.seed, request.deadline);
        let style = request.style.as_deref();
        let jobs: Vec<(usize, Field, ChatPrompt)> = request
            .scenes
            .iter()
            .enumerate()
            .flat_map(|(position, scene)| {
                Field::REWRITE.map(|field| {
                    (
                        position,
                        field,
                        scene_field_prompt(field, &request.title, &scene.text, style),
                    )
                })
            })
            .collect();
        let call = &call;
        let scenes = &request.scenes;
        // What a description and the visual elements must mention: the scene or the title.
        let grounding: Vec<Vec<String>> = scenes
            .iter()
            .map(|s| parsing::grounding_words(&format!("{} {}", s.text, request.title)))
            .collect();
        let grounding = &grounding;
        let in_scene: Vec<Vec<String>> = scenes.iter().map(|s| parsing::grounding_words(&s.text)).collect();
        let in_scene = &in_scene;
        let outputs: Vec<(usize, Field, FieldOutput<FieldValue>)> = futures::stream::iter(jobs)
            .map(|(position, field, prompt)| async move {
                let scene = &scenes[position];
                let context = &grounding[position];
                let parse = |text: &str| match field {
                    Field::Description => {
                        parsing::parse_description(text, context).map(FieldValue::Description)
                    }
                    Field::VisualElements => Some(FieldValue::List(parsing::parse_visual_elements(
                        text,
                        &in_scene[position],
                    ))),
                    Field::ColourScheme => {
                        Some(FieldValue::List(parsing::parse_colour_scheme(text, &scene.text)))
                    }
                    Field::Categories => Some(FieldValue::List(parsing::parse_categories(text))),
                    Field::Shapes | Field::Keywords => {
                        Some(FieldValue::List(parsing::parse_attribute_list(text)))
                    }
                };
                let fallback =
                    (field == Field::Description).then(|| FieldValue::Description(scene.text.clone()));
                let output = call.field(&prompt, field, scene.index, parse, fallback).await?;
                Ok::<_, PromptRewriterError>((position, field, output))
            })
            .buffered(self.max_in_flight)
            .try_collect()
            .await?;

        let mut descriptions = vec![String::new(); scenes.len()];
        let mut attributes = vec![SceneAttributes::default(); scenes.len()];
        for (position, field, output) in &outputs {
            let attrs = &mut attributes[*position];
            match (&output.value, field) {
                (FieldValue::Description(text), _) => descriptions[*position] = text.clone(),
                (FieldValue::List(list), Field::VisualElements) => attrs.visual_elements = list.clone(),
                (FieldValue::List(list), Field::ColourScheme) => attrs.colour_scheme = list.clone(),
                (FieldValue::List(list), Field::Shapes) => attrs.shapes = list.clone(),
                (FieldValue::List(list), _) => attrs.categories = list.clone(),
            }
        }
        let budget = request.max_clip_tokens;
        let negative = fit_list(&self.negative_prompt, budget, self.clip.as_ref())
            .map_err(PromptRewriterError::Tokenizer)?;
        let mut prompts = Vec::with_capacity(scenes.len());
        for ((scene, description), attributes) in scenes.iter().zip(descriptions).zip(attributes) {
            let prompt = compose_prompt(&description, style, &attributes, budget, self.clip.as_ref())
                .map_err(PromptRewriterError::Tokenizer)?;
            prompts.push(ScenePrompt {
                scene_index: scene.index,
                prompt: prompt.text,
                prompt_clip_tokens: prompt.tokens as u32,
                negative_prompt: negative.text.clone(),
                negative_prompt_clip_tokens: negative.tokens as u32,
                attributes,
            });
        }
        let outputs: Vec<FieldOutput<FieldValue>> = outputs.into_iter().map(|(_, _, o)| o).collect();
        let (usage, stats) = totals(&outputs, started);
        Ok(Rewrite {
            prompts,
            model,
            usage,
            seed: request.seed,
            stats,
        })
    }

    async fn keywords(&self, request: KeywordsRequest) -> Result<Keywords, PromptRewriterError> {
        let started = Instant::now();
        let model = self.admit(&request.job, request.deadline)?;
        let (call, _guard) = self.call(request.sampling, request.seed, request.deadline);
        let call = &call;
        let max = request.max_keywords;
        let outputs: Vec<FieldOutput<Vec<String>>> = futures::stream::iter(request.prompts.clone())
            .map(|prompt| async move {
                let chat = keywords_prompt(&prompt.text);
                let context = parsing::grounding_words(&prompt.text);
                call.field(
                    &chat,
                    Field::Keywords,
                    prompt.index,
                    |text| {
                        let keywords = complete_keywords(
                            parsing::parse_keywords(text, &context, max),
                            &prompt.text,
                            max,
                        );
                        (!keywords.is_empty()).then_some(keywords)
                    },
                    None,
                )
                .await
            })
            .buffered(self.max_in_flight)
            .try_collect()
            .await?;
        let (usage, stats) = totals(&outputs, started);
        Ok(Keywords {
            keywords: request
                .prompts
                .iter()
                .zip(outputs)
                .map(|(prompt, output)| SceneKeywords {
                    scene_index: prompt.index,
                    keywords: output.value,
                })
                .collect(),
            model,
            usage,
            seed: request.seed,
            stats,
        })
    }

    fn model_state(&self) -> watch::Receiver<ModelState> {
        self.worker.state()
    }
}

/// Fewest keywords a scene gets when its prompt has enough content words.
const MIN_KEYWORDS: usize = 3;

/// The model's keywords, completed with the prompt's content words up to
/// `min(3, max)` (a 135M model often lists one or two), at most `max`.
fn complete_keywords(mut keywords: Vec<String>, prompt: &str, max: usize) -> Vec<String> {
    let wanted = MIN_KEYWORDS.min(max);
    for word in parsing::content_words(prompt) {
        if keywords.len() >= wanted {
            break;
        }
        if !keywords.iter().any(|k| k.split(' ').any(|w| w == word)) {
            keywords.push(word);
        }
    }
    keywords.truncate(max);
    keywords
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::SceneText;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use storyreel_llm::seed::SeedOrigin;
    use storyreel_runtime::JobInfo;

    /// Counts words plus BOS and EOS: enough to test the plumbing (compose.rs tests the
    /// real tokenizer).
    struct WordCounter;

    impl TokenCounter for WordCounter {
        fn count(&self, text: &str) -> Result<usize, String> {
            Ok(text.split_whitespace().count() + 2)
        }
    }

    fn sampling() -> Sampling {
        Sampling {
            temperature: 0.7,
            top_p: 0.9,
            top_k: 0,
            repetition_penalty: 1.3,
            max_new_tokens: 16,
        }
    }

    /// A scripted worker (no model) answering each field by its label and the scene.
    fn rewriter(answer: impl Fn(&str, &str) -> String + Send + 'static) -> ModelBackedPromptRewriter {
        let worker = ModelWorker::scripted(move |job: &LlmJob| {
            let user = &job.prompt.messages[1].content;
            let scene = user.lines().find_map(|l| l.strip_prefix("Scene: ")).unwrap_or("");
            answer(&job.prompt.assistant_prefix, scene)
        });
        ModelBackedPromptRewriter::with_parts(worker, Arc::new(WordCounter), &PromptRewriterConfig::default())
    }

    fn rewrite_request(budget: usize) -> RewriteRequest {
        RewriteRequest {
            title: "Wonders".into(),
            scenes: vec![
                SceneText {
                    index: 2,
                    text: "The Great Wall winds over hills.".into(),
                },
                SceneText {
                    index: 0,
                    text: "The pyramids stand in the desert.".into(),
                },
            ],
            style: Some("watercolour".into()),
            max_clip_tokens: budget,
            seed: 1,
            seed_origin: SeedOrigin::Request,
            sampling: sampling(),
            deadline: None,
            job: JobInfo::default(),
        }
    }

    fn fields(label: &str, scene: &str) -> String {
        match label {
            "Description:" if scene.contains("Wall") => " A long stone wall over green hills at dawn.".into(),
            "Description:" => " Golden pyramids in the desert at noon.".into(),
            "Visual elements:" => " wall, hills, towers".into(),
            "Colours:" => " green, grey, happy".into(),
            "Shapes:" => " long line".into(),
            "Category:" => " architecture and landscape".into(),
            other => panic!("unexpected label {other}"),
        }
    }

    #[tokio::test]
    async fn a_rewrite_composes_each_scene_from_its_fields_in_request_order() {
        let rewrite = rewriter(fields).rewrite(rewrite_request(77)).await.unwrap();
        assert_eq!(rewrite.prompts.len(), 2);
        assert_eq!(rewrite.prompts[0].scene_index, 2);
        assert_eq!(rewrite.prompts[1].scene_index, 0);
        let first = &rewrite.prompts[0];
        // "wall" and "hills" are in the description; "towers" is not in the scene.
        assert_eq!(first.attributes.visual_elements, ["wall", "hills"]);
        assert_eq!(
            first.prompt,
            "A long stone wall over green hills at dawn, watercolour, green and grey tones, long line, \
             architecture"
        );
        assert_eq!(first.attributes.colour_scheme, ["green", "grey"]);
        assert_eq!(first.attributes.categories, ["architecture", "landscape"]);
        assert_eq!(
            first.prompt_clip_tokens as usize,
            WordCounter.count(&first.prompt).unwrap()
        );
        assert!(first.negative_prompt.starts_with("blurry, low quality"));
        // 2 scenes x 5 fields, 5 generated tokens each (the scripted worker's count).
        assert_eq!(rewrite.usage.generated_tokens, 50);
    }

    #[tokio::test]
    async fn small_budgets_are_kept_for_prompt_and_negative_prompt() {
        let rewrite = rewriter(fields).rewrite(rewrite_request(8)).await.unwrap();
        for prompt in &rewrite.prompts {
            assert!(prompt.prompt_clip_tokens <= 8, "{prompt:?}");
            assert!(prompt.negative_prompt_clip_tokens <= 8, "{prompt:?}");
            assert!(
                prompt.prompt.starts_with("A long stone wall")
                    || prompt.prompt.starts_with("Golden pyramids")
            );
        }
    }

    #[tokio::test]
    async fn an_unusable_description_is_regenerated_then_the_scene_stands_in() {
        let descriptions = Arc::new(AtomicUsize::new(0));
        let seen = descriptions.clone();
        let rewrite = rewriter(move |label, scene| {
            if label == "Description:" {
                seen.fetch_add(1, Ordering::SeqCst);
                " ok".into()
            } else {
                fields(label, scene)
            }
        })
        .rewrite(rewrite_request(77))
        .await
        .expect("the scene text stands in for the description");
        assert_eq!(
            descriptions.load(Ordering::SeqCst),
            2 * 3,
            "three attempts per scene"
        );
        assert!(
            rewrite.prompts[0]
                .prompt
                .starts_with("The Great Wall winds over hills."),
            "{}",
            rewrite.prompts[0].prompt
        );
        assert!(
            rewrite.prompts[1]
                .prompt
                .starts_with("The pyramids stand in the desert.")
        );
    }

    #[tokio::test]
    async fn keywords_are_completed_from_the_prompt_and_bounded() {
        let rewriter = rewriter(|_, _| " great wall, great wall, china, paris".into());
        let request = KeywordsRequest {
            prompts: vec![SceneText {
                index: 4,
                text: "The Great Wall of China at dawn, misty hills".into(),
            }],
            max_keywords: 8,
            seed: 3,
            seed_origin: SeedOrigin::Request,
            sampling: sampling(),
            deadline: None,
            job: JobInfo::default(),
        };
        let keywords = rewriter.keywords(request.clone()).await.unwrap();
        assert_eq!(keywords.keywords[0].scene_index, 4);
        assert_eq!(keywords.keywords[0].keywords, ["great wall", "china", "dawn"]);
        let one = rewriter
            .keywords(KeywordsRequest {
                max_keywords: 1,
                ..request
            })
            .await
            .unwrap();
        assert_eq!(one.keywords[0].keywords, ["great wall"]);
    }

    #[tokio::test]
    async fn a_call_pinned_to_another_model_version_is_refused() {
        let mut request = rewrite_request(77);
        request.job.model_version = Some("v2".into());
        let err = rewriter(fields).rewrite(request).await.unwrap_err();
        assert_eq!(
            storyreel_runtime::to_status(&err).code(),
            tonic::Code::FailedPrecondition
        );
    }
}

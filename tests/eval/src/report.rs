//! One record per story, the aggregate over all of them, and the targets.

use crate::{
    grounding,
    relevance::{self, Encoder, THRESHOLD},
    titles::Title,
    wellformed::{self, Dictionary, Verdict},
};
use std::collections::HashSet;

/// Targets at the default settings, on 2 cores.
pub const TARGET_WELL_FORMED: f64 = 0.95;
pub const TARGET_USABLE: f64 = 0.85;
pub const TARGET_MEAN_SECONDS: f64 = 20.0;
pub const TARGET_GROUNDED: f64 = 0.90;
/// Two scenes whose word sets overlap this much (Jaccard) or more are not distinct.
pub const DISTINCT_BELOW: f64 = 0.5;

#[derive(Debug, serde::Serialize)]
pub struct SceneRecord {
    pub text: String,
    pub verdict: Verdict,
    pub relevance: f32,
    /// Visual elements of the scene's prompt and whether each is grounded in the scene.
    pub elements: Vec<(String, bool)>,
    #[serde(skip)]
    pub embedding: Vec<f32>,
}

#[derive(Debug, serde::Serialize)]
pub struct StoryRecord {
    pub kind: String,
    pub title: String,
    pub seed: u64,
    pub seconds: f64,
    pub attempts: u32,
    /// story-llm's error: the story was aborted.
    pub error: Option<String>,
    pub prompt_error: Option<String>,
    pub scenes: Vec<SceneRecord>,
    pub distinct: bool,
}

impl StoryRecord {
    pub fn new(title: &Title, seed: u64, seconds: f64) -> Self {
        Self {
            kind: title.kind.clone(),
            title: title.title.clone(),
            seed,
            seconds,
            attempts: 0,
            error: None,
            prompt_error: None,
            scenes: Vec::new(),
            distinct: false,
        }
    }

    /// Judges the scenes and their prompts' visual elements.
    pub fn judge(
        &mut self,
        scenes: &[String],
        prompts: Option<Result<Vec<Vec<String>>, String>>,
        dictionary: &Dictionary,
        encoder: &Encoder,
    ) -> anyhow::Result<()> {
        let mut texts: Vec<&str> = vec![&self.title];
        texts.extend(scenes.iter().map(String::as_str));
        let embeddings = encoder.embed(&texts)?;
        let elements = match prompts {
            Some(Ok(elements)) => elements,
            Some(Err(error)) => {
                self.prompt_error = Some(error);
                vec![]
            }
            None => vec![],
        };
        for (i, text) in scenes.iter().enumerate() {
            let scene_elements = elements.get(i).cloned().unwrap_or_default();
            self.scenes.push(SceneRecord {
                verdict: wellformed::judge(text, dictionary),
                relevance: relevance::cosine(&embeddings[0], &embeddings[i + 1]),
                elements: scene_elements
                    .into_iter()
                    .map(|e| {
                        let grounded = grounding::grounded(&e, text);
                        (e, grounded)
                    })
                    .collect(),
                embedding: embeddings[i + 1].clone(),
                text: text.clone(),
            });
        }
        self.distinct = scenes
            .iter()
            .enumerate()
            .all(|(i, a)| scenes[i + 1..].iter().all(|b| jaccard(a, b) < DISTINCT_BELOW));
        Ok(())
    }

    pub fn aborted(&self) -> bool {
        self.error.is_some()
    }

    pub fn usable(&self) -> bool {
        !self.aborted()
            && self.distinct
            && self
                .scenes
                .iter()
                .all(|s| s.verdict.well_formed() && s.relevance >= THRESHOLD)
    }

    /// A progress line for the terminal.
    pub fn line(&self) -> String {
        let verdict = if self.aborted() {
            "ABORTED".to_string()
        } else if self.usable() {
            "usable".to_string()
        } else {
            let problems: Vec<String> = self
                .scenes
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.verdict.well_formed() || s.relevance < THRESHOLD)
                .map(|(i, s)| {
                    format!(
                        "scene {}: {} rel {:.2}",
                        i + 1,
                        s.verdict.problems.join(", "),
                        s.relevance
                    )
                })
                .collect();
            format!(
                "not usable ({}{})",
                if self.distinct { "" } else { "repeats; " },
                problems.join("; ")
            )
        };
        format!(
            "[{:5.1} s] seed {} {:?}: {verdict}",
            self.seconds, self.seed, self.title
        )
    }
}

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn jaccard(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    let union = a.union(&b).count();
    if union == 0 {
        1.0
    } else {
        a.intersection(&b).count() as f64 / union as f64
    }
}

#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub stories: usize,
    pub aborted: usize,
    pub usable: usize,
    pub scenes: usize,
    pub well_formed_scenes: usize,
    pub relevant_scenes: usize,
    pub mean_seconds: f64,
    pub p90_seconds: f64,
    pub max_seconds: f64,
    pub elements: usize,
    pub grounded_elements: usize,
    pub prompt_errors: usize,
    pub relevance_threshold: f32,
    /// Cosine of scenes to the other stories' titles: the 50th, 95th and 99th percentiles.
    pub null_relevance: [f32; 3],
    /// Cosine of scenes to their own title: the 5th and 50th percentiles.
    pub own_relevance: [f32; 2],
}

impl Summary {
    /// `title_embeddings[i]` is the embedding of `titles[i]`.
    pub fn of(stories: &[StoryRecord], title_embeddings: &[Vec<f32>], titles: &[Title]) -> Self {
        let names: Vec<&str> = titles.iter().map(|t| t.title.as_str()).collect();
        let mut null = Vec::new();
        let mut own = Vec::new();
        for story in stories {
            for scene in &story.scenes {
                own.push(scene.relevance);
                for (name, embedding) in names.iter().zip(title_embeddings) {
                    if *name != story.title {
                        null.push(relevance::cosine(&scene.embedding, embedding));
                    }
                }
            }
        }
        let scenes: Vec<&SceneRecord> = stories.iter().flat_map(|s| &s.scenes).collect();
        let mut seconds: Vec<f64> = stories.iter().map(|s| s.seconds).collect();
        seconds.sort_by(f64::total_cmp);
        let elements: Vec<bool> = scenes
            .iter()
            .flat_map(|s| s.elements.iter().map(|e| e.1))
            .collect();
        Self {
            stories: stories.len(),
            aborted: stories.iter().filter(|s| s.aborted()).count(),
            usable: stories.iter().filter(|s| s.usable()).count(),
            scenes: scenes.len(),
            well_formed_scenes: scenes.iter().filter(|s| s.verdict.well_formed()).count(),
            relevant_scenes: scenes.iter().filter(|s| s.relevance >= THRESHOLD).count(),
            mean_seconds: seconds.iter().sum::<f64>() / seconds.len().max(1) as f64,
            p90_seconds: percentile(&seconds, 0.9),
            max_seconds: seconds.last().copied().unwrap_or(0.0),
            elements: elements.len(),
            grounded_elements: elements.iter().filter(|g| **g).count(),
            prompt_errors: stories.iter().filter(|s| s.prompt_error.is_some()).count(),
            relevance_threshold: THRESHOLD,
            null_relevance: [0.5, 0.95, 0.99].map(|p| percentile_f32(&null, p)),
            own_relevance: [0.05, 0.5].map(|p| percentile_f32(&own, p)),
        }
    }

    fn share(part: usize, whole: usize) -> f64 {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    }

    pub fn meets_targets(&self) -> bool {
        Self::share(self.well_formed_scenes, self.scenes) >= TARGET_WELL_FORMED
            && Self::share(self.usable, self.stories) >= TARGET_USABLE
            && self.aborted == 0
            && self.mean_seconds <= TARGET_MEAN_SECONDS
            && (self.elements == 0 || Self::share(self.grounded_elements, self.elements) >= TARGET_GROUNDED)
    }

    /// The README's table.
    pub fn markdown(&self, n_scenes: u32) -> String {
        let pct = |part, whole| format!("{:.1}% ({part}/{whole})", 100.0 * Self::share(part, whole));
        let mut rows = vec![
            (
                "well-formed scenes".to_string(),
                pct(self.well_formed_scenes, self.scenes),
                ">= 95%".to_string(),
            ),
            (
                "usable stories".into(),
                pct(self.usable, self.stories),
                ">= 85%".into(),
            ),
            ("aborted stories".into(), self.aborted.to_string(), "0".into()),
            (
                format!("seconds per {n_scenes}-scene story (mean / p90 / max)"),
                format!(
                    "{:.1} / {:.1} / {:.1}",
                    self.mean_seconds, self.p90_seconds, self.max_seconds
                ),
                "mean <= 20".into(),
            ),
            (
                format!("scenes relevant to the title (MiniLM cosine >= {THRESHOLD})"),
                pct(self.relevant_scenes, self.scenes),
                "-".into(),
            ),
        ];
        if self.elements > 0 || self.prompt_errors > 0 {
            rows.push((
                "prompt visual elements grounded in their scene".into(),
                pct(self.grounded_elements, self.elements),
                ">= 90%".into(),
            ));
            rows.push((
                "stories whose prompt rewrite failed".into(),
                self.prompt_errors.to_string(),
                "-".into(),
            ));
        }
        let mut out = String::from("| measure | result | target |\n|---|---|---|\n");
        for (measure, result, target) in rows {
            out.push_str(&format!("| {measure} | {result} | {target} |\n"));
        }
        out.push_str(&format!(
            "\nRelevance threshold {THRESHOLD}: scenes to unrelated titles score p50 {:.2}, p95 {:.2}, p99 {:.2}; \
             to their own title p5 {:.2}, p50 {:.2}.\n",
            self.null_relevance[0],
            self.null_relevance[1],
            self.null_relevance[2],
            self.own_relevance[0],
            self.own_relevance[1]
        ));
        out
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn percentile_f32(values: &[f32], p: f64) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

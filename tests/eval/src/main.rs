//! `storyreel-eval` (make eval): every title of `titles.txt` x every seed, through
//! story-llm and prompt-rewriter at their built-in default settings (the model services
//! in this process, one story at a time, as a user's request would run them), and the
//! measured quality of what comes out:
//!
//! - per scene: well-formed ([`wellformed`]) and relevant to the title (MiniLM cosine at
//!   least [`relevance::THRESHOLD`]);
//! - per story: usable when every scene is well-formed and relevant and the scenes are
//!   pairwise distinct; aborted when story-llm gave up; seconds per story;
//! - per prompt: the share of visual elements grounded in the prompt's own scene
//!   ([`grounding`]).
//!
//! Writes `<out>/report.json` (every story, scene and verdict) and `<out>/summary.md`
//! (the README's table) and exits 1 when a target is missed.

mod grounding;
mod relevance;
mod report;
mod titles;
mod wellformed;

use anyhow::Context;
use clap::Parser;
use std::{path::PathBuf, time::Instant};
use storyreel_prompt_rewriter::{
    PromptRewriterConfig, model_service::ModelBackedPromptRewriter, service::PromptRewriter,
    validation::validate_rewrite,
};
use storyreel_proto::{common, prompt_rewriter as pr_wire, story_llm as story_wire};
use storyreel_story_llm::{ModelBackedStoryLlm, StoryLlm, StoryLlmConfig, validation::validate_generate};

#[derive(Parser)]
#[command(about = "Measures story, prompt and relevance quality at the default settings")]
struct Args {
    /// `kind | title` lines; `#` comments.
    #[arg(long, default_value = "tests/eval/titles.txt")]
    titles: PathBuf,
    /// Seeds 1..=N per title.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    #[arg(long, default_value_t = 4)]
    scenes: u32,
    /// Only the first N titles (a quick look; the targets are for the whole list).
    #[arg(long)]
    limit: Option<usize>,
    /// Lowercase English words, one per line.
    #[arg(long, default_value = "/usr/share/dict/words")]
    dictionary: PathBuf,
    /// The sentence encoder for relevance (all-MiniLM-L6-v2, as `make models` installs it).
    #[arg(long, default_value = "${STORYREEL_CACHE}/models/all-minilm-l6-v2")]
    encoder: String,
    #[arg(long, default_value = "target/eval")]
    out: PathBuf,
    /// Skip the prompt rewrite (stories only).
    #[arg(long)]
    no_prompts: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut titles = titles::load(&args.titles)?;
    if let Some(limit) = args.limit {
        titles.truncate(limit);
    }
    let dictionary = wellformed::Dictionary::load(&args.dictionary)?;
    let encoder = relevance::Encoder::load(&storyreel_runtime::paths::expanded_default(&args.encoder))?;

    let story_config = StoryLlmConfig::default();
    let story_llm = ModelBackedStoryLlm::start(&story_config)?;
    story_llm
        .wait_ready()
        .await
        .map_err(anyhow::Error::msg)
        .context("story-llm model")?;
    let rewriter_config = PromptRewriterConfig::default();
    let rewriter = if args.no_prompts {
        None
    } else {
        let rewriter = ModelBackedPromptRewriter::start(&rewriter_config)?;
        rewriter
            .wait_ready()
            .await
            .map_err(anyhow::Error::msg)
            .context("prompt-rewriter model")?;
        Some(rewriter)
    };

    let names: Vec<&str> = titles.iter().map(|t| t.title.as_str()).collect();
    let title_embeddings = encoder.embed(&names)?;
    std::fs::create_dir_all(&args.out)?;
    let mut stories = Vec::new();
    // Title by title, every seed of a title together: a run stopped early has whole titles.
    for title in &titles {
        for seed in 1..=args.seeds {
            let request = validate_generate(
                story_wire::GenerateRequest {
                    title: title.title.clone(),
                    n_scenes: Some(args.scenes),
                    seed: Some(seed),
                    ..Default::default()
                },
                &story_config.generation,
            )?;
            let started = Instant::now();
            let story = story_llm.generate(request).await;
            let seconds = started.elapsed().as_secs_f64();
            let mut record = report::StoryRecord::new(title, seed, seconds);
            match story {
                Err(error) => record.error = Some(error.to_string()),
                Ok(story) => {
                    record.attempts = story.attempts;
                    let prompts = match &rewriter {
                        Some(rewriter) => {
                            Some(rewrite(rewriter, &rewriter_config, &title.title, &story.scenes, seed).await)
                        }
                        None => None,
                    };
                    record.judge(&story.scenes, prompts, &dictionary, &encoder)?;
                }
            }
            eprintln!("{}", record.line());
            stories.push(record);
            // Written after every story: an interrupted run still leaves its table.
            write_report(&args, &stories, &title_embeddings, &titles)?;
        }
    }
    let summary = write_report(&args, &stories, &title_embeddings, &titles)?;
    println!("{}", summary.markdown(args.scenes));
    if summary.meets_targets() {
        Ok(())
    } else {
        eprintln!("eval: a target is missed (see the table)");
        std::process::exit(1)
    }
}

/// `report.json` and `summary.md` of the stories so far.
fn write_report(
    args: &Args,
    stories: &[report::StoryRecord],
    title_embeddings: &[Vec<f32>],
    titles: &[titles::Title],
) -> anyhow::Result<report::Summary> {
    let summary = report::Summary::of(stories, title_embeddings, titles);
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&(&summary, stories))?,
    )?;
    std::fs::write(args.out.join("summary.md"), summary.markdown(args.scenes))?;
    Ok(summary)
}

/// The prompts of a story's scenes, or the rewriter's error.
async fn rewrite(
    rewriter: &ModelBackedPromptRewriter,
    config: &PromptRewriterConfig,
    title: &str,
    scenes: &[String],
    seed: u64,
) -> Result<Vec<Vec<String>>, String> {
    let wire = pr_wire::RewriteRequest {
        title: title.to_string(),
        scenes: scenes
            .iter()
            .enumerate()
            .map(|(i, text)| common::Scene {
                index: i as u32,
                text: text.clone(),
            })
            .collect(),
        seed: Some(seed),
        ..Default::default()
    };
    let request = validate_rewrite(wire, &config.generation).map_err(|e| e.to_string())?;
    let rewrite = rewriter.rewrite(request).await.map_err(|e| e.to_string())?;
    Ok(rewrite
        .prompts
        .into_iter()
        .map(|p| p.attributes.visual_elements)
        .collect())
}

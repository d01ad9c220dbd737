//! `storyreel-ingest`: ingests a JSONL clip manifest (see `storyreel_retrieval::manifest`)
//! into the catalog directly (no server): probe, sample frames, embed, index. The running
//! service picks the new clips up on its own (the reader reloads on commit). Only one
//! process writes at a time: while a service is ingesting, this waits for nothing and fails
//! with a clear message instead.
//!
//! Settings come from the `[retrieval]` config (catalog dir, encoder, ingest); the flags
//! override them. Videos are read only below the media root: the manifest's directory,
//! or `--media-root` (not `catalog.media_root`, which is the service's).

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use std::{io::IsTerminal, path::PathBuf, sync::Arc};
use storyreel_retrieval::{
    RetrievalConfig,
    ingest::{IngestEvent, Ingestor, Outcome},
    manifest, open_catalog,
};
use storyreel_runtime::{Validate, config::Sources};
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(about = "Ingest a JSONL clip manifest into the retrieval catalog")]
struct Args {
    /// The JSONL manifest; relative video paths are relative to its directory.
    #[arg(long)]
    manifest: PathBuf,
    /// Read videos only below this directory (default: the manifest's directory); a video
    /// elsewhere, or reached through `..` or a symbolic link leading out, is skipped.
    #[arg(long)]
    media_root: Option<PathBuf>,
    /// Catalog directory (default: config `retrieval.catalog.dir`).
    #[arg(long)]
    catalog: Option<PathBuf>,
    /// Sentence encoder directory (default: config `retrieval.encoder.model_dir`).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Re-index clips whose id is already in the catalog.
    #[arg(long)]
    replace: bool,
    /// Frames sampled per clip, 1-64 (default: config `retrieval.ingest.default_frames_per_clip`).
    #[arg(long)]
    frames: Option<u32>,
    /// Exit with status 3 when a clip was skipped.
    #[arg(long)]
    strict: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config: RetrievalConfig =
        storyreel_runtime::config::load("retrieval", &Sources::from_env()).context("loading config")?;
    if let Some(dir) = args.catalog {
        config.catalog.dir = dir;
    }
    if let Some(dir) = args.model_dir {
        config.encoder.model_dir = dir;
    }
    config.validate().context("checking the config")?;
    let options = storyreel_retrieval::validation::validate_ingest_options(
        Some(storyreel_proto::retrieval::IngestOptions {
            replace_existing: args.replace,
            frames_per_clip: args.frames,
        }),
        config.ingest.default_frames_per_clip,
    )?;
    let clips = manifest::read(&args.manifest)?;
    let total = clips.len();
    let media_root = match args.media_root {
        Some(dir) => dir,
        None => manifest::directory(&args.manifest).context("the manifest's directory")?,
    };
    anyhow::ensure!(
        media_root.is_dir(),
        "the media root {} is not a directory",
        media_root.display()
    );
    let (catalog, encoder) = open_catalog(&config)?;
    let ingestor = Arc::new(Ingestor::new(catalog, encoder, config.ingest.clone(), media_root));
    let (tx, mut rx) = mpsc::channel(64);
    let run = tokio::spawn({
        let ingestor = ingestor.clone();
        async move {
            let stream = futures::stream::iter(clips.into_iter().map(Ok)).boxed();
            ingestor.run(options, stream, tx).await
        }
    });
    let mut skipped = 0;
    let progress_on_terminal = std::io::stderr().is_terminal();
    while let Some(event) = rx.recv().await {
        match event {
            IngestEvent::Clip(c) => match c.outcome {
                Outcome::Indexed => println!("indexed   {}", c.clip_id),
                Outcome::Unchanged => println!("unchanged {}", c.clip_id),
                Outcome::Skipped(reason) => {
                    skipped += 1;
                    println!("skipped   {} ({reason:?}): {}", c.clip_id, c.detail);
                }
            },
            IngestEvent::Progress { done } if progress_on_terminal => eprint!("\r{done}/{total} clips\r"),
            IngestEvent::Progress { .. } => {}
            IngestEvent::Summary(s) => println!(
                "received {} indexed {} unchanged {} skipped {}; catalog holds {} clips",
                s.received, s.indexed, s.unchanged, s.skipped, s.catalog_clips
            ),
        }
    }
    run.await.context("the ingest task")??;
    if args.strict && skipped > 0 {
        std::process::exit(3);
    }
    Ok(())
}

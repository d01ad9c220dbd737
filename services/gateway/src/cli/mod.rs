//! `storyreel`, the command line:
//!
//! ```text
//! storyreel generate "TITLE" [--scenes N --resolution R --aspect A --backend B --voice V
//!                             --seed S --story FILE --prompts FILE --out DIR ...]
//! storyreel serve                      # a gateway replica: API + job worker
//! storyreel mesh [--run-dir DIR]       # Redis, Temporal, every service, a gateway
//! storyreel submit|watch|get|cancel|list ...   # a gateway's API
//! ```
//!
//! `generate` runs the whole pipeline in this process on the default models
//! ([`crate::embedded`]), with a progress bar per stage and scene, and prints the paths
//! of the MP4, the .srt and the JSON report. Exit codes: 0 done; 2 bad arguments (the
//! message names the option and the limit); 1 the job failed; 130 interrupted (Ctrl-C
//! stops the stages and leaves no file that claims to be complete).

pub mod args;
pub mod progress;
pub mod remote;

use crate::{Embedded, PipelineConfig, job::run_job};
use clap::Parser;
use std::process::ExitCode;
use storyreel_runtime::config::Sources;

#[derive(Debug, Parser)]
#[command(
    name = "storyreel",
    version,
    about = "Turns a story title into a narrated, subtitled video"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Makes the video of a title: story, prompts, clips, frames, narration, one MP4.
    Generate(args::GenerateArgs),
    /// Runs a gateway replica (config [gateway], [pipeline]): the API and a job worker.
    Serve,
    /// Starts the mesh: Redis, the Temporal dev server, every stage service and the
    /// gateway as processes on free ports; prints the gateway and the API key.
    Mesh {
        /// Data, logs and config of the mesh (kept for a restart).
        #[arg(long, default_value = "out/mesh")]
        run_dir: std::path::PathBuf,
        /// Gateway replicas.
        #[arg(long, default_value_t = 1)]
        replicas: usize,
    },
    #[command(flatten)]
    Remote(remote::Remote),
}

/// The process: parse, run, exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("storyreel: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match cli.command {
        Command::Generate(args) => runtime.block_on(generate(args)),
        Command::Serve => runtime.block_on(async {
            match crate::server::serve_process(&Sources::from_env()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("storyreel serve: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }),
        Command::Mesh { run_dir, replicas } => runtime.block_on(mesh(run_dir, replicas)),
        Command::Remote(remote) => runtime.block_on(remote::run(remote)),
    };
    // Model workers may still be finishing a step of a cancelled job: do not wait.
    runtime.shutdown_background();
    code
}

async fn generate(args: args::GenerateArgs) -> ExitCode {
    let usage = |message: String| {
        eprintln!("storyreel generate: {message}");
        ExitCode::from(2)
    };
    let sources = Sources::from_env();
    let config: PipelineConfig = match storyreel_runtime::config::load("pipeline", &sources) {
        Ok(config) => config,
        Err(e) => return usage(format!("config: {e}")),
    };
    let spec = match args.job_spec(&config) {
        Ok(spec) => spec,
        Err(message) => return usage(message),
    };
    if let Err(e) = spec.validate() {
        return usage(e.to_string());
    }
    let settings = config.settings();
    let assembly = config.assembly(args.out.clone());
    eprintln!(
        "storyreel: job {} · seed {} · {} scene(s) at {} ({} fps)",
        spec.job_id, spec.seed, spec.n_scenes, spec.output, spec.fps
    );
    let bars = progress::Bars::new(spec.n_scenes);
    let job = async {
        let embedded = Embedded::start(&sources, &config)
            .await
            .map_err(|e| e.to_string())?;
        bars.loading();
        embedded.wait_ready().await.map_err(|e| e.to_string())?;
        run_job(&spec, &settings, &assembly, &embedded, embedded.store(), &bars)
            .await
            .map_err(|e| e.to_string())
    };
    tokio::select! {
        finished = job => match finished {
            Ok(finished) => {
                bars.done();
                println!("video:     {}", finished.artifacts.video.display());
                println!("subtitles: {}", finished.artifacts.subtitles.display());
                println!("report:    {}", finished.artifacts.report.display());
                ExitCode::SUCCESS
            }
            Err(message) => {
                bars.abandon();
                eprintln!("storyreel generate: {message}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            bars.abandon();
            eprintln!("storyreel generate: interrupted; the stages were stopped and no output was written");
            ExitCode::from(130)
        }
    }
}

async fn mesh(run_dir: std::path::PathBuf, replicas: usize) -> ExitCode {
    let options = match crate::mesh::MeshOptions::near_current_exe(run_dir) {
        Ok(options) => crate::mesh::MeshOptions {
            gateway_replicas: replicas,
            ..options
        },
        Err(e) => {
            eprintln!("storyreel mesh: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "storyreel mesh: starting in {} (logs in logs/)",
        options.run_dir.display()
    );
    let mesh = match crate::mesh::Mesh::start(options).await {
        Ok(mesh) => mesh,
        Err(e) => {
            eprintln!("storyreel mesh: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    println!("gateway:  {}", mesh.gateways.join(" "));
    println!(
        "web UI:   {} (REST API under /v1, OpenAPI at /openapi.json)",
        mesh.web.join(" ")
    );
    println!(
        "api key:  {} (also in {}/api-key)",
        mesh.api_key,
        mesh.run_dir.display()
    );
    println!("redis:    {}", mesh.redis_url);
    println!("temporal: {}", mesh.temporal_address);
    println!(
        "try:      STORYREEL_GATEWAY={} STORYREEL_API_KEY=$(cat {}/api-key) storyreel submit --watch \"A lighthouse keeper's last night\"",
        mesh.gateways[0],
        mesh.run_dir.display()
    );
    storyreel_runtime::shutdown::signal().await;
    eprintln!("storyreel mesh: stopping");
    mesh.stop();
    ExitCode::SUCCESS
}

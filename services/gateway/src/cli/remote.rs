//! `storyreel submit | watch | get | cancel | list`: a gateway's API from the command
//! line. The gateway is `--gateway` (or `STORYREEL_GATEWAY`), the key `--api-key` (or
//! `STORYREEL_API_KEY`). Jobs print as JSON, events one per line.

use clap::{Args, Subcommand};
use futures::StreamExt;
use std::{path::PathBuf, process::ExitCode};
use storyreel_proto::{
    common,
    gateway::{
        CancelJobRequest, CreateVideoRequest, GetArtifactRequest, GetJobRequest, Job, JobEvent, JobState,
        ListJobsRequest, VideoSpec, WatchJobRequest, gateway_service_client::GatewayServiceClient,
        job_event::Payload,
    },
};
use tonic::{Request, Status, transport::Channel};

#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// The gateway, `http://host:port`.
    #[arg(long, env = "STORYREEL_GATEWAY", default_value = "http://127.0.0.1:50051")]
    pub gateway: String,
    /// An API key of the gateway.
    #[arg(long, env = "STORYREEL_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

#[derive(Debug, Subcommand)]
pub enum Remote {
    /// Starts a job on a gateway; prints it (with --watch: its events, then fetches the MP4).
    Submit(SubmitArgs),
    /// Prints a job's events until it ends.
    Watch {
        #[command(flatten)]
        connection: Connection,
        job_id: String,
        /// Resume after this event id.
        #[arg(long, default_value = "")]
        after: String,
    },
    /// Prints a job.
    Get {
        #[command(flatten)]
        connection: Connection,
        job_id: String,
    },
    /// Cancels a job.
    Cancel {
        #[command(flatten)]
        connection: Connection,
        job_id: String,
    },
    /// Lists the key's jobs, newest first.
    List {
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub connection: Connection,
    pub title: String,
    #[arg(long)]
    pub scenes: Option<u32>,
    /// 256, 512 or 768.
    #[arg(long)]
    pub resolution: Option<u32>,
    #[arg(long, default_value = "")]
    pub aspect: String,
    #[arg(long, default_value = "")]
    pub backend: String,
    #[arg(long)]
    pub upscale: Option<u32>,
    #[arg(long, default_value = "")]
    pub voice: String,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub steps: Option<u32>,
    #[arg(long)]
    pub key_frames: Option<u32>,
    #[arg(long, default_value = "")]
    pub idempotency_key: String,
    /// Follow the job's events, then download its artifacts into --out.
    #[arg(long)]
    pub watch: bool,
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

async fn client(connection: &Connection) -> Result<GatewayServiceClient<Channel>, Status> {
    let channel = tonic::transport::Endpoint::from_shared(connection.gateway.clone())
        .map_err(|e| Status::invalid_argument(format!("--gateway: {e}")))?
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("connecting to {}: {e}", connection.gateway)))?;
    Ok(GatewayServiceClient::new(channel).max_decoding_message_size(8 << 20))
}

fn authorized<T>(connection: &Connection, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {}", connection.api_key).parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn print_job(job: &Job) {
    println!("{}", job_json(job));
}

fn job_json(job: &Job) -> serde_json::Value {
    serde_json::json!({
        "id": job.id,
        "state": JobState::try_from(job.state).map(|s| s.as_str_name()).unwrap_or("?"),
        "progress": job.progress,
        "story": job.story.iter().map(|s| s.text.clone()).collect::<Vec<_>>(),
        "artifacts": job.artifacts.iter().map(|a| serde_json::json!({"name": a.name, "size_bytes": a.size_bytes, "sha256": a.sha256})).collect::<Vec<_>>(),
        "error": job.error.as_ref().map(|e| e.message.clone()),
        "cancel_requested": job.cancel_requested,
    })
}

fn event_line(event: &JobEvent) -> String {
    let what = match &event.payload {
        Some(Payload::Snapshot(job)) => format!("snapshot {}", job_json(job)),
        Some(Payload::StateChange(change)) => format!(
            "state {}{}",
            JobState::try_from(change.state)
                .map(|s| s.as_str_name())
                .unwrap_or("?"),
            change
                .error
                .as_ref()
                .map(|e| format!(": {}", e.message))
                .unwrap_or_default()
        ),
        Some(Payload::Stage(stage)) => format!(
            "stage {} scene {:?} {} ({})",
            common::Stage::try_from(stage.stage)
                .map(|s| s.as_str_name())
                .unwrap_or("?"),
            stage.scene_index,
            storyreel_proto::gateway::StageState::try_from(stage.state)
                .map(|s| s.as_str_name())
                .unwrap_or("?"),
            stage.endpoint_group
        ),
        Some(Payload::Progress(p)) => format!(
            "progress {} scene {:?} {}/{}",
            common::Stage::try_from(p.stage)
                .map(|s| s.as_str_name())
                .unwrap_or("?"),
            p.scene_index,
            p.step,
            p.total_steps
        ),
        Some(Payload::Artifact(a)) => format!("artifact {} {} bytes", a.name, a.size_bytes),
        Some(Payload::KeyframePreview(p)) => format!(
            "preview scene {} step {} ({} bytes of PNG)",
            p.scene_index,
            p.step,
            p.png.len()
        ),
        Some(Payload::StoryDelta(d)) => format!("story scene {} {}", d.scene_index, d.text),
        None => "empty".into(),
    };
    format!("{} {what}", event.event_id)
}

async fn watch(connection: &Connection, job_id: &str, after: &str) -> Result<JobState, Status> {
    let mut client = client(connection).await?;
    let mut events = client
        .watch_job(authorized(
            connection,
            WatchJobRequest {
                job_id: job_id.to_string(),
                resume_after: after.to_string(),
                include_story_text: false,
            },
        ))
        .await?
        .into_inner();
    let mut state = JobState::Unspecified;
    while let Some(response) = events.next().await {
        let Some(event) = response?.event else { continue };
        match &event.payload {
            Some(Payload::StateChange(c)) => state = JobState::try_from(c.state).unwrap_or(state),
            Some(Payload::Snapshot(j)) => state = JobState::try_from(j.state).unwrap_or(state),
            _ => {}
        }
        println!("{}", event_line(&event));
    }
    Ok(state)
}

/// Downloads every artifact of a job into `out/{job_id}/`.
pub async fn download(
    connection: &Connection,
    job_id: &str,
    out: &std::path::Path,
) -> Result<Vec<PathBuf>, Status> {
    let mut client = client(connection).await?;
    let job = client
        .get_job(authorized(
            connection,
            GetJobRequest {
                job_id: job_id.into(),
            },
        ))
        .await?
        .into_inner()
        .job
        .unwrap_or_default();
    let dir = out.join(job_id);
    std::fs::create_dir_all(&dir).map_err(|e| Status::internal(format!("{}: {e}", dir.display())))?;
    let mut paths = Vec::new();
    for artifact in job.artifacts {
        let mut chunks = client
            .get_artifact(authorized(
                connection,
                GetArtifactRequest {
                    job_id: job_id.into(),
                    name: artifact.name.clone(),
                    offset: 0,
                    chunk_size: None,
                },
            ))
            .await?
            .into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = chunks.next().await {
            bytes.extend_from_slice(&chunk?.data);
        }
        // The name was checked by the gateway; it is a file name, never a path.
        let path = dir.join(&artifact.name);
        std::fs::write(&path, &bytes).map_err(|e| Status::internal(format!("{}: {e}", path.display())))?;
        paths.push(path);
    }
    Ok(paths)
}

pub async fn run(command: Remote) -> ExitCode {
    let result: Result<ExitCode, Status> = async {
        match command {
            Remote::Submit(args) => {
                let spec = VideoSpec {
                    title: args.title.clone(),
                    n_scenes: args.scenes,
                    resolution: match args.resolution {
                        None => 0,
                        Some(256) => common::Resolution::Resolution256 as i32,
                        Some(512) => common::Resolution::Resolution512 as i32,
                        Some(768) => common::Resolution::Resolution768 as i32,
                        Some(other) => {
                            return Err(Status::invalid_argument(format!(
                                "--resolution must be 256, 512 or 768, got {other}"
                            )));
                        }
                    },
                    aspect: args.aspect.clone(),
                    backend: args.backend.clone(),
                    upscale: args.upscale,
                    voice: args.voice.clone(),
                    seed: args.seed,
                    steps: args.steps,
                    key_frames: args.key_frames,
                    ..Default::default()
                };
                let mut client = client(&args.connection).await?;
                let response = client
                    .create_video(authorized(
                        &args.connection,
                        CreateVideoRequest {
                            spec: Some(spec),
                            idempotency_key: args.idempotency_key.clone(),
                            ..Default::default()
                        },
                    ))
                    .await?
                    .into_inner();
                let job = response.job.unwrap_or_default();
                print_job(&job);
                if !args.watch {
                    return Ok(ExitCode::SUCCESS);
                }
                let state = watch(&args.connection, &job.id, "").await?;
                if state != JobState::Succeeded {
                    return Ok(ExitCode::FAILURE);
                }
                for path in download(&args.connection, &job.id, &args.out).await? {
                    println!("{}", path.display());
                }
                Ok(ExitCode::SUCCESS)
            }
            Remote::Watch {
                connection,
                job_id,
                after,
            } => {
                let state = watch(&connection, &job_id, &after).await?;
                Ok(if state == JobState::Succeeded {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
            Remote::Get { connection, job_id } => {
                let mut client = client(&connection).await?;
                let job = client
                    .get_job(authorized(&connection, GetJobRequest { job_id }))
                    .await?
                    .into_inner()
                    .job
                    .unwrap_or_default();
                print_job(&job);
                Ok(ExitCode::SUCCESS)
            }
            Remote::Cancel { connection, job_id } => {
                let mut client = client(&connection).await?;
                let job = client
                    .cancel_job(authorized(
                        &connection,
                        CancelJobRequest {
                            job_id,
                            reason: "storyreel cancel".into(),
                        },
                    ))
                    .await?
                    .into_inner()
                    .job
                    .unwrap_or_default();
                print_job(&job);
                Ok(ExitCode::SUCCESS)
            }
            Remote::List { connection } => {
                let mut client = client(&connection).await?;
                let jobs = client
                    .list_jobs(authorized(&connection, ListJobsRequest::default()))
                    .await?
                    .into_inner()
                    .jobs;
                for job in &jobs {
                    print_job(job);
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
    .await;
    match result {
        Ok(code) => code,
        Err(status) => {
            eprintln!("storyreel: {:?}: {}", status.code(), status.message());
            if status.code() == tonic::Code::InvalidArgument {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

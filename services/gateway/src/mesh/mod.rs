//! Mesh mode (`storyreel mesh`, `make mesh`): every part of storyreel as its own process
//! on 127.0.0.1, on free ports: a Redis of its own (append-only file, fsynced on every
//! write, so a restart keeps the tensors, stage caches and job events), the Temporal dev
//! server (SQLite in a file, so a restart keeps the workflows), the seven stage services
//! and one or more gateway replicas, each started only when what it needs answers its
//! health check.
//!
//! Everything the processes need is in one run directory: `config/` (the repository's
//! `default.toml` and a generated `mesh.toml` profile with the ports, the Redis and the
//! stage endpoints), the logs, the Redis and Temporal data, the artifacts, and the API
//! key (`api-key`; the config holds only its SHA-256).

pub mod process;

use crate::{api::auth::key_digest, gateway_config::STAGES};
use anyhow::{Context, bail};
use process::Process;
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// The stage services: config table, binary.
const SERVICES: [(&str, &str); 7] = [
    ("story_llm", "storyreel-story-llm"),
    ("prompt_rewriter", "storyreel-prompt-rewriter"),
    ("retrieval", "storyreel-retrieval"),
    ("keyframe", "storyreel-keyframe"),
    ("interpolation", "storyreel-interpolation"),
    ("decoder", "storyreel-decoder"),
    ("tts", "storyreel-tts"),
];

/// How to start a mesh.
#[derive(Debug, Clone)]
pub struct MeshOptions {
    /// Created if missing; reused (data, logs) if it exists.
    pub run_dir: PathBuf,
    /// Where the service binaries are (`target/<profile>`).
    pub bin_dir: PathBuf,
    /// The repository's config directory (its `default.toml` is the base layer).
    pub config_dir: PathBuf,
    pub temporal: PathBuf,
    pub redis_server: PathBuf,
    pub gateway_replicas: usize,
    pub max_concurrent_jobs: u32,
    /// More TOML for the generated profile: whole tables the profile does not already
    /// have (`[[gateway.api_keys]]` entries); single keys are better set in `env`.
    pub extra_config: String,
    /// Extra endpoint groups: `(stage, group, weight)` served by another copy of the
    /// stage's service (a canary).
    pub extra_groups: Vec<(String, String, u32, String)>,
    /// Environment for every process (log filter).
    pub env: Vec<(String, String)>,
    /// OTLP/gRPC collector every service (and the gateway) exports its spans to.
    pub otlp_endpoint: Option<String>,
    /// How long to wait for each part to become healthy.
    pub ready_timeout: Duration,
}

impl MeshOptions {
    /// Defaults next to the running binary: `bin_dir` is its directory (or the one
    /// above, for a test binary in `deps/`), tools from `$STORYREEL_TOOLS`.
    pub fn near_current_exe(run_dir: PathBuf) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut bin_dir = exe.parent().context("the binary's directory")?.to_path_buf();
        if bin_dir.ends_with("deps") {
            bin_dir.pop();
        }
        let tools = std::env::var_os("STORYREEL_TOOLS")
            .map(PathBuf::from)
            .unwrap_or_else(|| dirs_home().join(".cache/storyreel/tools"));
        Ok(Self {
            run_dir,
            bin_dir,
            config_dir: std::env::var_os("STORYREEL_CONFIG_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| "config".into()),
            temporal: tools.join("temporal"),
            redis_server: "redis-server".into(),
            gateway_replicas: 1,
            max_concurrent_jobs: 4,
            extra_config: String::new(),
            extra_groups: Vec::new(),
            env: Vec::new(),
            otlp_endpoint: None,
            ready_timeout: Duration::from_secs(300),
        })
    }
}

fn dirs_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/".into())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running mesh; dropping it kills every process.
pub struct Mesh {
    pub run_dir: PathBuf,
    /// `http://127.0.0.1:port` of each gateway replica.
    pub gateways: Vec<String>,
    /// `http://127.0.0.1:port/` of each gateway replica's REST API and web UI.
    pub web: Vec<String>,
    pub api_key: String,
    pub redis_url: String,
    pub temporal_address: String,
    /// Every process by name: `redis`, `temporal`, the stage tables (`keyframe`),
    /// `keyframe-canary`, `gateway-0`, ...
    pub processes: Vec<Process>,
    /// Health endpoint of each process that has one.
    endpoints: Vec<(String, String)>,
    ready_timeout: Duration,
}

impl Mesh {
    pub async fn start(options: MeshOptions) -> anyhow::Result<Mesh> {
        let run = std::path::absolute(&options.run_dir)?;
        let logs = run.join("logs");
        let config_dir = run.join("config");
        for dir in [&logs, &config_dir, &run.join("redis"), &run.join("out")] {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let base = options.config_dir.join("default.toml");
        std::fs::copy(&base, config_dir.join("default.toml"))
            .with_context(|| format!("copying {}", base.display()))?;
        let api_key_file = run.join("api-key");
        let api_key = match std::fs::read_to_string(&api_key_file) {
            Ok(key) if !key.trim().is_empty() => key.trim().to_string(),
            _ => {
                let key = format!("sr-{:032x}", rand::random::<u128>());
                std::fs::write(&api_key_file, &key)?;
                key
            }
        };

        let redis_port = free_port()?;
        let temporal_port = free_port()?;
        let redis_url = format!("redis://127.0.0.1:{redis_port}");
        let temporal_address = format!("http://127.0.0.1:{temporal_port}");
        let mut ports = Vec::new();
        for (stage, _) in SERVICES {
            ports.push((stage.to_string(), "stable".to_string(), free_port()?));
        }
        for (stage, group, _, _) in &options.extra_groups {
            ports.push((stage.clone(), group.clone(), free_port()?));
        }
        let gateway_ports: Vec<u16> = (0..options.gateway_replicas.max(1))
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;
        let web_ports: Vec<u16> = gateway_ports
            .iter()
            .map(|_| free_port())
            .collect::<Result<_, _>>()?;

        let profile = profile_toml(&ProfileInputs {
            run: &run,
            redis_url: &redis_url,
            temporal_address: &temporal_address,
            ports: &ports,
            extra_groups: &options.extra_groups,
            api_key_sha256: &key_digest(&api_key),
            max_concurrent_jobs: options.max_concurrent_jobs,
            otlp_endpoint: options.otlp_endpoint.as_deref(),
            extra: &options.extra_config,
        });
        std::fs::write(config_dir.join("mesh.toml"), profile)?;

        let mut env: Vec<(String, String)> = vec![
            ("STORYREEL_CONFIG_DIR".into(), config_dir.display().to_string()),
            ("STORYREEL_PROFILE".into(), "mesh".into()),
        ];
        env.extend(options.env.iter().cloned());

        let mut mesh = Mesh {
            run_dir: run.clone(),
            gateways: gateway_ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}"))
                .collect(),
            web: web_ports
                .iter()
                .map(|p| format!("http://127.0.0.1:{p}/"))
                .collect(),
            api_key,
            redis_url: redis_url.clone(),
            temporal_address: temporal_address.clone(),
            processes: Vec::new(),
            endpoints: Vec::new(),
            ready_timeout: options.ready_timeout,
        };

        let redis_args: Vec<String> = [
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &run.join("redis").display().to_string(),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        mesh.processes.push(Process::spawn(
            "redis",
            &options.redis_server,
            &redis_args,
            &[],
            &logs,
        )?);
        let mut temporal_args: Vec<String> = [
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            &temporal_port.to_string(),
            "--ui-port",
            &free_port()?.to_string(),
            "--headless",
            "--db-filename",
            &run.join("temporal.db").display().to_string(),
            "--log-level",
            "warn",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (name, kind) in crate::jobs::workflow::SEARCH_ATTRIBUTES {
            temporal_args.push("--search-attribute".into());
            temporal_args.push(format!("{name}={kind}"));
        }
        mesh.processes.push(Process::spawn(
            "temporal",
            &options.temporal,
            &temporal_args,
            &[],
            &logs,
        )?);
        mesh.wait_tcp("redis", redis_port).await?;

        for (stage, group, port) in &ports {
            let binary = SERVICES
                .iter()
                .find(|(s, _)| s == stage)
                .map(|(_, b)| options.bin_dir.join(b))
                .context("a stage service")?;
            let name = if group == "stable" {
                stage.clone()
            } else {
                format!("{stage}-{group}")
            };
            let mut process_env = env.clone();
            process_env.push((
                format!("STORYREEL_{}__SERVER__LISTEN", stage.to_ascii_uppercase()),
                format!("127.0.0.1:{port}"),
            ));
            if let Some((_, _, _, version)) = options
                .extra_groups
                .iter()
                .find(|(s, g, _, _)| s == stage && g == group)
            {
                process_env.push((
                    format!("STORYREEL_{}__MODEL_VERSION", stage.to_ascii_uppercase()),
                    version.clone(),
                ));
            }
            mesh.processes
                .push(Process::spawn(&name, &binary, &[], &process_env, &logs)?);
            mesh.endpoints.push((name, format!("http://127.0.0.1:{port}")));
        }
        mesh.wait_tcp("temporal", temporal_port).await?;
        let stages: Vec<(String, String)> = mesh.endpoints.clone();
        for (name, endpoint) in &stages {
            mesh.wait_healthy(name, endpoint).await?;
        }
        for (i, (port, web)) in gateway_ports.iter().zip(&web_ports).enumerate() {
            mesh.start_gateway(i, (*port, *web), &options.bin_dir, &env, &logs)?;
        }
        for (i, endpoint) in mesh.gateways.clone().iter().enumerate() {
            mesh.wait_healthy(&format!("gateway-{i}"), endpoint).await?;
        }
        Ok(mesh)
    }

    fn start_gateway(
        &mut self,
        index: usize,
        (port, web): (u16, u16),
        bin_dir: &Path,
        env: &[(String, String)],
        logs: &Path,
    ) -> anyhow::Result<()> {
        let mut gateway_env = env.to_vec();
        gateway_env.push((
            "STORYREEL_GATEWAY__SERVER__LISTEN".into(),
            format!("127.0.0.1:{port}"),
        ));
        gateway_env.push((
            "STORYREEL_GATEWAY__HTTP__LISTEN".into(),
            format!("127.0.0.1:{web}"),
        ));
        let name = format!("gateway-{index}");
        self.processes.push(Process::spawn(
            &name,
            &bin_dir.join("storyreel"),
            &["serve".to_string()],
            &gateway_env,
            logs,
        )?);
        self.endpoints.push((name, format!("http://127.0.0.1:{port}")));
        Ok(())
    }

    pub fn process(&mut self, name: &str) -> Option<&mut Process> {
        self.processes.iter_mut().find(|p| p.name == name)
    }

    /// Restarts `name` (after a kill) and waits until it is healthy again.
    pub async fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        let process = self
            .process(name)
            .with_context(|| format!("no process `{name}`"))?;
        process.kill();
        process.start()?;
        match name {
            "redis" => {
                let port: u16 = self.redis_url.rsplit(':').next().unwrap_or("0").parse()?;
                self.wait_tcp(name, port).await
            }
            "temporal" => {
                let port: u16 = self.temporal_address.rsplit(':').next().unwrap_or("0").parse()?;
                self.wait_tcp(name, port).await
            }
            _ => {
                let endpoint = self
                    .endpoints
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, e)| e.clone())
                    .with_context(|| format!("no endpoint of `{name}`"))?;
                self.wait_healthy(name, &endpoint).await
            }
        }
    }

    async fn wait_tcp(&mut self, name: &str, port: u16) -> anyhow::Result<()> {
        let until = Instant::now() + self.ready_timeout;
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(());
            }
            self.check_alive(name, until)?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_healthy(&mut self, name: &str, endpoint: &str) -> anyhow::Result<()> {
        let until = Instant::now() + self.ready_timeout;
        loop {
            if let Ok(channel) = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
                .connect()
                .await
            {
                let mut health = HealthClient::new(channel);
                if let Ok(reply) = health
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    && reply.get_ref().status == ServingStatus::Serving as i32
                {
                    return Ok(());
                }
            }
            self.check_alive(name, until)?;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn check_alive(&mut self, name: &str, until: Instant) -> anyhow::Result<()> {
        let timeout = self.ready_timeout;
        let process = self
            .process(name)
            .with_context(|| format!("no process `{name}`"))?;
        if !process.running() {
            bail!(
                "{name} exited while starting; its log ends:\n{}",
                process.log_tail()
            );
        }
        if Instant::now() > until {
            bail!(
                "{name} was not ready within {timeout:?}; its log ends:\n{}",
                process.log_tail()
            );
        }
        Ok(())
    }

    /// Stops every process, gateways first, Redis last.
    pub fn stop(mut self) {
        while let Some(mut process) = self.processes.pop() {
            process.stop(Duration::from_secs(5));
        }
    }
}

struct ProfileInputs<'a> {
    run: &'a Path,
    redis_url: &'a str,
    temporal_address: &'a str,
    ports: &'a [(String, String, u16)],
    extra_groups: &'a [(String, String, u32, String)],
    api_key_sha256: &'a str,
    max_concurrent_jobs: u32,
    otlp_endpoint: Option<&'a str>,
    extra: &'a str,
}

/// The generated `mesh.toml`.
fn profile_toml(p: &ProfileInputs) -> String {
    let mut toml = String::from("# Generated by `storyreel mesh`: the ports and stores of this mesh.\n\n");
    let tensors = |table: &str| {
        format!(
            "[{table}.tensors]\nbackend = \"redis\"\n\n[{table}.tensors.redis]\nurl = \"{}\"\n\n",
            p.redis_url
        )
    };
    for (stage, _) in STAGES {
        toml.push_str(&tensors(stage));
    }
    if let Some(endpoint) = p.otlp_endpoint {
        for table in STAGES.iter().map(|(s, _)| *s).chain(["gateway"]) {
            let _ = write!(toml, "[{table}.telemetry]\notlp_endpoint = \"{endpoint}\"\n\n");
        }
    }
    let _ = write!(
        toml,
        "[pipeline]\nout_dir = \"{out}\"\n\n[gateway]\nartifacts_url = \"file://{artifacts}/\"\n\n\
         [gateway.temporal]\naddress = \"{temporal}\"\n\n",
        out = p.run.join("out").display(),
        artifacts = p.run.join("artifacts").display(),
        temporal = p.temporal_address,
    );
    toml.push_str(&tensors("gateway"));
    let _ = write!(
        toml,
        "[[gateway.api_keys]]\nname = \"mesh\"\nsha256 = \"{}\"\nmax_concurrent_jobs = {}\n\n",
        p.api_key_sha256, p.max_concurrent_jobs
    );
    for (stage, group, port) in p.ports {
        let (weight, version) = p
            .extra_groups
            .iter()
            .find(|(s, g, _, _)| s == stage && g == group)
            .map(|(_, _, w, v)| (*w, v.clone()))
            .unwrap_or_else(|| {
                let canary: u32 = p
                    .extra_groups
                    .iter()
                    .filter(|(s, _, _, _)| s == stage)
                    .map(|(_, _, w, _)| *w)
                    .sum();
                (100u32.saturating_sub(canary).max(1), String::new())
            });
        let _ = write!(
            toml,
            "[[gateway.stages.{stage}]]\ngroup = \"{group}\"\nendpoint = \"http://127.0.0.1:{port}\"\n\
             weight = {weight}\nversion = \"{version}\"\n\n"
        );
    }
    toml.push_str(p.extra);
    toml
}

//! The `[gateway]` configuration table: where the gateway listens, the Temporal cluster
//! its jobs run on, the Redis of tensors and job events, where artifacts go, the stage
//! services (weighted endpoint groups per stage), and the API keys.
//!
//! ```toml
//! [gateway.temporal]
//! address = "http://127.0.0.1:7233"
//!
//! [[gateway.stages.keyframe]]
//! group = "stable"
//! endpoint = "http://keyframe-stable:50056"
//! weight = 90
//!
//! [[gateway.stages.keyframe]]
//! group = "canary"
//! endpoint = "http://keyframe-canary:50056"
//! weight = 10
//! version = "animatediff-v3"
//!
//! [[gateway.api_keys]]
//! name = "platform-batch"
//! sha256 = "<sha256 of the key, 64 hex>"
//! max_concurrent_jobs = 4
//! ```

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use storyreel_proto::common::Stage;
use storyreel_runtime::{
    Validate, ValidationError,
    client::ClientConfig,
    config::{Secret, check_range},
    server::ServerConfig,
    telemetry::TelemetryConfig,
};
use storyreel_tensors::{StoreConfig, config::Backend as StoreBackend};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// The gRPC API.
    pub server: ServerConfig,
    /// The REST API and the web UI.
    pub http: HttpConfig,
    pub telemetry: TelemetryConfig,
    pub temporal: TemporalConfig,
    /// Tensors, stage caches, job events and quotas; must be the stages' Redis.
    pub tensors: StoreConfig,
    /// Artifacts: `file:///abs/dir` (the default, under `[pipeline] out_dir`) or
    /// `s3://bucket/prefix` (credentials and endpoint from the usual `AWS_*` variables).
    pub artifacts_url: String,
    /// Settings shared by the calls to every stage (timeouts, TLS, API key); the
    /// endpoint of each comes from `stages`.
    pub stage_client: ClientConfig,
    /// Endpoint groups per stage, by the stage's config name (`story_llm`,
    /// `prompt_rewriter`, `retrieval`, `keyframe`, `interpolation`, `decoder`, `tts`).
    pub stages: BTreeMap<String, Vec<EndpointGroup>>,
    pub api_keys: Vec<ApiKeyConfig>,
    /// A job's timeout when CreateVideo gives none (seconds).
    pub default_job_timeout_s: u64,
    /// A stage call's heartbeat timeout: a replica that stops heartbeating (it died) has
    /// its call moved to another replica after this long (milliseconds).
    pub heartbeat_timeout_ms: u64,
    /// One stage call's longest run, retries apart (seconds).
    pub stage_timeout_s: u64,
    /// Per stage (config name: `keyframe = 7200`), instead of `stage_timeout_s`.
    pub stage_timeouts_s: BTreeMap<String, u64>,
    /// Attempts of a stage call that fails UNAVAILABLE or DEADLINE_EXCEEDED.
    pub stage_max_attempts: u32,
    /// Days a finished job (and its events) stays listed.
    pub retention_hours: u64,
}

/// The REST mirror of the API and the web UI (`[gateway.http]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve them at all.
    pub enabled: bool,
    /// Where to listen.
    pub listen: std::net::SocketAddr,
    /// Mark the session cookie `Secure` (set it when a TLS proxy fronts the gateway).
    pub secure_cookie: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:8080".parse().expect("a socket address"),
            secure_cookie: false,
        }
    }
}

/// The Temporal cluster the jobs run on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TemporalConfig {
    /// `http://host:7233` (a local dev server, the platform's frontend), or `https://...`
    /// for TLS (Temporal Cloud: `https://<namespace>.<account>.tmprl.cloud:7233`).
    pub address: String,
    /// Temporal Cloud API key (sent as a bearer token, over TLS).
    pub api_key: Option<Secret>,
    pub namespace: String,
    /// The replicas share the jobs through this task queue.
    pub task_queue: String,
    /// Stage calls one replica runs at once.
    pub max_concurrent_activities: usize,
}

/// One group of endpoints of a stage (`stable`, `canary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointGroup {
    pub group: String,
    pub endpoint: String,
    /// Relative share of the jobs that draw this group.
    #[serde(default = "one")]
    pub weight: u32,
    /// The model version this group serves: a job pinning this version is routed here.
    #[serde(default)]
    pub version: String,
}

fn one() -> u32 {
    1
}

/// An API key, stored as the SHA-256 of the key (hex), never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Who holds it (logs and metrics; never sent back).
    pub name: String,
    pub sha256: String,
    /// Jobs (and texts or reference requests) this key may have in flight at once, 0-10000;
    /// 0: a key that reads but starts nothing (a dashboard, a contract test).
    #[serde(default = "default_quota")]
    pub max_concurrent_jobs: u32,
}

fn default_quota() -> u32 {
    4
}

/// The stages the gateway calls, by config name, in pipeline order.
pub const STAGES: [(&str, Stage); 7] = [
    ("story_llm", Stage::Story),
    ("prompt_rewriter", Stage::Prompt),
    ("retrieval", Stage::Retrieval),
    ("keyframe", Stage::Keyframe),
    ("interpolation", Stage::Interpolation),
    ("decoder", Stage::Decode),
    ("tts", Stage::Tts),
];

/// The default port of each stage service (config/default.toml), for a local mesh.
pub fn default_endpoints() -> BTreeMap<String, Vec<EndpointGroup>> {
    [
        ("story_llm", 50052),
        ("prompt_rewriter", 50053),
        ("keyframe", 50054),
        ("retrieval", 50055),
        ("interpolation", 50056),
        ("decoder", 50057),
        ("tts", 50059),
    ]
    .into_iter()
    .map(|(stage, port)| {
        (
            stage.to_string(),
            vec![EndpointGroup {
                group: "stable".into(),
                endpoint: format!("http://127.0.0.1:{port}"),
                weight: 1,
                version: String::new(),
            }],
        )
    })
    .collect()
}

impl Default for GatewayConfig {
    fn default() -> Self {
        let server = ServerConfig {
            listen: "127.0.0.1:50051".parse().expect("a socket address"),
            // WatchJob and GetArtifact streams last as long as a job.
            request_timeout_ms: 24 * 3600 * 1000,
            ..ServerConfig::default()
        };
        Self {
            server,
            http: HttpConfig::default(),
            telemetry: TelemetryConfig::default(),
            temporal: TemporalConfig::default(),
            tensors: StoreConfig {
                backend: StoreBackend::Redis,
                ..StoreConfig::default()
            },
            artifacts_url: String::new(),
            stage_client: ClientConfig::default(),
            stages: default_endpoints(),
            api_keys: Vec::new(),
            default_job_timeout_s: 3600,
            heartbeat_timeout_ms: 10_000,
            stage_timeout_s: 3600,
            stage_timeouts_s: BTreeMap::new(),
            stage_max_attempts: 5,
            retention_hours: 24,
        }
    }
}

impl Default for TemporalConfig {
    fn default() -> Self {
        Self {
            address: "http://127.0.0.1:7233".into(),
            api_key: None,
            namespace: "default".into(),
            task_queue: "storyreel-jobs".into(),
            max_concurrent_activities: 32,
        }
    }
}

impl Validate for GatewayConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.server.validate().map_err(|e| e.within("server"))?;
        self.telemetry.validate().map_err(|e| e.within("telemetry"))?;
        if !(self.temporal.address.starts_with("http://") || self.temporal.address.starts_with("https://")) {
            return Err(ValidationError::new(
                "temporal.address",
                format!(
                    "must start with http:// or https://, got `{}`",
                    self.temporal.address
                ),
            ));
        }
        if self.temporal.namespace.is_empty() || self.temporal.task_queue.is_empty() {
            return Err(ValidationError::new(
                "temporal",
                "namespace and task_queue must not be empty",
            ));
        }
        check_range(
            "temporal.max_concurrent_activities",
            self.temporal.max_concurrent_activities,
            1,
            1024,
        )?;
        self.tensors
            .validate()
            .map_err(|e| ValidationError::new("tensors", e.to_string()))?;
        if self.tensors.backend != StoreBackend::Redis {
            return Err(ValidationError::new(
                "tensors.backend",
                "must be redis: the stages and every gateway replica share it",
            ));
        }
        self.stage_client
            .validate()
            .map_err(|e| e.within("stage_client"))?;
        for (stage, _) in STAGES {
            let groups = self.stages.get(stage).ok_or_else(|| {
                ValidationError::new(format!("stages.{stage}"), "needs at least one endpoint group")
            })?;
            if groups.is_empty() || groups.iter().all(|g| g.weight == 0) {
                return Err(ValidationError::new(
                    format!("stages.{stage}"),
                    "needs at least one endpoint group with a weight over 0",
                ));
            }
            for (i, g) in groups.iter().enumerate() {
                let field = format!("stages.{stage}[{i}]");
                if g.group.is_empty() || groups.iter().filter(|o| o.group == g.group).count() > 1 {
                    return Err(ValidationError::new(
                        format!("{field}.group"),
                        "must be a non-empty name, distinct within the stage",
                    ));
                }
                if !(g.endpoint.starts_with("http://") || g.endpoint.starts_with("https://")) {
                    return Err(ValidationError::new(
                        format!("{field}.endpoint"),
                        format!("must start with http:// or https://, got `{}`", g.endpoint),
                    ));
                }
                check_range(&format!("{field}.weight"), g.weight, 0, 1_000_000)?;
            }
        }
        if let Some(unknown) = self.stages.keys().find(|k| !STAGES.iter().any(|(s, _)| s == k)) {
            return Err(ValidationError::new(
                format!("stages.{unknown}"),
                "is not a stage (story_llm, prompt_rewriter, retrieval, keyframe, interpolation, decoder, tts)",
            ));
        }
        for (i, key) in self.api_keys.iter().enumerate() {
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ValidationError::new(
                    format!("api_keys[{i}].sha256"),
                    "must be the key's SHA-256 as 64 hex characters",
                ));
            }
            check_range(
                &format!("api_keys[{i}].max_concurrent_jobs"),
                key.max_concurrent_jobs,
                0,
                10_000,
            )?;
        }
        check_range("default_job_timeout_s", self.default_job_timeout_s, 1, 24 * 3600)?;
        check_range("heartbeat_timeout_ms", self.heartbeat_timeout_ms, 500, 600_000)?;
        check_range("stage_timeout_s", self.stage_timeout_s, 1, 24 * 3600)?;
        for (stage, timeout) in &self.stage_timeouts_s {
            if !STAGES.iter().any(|(s, _)| s == stage) {
                return Err(ValidationError::new(
                    format!("stage_timeouts_s.{stage}"),
                    "is not a stage (story_llm, prompt_rewriter, retrieval, keyframe, interpolation, decoder, tts)",
                ));
            }
            check_range(&format!("stage_timeouts_s.{stage}"), *timeout, 1, 24 * 3600)?;
        }
        check_range("stage_max_attempts", self.stage_max_attempts, 1, 100)?;
        check_range("retention_hours", self.retention_hours, 1, 24 * 365)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_values_are_named() {
        GatewayConfig::default().validate().unwrap();
        let mut bad = GatewayConfig::default();
        bad.stages.remove("keyframe");
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("stages.keyframe")
        );
        let mut bad = GatewayConfig::default();
        bad.api_keys.push(ApiKeyConfig {
            name: "x".into(),
            sha256: "not hex".into(),
            max_concurrent_jobs: 1,
        });
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("api_keys[0].sha256")
        );
    }
}

//! What passes through Temporal's history: the workflow's input, each stage call's
//! request and reply (the stages' own protobuf messages, hex-encoded inside JSON
//! payloads), and the job view the workflow answers queries with. Tensors never pass
//! through it: requests and replies carry tensor references into Redis.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use storyreel_pipeline::{JobSpec, Settings};

/// A protobuf message as hex, so that it rides in a JSON payload unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Proto(pub String);

impl Proto {
    pub fn of<M: prost::Message>(message: &M) -> Self {
        Proto(hex::encode(message.encode_to_vec()))
    }

    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, String> {
        let bytes = hex::decode(&self.0).map_err(|e| format!("a stage message is not hex: {e}"))?;
        M::decode(bytes.as_slice()).map_err(|e| format!("a stage message does not decode: {e}"))
    }
}

/// Everything a job's workflow needs, fixed when the job is created: the workflow reads
/// no clock, no config and no randomness of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobInput {
    pub spec: JobSpec,
    pub settings: Settings,
    /// The resolved `VideoSpec` (GetJob shows it).
    pub video: Proto,
    /// SHA-256 (hex) of the API key that created the job: its owner.
    pub owner: String,
    pub labels: BTreeMap<String, String>,
    pub idempotency_key: String,
    /// The endpoint group each stage was drawn to (sticky for the job).
    pub routes: BTreeMap<String, String>,
    pub create_time_ms: i64,
    pub deadline_ms: i64,
    /// W3C trace context of the CreateVideo call: every stage call joins its trace.
    pub trace: HashMap<String, String>,
    pub calls: CallSettings,
    /// SHA-256 of the VideoSpec as asked (before defaults): a repeated idempotency key
    /// must ask the same.
    pub asked: String,
}

/// How the workflow schedules each stage call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallSettings {
    pub heartbeat_timeout_ms: u64,
    pub stage_timeout_s: u64,
    /// Per stage (config name), instead of `stage_timeout_s`.
    pub stage_timeouts_s: BTreeMap<String, u64>,
    pub max_attempts: u32,
}

/// One stage call, as an activity's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageCall {
    pub job_id: String,
    /// The stage's config name (`keyframe`); picks the endpoint group's client.
    pub stage: String,
    pub group: String,
    /// The DAG's step (`reference_encode`), for events.
    pub step: String,
    pub scene: Option<u32>,
    pub request: Proto,
    pub trace: HashMap<String, String>,
}

/// A stage call's answer: for a streamed call its result message only (progress and
/// previews went to the job's event stream as they came).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReply {
    pub response: Proto,
    pub attempt: u32,
}

/// The assembly activity's input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssembleCall {
    pub input: JobInput,
    /// The DAG's output, as the report and the muxer read it.
    pub output: String,
}

/// A finished artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactView {
    pub name: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub create_time_ms: i64,
}

/// How a job ended, for the finish activity (events, quota).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishCall {
    pub job_id: String,
    pub owner: String,
    /// `JobState` as its protobuf number.
    pub state: i32,
    pub error: Option<ErrorView>,
}

/// A failure as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorView {
    /// `ErrorReason` as its protobuf number.
    pub reason: i32,
    pub grpc_code: i32,
    pub message: String,
    /// `Stage` as its protobuf number.
    pub stage: i32,
    pub scene: Option<u32>,
}

/// One stage of one scene (or of the job), as the workflow saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageView {
    /// `Stage` as its protobuf number.
    pub stage: i32,
    pub scene: Option<u32>,
    /// `StageState` as its protobuf number.
    pub state: i32,
    pub group: String,
    pub attempts: u32,
    pub cache_hit: bool,
    pub done: u32,
    pub total: u32,
}

/// The workflow's answer to the `view` query: what GetJob shows beside Temporal's own
/// status and times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct JobView {
    pub input: Option<JobInput>,
    /// `JobState` as its protobuf number.
    pub state: i32,
    pub stages: Vec<StageView>,
    pub story: Vec<String>,
    pub artifacts: Vec<ArtifactView>,
    pub error: Option<ErrorView>,
    pub backend: String,
    pub cancel_requested: bool,
}

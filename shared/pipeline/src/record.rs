//! What each stage call of a job did: model, seed, cache hit and time; the report's
//! `calls` and its per-stage totals.

use crate::progress::Step;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use storyreel_proto::common;

/// The model of a call, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    pub name: String,
    pub version: String,
    pub weights_sha256: String,
    pub random_init: bool,
}

impl From<common::ModelInfo> for ModelRecord {
    fn from(m: common::ModelInfo) -> Self {
        ModelRecord {
            name: m.name,
            version: m.version,
            weights_sha256: m.weights_sha256,
            random_init: m.random_init,
        }
    }
}

/// One stage call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub step: Step,
    /// 0-based; `None` for a call made once per job (the story).
    pub scene: Option<u32>,
    pub model: Option<ModelRecord>,
    pub seed: Option<u64>,
    pub cache_hit: bool,
    /// Wall time of the call as the pipeline saw it.
    pub seconds: f64,
    /// The stage's own compute time, when it reports one.
    pub compute_seconds: Option<f64>,
}

/// The calls of a running job, from its parallel scenes.
#[derive(Default)]
pub struct Calls(Mutex<Vec<CallRecord>>);

impl Calls {
    pub fn push(&self, record: CallRecord) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }

    /// In pipeline order: by step, then scene (the order calls finished in varies).
    pub fn into_sorted(self) -> Vec<CallRecord> {
        let mut calls = self.0.into_inner().unwrap_or_else(|e| e.into_inner());
        calls.sort_by_key(|c| (c.step, c.scene));
        calls
    }
}

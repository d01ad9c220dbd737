//! What a running job tells its watcher: [`Event`]s per stage and scene, to a
//! [`ProgressSink`] (the CLI's progress bars, the gateway's event stream).

use serde::{Deserialize, Serialize};
use storyreel_tensors::TensorRef;

/// A stage of the DAG, as the report and the progress name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Story,
    Prompt,
    Keywords,
    /// Ranking the catalog's clips for a scene (not cached: milliseconds).
    Retrieval,
    /// The chosen clip's frames at the job's size (cached).
    ReferenceFrames,
    ReferenceEncode,
    Keyframe,
    Interpolation,
    Decode,
    Upsample,
    Narration,
    Assembly,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Story => "story",
            Step::Prompt => "prompt",
            Step::Keywords => "keywords",
            Step::Retrieval => "retrieval",
            Step::ReferenceFrames => "reference_frames",
            Step::ReferenceEncode => "reference_encode",
            Step::Keyframe => "keyframe",
            Step::Interpolation => "interpolation",
            Step::Decode => "decode",
            Step::Upsample => "upsample",
            Step::Narration => "narration",
            Step::Assembly => "assembly",
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The backend is chosen, with the reason (shown to the person who asked).
    Backend { backend: crate::Backend, reason: String },
    /// A stage call started.
    Started { step: Step, scene: Option<u32> },
    /// `done` of `total` units (tokens, scenes, denoising steps, frames).
    Progress {
        step: Step,
        scene: Option<u32>,
        done: u32,
        total: u32,
    },
    /// A keyframe preview: small u8 (3, H, W) frames in the store.
    Preview { scene: u32, step: u32, image: TensorRef },
    /// A stage call finished.
    Finished {
        step: Step,
        scene: Option<u32>,
        cache_hit: bool,
        seconds: f64,
    },
    /// A scene's text is known (the story stage wrote it, or a person did).
    SceneText { scene: u32, text: String },
}

/// Where a job's events go. Called from the job's tasks; must not block. Not `Send`: a
/// workflow's sink records into the workflow's own single-threaded state.
pub trait ProgressSink {
    fn emit(&self, event: Event);
}

/// Drops every event.
pub struct Silent;

impl ProgressSink for Silent {
    fn emit(&self, _: Event) {}
}

impl<F: Fn(Event)> ProgressSink for F {
    fn emit(&self, event: Event) {
        self(event)
    }
}

//! The one error of a job: which stage (and scene) failed and why, in words a person can
//! act on; and its code in the error table.

use crate::progress::Step;
use storyreel_runtime::{ErrorCode, HasErrorCode, ValidationError};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The job's spec is outside its limits.
    #[error(transparent)]
    Spec(#[from] ValidationError),

    /// A stage call failed.
    #[error("{} failed{}: {}", step.as_str(), scene.map(|s| format!(" on scene {}", s + 1)).unwrap_or_default(), status.message())]
    Stage {
        step: Step,
        scene: Option<u32>,
        status: tonic::Status,
    },

    /// A stage answered with something the pipeline cannot use (a bug or a version skew).
    #[error("{} answered without {what}", step.as_str())]
    Answer { step: Step, what: &'static str },

    /// The reference backend found no clip for any scene.
    #[error(
        "no clip in the retrieval catalog matches any scene (keywords: {keywords}); the reference \
         backend needs one: ingest clips (make ingest) or choose --backend diffusion"
    )]
    NoReference { keywords: String },

    /// Reading a stage's output from the tensor store failed.
    #[error("reading {what} from the tensor store: {source}")]
    Store {
        what: String,
        #[source]
        source: storyreel_tensors::Error,
    },

    /// Writing the video failed (ffmpeg, the output directory).
    #[error("assembling the video: {0}")]
    Assembly(String),
}

impl PipelineError {
    pub fn stage(step: Step, scene: Option<u32>) -> impl FnOnce(tonic::Status) -> PipelineError {
        move |status| PipelineError::Stage { step, scene, status }
    }
}

impl HasErrorCode for PipelineError {
    fn error_code(&self) -> ErrorCode {
        match self {
            PipelineError::Spec(_) => ErrorCode::Validation,
            PipelineError::Stage { status, .. } => match status.code() {
                tonic::Code::InvalidArgument => ErrorCode::Validation,
                tonic::Code::ResourceExhausted => ErrorCode::Overloaded,
                tonic::Code::Unavailable => ErrorCode::Unavailable,
                tonic::Code::DeadlineExceeded => ErrorCode::Timeout,
                tonic::Code::Cancelled => ErrorCode::Cancelled,
                tonic::Code::FailedPrecondition => ErrorCode::MissingTensor,
                tonic::Code::NotFound => ErrorCode::NotFound,
                _ => ErrorCode::Internal,
            },
            PipelineError::NoReference { .. } => ErrorCode::NotFound,
            PipelineError::Store { source, .. } => source.error_code(),
            PipelineError::Answer { .. } | PipelineError::Assembly(_) => ErrorCode::Internal,
        }
    }
}

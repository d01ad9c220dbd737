//! storyreel's job pipeline: a title in, one narrated, subtitled MP4 out (the paper's
//! Algorithm 1), the same code in every mode.
//!
//! - [`spec`]: [`JobSpec`], what one job makes, every default resolved;
//! - [`executor`]: [`StageExecutor`], how the DAG reaches the stages (in process in the
//!   embedded mode, gRPC clients in the gateway);
//! - [`dag`]: the DAG of one job: story, then per scene prompt, keywords, search, the
//!   visual chain of the chosen [`Backend`], narration alongside;
//! - [`backend`]: what `auto` chooses; [`clips`]: distinct clips per scene;
//!   [`seeds`]: every call's seed from the job's;
//! - [`assemble`]: the MP4 and .srt with ffmpeg ([`timeline`], [`subtitles`]);
//!   [`report`]: the job's JSON report;
//! - [`progress`]: events for a watcher; [`record`]: what each call did;
//!   [`error`]: [`PipelineError`].

pub mod assemble;
pub mod backend;
pub mod clips;
pub mod dag;
pub mod error;
pub mod executor;
pub mod progress;
pub mod record;
pub mod report;
pub mod seeds;
pub mod spec;
pub mod streams;
pub mod subtitles;
pub mod timeline;

pub use dag::{JobOutput, Settings, run};
pub use error::PipelineError;
pub use executor::StageExecutor;
pub use spec::{Backend, BackendChoice, JobSpec};

//! storyreel's front: today the embedded mode, the whole pipeline in one process.
//!
//! - [`embedded`]: the seven stage services in process on one tensor store, as a
//!   `StageExecutor`;
//! - [`job`]: one job to its MP4, subtitles and report;
//! - [`config`]: the `[pipeline]` table (job defaults, DAG and video settings);
//! - [`cli`]: `storyreel generate`.

pub mod cli;
pub mod config;
pub mod embedded;
pub mod job;

pub use config::PipelineConfig;
pub use embedded::Embedded;

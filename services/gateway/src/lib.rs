//! storyreel's front: the gateway API with durable jobs, and the whole pipeline in one
//! process.
//!
//! - [`api`]: `storyreel.gateway.v1.GatewayService` (auth, validation, the gRPC adapter);
//! - [`jobs`]: a job as a Temporal workflow, its stage calls as activities;
//! - [`server`]: the gateway process (`storyreel serve`): API and worker;
//! - [`rest`]: the REST mirror of the API, its OpenAPI document, and the web UI;
//! - [`events`], [`quota`], [`artifacts`], [`routing`]: job events and quotas in Redis,
//!   artifacts in an object store, canary routing;
//! - [`embedded`]: the seven stage services in process on one tensor store, as a
//!   `StageExecutor`; [`job`]: one job to its MP4, subtitles and report;
//! - [`config`]: the `[pipeline]` table (job defaults, DAG and video settings);
//!   [`gateway_config`]: the `[gateway]` table;
//! - [`cli`]: `storyreel generate | serve | submit | watch | get | cancel | list`.

pub mod api;
pub mod artifacts;
pub mod cli;
pub mod config;
pub mod embedded;
pub mod events;
pub mod gateway_config;
pub mod images;
pub mod job;
pub mod jobs;
pub mod mesh;
pub mod quota;
pub mod rest;
pub mod routing;
pub mod server;

pub use config::PipelineConfig;
pub use embedded::Embedded;

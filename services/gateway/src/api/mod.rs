//! The public API, `storyreel.gateway.v1.GatewayService`: [`service`] is the API as a
//! plain Rust service, [`grpc`] its adapter, [`auth`] the API keys, [`video_spec`] the
//! request's spec as a job.

pub mod auth;
pub mod codes;
pub mod direct;
pub mod grpc;
pub mod options;
pub mod references;
pub mod service;
pub mod texts;
pub mod video_spec;
pub mod watch;

//! The public API, `storyreel.gateway.v1.GatewayService`: [`service`] is the API as a
//! plain Rust service, [`grpc`] its adapter, [`auth`] the API keys, [`video_spec`] the
//! request's spec as a job.

pub mod auth;
pub mod grpc;
pub mod service;
pub mod video_spec;

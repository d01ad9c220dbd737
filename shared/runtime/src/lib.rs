//! What every storyreel service shares (DESIGN.md §2, §4): layered [`config`],
//! [`telemetry`] (logs, OTLP traces, Prometheus metrics), W3C trace [`propagation`], the
//! gRPC [`server`] bootstrap and its [`server_layer`]s, [`client`] channels with retries,
//! optional [`tls`], the stop [`shutdown`] signal, the one [`error_code`] table,
//! [`tensor_ref`] conversion between the store and the wire, the request [`job`] context
//! (deadlines, model pin), the served [`model`]'s readiness and its identity
//! ([`model_identity`]: one policy for name, version and digest), and [`text`]
//! field checks, and request [`seed`]s.

pub mod client;
pub mod config;
pub mod error_code;
pub mod job;
pub mod model;
pub mod model_identity;
pub mod model_service;
pub mod paths;
pub mod propagation;
pub mod seed;
pub mod server;
pub mod server_layer;
pub mod shutdown;
pub mod telemetry;
pub mod tensor_ref;
pub mod text;
pub mod tls;

pub use config::{Secret, Validate, ValidationError};
pub use error_code::{ErrorCode, HasErrorCode, to_status};
pub use job::JobInfo;
pub use model::{ModelInfo, ModelState, StageStats};
pub use server::{GrpcServer, Health, ServerConfig};

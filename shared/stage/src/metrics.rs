//! The stage metric names, shared by the worker and the call context, and latency
//! buckets for the kinds of stage. Every `*_seconds` metric is a histogram with explicit
//! buckets (`storyreel_runtime::telemetry::init_with_latency_buckets`), so replicas'
//! figures can be summed; a summary's quantiles cannot.

/// Gauge: jobs waiting for the model worker (`stage`). The signal a GPU pool autoscales on.
pub const QUEUE_DEPTH: &str = "storyreel_stage_queue_depth";
/// Histogram: the weight of each batch the worker runs (`stage`).
pub const BATCH_SIZE: &str = "storyreel_stage_batch_size";
/// Histogram: how long each batch ran (`stage`).
pub const BATCH_DURATION: &str = "storyreel_stage_batch_duration_seconds";
/// Histogram: how long each job waited in the queue (`stage`).
pub const QUEUE_WAIT: &str = "storyreel_stage_queue_wait_seconds";
/// Counter: batches by `outcome` (`ok`, `error`, `panic`) and `stage`.
pub const BATCHES: &str = "storyreel_stage_batches_total";
/// Counter: jobs that stopped before their end, their caller gone, their deadline passed
/// or the worker stopping (`stage`).
pub const STOPPED_JOBS: &str = "storyreel_stage_stopped_jobs_total";
/// Histogram: a call from its start to its end (a stream's end, not its headers), by
/// `stage`, `method`, `model_version`, `endpoint_group` and `code`.
pub const REQUEST_DURATION: &str = "storyreel_stage_request_duration_seconds";

/// Calls answered in milliseconds (retrieval: BM25 + a small encoder).
pub const FAST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Calls that run a model for seconds to minutes (text generation, speech).
pub const MODEL_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];
/// Calls that run a diffusion model or upsample video: seconds to tens of minutes.
pub const DIFFUSION_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

//! The per-call `JobContext` every stage request carries (common.proto), validated into a
//! [`JobInfo`] and a deadline; the call's deadline from gRPC metadata; the model pin.

use crate::{
    ValidationError,
    model::ModelInfo,
    text::{check_max_chars, check_no_control_chars, excerpt},
};
use std::time::{Duration, Instant, SystemTime};
use storyreel_proto::common::JobContext;
use tonic::metadata::MetadataMap;

pub const JOB_ID_MAX_CHARS: usize = 64;
pub const REQUEST_ID_MAX_CHARS: usize = 128;
pub const MODEL_VERSION_MAX_CHARS: usize = 128;
pub const ENDPOINT_GROUP_MAX_CHARS: usize = 64;
pub const SCENE_INDEX_MAX: u32 = 7;

/// The validated parts of a `JobContext` (for logs, metrics, seeds and the model pin).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobInfo {
    /// Job id, 1-64 characters of `[A-Za-z0-9_-]`; `None` for an ad-hoc call.
    pub job_id: Option<String>,
    /// 0-7, for per-scene calls.
    pub scene_index: Option<u32>,
    /// The job's base seed, from which a stage derives its own.
    pub seed: Option<u64>,
    /// Caller's request id, at most 128 characters.
    pub request_id: Option<String>,
    /// Model version the call must run on (`None`: any).
    pub model_version: Option<String>,
    /// Endpoint group the gateway routed to, for metric and log labels.
    pub endpoint_group: Option<String>,
    /// Recompute even when a cached result exists.
    pub bypass_cache: bool,
}

/// A call pinned to a model version that this server does not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`context.model_pin.version` is `{wanted}` but this server serves `{served}` of model `{model}`; \
     route the call to an endpoint serving `{wanted}`"
)]
pub struct ModelPinMismatch {
    pub wanted: String,
    pub served: String,
    pub model: String,
}

impl crate::HasErrorCode for ModelPinMismatch {
    fn error_code(&self) -> crate::ErrorCode {
        crate::ErrorCode::ModelMismatch
    }
}

impl JobInfo {
    /// The job id tensor keys are made under: the caller's, or for an ad-hoc call a fresh
    /// `adhoc-<16 hex digits>` (unique per call, so ad-hoc outputs never collide).
    pub fn job_id_for_keys(&self) -> String {
        self.job_id
            .clone()
            .unwrap_or_else(|| format!("adhoc-{:016x}", rand::random::<u64>()))
    }

    /// Ok when the call is not pinned or is pinned to `served.version`.
    pub fn check_model_pin(&self, served: &ModelInfo) -> Result<(), ModelPinMismatch> {
        match &self.model_version {
            Some(wanted) if *wanted != served.version => Err(ModelPinMismatch {
                wanted: wanted.clone(),
                served: served.version.clone(),
                model: served.name.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Validates a request's `context` (unset is the default context): job id, scene index,
/// request id, model pin and deadline. Returns the job and its deadline as an instant.
pub fn validate_context(context: Option<JobContext>) -> Result<(JobInfo, Option<Instant>), ValidationError> {
    let JobContext {
        job_id,
        scene_index,
        seed,
        deadline,
        model_pin,
        request_id,
        bypass_cache,
    } = context.unwrap_or_default();
    let job_id_ok = job_id.len() <= JOB_ID_MAX_CHARS
        && job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !job_id_ok {
        return Err(ValidationError::new(
            "context.job_id",
            format!(
                "must be 1-{JOB_ID_MAX_CHARS} characters of [A-Za-z0-9_-] (or empty), got {:?}",
                excerpt(&job_id, 80)
            ),
        ));
    }
    if let Some(index) = scene_index.filter(|i| *i > SCENE_INDEX_MAX) {
        return Err(ValidationError::new(
            "context.scene_index",
            format!("must be between 0 and {SCENE_INDEX_MAX}, got {index}"),
        ));
    }
    check_max_chars("context.request_id", &request_id, REQUEST_ID_MAX_CHARS)?;
    check_no_control_chars("context.request_id", &request_id)?;
    let pin = model_pin.unwrap_or_default();
    check_max_chars("context.model_pin.version", &pin.version, MODEL_VERSION_MAX_CHARS)?;
    check_max_chars(
        "context.model_pin.endpoint_group",
        &pin.endpoint_group,
        ENDPOINT_GROUP_MAX_CHARS,
    )?;
    let deadline = deadline.map(validate_timestamp).transpose()?.map(instant_of);
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok((
        JobInfo {
            job_id: non_empty(job_id),
            scene_index,
            seed,
            request_id: non_empty(request_id),
            model_version: non_empty(pin.version),
            endpoint_group: non_empty(pin.endpoint_group),
            bypass_cache,
        },
        deadline,
    ))
}

/// A `google.protobuf.Timestamp` within its documented range: 0001-01-01T00:00:00Z to
/// 9999-12-31T23:59:59.999999999Z, nanos in 0..1e9.
fn validate_timestamp(ts: prost_types::Timestamp) -> Result<SystemTime, ValidationError> {
    const MIN_SECONDS: i64 = -62_135_596_800;
    const MAX_SECONDS: i64 = 253_402_300_799;
    let in_range =
        (MIN_SECONDS..=MAX_SECONDS).contains(&ts.seconds) && (0..1_000_000_000).contains(&ts.nanos);
    let time = in_range.then(|| SystemTime::try_from(ts).ok()).flatten();
    time.ok_or_else(|| {
        ValidationError::new(
            "context.deadline",
            format!(
                "must be a timestamp between years 1 and 9999 with nanos in [0, 1e9), got seconds={} nanos={}",
                ts.seconds, ts.nanos
            ),
        )
    })
}

/// The monotonic instant of a wall-clock deadline (now, when it has passed).
pub fn instant_of(deadline: SystemTime) -> Instant {
    let now = Instant::now();
    match deadline.duration_since(SystemTime::now()) {
        Ok(left) => now
            .checked_add(left)
            .unwrap_or(now + Duration::from_secs(86_400 * 365)),
        Err(_) => now,
    }
}

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The deadline of a `grpc-timeout` header (`<1-8 digits><H|M|S|m|u|n>`), if valid.
pub fn grpc_deadline(metadata: &MetadataMap, now: Instant) -> Option<Instant> {
    let value = metadata.get("grpc-timeout")?.to_str().ok()?;
    now.checked_add(parse_grpc_timeout(value)?)
}

fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if !value.is_ascii() || value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyreel_proto::common::ModelPin;

    #[test]
    fn grpc_timeouts_parse() {
        let cases = [
            ("1H", Some(Duration::from_secs(3600))),
            ("2M", Some(Duration::from_secs(120))),
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("7u", Some(Duration::from_micros(7))),
            ("99999999n", Some(Duration::from_nanos(99_999_999))),
            ("", None),
            ("S", None),
            ("5", None),
            ("5s", None),
            ("-5S", None),
            ("123456789S", None),
            ("5é", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_grpc_timeout(value), want, "{value:?}");
        }
    }

    #[test]
    fn an_unset_context_is_an_ad_hoc_call() {
        let (job, deadline) = validate_context(None).unwrap();
        assert_eq!(job, JobInfo::default());
        assert_eq!(deadline, None);
    }

    #[test]
    fn context_fields_are_checked_by_name() {
        let bad = |context: JobContext| validate_context(Some(context)).unwrap_err().field;
        let job_id = JobContext {
            job_id: "a b".into(),
            ..Default::default()
        };
        assert_eq!(bad(job_id), "context.job_id");
        let scene = JobContext {
            scene_index: Some(8),
            ..Default::default()
        };
        assert_eq!(bad(scene), "context.scene_index");
        let pin = JobContext {
            model_pin: Some(ModelPin {
                version: "v".repeat(129),
                endpoint_group: String::new(),
            }),
            ..Default::default()
        };
        assert_eq!(bad(pin), "context.model_pin.version");
        let deadline = JobContext {
            deadline: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -1,
            }),
            ..Default::default()
        };
        assert_eq!(bad(deadline), "context.deadline");
    }

    #[test]
    fn the_model_pin_must_match_the_served_version() {
        let served = ModelInfo {
            name: "smollm2".into(),
            version: "abc".into(),
            ..Default::default()
        };
        let mut job = JobInfo::default();
        assert!(job.check_model_pin(&served).is_ok());
        job.model_version = Some("abc".into());
        assert!(job.check_model_pin(&served).is_ok());
        job.model_version = Some("def".into());
        let err = job.check_model_pin(&served).unwrap_err();
        let status = crate::to_status(&err);
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert!(status.message().contains("`def`") && status.message().contains("`abc`"));
    }

    #[test]
    fn earliest_keeps_the_sooner_deadline() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(Some(later), Some(now)), Some(now));
        assert_eq!(earliest(None, Some(later)), Some(later));
        assert_eq!(earliest(None, None), None);
    }
}

//! Channels to other storyreel services: connect and request deadlines, optional TLS/mTLS
//! and API key, trace-context injection on every call, and retries with jittered
//! exponential backoff for UNAVAILABLE only (every other code is the callee's answer and
//! retrying it would repeat work or hide a bug).

use crate::{
    config::{Secret, ValidationError, check_range},
    tls::{ClientTlsFiles, TlsError},
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::{future::Future, time::Duration};
use tonic::{
    Code, Request, Status,
    metadata::AsciiMetadataValue,
    service::Interceptor,
    transport::{Channel, Endpoint},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 disables retries).
    pub max_attempts: u32,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff_ms: 50,
            max_backoff_ms: 2_000,
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_range("max_attempts", self.max_attempts, 1, 20)?;
        check_range("initial_backoff_ms", self.initial_backoff_ms, 1, 60_000)?;
        check_range(
            "max_backoff_ms",
            self.max_backoff_ms,
            self.initial_backoff_ms,
            600_000,
        )?;
        Ok(())
    }

    /// "Full jitter": a uniform pause in [0, min(max, initial * 2^attempt)].
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial_backoff_ms
            .saturating_mul(1u64 << attempt.min(30))
            .min(self.max_backoff_ms);
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// `http://host:port` (or `https://` with `tls`).
    pub endpoint: String,
    pub connect_timeout_ms: u64,
    /// Deadline of one call, sent to the server as `grpc-timeout`.
    pub request_timeout_ms: u64,
    pub retry: RetryPolicy,
    /// Sent as `authorization: Bearer <key>`.
    pub api_key: Option<Secret>,
    pub tls: Option<ClientTlsFiles>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:50051".into(),
            connect_timeout_ms: 5_000,
            request_timeout_ms: 600_000,
            retry: RetryPolicy::default(),
            api_key: None,
            tls: None,
        }
    }
}

impl ClientConfig {
    pub fn validate(&self) -> Result<(), ValidationError> {
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(ValidationError::new(
                "endpoint",
                format!("must start with http:// or https://, got `{}`", self.endpoint),
            ));
        }
        check_range("connect_timeout_ms", self.connect_timeout_ms, 10, 600_000)?;
        check_range(
            "request_timeout_ms",
            self.request_timeout_ms,
            10,
            24 * 3600 * 1000,
        )?;
        self.retry.validate().map_err(|e| e.within("retry"))?;
        if let Some(key) = &self.api_key
            && AsciiMetadataValue::try_from(format!("Bearer {}", key.expose())).is_err()
        {
            return Err(ValidationError::new("api_key", "must be printable ASCII"));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint `{endpoint}`: {source}")]
    Endpoint {
        endpoint: String,
        source: tonic::transport::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A lazily connecting channel: the first call connects, so a service starts even while
/// the stage it calls is still coming up (calls then fail UNAVAILABLE and are retried).
pub fn channel(config: &ClientConfig) -> Result<Channel, ClientError> {
    let endpoint_err = |source| ClientError::Endpoint {
        endpoint: config.endpoint.clone(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(endpoint_err)?
        .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if let Some(tls) = &config.tls {
        endpoint = endpoint.tls_config(tls.load()?).map_err(endpoint_err)?;
    }
    Ok(endpoint.connect_lazy())
}

/// Adds trace context and the API key to every outgoing call:
/// `KeyframeServiceClient::with_interceptor(channel, ClientInterceptor::new(&config))`.
#[derive(Clone, Default)]
pub struct ClientInterceptor {
    authorization: Option<AsciiMetadataValue>,
}

impl ClientInterceptor {
    pub fn new(config: &ClientConfig) -> Self {
        let authorization = config
            .api_key
            .as_ref()
            .and_then(|key| AsciiMetadataValue::try_from(format!("Bearer {}", key.expose())).ok());
        Self { authorization }
    }
}

impl Interceptor for ClientInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        crate::propagation::inject_current(request.metadata_mut());
        if let Some(auth) = &self.authorization {
            request.metadata_mut().insert("authorization", auth.clone());
        }
        Ok(request)
    }
}

/// Runs `call` until it succeeds, fails with a code other than UNAVAILABLE, or
/// `policy.max_attempts` is reached. `call` builds a fresh request each time.
pub async fn with_retries<T, F, Fut>(policy: &RetryPolicy, mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(status) if status.code() == Code::Unavailable && attempt + 1 < policy.max_attempts => {
                let pause = policy.backoff(attempt);
                tracing::debug!(
                    attempt,
                    ?pause,
                    message = status.message(),
                    "unavailable; retrying"
                );
                metrics::counter!("storyreel_grpc_client_retries_total").increment(1);
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 2,
        }
    }

    #[tokio::test]
    async fn unavailable_is_retried_until_success() {
        let calls = AtomicU32::new(0);
        let result = with_retries(&fast(), || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(Status::unavailable("down")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn retries_stop_at_max_attempts() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&fast(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(Status::unavailable("down"))
        })
        .await;
        assert_eq!(result.unwrap_err().code(), Code::Unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn other_codes_are_not_retried() {
        for code in [
            Code::InvalidArgument,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Internal,
        ] {
            let calls = AtomicU32::new(0);
            let result: Result<(), _> = with_retries(&fast(), || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Status::new(code, "no"))
            })
            .await;
            assert_eq!(result.unwrap_err().code(), code);
            assert_eq!(calls.load(Ordering::SeqCst), 1, "{code:?} was retried");
        }
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff_ms: 100,
            max_backoff_ms: 1_000,
        };
        for attempt in 0..40 {
            assert!(policy.backoff(attempt) <= Duration::from_millis(1_000));
        }
        let samples: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(samples.len() > 1, "backoff is not jittered");
    }

    #[test]
    fn interceptor_adds_bearer_key() {
        let config = ClientConfig {
            api_key: Some(Secret::new("k-123")),
            ..Default::default()
        };
        let mut interceptor = ClientInterceptor::new(&config);
        let request = interceptor.call(Request::new(())).unwrap();
        assert_eq!(request.metadata().get("authorization").unwrap(), "Bearer k-123");
    }

    #[test]
    fn validation_names_the_field() {
        let config = ClientConfig {
            endpoint: "localhost:1".into(),
            ..Default::default()
        };
        assert_eq!(config.validate().unwrap_err().field, "endpoint");
        let config = ClientConfig {
            retry: RetryPolicy {
                max_attempts: 0,
                ..Default::default()
            },
            ..Default::default()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(err.field, "retry.max_attempts");
        assert!(err.to_string().contains("between 1 and 20"), "{err}");
    }
}

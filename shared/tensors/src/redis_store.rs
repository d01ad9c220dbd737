//! Redis backend: one multiplexed, self-reconnecting `ConnectionManager` shared by all
//! callers (clones are cheap handles to the same connection).
//!
//! Values are written with `SET key value PX ttl`; batches go in one MULTI/EXEC pipeline
//! (one round trip, all-or-nothing); batched reads are one MGET.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Client, ErrorKind, IntoConnectionInfo, RedisError};

use crate::cache_key::CacheKey;
use crate::config::{RedisConfig, StoreConfig};
use crate::entry::{self, CACHE_TENSOR_GRACE, Limits};
use crate::error::{Error, Result};
use crate::keys::{KeySchema, TensorKey};
use crate::manifest;
use crate::store::{NamedRef, TensorStore};
use crate::tensor::Tensor;
use crate::tensor_ref::TensorRef;

/// `TensorStore` on Redis.
pub struct RedisStore {
    conn: ConnectionManager,
    keys: KeySchema,
    limits: Limits,
}

impl RedisStore {
    /// Connect (bounded by `redis.connect_timeout_ms`), AUTH if configured, and PING.
    ///
    /// A refused or timed-out connection is [`Error::Unavailable`]; rejected credentials
    /// are [`Error::Auth`].
    pub async fn connect(config: &StoreConfig) -> Result<Self> {
        config.validate()?;
        let rc = &config.redis;
        let connect_timeout = Duration::from_millis(rc.connect_timeout_ms);
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(Duration::from_millis(rc.response_timeout_ms)))
            .set_max_delay(Duration::from_secs(2));
        let client = redis_client(rc)?;
        let where_ = redacted(&rc.url);

        let connecting = async {
            // Probe with a plain connection first: the manager retries failed AUTH until
            // our timeout, which would hide "wrong password" behind "timed out".
            let probe_config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(connect_timeout))
                .set_response_timeout(Some(connect_timeout));
            let mut probe = client
                .get_multiplexed_async_connection_with_config(&probe_config)
                .await
                .map_err(|e| map_err(e, &format!("connect to {where_}")))?;
            // Without AUTH a protected server still accepts the connection; PING is where
            // a missing password shows up.
            redis::cmd("PING")
                .query_async::<String>(&mut probe)
                .await
                .map_err(|e| map_err(e, &format!("ping {where_}")))?;
            drop(probe);
            ConnectionManager::new_with_config(client, manager_config)
                .await
                .map_err(|e| map_err(e, &format!("connect to {where_}")))
        };
        let conn = tokio::time::timeout(connect_timeout, connecting)
            .await
            .map_err(|_| Error::Unavailable {
                reason: format!(
                    "connect to {where_} did not finish within redis.connect_timeout_ms = {}",
                    rc.connect_timeout_ms
                ),
            })??;

        Ok(RedisStore {
            conn,
            keys: KeySchema::new(config.key_prefix.clone())?,
            limits: Limits {
                default_ttl: config.default_ttl(),
                max_value_bytes: config.max_value_bytes,
            },
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// A Redis client for `rc` (URL, AUTH, TLS), for other users of the same Redis (the
/// gateway's job events and quotas).
pub fn redis_client(rc: &RedisConfig) -> Result<Client> {
    let url = rc.effective_url();
    let mut info = url
        .as_str()
        .into_connection_info()
        .map_err(|e| Error::invalid("redis.url", format!("{}: {e}", redacted(&rc.url))))?;
    if let Some(password) = &rc.password {
        let mut settings = info.redis_settings().clone().set_password(password);
        if let Some(user) = &rc.username {
            settings = settings.set_username(user);
        }
        info = info.set_redis_settings(settings);
    }
    tls_client(rc, info)
}

#[cfg(feature = "tls")]
fn tls_client(rc: &RedisConfig, info: redis::ConnectionInfo) -> Result<Client> {
    // redis' rustls asks for the process-wide provider; install ring's unless one is set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match &rc.ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                Error::invalid("redis.ca_file", format!("cannot read {}: {e}", path.display()))
            })?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            Client::build_with_tls(info, certs)
        }
        None => Client::open(info),
    };
    client.map_err(|e| Error::invalid("redis.url", e.to_string()))
}

#[cfg(not(feature = "tls"))]
fn tls_client(_rc: &RedisConfig, info: redis::ConnectionInfo) -> Result<Client> {
    Client::open(info).map_err(|e| Error::invalid("redis.url", e.to_string()))
}

/// The URL without any `user:password@` part, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<redacted>@{}", &url[..s + 3], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn map_err(e: RedisError, op: &str) -> Error {
    let reason = format!("redis {op}: {e}");
    let code = e.code().unwrap_or("");
    if e.kind() == ErrorKind::AuthenticationFailed || matches!(code, "NOAUTH" | "WRONGPASS") {
        return Error::Auth {
            reason: format!("{reason} (check redis.username / redis.password)"),
        };
    }
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            code,
            "LOADING" | "OOM" | "MASTERDOWN" | "READONLY" | "BUSY" | "TRYAGAIN" | "CLUSTERDOWN"
        );
    if transient {
        Error::Unavailable { reason }
    } else if e.kind() == ErrorKind::InvalidClientConfig {
        Error::invalid("redis.url", reason)
    } else {
        Error::Internal { reason }
    }
}

fn px(ttl: Duration) -> u64 {
    // Limits::ttl keeps this within 1 ms..30 days, so it fits.
    ttl.as_millis().max(1) as u64
}

#[async_trait]
impl TensorStore for RedisStore {
    fn backend(&self) -> &'static str {
        "redis"
    }

    fn keys(&self) -> &KeySchema {
        &self.keys
    }

    fn default_ttl(&self) -> Duration {
        self.limits.default_ttl
    }

    async fn ping(&self) -> Result<()> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn())
            .await
            .map(drop)
            .map_err(|e| map_err(e, "PING"))
    }

    async fn put(&self, key: &TensorKey, tensor: &Tensor, ttl: Option<Duration>) -> Result<TensorRef> {
        let ttl = self.limits.ttl(ttl)?;
        let p = self.limits.prepare(&self.keys, key, tensor)?;
        redis::cmd("SET")
            .arg(&p.r.key)
            .arg(p.bytes.as_ref())
            .arg("PX")
            .arg(px(ttl))
            .query_async::<()>(&mut self.conn())
            .await
            .map_err(|e| map_err(e, &format!("SET {}", p.r.key)))?;
        Ok(p.r)
    }

    async fn get(&self, r: &TensorRef) -> Result<Tensor> {
        let key = self.keys.parse(&r.key)?;
        let bytes = self.fetch(&key).await?;
        entry::open_checked(r, bytes)
    }

    async fn get_key(&self, key: &TensorKey) -> Result<Tensor> {
        let bytes = self.fetch(key).await?;
        entry::open_unchecked(key, bytes)
    }

    async fn put_many(&self, items: &[(TensorKey, Tensor)], ttl: Option<Duration>) -> Result<Vec<TensorRef>> {
        let ttl = self.limits.ttl(ttl)?;
        let prepared = items
            .iter()
            .map(|(k, t)| self.limits.prepare(&self.keys, k, t))
            .collect::<Result<Vec<_>>>()?;
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for p in &prepared {
            pipe.cmd("SET")
                .arg(&p.r.key)
                .arg(p.bytes.as_ref())
                .arg("PX")
                .arg(px(ttl))
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn())
            .await
            .map_err(|e| map_err(e, &format!("MULTI/SET x{}", prepared.len())))?;
        Ok(prepared.into_iter().map(|p| p.r).collect())
    }

    async fn get_many(&self, refs: &[TensorRef]) -> Result<Vec<Tensor>> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let keys = refs
            .iter()
            .map(|r| self.keys.parse(&r.key))
            .collect::<Result<Vec<_>>>()?;
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys.iter().map(TensorKey::as_str).collect::<Vec<_>>())
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(e, &format!("MGET x{}", keys.len())))?;
        if values.len() != refs.len() {
            return Err(Error::Internal {
                reason: format!("MGET of {} keys returned {} values", refs.len(), values.len()),
            });
        }
        refs.iter()
            .zip(values)
            .map(|(r, v)| {
                let bytes = v.ok_or_else(|| entry::not_found(&r.key))?;
                entry::open_checked(r, Bytes::from(bytes))
            })
            .collect()
    }

    async fn exists(&self, key: &TensorKey) -> Result<bool> {
        redis::cmd("EXISTS")
            .arg(key.as_str())
            .query_async::<u64>(&mut self.conn())
            .await
            .map(|n| n > 0)
            .map_err(|e| map_err(e, &format!("EXISTS {key}")))
    }

    async fn delete(&self, key: &TensorKey) -> Result<bool> {
        redis::cmd("DEL")
            .arg(key.as_str())
            .query_async::<u64>(&mut self.conn())
            .await
            .map(|n| n > 0)
            .map_err(|e| map_err(e, &format!("DEL {key}")))
    }

    async fn put_cache(
        &self,
        key: &CacheKey,
        outputs: &[(String, Tensor)],
        ttl: Option<Duration>,
    ) -> Result<Vec<NamedRef>> {
        let ttl = self.limits.ttl(ttl)?;
        let prepared = self.limits.prepare_cache(&self.keys, key, outputs)?;
        let ours: Vec<NamedRef> = prepared.iter().map(|(n, p)| (n.clone(), p.r.clone())).collect();
        let manifest_bytes = manifest::encode(&ours)?;

        // One transaction: tensors (content-addressed keys, so rewriting identical bytes is
        // harmless), then the manifest only if absent, then whichever manifest won.
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (_, p) in &prepared {
            pipe.cmd("SET")
                .arg(&p.r.key)
                .arg(p.bytes.as_ref())
                .arg("PX")
                .arg(px(ttl + CACHE_TENSOR_GRACE))
                .ignore();
        }
        pipe.cmd("SET")
            .arg(key.as_str())
            .arg(&manifest_bytes)
            .arg("NX")
            .arg("PX")
            .arg(px(ttl))
            .ignore();
        pipe.cmd("GET").arg(key.as_str());
        let (winner,): (Option<Vec<u8>>,) = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(e, &format!("MULTI/SET cache entry {key}")))?;
        let winner = winner.ok_or_else(|| Error::Internal {
            reason: format!("cache manifest {key} vanished inside its own transaction"),
        })?;
        if winner == manifest_bytes {
            return Ok(ours);
        }

        // Another writer got there first: use its entry and drop our now-orphaned tensors.
        let theirs = manifest::decode(&self.keys, key, &winner)?;
        let keep: HashSet<&str> = theirs.iter().map(|(_, r)| r.key.as_str()).collect();
        let orphans: Vec<&str> = ours
            .iter()
            .map(|(_, r)| r.key.as_str())
            .filter(|k| !keep.contains(k))
            .collect();
        if !orphans.is_empty() {
            // Best effort: they expire anyway.
            let _ = redis::cmd("DEL")
                .arg(orphans)
                .query_async::<u64>(&mut self.conn())
                .await;
        }
        Ok(theirs)
    }

    async fn get_cache(&self, key: &CacheKey) -> Result<Option<Vec<NamedRef>>> {
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(key.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(e, &format!("GET {key}")))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let refs = manifest::decode(&self.keys, key, &bytes)?;
        let present: u64 = redis::cmd("EXISTS")
            .arg(refs.iter().map(|(_, r)| r.key.as_str()).collect::<Vec<_>>())
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(e, &format!("EXISTS outputs of {key}")))?;
        if present as usize == refs.len() {
            return Ok(Some(refs));
        }
        // A tensor is gone (evicted or expired): drop the entry so it can be rewritten.
        redis::cmd("DEL")
            .arg(key.as_str())
            .query_async::<u64>(&mut self.conn())
            .await
            .map_err(|e| map_err(e, &format!("DEL stale {key}")))?;
        Ok(None)
    }
}

impl RedisStore {
    async fn fetch(&self, key: &TensorKey) -> Result<Bytes> {
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(key.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(|e| map_err(e, &format!("GET {key}")))?;
        v.map(Bytes::from).ok_or_else(|| entry::not_found(key.as_str()))
    }
}

//! Redis-only behaviour: AUTH, TLS, unreachable or vanished servers, backend selection.

mod common;

use std::time::{Duration, Instant};

use common::{key, tensor};
use storyreel_tensors::testing::RedisServer;
use storyreel_tensors::{DType, Error, ErrorCode, MemoryStore, StoreConfig, open_store};

#[tokio::test]
async fn redis_auth() {
    let server = RedisServer::start_with_password("s3cret-pw").unwrap();
    let right = server.store_config();
    let store = open_store(&right).await.expect("right password connects");
    let k = key(&*store, "j", "x");
    let r = store.put(&k, &tensor(DType::U8, &[3], 1), None).await.unwrap();
    assert_eq!(store.get(&r).await.unwrap(), tensor(DType::U8, &[3], 1));

    let mut none = right.clone();
    none.redis.password = None;
    let e = open_store(&none).await.err().expect("no password must fail");
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(
        e.to_string().contains("authentication failed") && e.to_string().contains("redis.password"),
        "{e}"
    );

    let mut wrong = right.clone();
    wrong.redis.password = Some("not-it".into());
    let started = Instant::now();
    let e = open_store(&wrong).await.err().expect("wrong password must fail");
    assert!(matches!(e, Error::Auth { .. }), "{e:?}");
    assert!(!e.to_string().contains("not-it"), "password leaked into: {e}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn redis_unreachable_is_unavailable() {
    // A port nothing listens on (taken and released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = StoreConfig::redis(format!("redis://127.0.0.1:{port}"));
    cfg.redis.connect_timeout_ms = 1000;
    let started = Instant::now();
    let e = open_store(&cfg).await.err().expect("nothing listens there");
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn redis_server_down_after_connect_is_unavailable() {
    let server = RedisServer::start().unwrap();
    let store = open_store(&server.store_config()).await.unwrap();
    let k = key(&*store, "j", "x");
    store.put(&k, &tensor(DType::U8, &[3], 1), None).await.unwrap();
    drop(server);
    let e = store.get_key(&k).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e:?}");
}

#[tokio::test]
async fn open_store_picks_the_backend_and_validates() {
    let s = open_store(&StoreConfig::memory()).await.unwrap();
    assert_eq!(s.backend(), "memory");
    let server = RedisServer::start().unwrap();
    let s = open_store(&server.store_config()).await.unwrap();
    assert_eq!(s.backend(), "redis");
    let mut bad = server.store_config();
    bad.default_ttl_secs = 0;
    let e = open_store(&bad).await.err().unwrap();
    assert!(e.to_string().contains("default_ttl_secs"), "{e}");
    let m = MemoryStore::default();
    assert!(m.is_empty());
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn redis_tls() {
    let server = RedisServer::start_tls().unwrap();
    let cfg = server.store_config();
    assert!(cfg.redis.tls);
    let store = open_store(&cfg).await.expect("TLS connect with the test CA");
    let k = key(&*store, "j", "x");
    let r = store
        .put(&k, &tensor(DType::BF16, &[2, 8], 1), None)
        .await
        .unwrap();
    assert_eq!(store.get(&r).await.unwrap(), tensor(DType::BF16, &[2, 8], 1));

    // Plain TCP to a TLS port does not get through.
    let mut plain = cfg.clone();
    plain.redis.tls = false;
    plain.redis.ca_file = None;
    plain.redis.connect_timeout_ms = 1000;
    assert_eq!(
        open_store(&plain).await.err().unwrap().code(),
        ErrorCode::Unavailable
    );
    // Without the test CA the server certificate is not trusted.
    let mut untrusted = cfg.clone();
    untrusted.redis.ca_file = None;
    untrusted.redis.connect_timeout_ms = 1000;
    assert!(open_store(&untrusted).await.is_err());
}

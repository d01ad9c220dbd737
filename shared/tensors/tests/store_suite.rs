//! One behaviour suite, run against both backends: memory, and a real redis-server started
//! per test. Redis-only checks (AUTH, TLS, connect errors) are in redis.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{eventually, key, tensor};
use storyreel_tensors::testing::RedisServer;
use storyreel_tensors::{
    Backend, DType, Error, ErrorCode, KeySchema, StoreConfig, Tensor, TensorKey, TensorStore, open_store,
};

/// Opens a store of one backend with a given config.
#[async_trait]
trait Harness: Send + Sync {
    async fn open(&self, cfg: StoreConfig) -> Arc<dyn TensorStore>;
}

struct Memory;

#[async_trait]
impl Harness for Memory {
    async fn open(&self, mut cfg: StoreConfig) -> Arc<dyn TensorStore> {
        cfg.backend = Backend::Memory;
        open_store(&cfg).await.unwrap()
    }
}

struct Redis(RedisServer);

#[async_trait]
impl Harness for Redis {
    async fn open(&self, mut cfg: StoreConfig) -> Arc<dyn TensorStore> {
        cfg.backend = Backend::Redis;
        cfg.redis = self.0.store_config().redis;
        open_store(&cfg).await.unwrap()
    }
}

/// Generates `mod memory { #[tokio::test] fn case() }` and `mod redis { .. }` for each case.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::Memory).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let h = super::Redis(super::RedisServer::start().expect("start redis-server"));
                    super::$case(&h).await;
                }
            )*
        }
    };
}

suite!(
    put_get_round_trip_all_dtypes,
    missing_key_is_not_found,
    get_checks_the_ref,
    overwrite_exists_delete,
    ttl_expiry,
    default_ttl_from_config,
    invalid_ttl_and_foreign_keys,
    size_limit_names_the_limit,
    put_many_get_many,
    put_many_is_all_or_nothing,
    cache_miss_hit_and_first_writer_wins,
    cache_concurrent_writers_agree,
    cache_entry_expires_and_can_be_rewritten,
    cache_with_a_lost_tensor_is_a_miss,
    cache_rejects_bad_outputs,
    concurrent_writers,
);

async fn put_get_round_trip_all_dtypes(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    s.ping().await.unwrap();
    for (i, dtype) in DType::ALL.into_iter().enumerate() {
        let t = tensor(dtype, &[2, 3, 4], i as u64);
        let k = key(&*s, "j1", dtype.as_str());
        let r = s.put(&k, &t, None).await.unwrap();
        assert_eq!(r.key, k.as_str());
        assert_eq!((r.dtype, r.shape.as_slice()), (dtype, &[2, 3, 4][..]));
        let stored = storyreel_tensors::encode(&t).unwrap();
        assert_eq!(r.byte_len, stored.len() as u64);
        assert_eq!(r.checksum, storyreel_tensors::checksum(&stored));
        assert_eq!(s.get(&r).await.unwrap(), t);
        assert_eq!(s.get_key(&k).await.unwrap(), t);
    }
    // Empty tensors and scalars too.
    let k = key(&*s, "j1", "empty");
    let r = s.put(&k, &tensor(DType::F32, &[0, 5], 1), None).await.unwrap();
    assert_eq!(s.get(&r).await.unwrap().numel(), 0);
}

async fn missing_key_is_not_found(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let k = key(&*s, "j", "never-written");
    let e = s.get_key(&k).await.unwrap_err();
    assert!(
        matches!(e, Error::NotFound { ref key } if key == k.as_str()),
        "{e:?}"
    );
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(
        e.to_string(),
        format!("tensor not found: {k} (missing or expired)")
    );
    let r = s.put(&k, &tensor(DType::U8, &[4], 1), None).await.unwrap();
    s.delete(&k).await.unwrap();
    assert_eq!(s.get(&r).await.unwrap_err().code(), ErrorCode::NotFound);
}

async fn get_checks_the_ref(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let k = key(&*s, "j", "x");
    let r = s.put(&k, &tensor(DType::F16, &[8], 1), None).await.unwrap();

    let mut bad = r.clone();
    bad.checksum = storyreel_tensors::checksum(b"something else");
    let e = s.get(&bad).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Corrupt);
    assert!(
        e.to_string()
            .contains(&format!("corrupt tensor value at {k}: checksum mismatch")),
        "{e}"
    );

    let mut bad = r.clone();
    bad.byte_len += 1;
    assert_eq!(s.get(&bad).await.unwrap_err().code(), ErrorCode::Corrupt);

    let mut bad = r.clone();
    bad.shape = vec![2, 4];
    assert!(
        s.get(&bad)
            .await
            .unwrap_err()
            .to_string()
            .contains("the ref says")
    );

    let mut bad = r.clone();
    bad.key = "somebody-else:j:test:0:x".into();
    assert_eq!(s.get(&bad).await.unwrap_err().code(), ErrorCode::Validation);
    bad.key = "storyreel:j:test:0:x:y".into();
    assert_eq!(s.get(&bad).await.unwrap_err().code(), ErrorCode::Validation);
}

async fn overwrite_exists_delete(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let k = key(&*s, "j", "x");
    assert!(!s.exists(&k).await.unwrap());
    s.put(&k, &tensor(DType::I64, &[3], 1), None).await.unwrap();
    let r2 = s.put(&k, &tensor(DType::I64, &[3], 2), None).await.unwrap();
    assert!(s.exists(&k).await.unwrap());
    assert_eq!(s.get(&r2).await.unwrap(), tensor(DType::I64, &[3], 2));
    assert!(s.delete(&k).await.unwrap());
    assert!(!s.delete(&k).await.unwrap());
    assert!(!s.exists(&k).await.unwrap());
}

async fn ttl_expiry(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let short = key(&*s, "j", "short");
    let long = key(&*s, "j", "long");
    let r = s
        .put(
            &short,
            &tensor(DType::U8, &[16], 1),
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    let r_long = s.put(&long, &tensor(DType::U8, &[16], 2), None).await.unwrap();
    assert!(s.exists(&short).await.unwrap());
    let gone = eventually(Duration::from_secs(5), || async {
        matches!(s.get(&r).await, Err(Error::NotFound { .. }))
    })
    .await;
    assert!(gone, "a 300 ms TTL value still there after 5 s");
    assert!(!s.exists(&short).await.unwrap());
    assert!(s.get(&r_long).await.is_ok(), "the default-TTL value expired too");
}

async fn default_ttl_from_config(h: &dyn Harness) {
    let cfg = StoreConfig {
        default_ttl_secs: 1,
        ..StoreConfig::default()
    };
    let s = h.open(cfg).await;
    assert_eq!(s.default_ttl(), Duration::from_secs(1));
    let k = key(&*s, "j", "x");
    s.put(&k, &tensor(DType::U8, &[1], 1), None).await.unwrap();
    assert!(s.exists(&k).await.unwrap());
    let gone = eventually(Duration::from_secs(5), || async { !s.exists(&k).await.unwrap() }).await;
    assert!(gone, "default TTL of 1 s not applied");
}

async fn invalid_ttl_and_foreign_keys(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let k = key(&*s, "j", "x");
    let t = tensor(DType::U8, &[1], 1);
    let e = s.put(&k, &t, Some(Duration::ZERO)).await.unwrap_err();
    assert!(e.to_string().starts_with("invalid ttl"), "{e}");
    let e = s
        .put(&k, &t, Some(Duration::from_secs(31 * 24 * 3600)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    let foreign = KeySchema::new("elsewhere")
        .unwrap()
        .tensor("j", "s", 0, "n")
        .unwrap();
    let e = s.put(&foreign, &t, None).await.unwrap_err();
    assert!(e.to_string().contains("not under this store's prefix"), "{e}");
}

async fn size_limit_names_the_limit(h: &dyn Harness) {
    let cfg = StoreConfig {
        max_value_bytes: 1024,
        ..StoreConfig::default()
    };
    let s = h.open(cfg).await;
    let k = key(&*s, "j", "big");
    // Fits raw but not once the header is added; and plainly too big.
    for len in [1020, 4096] {
        let e = s.put(&k, &tensor(DType::U8, &[len], 1), None).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Validation);
        let msg = e.to_string();
        assert!(
            msg.contains("over the limit max_value_bytes = 1024") && msg.contains(k.as_str()),
            "{msg}"
        );
    }
    assert!(!s.exists(&k).await.unwrap());
    s.put(&k, &tensor(DType::U8, &[900], 1), None).await.unwrap();
}

async fn put_many_get_many(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let items: Vec<(TensorKey, Tensor)> = DType::ALL
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            (
                key(&*s, "scene", &format!("t{i}")),
                tensor(d, &[4, i + 1], i as u64),
            )
        })
        .collect();
    let refs = s.put_many(&items, None).await.unwrap();
    assert_eq!(refs.len(), items.len());
    let mut reversed = refs.clone();
    reversed.reverse();
    let got = s.get_many(&reversed).await.unwrap();
    for (t, (_, want)) in got.iter().zip(items.iter().rev()) {
        assert_eq!(t, want);
    }
    assert!(s.put_many(&[], None).await.unwrap().is_empty());
    assert!(s.get_many(&[]).await.unwrap().is_empty());

    s.delete(&items[2].0).await.unwrap();
    let e = s.get_many(&refs).await.unwrap_err();
    assert!(
        matches!(e, Error::NotFound { ref key } if key == items[2].0.as_str()),
        "{e:?}"
    );
}

async fn put_many_is_all_or_nothing(h: &dyn Harness) {
    let cfg = StoreConfig {
        max_value_bytes: 1024,
        ..StoreConfig::default()
    };
    let s = h.open(cfg).await;
    let items = vec![
        (key(&*s, "j", "ok"), tensor(DType::U8, &[10], 1)),
        (key(&*s, "j", "too-big"), tensor(DType::U8, &[4096], 2)),
    ];
    assert_eq!(
        s.put_many(&items, None).await.unwrap_err().code(),
        ErrorCode::Validation
    );
    assert!(!s.exists(&items[0].0).await.unwrap(), "half a batch was written");
}

fn cache_key(s: &dyn TensorStore, seed: u32) -> storyreel_tensors::CacheKey {
    let input = storyreel_tensors::checksum(b"input");
    s.keys()
        .cache("decoder", "vae@1", &serde_json::json!({"seed": seed}), &[&input])
        .unwrap()
}

fn outputs(seed: u64) -> Vec<(String, Tensor)> {
    vec![
        ("frames".to_string(), tensor(DType::U8, &[2, 3, 8, 8], seed)),
        (
            "latents".to_string(),
            tensor(DType::F16, &[2, 4, 2, 2], seed + 100),
        ),
    ]
}

async fn cache_miss_hit_and_first_writer_wins(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let ck = cache_key(&*s, 1);
    assert!(s.get_cache(&ck).await.unwrap().is_none());

    let first = s.put_cache(&ck, &outputs(1), None).await.unwrap();
    assert_eq!(
        first.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["frames", "latents"]
    );
    let hit = s.get_cache(&ck).await.unwrap().expect("hit");
    assert_eq!(hit, first);
    for ((_, r), (_, t)) in hit.iter().zip(outputs(1)) {
        assert!(r.key.starts_with(&format!("{ck}:")), "{}", r.key);
        assert_eq!(s.get(r).await.unwrap(), t);
    }

    // A second writer with different bytes loses and is handed the stored entry.
    let second = s.put_cache(&ck, &outputs(2), None).await.unwrap();
    assert_eq!(second, first);
    assert_eq!(s.get_cache(&ck).await.unwrap().unwrap(), first);
    for (_, t) in outputs(2) {
        let bytes = storyreel_tensors::encode(&t).unwrap();
        let loser = s.keys().parse(&format!(
            "{ck}:{}:{}",
            if t.dtype() == DType::U8 {
                "frames"
            } else {
                "latents"
            },
            &storyreel_tensors::checksum(&bytes)["xxh3-128:".len()..]
        ));
        assert!(
            !s.exists(&loser.unwrap()).await.unwrap(),
            "loser's tensor left behind"
        );
    }
    // Same content again: idempotent.
    assert_eq!(s.put_cache(&ck, &outputs(1), None).await.unwrap(), first);
    // Other params: another entry.
    assert!(s.get_cache(&cache_key(&*s, 2)).await.unwrap().is_none());
}

async fn cache_concurrent_writers_agree(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let ck = cache_key(&*s, 7);
    let tasks: Vec<_> = (0..8u64)
        .map(|i| {
            let (s, ck) = (s.clone(), ck.clone());
            tokio::spawn(async move { s.put_cache(&ck, &outputs(i), None).await.unwrap() })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "writers saw different winners"
    );
    let stored = s.get_cache(&ck).await.unwrap().unwrap();
    assert_eq!(stored, results[0]);
    let winner = (0..8u64)
        .find(|&i| {
            let (_, t) = &outputs(i)[0];
            storyreel_tensors::checksum(&storyreel_tensors::encode(t).unwrap()) == stored[0].1.checksum
        })
        .expect("the stored entry is one writer's");
    for ((_, r), (_, t)) in stored.iter().zip(outputs(winner)) {
        assert_eq!(s.get(r).await.unwrap(), t);
    }
}

async fn cache_entry_expires_and_can_be_rewritten(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let ck = cache_key(&*s, 3);
    s.put_cache(&ck, &outputs(1), Some(Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(s.get_cache(&ck).await.unwrap().is_some());
    let gone = eventually(Duration::from_secs(5), || async {
        s.get_cache(&ck).await.unwrap().is_none()
    })
    .await;
    assert!(gone, "cache entry with a 300 ms TTL still there after 5 s");
    let again = s.put_cache(&ck, &outputs(2), None).await.unwrap();
    assert_eq!(s.get(&again[0].1).await.unwrap(), outputs(2)[0].1);
}

async fn cache_with_a_lost_tensor_is_a_miss(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let ck = cache_key(&*s, 4);
    let refs = s.put_cache(&ck, &outputs(1), None).await.unwrap();
    let lost = s.keys().parse(&refs[1].1.key).unwrap();
    assert!(s.delete(&lost).await.unwrap());
    assert!(s.get_cache(&ck).await.unwrap().is_none());
    // The stale manifest is gone, so the entry can be written again.
    let again = s.put_cache(&ck, &outputs(1), None).await.unwrap();
    assert_eq!(again, refs);
    assert_eq!(s.get_cache(&ck).await.unwrap().unwrap(), refs);
}

async fn cache_rejects_bad_outputs(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let ck = cache_key(&*s, 5);
    let t = tensor(DType::U8, &[1], 1);
    let e = s.put_cache(&ck, &[], None).await.unwrap_err();
    assert!(
        e.to_string().contains("a cache entry holds 1 to 256 tensors"),
        "{e}"
    );
    let dup = [("a".to_string(), t.clone()), ("a".to_string(), t.clone())];
    assert!(
        s.put_cache(&ck, &dup, None)
            .await
            .unwrap_err()
            .to_string()
            .contains("appears twice")
    );
    let bad = [("a:b".to_string(), t)];
    assert_eq!(
        s.put_cache(&ck, &bad, None).await.unwrap_err().code(),
        ErrorCode::Validation
    );
    assert!(s.get_cache(&ck).await.unwrap().is_none());
}

async fn concurrent_writers(h: &dyn Harness) {
    let s = h.open(StoreConfig::default()).await;
    let shared = key(&*s, "race", "shared");
    let candidates: Vec<Tensor> = (0..16).map(|i| tensor(DType::F32, &[64, 64], i)).collect();
    let tasks: Vec<_> = (0..16u64)
        .map(|i| {
            let (s, shared, candidates) = (s.clone(), shared.clone(), candidates.clone());
            tokio::spawn(async move {
                let mine = &candidates[i as usize];
                let own = s.keys().tensor("race", "test", i, "own").unwrap();
                let r_own = s.put(&own, mine, None).await.unwrap();
                for _ in 0..5 {
                    s.put(&shared, mine, None).await.unwrap();
                    let seen = s.get_key(&shared).await.unwrap();
                    assert!(candidates.contains(&seen), "read a value nobody wrote");
                }
                assert_eq!(&s.get(&r_own).await.unwrap(), mine);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(candidates.contains(&s.get_key(&shared).await.unwrap()));
}

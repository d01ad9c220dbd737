//! put + get round trip (encode, checksum, SET PX / GET, verify, decode) through a
//! redis-server on loopback started for the run, and through the memory backend for
//! reference. Target: the 512 KiB latent under 2 ms p50 on Redis.
//!
//! Run: `cargo bench -p storyreel-tensors --bench store_roundtrip`

use std::sync::Arc;
use std::time::{Duration, Instant};

use storyreel_tensors::testing::RedisServer;
use storyreel_tensors::{DType, StoreConfig, Tensor, TensorStore, open_store};

const ITERS: usize = 200;
const WARMUP: usize = 20;

fn tensor(dtype: DType, shape: &[usize]) -> Tensor {
    let len = shape.iter().product::<usize>() * dtype.size();
    let data: Vec<u8> = (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    Tensor::new(dtype, shape.to_vec(), data).unwrap()
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

async fn run(store: &Arc<dyn TensorStore>, name: &str, t: &Tensor) {
    let key = store.keys().tensor("bench", "store", 0, "t").unwrap();
    let mut round = Vec::with_capacity(ITERS);
    let (mut puts, mut gets) = (Vec::with_capacity(ITERS), Vec::with_capacity(ITERS));
    for i in 0..WARMUP + ITERS {
        let start = Instant::now();
        let r = store.put(&key, t, None).await.unwrap();
        let mid = Instant::now();
        let back = store.get(&r).await.unwrap();
        let end = Instant::now();
        assert_eq!(back.as_bytes().len(), t.as_bytes().len());
        if i >= WARMUP {
            puts.push(mid - start);
            gets.push(end - mid);
            round.push(end - start);
        }
    }
    for v in [&mut round, &mut puts, &mut gets] {
        v.sort();
    }
    println!(
        "{:<8} {:<24} {:>10} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        store.backend(),
        name,
        t.as_bytes().len(),
        pct(&puts, 0.5),
        pct(&gets, 0.5),
        pct(&round, 0.5),
        pct(&round, 0.99),
        t.as_bytes().len() as f64 / (pct(&round, 0.5) / 1e3) / 1e9,
    );
    store.delete(&key).await.unwrap();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start().expect("start redis-server (apt-get install redis-server)");
    let url_config = server.store_config();
    // Measure from a spawned task, as a gRPC handler runs: `block_on` on the main thread
    // adds a cross-thread wake-up per await that a service never pays.
    let bench = rt.spawn(async move {
        let redis = open_store(&url_config).await.unwrap();
        let memory = open_store(&StoreConfig::memory()).await.unwrap();
        let cases = [
            ("latent f16 16x4x64x64", tensor(DType::F16, &[16, 4, 64, 64])),
            ("frames u8 16x3x512x512", tensor(DType::U8, &[16, 3, 512, 512])),
        ];
        println!("put+get round trip, {ITERS} iterations after {WARMUP} warm-up (ms; GB/s at p50)");
        println!(
            "{:<8} {:<24} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "backend", "tensor", "bytes", "put p50", "get p50", "rt p50", "rt p99", "GB/s"
        );
        for store in [&redis, &memory] {
            for (name, t) in &cases {
                run(store, name, t).await;
            }
        }
    });
    rt.block_on(bench).unwrap();
    drop(server);
}

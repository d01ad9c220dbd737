//! Helpers shared by the store test binaries.
#![allow(dead_code)] // each binary uses a subset

use std::time::{Duration, Instant};

use storyreel_tensors::{DType, Tensor, TensorKey, TensorStore};

/// Deterministic pseudo-random tensor (no RNG dependency, reproducible failures).
pub fn tensor(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    let len = shape.iter().product::<usize>() * dtype.size();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Tensor::new(dtype, shape.to_vec(), data).unwrap()
}

pub fn key(s: &dyn TensorStore, job: &str, name: &str) -> TensorKey {
    s.keys().tensor(job, "test", 0, name).unwrap()
}

/// Poll `f` until true, at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

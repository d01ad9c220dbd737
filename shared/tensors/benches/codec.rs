//! Codec throughput: encode + checksum, and checksum-verified decode, of the two tensor
//! sizes the pipeline moves most. Target: >= 1 GB/s round trip on a 2-core machine.
//!
//! Run: `cargo bench -p storyreel-tensors --bench codec`

use std::hint::black_box;
use std::time::{Duration, Instant};

use storyreel_tensors::{DType, Tensor, codec};

fn tensor(dtype: DType, shape: &[usize]) -> Tensor {
    let len = shape.iter().product::<usize>() * dtype.size();
    let data: Vec<u8> = (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect();
    Tensor::new(dtype, shape.to_vec(), data).unwrap()
}

/// Mean seconds per call of `f`, over at least `min` time and 5 calls (after 2 warm-ups).
fn time(min: Duration, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let (mut n, start) = (0u32, Instant::now());
    while n < 5 || start.elapsed() < min {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

fn main() {
    let cases = [
        ("latent f16 16x4x64x64", tensor(DType::F16, &[16, 4, 64, 64])),
        ("frames u8 16x3x512x512", tensor(DType::U8, &[16, 3, 512, 512])),
    ];
    let min = Duration::from_secs(2);
    println!("codec throughput (GB/s = 1e9 tensor bytes per second; checksum included)");
    println!(
        "{:<24} {:>10} {:>12} {:>12} {:>14} {:>12}",
        "tensor", "bytes", "encode GB/s", "decode GB/s", "enc+dec GB/s", "enc+dec ms"
    );
    for (name, t) in cases {
        let bytes = t.as_bytes().len() as f64;
        let encoded = codec::encode(&t).unwrap();
        let sum = codec::checksum(&encoded);
        let enc = time(min, || {
            let b = codec::encode(black_box(&t)).unwrap();
            black_box(codec::checksum(&b));
        });
        let dec = time(min, || {
            black_box(codec::decode_verified(black_box(encoded.clone()), &sum).unwrap());
        });
        let both = time(min, || {
            let b = codec::encode(black_box(&t)).unwrap();
            let s = codec::checksum(&b);
            black_box(codec::decode_verified(b, &s).unwrap());
        });
        println!(
            "{:<24} {:>10} {:>12.2} {:>12.2} {:>14.2} {:>12.3}",
            name,
            bytes,
            bytes / enc / 1e9,
            bytes / dec / 1e9,
            bytes / both / 1e9,
            both * 1e3
        );
    }
}

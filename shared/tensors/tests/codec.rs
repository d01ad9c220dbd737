//! Codec: round trips for every dtype, and corrupt input that must be an error, not a panic.

use bytes::Bytes;
use proptest::prelude::*;
use storyreel_tensors::codec::{self, TENSOR_NAME};
use storyreel_tensors::{DType, Element, ErrorCode, MAX_RANK, Tensor, bf16, f16};

fn dtype() -> impl Strategy<Value = DType> {
    prop::sample::select(DType::ALL.to_vec())
}

/// A tensor of random dtype, rank 0..=5 (dims 0..=5) and random bytes.
fn any_tensor() -> impl Strategy<Value = Tensor> {
    (dtype(), prop::collection::vec(0usize..=5, 0..=5)).prop_flat_map(|(d, shape)| {
        let len = shape.iter().product::<usize>() * d.size();
        prop::collection::vec(any::<u8>(), len)
            .prop_map(move |data| Tensor::new(d, shape.clone(), data).unwrap())
    })
}

/// Header + data as a safetensors file, for hand-made (often broken) inputs.
fn raw(header: &str, data: &[u8]) -> Bytes {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    Bytes::from(out)
}

fn small() -> Bytes {
    let t = Tensor::from_slice([2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    codec::encode(&t).unwrap()
}

fn assert_corrupt(r: storyreel_tensors::Result<Tensor>, needle: &str) {
    let e = r.expect_err("must be rejected");
    assert_eq!(e.code(), ErrorCode::Corrupt, "{e}");
    assert!(e.to_string().contains(needle), "{e:?} lacks {needle:?}");
}

proptest! {
    #[test]
    fn round_trip_all_dtypes(t in any_tensor()) {
        let bytes = codec::encode(&t).unwrap();
        let sum = codec::checksum(&bytes);
        let back = codec::decode_verified(bytes.clone(), &sum).unwrap();
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(codec::decode(bytes).unwrap(), t);
    }

    #[test]
    fn typed_round_trip(v in prop::collection::vec(any::<u32>(), 0..64)) {
        fn check<T: Element + PartialEq + std::fmt::Debug>(vals: Vec<T>) {
            let t = Tensor::from_slice([vals.len()], &vals).unwrap();
            let back = codec::decode(codec::encode(&t).unwrap()).unwrap();
            assert_eq!(back.dtype(), T::DTYPE);
            assert_eq!(back.to_vec::<T>().unwrap(), vals);
        }
        // Compare floats through their bits so NaN payloads count too.
        let f32s: Vec<f32> = v.iter().map(|&x| f32::from_bits(x)).collect();
        let back = codec::decode(codec::encode(&Tensor::from_slice([v.len()], &f32s).unwrap()).unwrap()).unwrap();
        prop_assert_eq!(back.to_vec::<f32>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.clone());
        let f16s: Vec<u16> = v.iter().map(|&x| x as u16).collect();
        let t = Tensor::from_slice([v.len()], &f16s.iter().map(|&b| f16::from_bits(b)).collect::<Vec<_>>()).unwrap();
        let back = codec::decode(codec::encode(&t).unwrap()).unwrap();
        prop_assert_eq!(back.to_vec::<f16>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>(), f16s.clone());
        let t = Tensor::from_slice([v.len()], &f16s.iter().map(|&b| bf16::from_bits(b)).collect::<Vec<_>>()).unwrap();
        let back = codec::decode(codec::encode(&t).unwrap()).unwrap();
        prop_assert_eq!(back.to_vec::<bf16>().unwrap().iter().map(|x| x.to_bits()).collect::<Vec<_>>(), f16s);
        check(v.iter().map(|&x| x as u8).collect::<Vec<u8>>());
        check(v.iter().map(|&x| (x as i64) * -7919).collect::<Vec<i64>>());
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = codec::decode(data.clone());
        let _ = codec::decode_named(data);
    }

    #[test]
    fn mutated_encodings_never_panic(t in any_tensor(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let good = codec::encode(&t).unwrap();
        let sum = codec::checksum(&good);
        let mut bad = good.to_vec();
        let i = pos.index(bad.len());
        let changed = bad[i] != byte;
        bad[i] = byte;
        let _ = codec::decode(bad.clone());
        let verified = codec::decode_verified(bad, &sum);
        prop_assert_eq!(verified.is_err(), changed);
    }

    #[test]
    fn random_json_headers_never_panic(
        shape in prop::collection::vec(any::<u64>(), 0..10),
        start in any::<u64>(),
        end in any::<u64>(),
        dtype in prop::sample::select(vec!["F32", "F16", "BF16", "U8", "I64", "F64", "BOOL", "F4", "X"]),
        data in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let header = format!(
            r#"{{"t":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":[{start},{end}]}}}}"#
        );
        let _ = codec::decode(raw(&header, &data));
    }
}

#[test]
fn every_truncation_is_an_error() {
    let good = small();
    let sum = codec::checksum(&good);
    for len in 0..good.len() {
        let cut = good.slice(..len);
        assert!(
            codec::decode(cut.clone()).is_err(),
            "prefix of {len} bytes decoded"
        );
        assert!(codec::decode_verified(cut, &sum).is_err());
    }
    assert_corrupt(
        codec::decode(good.slice(..5)),
        "shorter than the 8-byte header length",
    );
}

#[test]
fn every_flipped_byte_fails_the_checksum() {
    let good = small();
    let sum = codec::checksum(&good);
    for i in 0..good.len() {
        let mut bad = good.to_vec();
        bad[i] ^= 0x01;
        assert_corrupt(codec::decode_verified(bad.clone(), &sum), "");
        let _ = codec::decode(bad); // unverified: may decode, must not panic
    }
    assert_corrupt(
        codec::decode_verified(
            {
                let mut b = good.to_vec();
                let n = b.len();
                b[n - 1] ^= 0x80;
                b
            },
            &sum,
        ),
        "checksum mismatch",
    );
}

#[test]
fn bogus_header_lengths() {
    for n in [u64::MAX, u64::MAX / 2, 1 << 40, 100_000_001, 1_000] {
        let mut b = n.to_le_bytes().to_vec();
        b.extend_from_slice(b"{}");
        assert_corrupt(codec::decode(b), "header length");
    }
    // Zero-length header: not JSON.
    assert_corrupt(codec::decode(0u64.to_le_bytes().to_vec()), "json");
    // Header that is not UTF-8.
    assert_corrupt(codec::decode(raw("\u{0}\u{ff}", &[])), "");
    let mut b = 2u64.to_le_bytes().to_vec();
    b.extend_from_slice(&[0xff, 0xfe]);
    assert_corrupt(codec::decode(b), "utf-8");
}

#[test]
fn shape_data_mismatch() {
    let h = r#"{"tensor":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}"#;
    assert_corrupt(codec::decode(raw(h, &[0; 8])), "shape times element size");
    let h = r#"{"tensor":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    assert_corrupt(codec::decode(raw(h, &[0; 12])), "data length differs");
    let h = r#"{"tensor":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    assert_corrupt(codec::decode(raw(h, &[0; 12])), "offsets");
    let h = r#"{"tensor":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#;
    assert_corrupt(codec::decode(raw(h, &[0; 8])), "");
}

#[test]
fn absurd_shapes() {
    let cases = [
        format!(
            r#"{{"t":{{"dtype":"F32","shape":[{},2],"data_offsets":[0,8]}}}}"#,
            u64::MAX
        ),
        r#"{"t":{"dtype":"I64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#.to_string(),
        r#"{"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}"#.to_string(),
        r#"{"t":{"dtype":"U8","shape":[1e30],"data_offsets":[0,1]}}"#.to_string(),
        r#"{"t":{"dtype":"U8","shape":"big","data_offsets":[0,1]}}"#.to_string(),
    ];
    for h in cases {
        assert!(codec::decode(raw(&h, &[0; 8])).is_err(), "{h}");
    }
    // Rank over the limit, even with matching data.
    let shape = vec![1usize; MAX_RANK + 1];
    let h = format!(r#"{{"t":{{"dtype":"U8","shape":{shape:?},"data_offsets":[0,1]}}}}"#);
    assert_corrupt(codec::decode(raw(&h, &[7])), "rank");
    // And the constructor refuses the same.
    let e = Tensor::new(DType::U8, shape, vec![7u8]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Validation);
    assert!(e.to_string().contains("rank 9 is over the limit of 8"), "{e}");
}

#[test]
fn unsupported_dtype_and_tensor_count() {
    let h = r#"{"t":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}"#;
    assert_corrupt(codec::decode(raw(h, &[0; 8])), "F64");
    let h = r#"{"__metadata__":{"a":"b"}}"#;
    assert_corrupt(codec::decode(raw(h, &[])), "holds 0 tensors");
    let a = Tensor::from_slice([1], &[1u8]).unwrap();
    let b = Tensor::from_slice([2], &[2i64, 3]).unwrap();
    let two = codec::encode_named([("a", &a), ("b", &b)]).unwrap();
    assert_corrupt(codec::decode(two.clone()), "holds 2 tensors");
    let named = codec::decode_named(two).unwrap();
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["b", "a"], "storage order: larger alignment first");
    assert_eq!(named[0].1, b);
    assert_eq!(named[1].1, a);
}

#[test]
fn file_layout_is_standard_safetensors() {
    let t = Tensor::from_slice([2], &[1.0f32, 2.0]).unwrap();
    let b = codec::encode(&t).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    assert_eq!(n % 8, 0, "header padded to 8 bytes");
    let header = std::str::from_utf8(&b[8..8 + n]).unwrap().trim_end();
    assert_eq!(
        header,
        format!(r#"{{"{TENSOR_NAME}":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}}}"#)
    );
    assert_eq!(&b[8 + n..], &[0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    // A value written by another safetensors writer (any name) decodes.
    let h = r#"{"latents":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}"#;
    let t = codec::decode(raw(h, &[0x80, 0x3f, 0, 0x40])).unwrap();
    assert_eq!(
        t.to_vec::<bf16>().unwrap(),
        [bf16::from_f32(1.0), bf16::from_f32(2.0)]
    );
}

#[test]
fn checksum_format_and_mismatch() {
    let b = small();
    let sum = codec::checksum(&b);
    assert!(sum.starts_with("xxh3-128:") && sum.len() == 9 + 32, "{sum}");
    for bad in [
        "",
        "xxh3-128:",
        "sha256:00",
        &sum.to_uppercase(),
        &format!("{sum}0"),
    ] {
        let e = codec::decode_verified(b.clone(), bad).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Validation, "{bad}: {e}");
        assert!(e.to_string().contains("checksum"), "{e}");
    }
    let other = codec::checksum(b"other");
    assert_corrupt(codec::decode_verified(b, &other), "checksum mismatch");
}

#[test]
fn constructor_and_accessor_errors() {
    let e = Tensor::new(DType::F32, [2, 2], vec![0u8; 15]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid data: 15 bytes given, but shape [2, 2] of F32 needs 16 bytes"
    );
    let e = Tensor::from_slice([3], &[1i64, 2]).unwrap_err();
    assert!(e.to_string().contains("2 values given"), "{e}");
    let e = Tensor::new(DType::I64, [usize::MAX, 2], vec![]).unwrap_err();
    assert!(e.to_string().contains("fit in usize"), "{e}");
    let t = Tensor::zeros(DType::F16, [4, 4]).unwrap();
    assert_eq!(t.numel(), 16);
    assert_eq!(t.as_bytes().len(), 32);
    let e = t.to_vec::<f32>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid dtype: tensor holds F16, F32 was requested"
    );
    let scalar = Tensor::from_slice(Vec::<usize>::new(), &[42i64]).unwrap();
    assert_eq!(codec::decode(codec::encode(&scalar).unwrap()).unwrap(), scalar);
    assert_eq!("bf16".parse::<DType>().unwrap(), DType::BF16);
    assert!("f64".parse::<DType>().is_err());
}

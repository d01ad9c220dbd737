//! Reader tests on hand-built GGUF images: every value type, both versions, alignment, and
//! the ways a file can be truncated or corrupt (each an error, never a panic).

use super::{
    GgmlType, GgufError, GgufFile, GgufValue, GgufValueType,
    test_builder::{GgufBuilder, i32s, s, strings},
};
use half::f16;
use rand::{Rng, SeedableRng};

fn every_value_type() -> GgufBuilder {
    GgufBuilder::default()
        .meta("general.architecture", s("llama"))
        .meta("t.u8", GgufValue::U8(200))
        .meta("t.i8", GgufValue::I8(-100))
        .meta("t.u16", GgufValue::U16(60000))
        .meta("t.i16", GgufValue::I16(-30000))
        .meta("t.u32", GgufValue::U32(4_000_000_000))
        .meta("t.i32", GgufValue::I32(-2_000_000_000))
        .meta("t.f32", GgufValue::F32(0.25))
        .meta("t.bool", GgufValue::Bool(true))
        .meta("t.string", s("héllo ✨"))
        .meta("t.u64", GgufValue::U64(u64::MAX))
        .meta("t.i64", GgufValue::I64(i64::MIN))
        .meta("t.f64", GgufValue::F64(-1e300))
        .meta("t.strings", strings(&["a", "", "ü"]))
        .meta("t.ints", i32s(&[1, -2, 3]))
        .meta(
            "t.nested",
            GgufValue::Array {
                element_type: GgufValueType::Array,
                values: vec![i32s(&[1]), i32s(&[])],
            },
        )
}

fn small_model() -> GgufBuilder {
    let q8_block: Vec<u8> = f16::from_f32(0.5)
        .to_bits()
        .to_le_bytes()
        .into_iter()
        .chain((0..32).map(|i: i8| i - 16).map(|q| q as u8))
        .collect();
    every_value_type()
        .f32_tensor("norm.weight", &[3], &[1.0, 2.0, 3.0])
        .f32_tensor("proj.weight", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .tensor("embd.weight", &[32, 1], GgmlType::Q8_0, q8_block)
}

#[test]
fn reads_every_metadata_type() {
    let file = GgufFile::from_bytes(small_model().build()).unwrap();
    assert_eq!(file.version(), 3);
    let expect = |key: &str, value: GgufValue| assert_eq!(file.get(key), Some(&value), "{key}");
    expect("t.u8", GgufValue::U8(200));
    expect("t.i8", GgufValue::I8(-100));
    expect("t.u16", GgufValue::U16(60000));
    expect("t.i16", GgufValue::I16(-30000));
    expect("t.u32", GgufValue::U32(4_000_000_000));
    expect("t.i32", GgufValue::I32(-2_000_000_000));
    expect("t.f32", GgufValue::F32(0.25));
    expect("t.bool", GgufValue::Bool(true));
    expect("t.string", s("héllo ✨"));
    expect("t.u64", GgufValue::U64(u64::MAX));
    expect("t.i64", GgufValue::I64(i64::MIN));
    expect("t.f64", GgufValue::F64(-1e300));
    expect("t.strings", strings(&["a", "", "ü"]));
    expect("t.ints", i32s(&[1, -2, 3]));
    assert_eq!(
        file.get("t.nested").unwrap().to_json(),
        serde_json::json!([[1], []])
    );
    assert_eq!(file.metadata()[0].0, "general.architecture");
    assert_eq!(file.u64("t.u32").unwrap(), Some(4_000_000_000));
    let negative = file.u64("t.i8").unwrap_err().to_string();
    assert!(
        negative.contains("`t.i8` should be a non-negative integer"),
        "{negative}"
    );
    assert_eq!(file.f32("t.f32").unwrap(), Some(0.25));
    assert_eq!(file.require_strings("t.strings").unwrap(), vec!["a", "", "ü"]);
    assert!(file.u64("absent").unwrap().is_none());
    let missing = file.require_u64("llama.block_count").unwrap_err();
    assert_eq!(
        missing.to_string(),
        "gguf metadata `llama.block_count` is missing"
    );
    let wrong = file.require_str("t.u8").unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "gguf metadata `t.u8` should be a string, found uint8"
    );
}

#[test]
fn reads_tensor_infos_and_data() {
    let file = GgufFile::from_bytes(small_model().build()).unwrap();
    let names: Vec<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["norm.weight", "proj.weight", "embd.weight"]);
    let proj = file.tensor("proj.weight").unwrap();
    assert_eq!(proj.dims, [2, 3]);
    assert_eq!(proj.shape(), [3, 2], "row-major shape reverses ggml's dims");
    assert_eq!(file.dequantize(proj).unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let embd = file.dequantize(file.tensor("embd.weight").unwrap()).unwrap();
    assert_eq!(embd[0], -8.0);
    assert_eq!(embd[31], 7.5);
    assert_eq!(file.data_start() % 32, 0);
    assert!(file.tensor("nope").is_err());
}

#[test]
fn version_two_and_custom_alignment() {
    let mut builder = small_model().meta("general.alignment", GgufValue::U32(64));
    builder.version = 2;
    builder.alignment = 64;
    let file = GgufFile::from_bytes(builder.build()).unwrap();
    assert_eq!(file.version(), 2);
    assert_eq!(file.alignment(), 64);
    assert_eq!(file.data_start() % 64, 0);
    for info in file.tensors() {
        assert_eq!(info.offset % 64, 0);
    }
    let norm = file.tensor("norm.weight").unwrap();
    assert_eq!(file.dequantize(norm).unwrap(), [1.0, 2.0, 3.0]);
}

#[test]
fn a_file_without_tensors_may_end_before_the_data_section() {
    // ends in a non-zero byte, so that the padding after it can be found and removed
    let bytes = every_value_type().meta("z", GgufValue::U8(1)).build();
    let header_only = GgufFile::from_bytes(bytes.clone()).unwrap();
    assert!(header_only.tensors().is_empty());
    // strip the padding
    let unpadded_len = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
    GgufFile::from_bytes(bytes[..unpadded_len].to_vec()).unwrap();
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = small_model().build();
    for len in 0..bytes.len() {
        let result = GgufFile::from_bytes(bytes[..len].to_vec());
        assert!(
            result.is_err(),
            "a file cut to {len} of {} bytes was accepted",
            bytes.len()
        );
    }
}

#[test]
fn truncation_messages_name_the_field() {
    let bytes = small_model().build();
    let cut = find(&bytes, "héllo".as_bytes()) + 2;
    let err = GgufFile::from_bytes(bytes[..cut].to_vec())
        .unwrap_err()
        .to_string();
    assert!(err.contains("truncated") && err.contains("`t.string`"), "{err}");
    let err = GgufFile::from_bytes(bytes[..30].to_vec())
        .unwrap_err()
        .to_string();
    assert!(err.contains("metadata count 16"), "{err}");
    let err = GgufFile::from_bytes(bytes[..bytes.len() - 1].to_vec())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("embd.weight") && err.contains("past the end"),
        "{err}"
    );
}

#[test]
fn bad_magic_and_versions() {
    let mut bytes = small_model().build();
    bytes[0] = b'X';
    assert!(matches!(
        GgufFile::from_bytes(bytes),
        Err(GgufError::BadMagic { .. })
    ));
    let mut v1 = small_model();
    v1.version = 1;
    let err = GgufFile::from_bytes(v1.build()).unwrap_err().to_string();
    assert!(err.contains("version 1"), "{err}");
    let mut big_endian = small_model();
    big_endian.version = 3u32.swap_bytes();
    let err = GgufFile::from_bytes(big_endian.build()).unwrap_err().to_string();
    assert!(err.contains("big-endian"), "{err}");
    assert!(GgufFile::from_bytes(Vec::new()).is_err());
}

/// Byte offset of the first occurrence of `needle`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn absurd_counts_are_capped_by_the_file_size() {
    let bytes = small_model().build();
    let mut huge_kv = bytes.clone();
    huge_kv[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = GgufFile::from_bytes(huge_kv).unwrap_err();
    assert!(matches!(err, GgufError::CountTooLarge { .. }), "{err}");

    let mut huge_tensors = bytes.clone();
    huge_tensors[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let err = GgufFile::from_bytes(huge_tensors).unwrap_err();
    assert!(matches!(err, GgufError::CountTooLarge { .. }), "{err}");

    // the array length of `t.strings` follows its key, its type tag (9) and element type (8)
    let mut huge_array = bytes.clone();
    let at = find(&bytes, b"t.strings") + "t.strings".len() + 8;
    huge_array[at..at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    let err = GgufFile::from_bytes(huge_array).unwrap_err().to_string();
    assert!(err.contains("t.strings"), "{err}");

    let mut huge_string = bytes.clone();
    let at = find(&bytes, b"t.string") + "t.string".len() + 4;
    huge_string[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let err = GgufFile::from_bytes(huge_string).unwrap_err().to_string();
    assert!(err.contains("truncated") && err.contains("t.string"), "{err}");
}

#[test]
fn corrupt_headers_are_errors() {
    let unknown_type = {
        let mut bytes = small_model().build();
        let at = find(&bytes, b"t.u8") + 4;
        bytes[at..at + 4].copy_from_slice(&77u32.to_le_bytes());
        GgufFile::from_bytes(bytes).unwrap_err().to_string()
    };
    assert!(
        unknown_type.contains("t.u8") && unknown_type.contains("77"),
        "{unknown_type}"
    );

    let bad_bool = {
        let mut bytes = small_model().build();
        let at = find(&bytes, b"t.bool") + "t.bool".len() + 4;
        bytes[at] = 7;
        GgufFile::from_bytes(bytes).unwrap_err().to_string()
    };
    assert!(
        bad_bool.contains("t.bool") && bad_bool.contains("not a bool"),
        "{bad_bool}"
    );

    let bad_utf8 = {
        let mut bytes = small_model().build();
        let at = find(&bytes, "héllo".as_bytes()) + 1;
        bytes[at] = 0xFF;
        GgufFile::from_bytes(bytes).unwrap_err().to_string()
    };
    assert!(
        bad_utf8.contains("utf-8") && bad_utf8.contains("t.string"),
        "{bad_utf8}"
    );

    let duplicate = small_model().meta("t.u8", GgufValue::U8(1)).build();
    let err = GgufFile::from_bytes(duplicate).unwrap_err().to_string();
    assert!(err.contains("`t.u8` appears twice"), "{err}");

    let duplicate_tensor = small_model().f32_tensor("norm.weight", &[1], &[0.0]).build();
    let err = GgufFile::from_bytes(duplicate_tensor).unwrap_err().to_string();
    assert!(err.contains("`norm.weight` appears twice"), "{err}");

    let bad_alignment = small_model()
        .meta("general.alignment", GgufValue::U32(48))
        .build();
    let err = GgufFile::from_bytes(bad_alignment).unwrap_err().to_string();
    assert!(err.contains("general.alignment") && err.contains("48"), "{err}");

    let too_deep = (0..20).fold(i32s(&[1]), |inner, _| GgufValue::Array {
        element_type: GgufValueType::Array,
        values: vec![inner],
    });
    let err = GgufFile::from_bytes(GgufBuilder::default().meta("deep", too_deep).build())
        .unwrap_err()
        .to_string();
    assert!(err.contains("deep") && err.contains("levels"), "{err}");
}

#[test]
fn corrupt_tensor_infos_are_errors() {
    let five_dims = GgufBuilder::default()
        .f32_tensor("t5", &[1, 1, 1, 1, 1], &[0.0])
        .build();
    let err = GgufFile::from_bytes(five_dims).unwrap_err().to_string();
    assert!(err.contains("t5") && err.contains("at most 4"), "{err}");

    let partial_block = GgufBuilder::default()
        .tensor("q", &[16, 2], GgmlType::Q8_0, vec![0; 34])
        .build();
    let err = GgufFile::from_bytes(partial_block).unwrap_err().to_string();
    assert!(err.contains("`q`") && err.contains("block size 32"), "{err}");

    let overflow = GgufBuilder::default()
        .tensor("big", &[u64::MAX / 2, 4], GgmlType::F32, vec![])
        .build();
    let err = GgufFile::from_bytes(overflow).unwrap_err().to_string();
    assert!(err.contains("`big`") && err.contains("overflows"), "{err}");

    let mut misaligned = small_model().build();
    // the offset of the second tensor is the 8 bytes after its type
    let at = find(&misaligned, b"proj.weight") + "proj.weight".len() + 4 + 16 + 4;
    misaligned[at..at + 8].copy_from_slice(&40u64.to_le_bytes());
    let err = GgufFile::from_bytes(misaligned).unwrap_err().to_string();
    assert!(
        err.contains("proj.weight") && err.contains("multiple of the alignment"),
        "{err}"
    );

    let mut out_of_bounds = small_model().build();
    out_of_bounds[at..at + 8].copy_from_slice(&(1u64 << 20).to_le_bytes());
    let err = GgufFile::from_bytes(out_of_bounds).unwrap_err().to_string();
    assert!(
        err.contains("proj.weight") && err.contains("past the end"),
        "{err}"
    );
}

#[test]
fn unsupported_types_open_but_do_not_dequantise() {
    let file = GgufFile::from_bytes(
        GgufBuilder::default()
            .tensor("blk.0.ffn_up.weight", &[256], GgmlType(12), vec![0; 144])
            .tensor("mystery", &[4], GgmlType(99), vec![0; 4])
            .build(),
    )
    .unwrap();
    let err = file
        .dequantize(file.tensor("blk.0.ffn_up.weight").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("blk.0.ffn_up.weight") && err.contains("Q4_K"),
        "{err}"
    );
    let err = file
        .dequantize(file.tensor("mystery").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mystery") && err.contains("unknown type 99"),
        "{err}"
    );
}

#[test]
fn random_corruption_never_panics() {
    let bytes = small_model().build();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    for _ in 0..3000 {
        let mut corrupt = bytes.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..corrupt.len());
            corrupt[at] = rng.random();
        }
        if let Ok(file) = GgufFile::from_bytes(corrupt) {
            for info in file.tensors() {
                let _ = file.dequantize(info);
            }
        }
    }
}

#[test]
fn opens_files_from_disk_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    std::fs::write(&path, small_model().build()).unwrap();
    let file = GgufFile::open(&path).unwrap();
    assert_eq!(file.tensors().len(), 3);
    let err = GgufFile::open(dir.path().join("absent.gguf"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.gguf"), "{err}");
}

#[test]
fn hand_made_tensor_infos_are_bounds_checked_too() {
    let file = GgufFile::from_bytes(small_model().build()).unwrap();
    let mut info = file.tensor("norm.weight").unwrap().clone();
    info.offset = 1 << 40;
    let err = file.dequantize(&info).unwrap_err().to_string();
    assert!(err.contains("past the end"), "{err}");
    info.offset = 0;
    info.dims = vec![u64::MAX, u64::MAX];
    assert!(file.dequantize(&info).is_err());
    info.dims = vec![1 << 40];
    assert!(file.dequantize(&info).is_err());
}

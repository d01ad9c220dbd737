//! Dequantisers for the ggml types storyreel's checkpoints use, following ggml's block
//! layouts exactly (ggml-quants.c `dequantize_row_*`, gguf-py `quants.py`), and computing in
//! the same order as gguf-py so that the results are bit-identical to its `dequantize`.

use super::{GgmlType, GgufError};
use half::{bf16, f16};

/// Values per quantisation block of Q4_0, Q4_1 and Q8_0.
const BLOCK: usize = 32;

/// Dequantises the `n_elements` values of tensor `name` stored as `ggml_type` in `bytes`.
pub fn dequantize(
    name: &str,
    ggml_type: GgmlType,
    bytes: &[u8],
    n_elements: usize,
) -> Result<Vec<f32>, GgufError> {
    // validated before allocating, so a bogus element count cannot ask for a huge buffer
    check_layout(name, ggml_type, bytes.len(), n_elements)?;
    let mut out = vec![0f32; n_elements];
    dequantize_into(name, ggml_type, bytes, &mut out)?;
    Ok(out)
}

/// As [`dequantize`], writing into `out` (whose length is the element count).
pub fn dequantize_into(
    name: &str,
    ggml_type: GgmlType,
    bytes: &[u8],
    out: &mut [f32],
) -> Result<(), GgufError> {
    check_layout(name, ggml_type, bytes.len(), out.len())?;
    match ggml_type {
        GgmlType::F32 => f32_values(bytes, out),
        GgmlType::F16 => f16_values(bytes, out),
        GgmlType::BF16 => bf16_values(bytes, out),
        GgmlType::Q4_0 => q4_0_values(bytes, out),
        GgmlType::Q4_1 => q4_1_values(bytes, out),
        GgmlType::Q8_0 => q8_0_values(bytes, out),
        _ => return Err(unsupported(name, ggml_type)),
    }
    Ok(())
}

fn unsupported(name: &str, ggml_type: GgmlType) -> GgufError {
    GgufError::UnsupportedType {
        name: name.to_string(),
        ggml_type: ggml_type.to_string(),
        supported: GgmlType::DEQUANTISABLE_NAMES,
    }
}

/// The type is supported, `n` is whole blocks, and `byte_len` is exactly their size.
fn check_layout(name: &str, ggml_type: GgmlType, byte_len: usize, n: usize) -> Result<(), GgufError> {
    let layout = ggml_type.block_layout().filter(|_| ggml_type.is_dequantisable());
    let (block_elems, block_bytes) = layout.ok_or_else(|| unsupported(name, ggml_type))?;
    let n = n as u64;
    if !n.is_multiple_of(block_elems) {
        return Err(GgufError::BadShape {
            name: name.to_string(),
            dims: vec![n],
            reason: format!("{n} elements is not a whole number of {ggml_type} blocks of {block_elems}"),
        });
    }
    // cannot overflow: at most 4 bytes per element of a usize-sized count
    let expected = n / block_elems * block_bytes;
    if byte_len as u64 != expected {
        return Err(GgufError::ByteLength {
            name: name.to_string(),
            ggml_type: ggml_type.to_string(),
            expected,
            found: byte_len as u64,
        });
    }
    Ok(())
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

fn f32_values(bytes: &[u8], out: &mut [f32]) {
    for (value, raw) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *value = f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    }
}

fn f16_values(bytes: &[u8], out: &mut [f32]) {
    for (i, value) in out.iter_mut().enumerate() {
        *value = f16_at(bytes, 2 * i);
    }
}

fn bf16_values(bytes: &[u8], out: &mut [f32]) {
    for (value, raw) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *value = bf16::from_bits(u16::from_le_bytes([raw[0], raw[1]])).to_f32();
    }
}

/// Q4_0: f16 scale `d`, then 16 bytes; the low nibbles are elements 0..16, the high nibbles
/// 16..32, each worth `(q - 8) * d`.
fn q4_0_values(bytes: &[u8], out: &mut [f32]) {
    for (block, values) in bytes.chunks_exact(18).zip(out.chunks_exact_mut(BLOCK)) {
        let d = f16_at(block, 0);
        let (low, high) = values.split_at_mut(BLOCK / 2);
        for (j, &byte) in block[2..].iter().enumerate() {
            low[j] = d * f32::from((byte & 0x0F) as i8 - 8);
            high[j] = d * f32::from((byte >> 4) as i8 - 8);
        }
    }
}

/// Q4_1: f16 scale `d`, f16 minimum `m`, then 16 bytes of nibbles laid out as in Q4_0, each
/// worth `q * d + m`.
fn q4_1_values(bytes: &[u8], out: &mut [f32]) {
    for (block, values) in bytes.chunks_exact(20).zip(out.chunks_exact_mut(BLOCK)) {
        let d = f16_at(block, 0);
        let m = f16_at(block, 2);
        let (low, high) = values.split_at_mut(BLOCK / 2);
        for (j, &byte) in block[4..].iter().enumerate() {
            low[j] = d * f32::from(byte & 0x0F) + m;
            high[j] = d * f32::from(byte >> 4) + m;
        }
    }
}

/// Q8_0: f16 scale `d`, then 32 signed bytes, each worth `q * d`.
fn q8_0_values(bytes: &[u8], out: &mut [f32]) {
    for (block, values) in bytes.chunks_exact(34).zip(out.chunks_exact_mut(BLOCK)) {
        let d = f16_at(block, 0);
        for (value, &q) in values.iter_mut().zip(&block[2..]) {
            *value = f32::from(q as i8) * d;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(value: f32) -> [u8; 2] {
        f16::from_f32(value).to_bits().to_le_bytes()
    }

    #[test]
    fn q4_0_puts_low_nibbles_first_and_centres_on_eight() {
        let mut block = f16_bytes(0.5).to_vec();
        // byte j holds element j (low nibble) and element j + 16 (high nibble)
        block.extend((0..16u8).map(|j| (15 - j) << 4 | j));
        let values = dequantize("t", GgmlType::Q4_0, &block, 32).unwrap();
        for j in 0..16 {
            assert_eq!(values[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(values[j + 16], ((15 - j) as f32 - 8.0) * 0.5);
        }
    }

    #[test]
    fn q4_1_adds_the_minimum() {
        let mut block = f16_bytes(0.25).to_vec();
        block.extend(f16_bytes(-1.0));
        block.extend((0..16u8).map(|j| (15 - j) << 4 | j));
        let values = dequantize("t", GgmlType::Q4_1, &block, 32).unwrap();
        for j in 0..16 {
            assert_eq!(values[j], j as f32 * 0.25 - 1.0);
            assert_eq!(values[j + 16], (15 - j) as f32 * 0.25 - 1.0);
        }
    }

    #[test]
    fn q8_0_reads_signed_bytes() {
        let mut block = f16_bytes(2.0).to_vec();
        block.extend((0..32).map(|j: i32| (j * 8 - 128) as i8 as u8));
        let values = dequantize("t", GgmlType::Q8_0, &block, 32).unwrap();
        for (j, value) in values.iter().enumerate() {
            assert_eq!(*value, (j as f32 * 8.0 - 128.0) * 2.0);
        }
    }

    #[test]
    fn floats_round_trip() {
        let f32s: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(dequantize("t", GgmlType::F32, &f32s, 2).unwrap(), vec![1.5, -2.0]);
        let f16s: Vec<u8> = [0.5f32, -3.0].iter().flat_map(|v| f16_bytes(*v)).collect();
        assert_eq!(dequantize("t", GgmlType::F16, &f16s, 2).unwrap(), vec![0.5, -3.0]);
        let bf16s: Vec<u8> = [0.5f32, -3.0]
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_bits().to_le_bytes())
            .collect();
        assert_eq!(
            dequantize("t", GgmlType::BF16, &bf16s, 2).unwrap(),
            vec![0.5, -3.0]
        );
    }

    #[test]
    fn wrong_byte_count_and_unsupported_types_are_errors() {
        let short = dequantize("blk.0.w", GgmlType::Q8_0, &[0u8; 33], 32).unwrap_err();
        assert!(short.to_string().contains("blk.0.w"), "{short}");
        let partial = dequantize("w", GgmlType::Q4_0, &[0u8; 18], 31).unwrap_err();
        assert!(partial.to_string().contains("31 elements"), "{partial}");
        let k_quant = dequantize("blk.3.ffn_up.weight", GgmlType(12), &[0u8; 144], 256).unwrap_err();
        let message = k_quant.to_string();
        assert!(
            message.contains("blk.3.ffn_up.weight") && message.contains("Q4_K"),
            "{message}"
        );
    }
}

//! Undoing llama.cpp's row permutation of the query and key projections.
//!
//! HF Llama applies RoPE to the two halves of each head (`rotate_half`); ggml rotates
//! adjacent pairs. llama.cpp's `convert_hf_to_gguf.py` (`LlamaModel.permute`) therefore
//! reorders the rows of `attn_q` and `attn_k` within each head:
//!
//! ```text
//! w.reshape(n_head, 2, head_dim / 2, cols).swapaxes(1, 2)      # HF -> GGUF
//! ```
//!
//! so GGUF row `h*head_dim + 2*i + half` holds HF row `h*head_dim + half*head_dim/2 + i`.
//! transformers undoes it when loading a GGUF (`LlamaTensorProcessor._reverse_permute_weights`
//! in `modeling_gguf_pytorch_utils.py`), with the key-value head count for `attn_k`.

/// Reorders the rows of a row-major `[rows, cols]` matrix from ggml's RoPE layout back to
/// HF's. `rows` must be a multiple of `2 * n_heads` (checked by the caller).
pub fn unpermute_rope_rows(values: &[f32], rows: usize, cols: usize, n_heads: usize) -> Vec<f32> {
    let head_dim = rows / n_heads;
    let half_dim = head_dim / 2;
    let mut out = vec![0f32; values.len()];
    for head in 0..n_heads {
        let base = head * head_dim;
        for half in 0..2 {
            for i in 0..half_dim {
                let hf_row = base + half * half_dim + i;
                let gguf_row = base + 2 * i + half;
                out[hf_row * cols..(hf_row + 1) * cols]
                    .copy_from_slice(&values[gguf_row * cols..(gguf_row + 1) * cols]);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llama.cpp's forward permutation, written the way its converter does.
    fn permute(values: &[f32], rows: usize, cols: usize, n_heads: usize) -> Vec<f32> {
        let half_dim = rows / n_heads / 2;
        let mut out = vec![0f32; values.len()];
        // out[h, i, half] = in[h, half, i]
        for h in 0..n_heads {
            for i in 0..half_dim {
                for half in 0..2 {
                    let dst = (h * half_dim + i) * 2 + half;
                    let src = (h * 2 + half) * half_dim + i;
                    out[dst * cols..(dst + 1) * cols].copy_from_slice(&values[src * cols..(src + 1) * cols]);
                }
            }
        }
        out
    }

    #[test]
    fn undoes_llama_cpp_permutation() {
        let (rows, cols, n_heads) = (24, 3, 3);
        let hf: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
        let gguf = permute(&hf, rows, cols, n_heads);
        assert_ne!(gguf, hf);
        assert_eq!(unpermute_rope_rows(&gguf, rows, cols, n_heads), hf);
    }

    #[test]
    fn pairs_become_halves() {
        // one head of dim 4, one column: GGUF rows [a0, b0, a1, b1] are HF [a0, a1, b0, b1]
        let gguf = [0.0, 10.0, 1.0, 11.0];
        assert_eq!(unpermute_rope_rows(&gguf, 4, 1, 1), [0.0, 1.0, 10.0, 11.0]);
    }
}

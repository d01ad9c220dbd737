//! Prefix reuse: the KV cache a sequence left behind, kept by the caller and handed to a
//! later [`super::generate_reusing`] call whose prompt starts with the same tokens, so
//! that only the new tail of the prompt is prefilled.
//!
//! The story-llm's prompts grow scene by scene (scene k+1's prompt is scene k's prompt,
//! its output and the next number), so without reuse every scene re-reads the whole
//! story so far; on a CPU that prefill, not the decode, bounds throughput. Reuse is by
//! token ids: the longest common prefix of the cached ids and the new prompt is reused,
//! whatever the caller believes they share, so a tokenisation that differs at a seam
//! only costs the tokens after it.

use tch::Tensor;

/// The keys and values of one sequence, per layer `(1, num_key_value_heads, len,
/// head_dim)`, and the token ids they encode (`len` of them, positions `0..len`).
#[derive(Debug)]
pub struct CachedPrefix {
    pub(crate) token_ids: Vec<u32>,
    pub(crate) keys: Vec<Tensor>,
    pub(crate) values: Vec<Tensor>,
}

impl CachedPrefix {
    /// A prefix from its parts (a cache kept elsewhere, restored): per layer `(1, n_kv,
    /// len, head_dim)` keys and values for `len = token_ids.len()` tokens. The model that
    /// uses it checks the head layout and layer count.
    pub fn from_parts(token_ids: Vec<u32>, keys: Vec<Tensor>, values: Vec<Tensor>) -> Result<Self, String> {
        if keys.len() != values.len() {
            return Err(format!(
                "{} key layers but {} value layers",
                keys.len(),
                values.len()
            ));
        }
        let len = token_ids.len() as i64;
        for t in keys.iter().chain(&values) {
            match t.size().as_slice() {
                &[1, _, l, _] if l == len => {}
                other => {
                    return Err(format!(
                        "a layer is {other:?}, expected (1, heads, {len}, head_dim)"
                    ));
                }
            }
        }
        Ok(Self {
            token_ids,
            keys,
            values,
        })
    }

    /// The token ids whose keys and values are held.
    pub fn token_ids(&self) -> &[u32] {
        &self.token_ids
    }

    pub fn len(&self) -> usize {
        self.token_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.token_ids.is_empty()
    }

    /// Bytes held by the tensors (what a store of prefixes budgets).
    pub fn byte_size(&self) -> usize {
        self.keys
            .iter()
            .chain(&self.values)
            .map(|t| t.numel() * t.kind().elt_size_in_bytes())
            .sum()
    }

    /// How many leading tokens of `prompt_ids` this prefix holds.
    pub fn common_prefix(&self, prompt_ids: &[u32]) -> usize {
        self.token_ids
            .iter()
            .zip(prompt_ids)
            .take_while(|(a, b)| a == b)
            .count()
    }
}

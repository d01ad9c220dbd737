//! Which GGUF tensor becomes which HF Llama tensor, with which shape, and whether its rows
//! need the RoPE un-permutation. Checked both ways: a missing tensor and a tensor with no HF
//! counterpart are both errors that list the names.

use super::{ConvertError, LlamaHparams, rope_permutation::unpermute_rope_rows};
use crate::gguf::{GgufFile, TensorInfo};
use std::collections::BTreeSet;

/// At most this many names are listed in an error; the rest are counted.
const LISTED_NAMES: usize = 20;

/// One output tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct HfTensor {
    pub hf_name: String,
    pub gguf_name: String,
    /// Row-major HF shape.
    pub shape: Vec<usize>,
    /// `Some(n_heads)` for `attn_q`/`attn_k`, whose rows llama.cpp permuted.
    pub rope_heads: Option<usize>,
}

impl HfTensor {
    /// The tensor's values in HF layout.
    pub fn values(&self, file: &GgufFile) -> Result<Vec<f32>, ConvertError> {
        let values = file.dequantize(file.tensor(&self.gguf_name)?)?;
        Ok(match self.rope_heads {
            None => values,
            Some(n_heads) => unpermute_rope_rows(&values, self.shape[0], self.shape[1], n_heads),
        })
    }
}

/// The output tensors in HF order: embeddings, each layer, final norm, `lm_head` (only when
/// the GGUF has `output.weight`; otherwise the embeddings are tied).
pub fn plan_tensors(file: &GgufFile, hp: &LlamaHparams) -> Result<Vec<HfTensor>, ConvertError> {
    let (hidden, inter, vocab) = (hp.hidden_size, hp.intermediate_size, hp.vocab_size);
    let q_rows = hp.num_attention_heads * hp.head_dim;
    let kv_rows = hp.num_key_value_heads * hp.head_dim;
    let tensor = |gguf: &str, hf: &str, shape: Vec<usize>, rope_heads: Option<usize>| HfTensor {
        hf_name: hf.to_string(),
        gguf_name: gguf.to_string(),
        shape,
        rope_heads,
    };

    let mut planned = vec![tensor(
        "token_embd.weight",
        "model.embed_tokens.weight",
        vec![vocab, hidden],
        None,
    )];
    for i in 0..hp.num_hidden_layers {
        let gguf = |part: &str| format!("blk.{i}.{part}.weight");
        let hf = |part: &str| format!("model.layers.{i}.{part}.weight");
        let heads = Some(hp.num_attention_heads);
        let kv_heads = Some(hp.num_key_value_heads);
        planned.extend([
            tensor(
                &gguf("attn_q"),
                &hf("self_attn.q_proj"),
                vec![q_rows, hidden],
                heads,
            ),
            tensor(
                &gguf("attn_k"),
                &hf("self_attn.k_proj"),
                vec![kv_rows, hidden],
                kv_heads,
            ),
            tensor(
                &gguf("attn_v"),
                &hf("self_attn.v_proj"),
                vec![kv_rows, hidden],
                None,
            ),
            tensor(
                &gguf("attn_output"),
                &hf("self_attn.o_proj"),
                vec![hidden, q_rows],
                None,
            ),
            tensor(&gguf("ffn_gate"), &hf("mlp.gate_proj"), vec![inter, hidden], None),
            tensor(&gguf("ffn_up"), &hf("mlp.up_proj"), vec![inter, hidden], None),
            tensor(&gguf("ffn_down"), &hf("mlp.down_proj"), vec![hidden, inter], None),
            tensor(&gguf("attn_norm"), &hf("input_layernorm"), vec![hidden], None),
            tensor(
                &gguf("ffn_norm"),
                &hf("post_attention_layernorm"),
                vec![hidden],
                None,
            ),
        ]);
    }
    planned.push(tensor(
        "output_norm.weight",
        "model.norm.weight",
        vec![hidden],
        None,
    ));
    if file.has_tensor("output.weight") {
        planned.push(tensor(
            "output.weight",
            "lm_head.weight",
            vec![vocab, hidden],
            None,
        ));
    }

    check_names(file, &planned)?;
    for out in &planned {
        check_shape(file.tensor(&out.gguf_name)?, &out.shape)?;
    }
    Ok(planned)
}

fn check_names(file: &GgufFile, planned: &[HfTensor]) -> Result<(), ConvertError> {
    let wanted: BTreeSet<&str> = planned.iter().map(|t| t.gguf_name.as_str()).collect();
    let have: BTreeSet<&str> = file.tensors().iter().map(|t| t.name.as_str()).collect();
    let missing: Vec<&str> = wanted.difference(&have).copied().collect();
    let unexpected: Vec<&str> = have.difference(&wanted).copied().collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(());
    }
    Err(ConvertError::TensorMismatch {
        missing_count: missing.len(),
        missing: list(&missing),
        unexpected_count: unexpected.len(),
        unexpected: list(&unexpected),
    })
}

fn check_shape(info: &TensorInfo, expected: &[usize]) -> Result<(), ConvertError> {
    let found = info.shape();
    if found != expected {
        return Err(ConvertError::Shape {
            name: info.name.clone(),
            expected: expected.to_vec(),
            found,
        });
    }
    Ok(())
}

fn list(names: &[&str]) -> String {
    let mut listed = names
        .iter()
        .take(LISTED_NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED_NAMES {
        listed.push_str(&format!(", and {} more", names.len() - LISTED_NAMES));
    }
    listed
}

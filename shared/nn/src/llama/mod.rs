//! The Llama-family decoder LM (Llama, SmolLM, Qwen2), following transformers'
//! `modeling_llama.py` / `modeling_qwen2.py` module tree so that HF safetensors load
//! unchanged through [`crate::weights::load_strict`]:
//!
//! ```text
//! LlamaForCausalLM            model.rs       lm_head (absent when tied)
//! └─ LlamaModel               model.rs       model.embed_tokens, model.norm
//!    ├─ RotaryEmbedding       rotary.rs      (no weights; RoPE default/linear/dynamic/llama3)
//!    └─ LlamaDecoderLayer     decoder_layer.rs   model.layers.{i}.{input,post_attention}_layernorm
//!       ├─ LlamaAttention     attention.rs   self_attn.{q,k,v,o}_proj (+ q/k/v bias for Qwen2)
//!       ├─ LlamaMlp           mlp.rs         mlp.{gate,up,down}_proj
//!       └─ RmsNorm            rms_norm.rs
//! KvCache                     kv_cache.rs    preallocated per-layer key/value buffers
//! LlamaConfig                 config.rs      the checkpoint's config.json
//! ```
//!
//! Everything runs under `tch::no_grad`, in the dtype (f32/f16/bf16) and on the device
//! (CPU/CUDA) given at load time. Batches may be left-padded: pass the attention mask and the
//! model derives positions the way transformers' `generate` does. Generation (sampling, stop
//! conditions, streaming) lives in [`crate::generation`].

mod attention;
mod config;
mod decoder_layer;
mod error;
mod kv_cache;
mod linear;
mod mlp;
mod model;
mod rms_norm;
mod rotary;

pub use attention::{AttentionMask, LlamaAttention};
pub use config::{LlamaConfig, ModelType, RopeScaling};
pub use decoder_layer::LlamaDecoderLayer;
pub use error::LlamaError;
pub use kv_cache::KvCache;
pub use linear::Linear;
pub use mlp::LlamaMlp;
pub use model::{LlamaForCausalLM, LlamaModel, weight_files};
pub use rms_norm::RmsNorm;
pub use rotary::{RotaryEmbedding, apply_rotary};

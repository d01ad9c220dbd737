//! interpolation's errors: those of any tensor-in, tensor-out stage
//! (`storyreel_stage::StageError`).

pub use storyreel_stage::StageError as InterpolationError;

//! Overlapping tiles for the upscaler: each frame axis is cut into `ceil(len / tile)`
//! cores of (nearly) equal length; a tile's window is its core plus `overlap` input pixels
//! of context on each side that has a neighbour. Each window is upscaled on its own and
//! the outputs are blended: a window's weight ramps linearly across the `2 * overlap`
//! pixels it shares with a neighbour (the two ramps sum to one), and the blend is
//! normalised by the summed weights, so seams between independently sampled tiles fade
//! instead of cutting. With `overlap = 0` the tiles are simply stitched.

use tch::{Device, Kind, Tensor};

use crate::diffusion::DiffusionError;

/// How a frame is cut into tiles, in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileOptions {
    /// The longest core side (at least 1).
    pub tile: i64,
    /// Context on each side of a core that has a neighbour (at least 0, under `tile`).
    pub overlap: i64,
}

impl TileOptions {
    pub fn validate(&self) -> Result<(), DiffusionError> {
        if self.tile < 1 {
            return Err(DiffusionError::input(
                "tile",
                format!("must be >= 1, got {}", self.tile),
            ));
        }
        if !(0..self.tile).contains(&self.overlap) {
            return Err(DiffusionError::input(
                "overlap",
                format!("must be in 0..{}, got {}", self.tile, self.overlap),
            ));
        }
        Ok(())
    }
}

/// One tile's extent along an axis, in input pixels: the window `[start, end)` and the
/// core `[core_start, core_end)` inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: i64,
    pub end: i64,
    pub core_start: i64,
    pub core_end: i64,
    /// Neighbours before and after (where the window's weight ramps).
    pub before: bool,
    pub after: bool,
}

impl Span {
    pub fn len(&self) -> i64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The blend weight of each of the window's `scale * len()` output pixels (> 0).
    pub fn weights(&self, overlap: i64, scale: i64) -> Vec<f32> {
        let ramp = (2 * overlap * scale) as f64;
        (0..self.len() * scale)
            .map(|j| {
                let p = (self.start * scale + j) as f64 + 0.5;
                let mut w = 1.0f64;
                if self.before && overlap > 0 {
                    w = w.min((p - ((self.core_start - overlap) * scale) as f64) / ramp);
                }
                if self.after && overlap > 0 {
                    w = w.min((((self.core_end + overlap) * scale) as f64 - p) / ramp);
                }
                w.clamp(f64::MIN_POSITIVE, 1.0) as f32
            })
            .collect()
    }
}

/// The spans along an axis of `len` input pixels.
pub fn spans(len: i64, tiles: TileOptions) -> Vec<Span> {
    let n = ((len + tiles.tile - 1) / tiles.tile).max(1);
    let bound = |k: i64| k * len / n;
    (0..n)
        .map(|k| {
            let (core_start, core_end) = (bound(k), bound(k + 1));
            Span {
                start: (core_start - tiles.overlap).max(0),
                end: (core_end + tiles.overlap).min(len),
                core_start,
                core_end,
                before: k > 0,
                after: k + 1 < n,
            }
        })
        .collect()
}

/// The tiles of an `h` x `w` frame, row by row: (rows span, columns span).
pub fn grid(h: i64, w: i64, tiles: TileOptions) -> Vec<(Span, Span)> {
    let columns = spans(w, tiles);
    spans(h, tiles)
        .into_iter()
        .flat_map(|row| columns.iter().map(move |&column| (row, column)))
        .collect()
}

/// The weighted sum of tile outputs and the summed weights of one frame's output.
pub struct Blend {
    sum: Tensor,
    weights: Tensor,
    overlap: i64,
    scale: i64,
}

impl Blend {
    /// An empty (C, scale*h, scale*w) output.
    pub fn new(channels: i64, h: i64, w: i64, scale: i64, overlap: i64, device: Device) -> Self {
        Blend {
            sum: Tensor::zeros([channels, h * scale, w * scale], (Kind::Float, device)),
            weights: Tensor::zeros([1, h * scale, w * scale], (Kind::Float, device)),
            overlap,
            scale,
        }
    }

    /// Adds one tile's (C, scale*rows, scale*columns) output.
    pub fn add(&mut self, rows: Span, columns: Span, output: &Tensor) {
        let (s, device) = (self.scale, self.sum.device());
        let wy = Tensor::from_slice(&rows.weights(self.overlap, s)).to_device(device);
        let wx = Tensor::from_slice(&columns.weights(self.overlap, s)).to_device(device);
        let weight = wy.unsqueeze(1) * wx.unsqueeze(0);
        let place = |t: &Tensor| {
            t.narrow(1, rows.start * s, rows.len() * s)
                .narrow(2, columns.start * s, columns.len() * s)
        };
        let _ = place(&self.sum).g_add_(&(output.to_kind(Kind::Float) * &weight));
        let _ = place(&self.weights).g_add_(&weight.unsqueeze(0));
    }

    /// The blended (C, scale*h, scale*w) output.
    pub fn finish(self) -> Tensor {
        self.sum / self.weights
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_axis_and_weights_sum_to_one() {
        let tiles = TileOptions { tile: 10, overlap: 3 };
        let s = spans(25, tiles);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].core_start, s[2].core_end), (0, 25));
        assert_eq!((s[0].start, s[0].end, s[1].start, s[2].end), (0, 11, 5, 25));
        for scale in [1, 4] {
            let mut total = vec![0.0f32; (25 * scale) as usize];
            for span in &s {
                for (j, w) in span.weights(3, scale).into_iter().enumerate() {
                    total[(span.start * scale) as usize + j] += w;
                }
            }
            assert!(total.iter().all(|t| (t - 1.0).abs() < 1e-6), "{total:?}");
        }
        // one tile: the whole axis, weight one
        let one = spans(8, tiles);
        assert_eq!(one.len(), 1);
        assert!(one[0].weights(3, 4).iter().all(|&w| w == 1.0));
    }

    #[test]
    fn blending_constant_tiles_gives_the_constant() {
        let tiles = TileOptions { tile: 6, overlap: 2 };
        let mut blend = Blend::new(3, 13, 9, 2, tiles.overlap, Device::Cpu);
        for (rows, columns) in grid(13, 9, tiles) {
            let out = Tensor::full(
                [3, rows.len() * 2, columns.len() * 2],
                0.25,
                (Kind::Float, Device::Cpu),
            );
            blend.add(rows, columns, &out);
        }
        let out = blend.finish();
        assert_eq!(out.size(), [3, 26, 18]);
        let err = (out - 0.25).abs().max().double_value(&[]);
        assert!(err < 1e-6, "{err}");
    }
}

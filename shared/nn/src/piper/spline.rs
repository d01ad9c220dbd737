//! VITS `transforms.py`: the inverse of the unconstrained rational-quadratic spline with
//! linear tails (Durkan et al., Neural Spline Flows), as the duration predictor's
//! ConvFlow uses it at inference. Inputs outside [-tail_bound, tail_bound] pass through.

use tch::{Kind, Tensor};

const MIN_BIN_WIDTH: f64 = 1e-3;
const MIN_BIN_HEIGHT: f64 = 1e-3;
const MIN_DERIVATIVE: f64 = 1e-3;

/// Knot positions from unnormalised bin sizes `u` (..., K): (cumulative (..., K+1), sizes (..., K)).
fn knots(u: &Tensor, min_size: f64, bound: f64) -> (Tensor, Tensor) {
    let bins = u.size().last().copied().unwrap_or(1);
    let sizes = u.softmax(-1, Kind::Float) * (1.0 - min_size * bins as f64) + min_size;
    let cum = sizes.cumsum(-1, Kind::Float).constant_pad_nd([1, 0]);
    let cum = cum * (2.0 * bound) - bound;
    // the ends exactly at the bounds, as the reference sets them
    let n = cum.size().last().copied().unwrap_or(1);
    let inner = cum.slice(-1, 1, n - 1, 1);
    let lo = cum.slice(-1, 0, 1, 1).full_like(-bound);
    let hi = cum.slice(-1, 0, 1, 1).full_like(bound);
    let cum = Tensor::cat(&[lo, inner, hi], -1);
    let sizes = cum.slice(-1, 1, n, 1) - cum.slice(-1, 0, n - 1, 1);
    (cum, sizes)
}

/// The inverse spline of `inputs` (...) given `widths`, `heights` (..., K) and
/// `derivatives` (..., K-1), unnormalised.
pub fn inverse_rational_quadratic(
    inputs: &Tensor,
    unnormalized_widths: &Tensor,
    unnormalized_heights: &Tensor,
    unnormalized_derivatives: &Tensor,
    tail_bound: f64,
) -> Tensor {
    let inside = inputs.ge(-tail_bound).logical_and(&inputs.le(tail_bound));
    let constant = ((1.0 - MIN_DERIVATIVE).exp() - 1.0).ln();
    let d = unnormalized_derivatives.constant_pad_nd([1, 1]);
    let n = d.size().last().copied().unwrap_or(2);
    let ends = d.slice(-1, 0, 1, 1).full_like(constant);
    let d = Tensor::cat(&[ends.shallow_clone(), d.slice(-1, 1, n - 1, 1), ends], -1);

    let (cumwidths, widths) = knots(unnormalized_widths, MIN_BIN_WIDTH, tail_bound);
    let (cumheights, heights) = knots(unnormalized_heights, MIN_BIN_HEIGHT, tail_bound);
    let derivatives = d.softplus() + MIN_DERIVATIVE;
    let bins = widths.size().last().copied().unwrap_or(1);

    // searchsorted over the heights, the last knot nudged up by eps (as the reference)
    let k = cumheights.size().last().copied().unwrap_or(1);
    let nudged = Tensor::cat(
        &[
            cumheights.slice(-1, 0, k - 1, 1),
            cumheights.slice(-1, k - 1, k, 1) + 1e-6,
        ],
        -1,
    );
    let bin = inputs
        .unsqueeze(-1)
        .ge_tensor(&nudged)
        .sum_dim_intlist(-1i64, false, Kind::Int64)
        - 1;
    // out-of-range inputs pass through below; keep their (unused) index valid
    let bin = bin.clamp(0, bins - 1).unsqueeze(-1);
    let pick = |t: &Tensor| t.gather(-1, &bin, false).squeeze_dim(-1);

    let input_cumwidths = pick(&cumwidths);
    let input_bin_widths = pick(&widths);
    let input_cumheights = pick(&cumheights);
    let delta = &heights / &widths;
    let input_delta = pick(&delta);
    let input_derivatives = pick(&derivatives);
    let input_derivatives_plus_one = pick(&derivatives.slice(-1, 1, bins + 1, 1));
    let input_heights = pick(&heights);

    let shifted = inputs - &input_cumheights;
    let slope_sum = &input_derivatives + &input_derivatives_plus_one - &input_delta * 2.0;
    let a = &shifted * &slope_sum + &input_heights * (&input_delta - &input_derivatives);
    let b = &input_heights * &input_derivatives - &shifted * &slope_sum;
    let c = -(&input_delta * &shifted);
    let discriminant = b.square() - &a * &c * 4.0;
    let root = (&c * 2.0) / (-b - discriminant.sqrt());
    let outputs = root * input_bin_widths + input_cumwidths;
    outputs.where_self(&inside, inputs)
}

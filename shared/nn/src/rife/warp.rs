//! Backward warping: samples `input` at each pixel displaced by `flow` (in pixels),
//! bilinear, border padding, `align_corners=True` (the reference `warplayer.warp`).

use tch::Tensor;

/// `input` (N, C, H, W), `flow` (N, 2, H, W) with x then y displacements.
pub fn warp(input: &Tensor, flow: &Tensor) -> Tensor {
    let (n, _, h, w) = flow.size4().expect("flow is (N, 2, H, W)");
    let (device, kind) = (flow.device(), flow.kind());
    let horizontal = Tensor::linspace(-1.0, 1.0, w, (kind, device))
        .view([1, 1, 1, w])
        .expand([n, -1, h, -1], false);
    let vertical = Tensor::linspace(-1.0, 1.0, h, (kind, device))
        .view([1, 1, h, 1])
        .expand([n, -1, -1, w], false);
    let grid = Tensor::cat(&[horizontal, vertical], 1);
    let (ih, iw) = (input.size()[2] as f64, input.size()[3] as f64);
    let flow = Tensor::cat(
        &[
            flow.narrow(1, 0, 1) / ((iw - 1.0) / 2.0),
            flow.narrow(1, 1, 1) / ((ih - 1.0) / 2.0),
        ],
        1,
    );
    let grid = (grid + flow).permute([0, 2, 3, 1]);
    // interpolation 0 = bilinear, padding 1 = border
    input.grid_sampler(&grid, 0, 1, true)
}

// What conv_general.wgsl and conv_general_grad.wgsl share: the parameters of a convolution of
// any geometry (kernel height and width, strides, dilations, groups; padding before the first
// row and column, the rest implied by the output size), NHWC.
//
// Kept in sync with src/gpu/params.rs (`ConvGeneralParams`).

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    groups: u32,
    kernel_h: u32,
    kernel_w: u32,
    stride_h: u32,
    stride_w: u32,
    dilation_h: u32,
    dilation_w: u32,
    pad_top: u32,
    pad_left: u32,
    // Forward: lib/activation.wgsl's code of the epilogue; backward: the mask's.
    activation: u32,
    // Forward: 0 none, 1 residual added after the activation, 2 before it.
    has_residual: u32,
    // Backward: 1 to add `extra`.
    add_extra: u32,
    _pad: u32,
}

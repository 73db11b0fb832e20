// The parameters and epilogue of the dense convolutions, shaders/conv2d.wgsl and
// shaders/conv2d_texture.wgsl, whose importers declare `params` and `residual`.
//
// Kept in sync with src/gpu/params.rs (`ConvParams`).
#import activation

struct Params {
    batch: u32,
    in_h: u32,
    in_w: u32,
    in_c: u32,
    out_h: u32,
    out_w: u32,
    out_c: u32,
    kernel: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    // 0: none, 1: ReLU6, 2: ReLU
    activation: u32,
    // 0: no residual; 1: add `residual` after the activation, 2: before it
    has_residual: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// The epilogue: activation and residual add in the order `has_residual` gives.
fn finish(acc: vec4<f32>, at: u32) -> vec4<f32> {
    var v = acc;
    if params.has_residual == 2u {
        v += residual[at];
    }
    v = activate(v, params.activation);
    if params.has_residual == 1u {
        v += residual[at];
    }
    return v;
}

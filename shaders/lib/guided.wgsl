// What the two kernels of pytorch-grad-cam's `deprocess_image` (guided_stats, guided_image)
// share: their parameters, their inputs, and the value pictured: for each image b, picture
// `which` 0 is the guided-backpropagation gradient, picture 1 (Guided Grad-CAM) the gradient
// times the CAM at the same position.
//
// Kept in sync with src/gpu/params.rs (`GuidedStatsParams`).

struct Params {
    batch: u32,
    pixels: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, 3]: the guided gradient at the normalised input
@group(0) @binding(1) var<storage, read> gradient: array<f32>;
// [batch, pixels]: the final CAM
@group(0) @binding(2) var<storage, read> cam: array<f32>;

// Value `i` (position i / 3, channel i % 3) of image `b`'s picture `which`.
fn guided_value(b: u32, which: u32, i: u32) -> f32 {
    let g = gradient[b * params.pixels * 3u + i];
    if which == 1u {
        return g * cam[b * params.pixels + i / 3u];
    }
    return g;
}

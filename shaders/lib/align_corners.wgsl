// Bilinear upsampling with align_corners=True, as torch.nn.UpsamplingBilinear2d computes it on
// the CPU (Score-CAM's masks): source coordinate = o * (in - 1) / (out - 1), weights
// (1 - f, f), the next index clamped to the last, the column pair blended first, then the rows.

struct AlignedAxis {
    i0: u32,
    i1: u32,
    w0: f32,
    w1: f32,
}

fn aligned_axis(o: u32, in_size: u32, out_size: u32) -> AlignedAxis {
    var scale = 0.0;
    if out_size > 1u {
        scale = f32(in_size - 1u) / f32(out_size - 1u);
    }
    let real = scale * f32(o);
    let i0 = min(u32(real), in_size - 1u);
    let w1 = clamp(real - f32(i0), 0.0, 1.0);
    var i1 = i0;
    if i0 < in_size - 1u {
        i1 = i0 + 1u;
    }
    return AlignedAxis(i0, i1, 1.0 - w1, w1);
}

// The blend of four samples at (y0, x0), (y0, x1), (y1, x0), (y1, x1).
fn aligned_blend(y: AlignedAxis, x: AlignedAxis, v00: f32, v01: f32, v10: f32, v11: f32) -> f32 {
    let top = v00 * x.w0 + v01 * x.w1;
    let bottom = v10 * x.w0 + v11 * x.w1;
    return top * y.w0 + bottom * y.w1;
}

// The mean and standard deviation (ddof 0) that pytorch-grad-cam's `deprocess_image` normalises
// by, for each image's guided-backpropagation gradient (`which` 0) and for Guided Grad-CAM, the
// gradient times the CAM at the same position (`which` 1). One workgroup per (image, which):
// the mean, then the mean squared deviation from it, as numpy's std.
//
#import guided

// [batch, 2]: (mean, std)
@group(0) @binding(3) var<storage, read_write> stats: array<vec2<f32>>;

const REDUCE_SIZE: u32 = 64u;
var<workgroup> partial: array<f32, REDUCE_SIZE>;

fn reduce(lid: u32, v: f32) -> f32 {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = REDUCE_SIZE / 2u; s > 0u; s >>= 1u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

@compute @workgroup_size(REDUCE_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below are reached by all invocations or none.
    if n >= params.batch * 2u {
        return;
    }
    let b = n / 2u;
    let which = n % 2u;
    let len = params.pixels * 3u;
    var sum = 0.0;
    for (var i = lid; i < len; i += REDUCE_SIZE) {
        sum += guided_value(b, which, i);
    }
    let mean = reduce(lid, sum) / f32(len);
    var squares = 0.0;
    for (var i = lid; i < len; i += REDUCE_SIZE) {
        let d = guided_value(b, which, i) - mean;
        squares += d * d;
    }
    let deviation = sqrt(reduce(lid, squares) / f32(len));
    if lid == 0u {
        stats[n] = vec2<f32>(mean, deviation);
    }
}

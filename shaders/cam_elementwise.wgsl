// The CAM methods that weight activations element by element, one invocation per image and
// position, summed over channels and then ReLU-ed (pytorch-grad-cam's `np.maximum(cam, 0)`):
//   mode 0 (HiResCAM):           sum_c G * A
//   mode 1 (GradCAMElementWise): sum_c relu(G * A)
//   mode 2 (LayerCAM):           sum_c relu(G) * A
//
// Kept in sync with src/gpu/params.rs (`CamElementwiseParams`).
#import index

struct Params {
    batch: u32,
    pixels: u32,
    channels: u32,
    // 0: HiResCAM, 1: GradCAMElementWise, 2: LayerCAM
    mode: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [batch, pixels, channels / 4]
@group(0) @binding(1) var<storage, read> activations: array<vec4<f32>>;
// [batch, pixels, channels / 4]: d target / d activations
@group(0) @binding(2) var<storage, read> gradient: array<vec4<f32>>;
// [batch, pixels]
@group(0) @binding(3) var<storage, read_write> grid: array<f32>;

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = invocation_index(gid, nwg);
    if id >= params.batch * params.pixels {
        return;
    }
    let c4 = params.channels / 4u;
    let a = id * c4;
    var acc = vec4<f32>(0.0);
    for (var k = 0u; k < c4; k++) {
        let g = gradient[a + k];
        let v = activations[a + k];
        if params.mode == 0u {
            acc += g * v;
        } else if params.mode == 1u {
            acc += max(g * v, vec4<f32>(0.0));
        } else {
            acc += max(g, vec4<f32>(0.0)) * v;
        }
    }
    grid[id] = max((acc.x + acc.y) + (acc.z + acc.w), 0.0);
}

// Buffers read through textures (src/pipeline/texel.rs): vec4 `index` of a buffer copied into an
// Rgba32Float texture of 2^TEXEL_ROW_SHIFT texels to a row is texel
// (index % 2^TEXEL_ROW_SHIFT, index / 2^TEXEL_ROW_SHIFT). On lavapipe a texel fetch is a
// vectorized gather, where a storage-buffer load whose index differs between lanes (or that sits
// in a loop) is eight scalar loads, each behind its own branch.
//
// Kept in sync with src/gpu/kernels.rs (`TEXEL_ROW`).
const TEXEL_ROW_SHIFT: u32 = 12u;

fn texel(t: texture_2d<f32>, index: u32) -> vec4<f32> {
    let mask = (1u << TEXEL_ROW_SHIFT) - 1u;
    return textureLoad(t, vec2<u32>(index & mask, index >> TEXEL_ROW_SHIFT), 0);
}

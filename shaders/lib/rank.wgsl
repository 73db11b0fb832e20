// The parameters shared by the ranking kernels of the deletion and insertion metrics
// (rank_init.wgsl, rank_sort.wgsl, rank_scatter.wgsl), declared once.
//
// Kept in sync with src/gpu/params.rs (`RankParams`).

struct Params {
    batch: u32,
    positions: u32,
    // `positions` rounded up to a power of two.
    padded: u32,
    // rank_sort.wgsl's stage: the bitonic runs' length and the compare distance.
    k: u32,
    j: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

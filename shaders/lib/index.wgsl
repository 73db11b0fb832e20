// The linear invocation index of a kernel dispatched as a 2-D grid of workgroups
// (src/gpu/kernels.rs `Kernel::grid`): x first, then rows of num_workgroups.x groups.
// Uses the importer's `WORKGROUP_SIZE` override.
fn invocation_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WORKGROUP_SIZE;
}

// The linear index of the subgroup of 8 lanes an invocation belongs to, for the subgroup variants
// (src/gpu/kernels.rs `SUBGROUP_LANES`), whose subgroups are 8 consecutive invocations.
fn subgroup_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (workgroup_index(wid, nwg) * WORKGROUP_SIZE + lid) / 8u;
}

// The linear index of the workgroup, for kernels whose workgroups cooperate on one item
// (dispatched on the same 2-D grid).
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// The uploaded images: RGB8 rows packed back to back in the importer's `pixels` binding
// (array<u32>), one ImageMeta per image. Kept in sync with src/gpu/params.rs (`ImageMeta`).

struct ImageMeta {
    // Byte offset of the image's first pixel in `pixels` (RGB8, rows packed without padding).
    offset: u32,
    width: u32,
    height: u32,
    // Pixel offset of the image's overlay in the batch's output (used by the overlay kernels),
    // its rows overlay_row_pitch(width) pixels apart.
    out_offset: u32,
}

// Pixels from one overlay row to the next: the width rounded up to 64 (256 bytes of RGBA8,
// wgpu's COPY_BYTES_PER_ROW_ALIGNMENT), so each overlay can be copied into a texture as it lies.
// Kept in sync with src/gpu/params.rs (`overlay_row_pitch`).
fn overlay_row_pitch(width: u32) -> u32 {
    return (width + 63u) & ~63u;
}

// Byte `i` of the packed upload, as 0..255.
fn byte_at(i: u32) -> f32 {
    return f32((pixels[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu);
}

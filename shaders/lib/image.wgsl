// The uploaded images: RGB8 rows packed back to back in the importer's `pixels` binding
// (array<u32>), one ImageMeta per image. Kept in sync with src/gpu/params.rs (`ImageMeta`).

struct ImageMeta {
    // Byte offset of the image's first pixel in `pixels` (RGB8, rows packed without padding).
    offset: u32,
    width: u32,
    height: u32,
    // Pixel offset of the image's overlay in the batch's output (used by the overlay kernels).
    out_offset: u32,
}

// Byte `i` of the packed upload, as 0..255.
fn byte_at(i: u32) -> f32 {
    return f32((pixels[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu);
}

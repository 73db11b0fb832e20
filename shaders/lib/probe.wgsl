// Rows of a probe batch (src/pipeline/probe.rs): row r of the chunk now running is global row
// g = cursor + r of the batch's (image, channel) pairs, g = image * per_image + channel. Rows past
// the batch's last pair repeat its last image; their scores are never kept.

fn probe_image(g: u32, per_image: u32, images: u32) -> u32 {
    return min(g / per_image, images - 1u);
}

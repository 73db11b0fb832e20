// OpenCV's INTER_LINEAR resize along one axis (cv2.resize: half-pixel centres, source
// coordinates clamped to the edge).

// The source coordinate of output index `o`: (first source index, fraction of the next).
fn source(o: u32, in_size: u32, out_size: u32) -> vec2<f32> {
    let scale = f32(in_size) / f32(out_size);
    let f = (f32(o) + 0.5) * scale - 0.5;
    var s = floor(f);
    var frac = f - s;
    if s < 0.0 {
        s = 0.0;
        frac = 0.0;
    }
    if s >= f32(in_size - 1u) {
        s = f32(in_size - 1u);
        frac = 0.0;
    }
    return vec2<f32>(s, frac);
}

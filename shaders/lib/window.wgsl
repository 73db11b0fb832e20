// Sliding windows (convolutions, pooling) along one axis: output o reads inputs
// o * stride + k - pad for taps k in 0..kernel.

// The input index tap `k` of output `o` reads, or -1 when it falls in the padding.
fn window_tap(o: u32, k: u32, stride: u32, pad: u32, in_size: u32) -> i32 {
    let i = i32(o * stride + k) - i32(pad);
    return select(-1, i, i >= 0 && i < i32(in_size));
}

// The output whose tap `k` reads input `i`, or -1 when there is none: the gather form of a
// window's gradient.
fn window_covering(i: u32, k: u32, stride: u32, pad: u32, out_size: u32) -> i32 {
    let t = i32(i + pad) - i32(k);
    if t < 0 || t % i32(stride) != 0 {
        return -1;
    }
    let o = t / i32(stride);
    return select(-1, o, o < i32(out_size));
}

// How many of output `o`'s `kernel` taps lie inside the padded axis of `in_size` inputs: the
// kernel, but for a ceil-mode last window running past the padding (PyTorch's divisor with
// count_include_pad).
fn window_padded_span(o: u32, kernel: u32, stride: u32, pad: u32, in_size: u32) -> u32 {
    return min(o * stride + kernel, in_size + 2u * pad) - o * stride;
}

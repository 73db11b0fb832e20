//! Weakly supervised localisation, as in the Grad-CAM paper: the CAM at the image's own size,
//! thresholded at a fraction of its maximum, and the bounding box of its largest 8-connected
//! region.
//!
//! This runs on the host, on the S×S CAM read back for the report (224² floats per image): it
//! resizes the CAM the way the overlay does (OpenCV's `INTER_LINEAR`) and labels connected
//! regions with one flood fill. Labelling regions is a sequential, data-dependent walk that a
//! GPU does in many passes. On the host it costs about a millisecond per photo, in the writer
//! thread, overlapping the GPU's next batch.

/// A box in pixel coordinates of the image: columns `x0..x1` and rows `y0..y1` (the ends
/// exclusive), as `[x0, y0, x1, y1]`.
pub type BoundingBox = [u32; 4];

/// The default threshold, as a fraction of the map's maximum (the Grad-CAM paper's 15 %).
pub const DEFAULT_BOX_THRESHOLD: f32 = 0.15;

/// One axis of OpenCV's `INTER_LINEAR` resize: per output index, the first source index and the
/// weight of the next (half-pixel centres, clamped at the edges; shaders/lib/resize.wgsl).
fn axis(in_size: u32, out_size: u32) -> Vec<(usize, f32)> {
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|o| {
            let f = (o as f32 + 0.5) * scale - 0.5;
            let s = f.floor();
            if s < 0.0 {
                (0, 0.0)
            } else if s >= (in_size - 1) as f32 {
                ((in_size - 1) as usize, 0.0)
            } else {
                (s as usize, f - s)
            }
        })
        .collect()
}

/// `map` (`side × side`, row-major) resized to `width × height` with OpenCV's `INTER_LINEAR`.
pub fn resize_map(map: &[f32], side: u32, width: u32, height: u32) -> Vec<f32> {
    let (xs, ys) = (axis(side, width), axis(side, height));
    let s = side as usize;
    let at = |y: usize, x: usize| map[y * s + x];
    let mut out = Vec::with_capacity(width as usize * height as usize);
    for &(y, fy) in &ys {
        let y1 = (y + 1).min(s - 1);
        for &(x, fx) in &xs {
            let x1 = (x + 1).min(s - 1);
            let top = at(y, x) * (1.0 - fx) + at(y, x1) * fx;
            let bottom = at(y1, x) * (1.0 - fx) + at(y1, x1) * fx;
            out.push(top * (1.0 - fy) + bottom * fy);
        }
    }
    out
}

/// The bounding box of the largest 8-connected region of `map` (`width × height`, row-major)
/// where it is at least `threshold` × its maximum; `None` when the map has no positive value.
/// Of regions of equal size, the first in row-major order wins.
pub fn largest_region_box(
    map: &[f32],
    width: u32,
    height: u32,
    threshold: f32,
) -> Option<BoundingBox> {
    let (w, h) = (width as usize, height as usize);
    let max = map.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 || map.len() != w * h {
        return None;
    }
    let cut = threshold * max;
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut best: Option<(usize, BoundingBox)> = None;
    for start in 0..w * h {
        if seen[start] || map[start] < cut {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let (mut size, mut b) = (0usize, [u32::MAX, u32::MAX, 0, 0]);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % w, i / w);
            size += 1;
            b = [
                b[0].min(x as u32),
                b[1].min(y as u32),
                b[2].max(x as u32 + 1),
                b[3].max(y as u32 + 1),
            ];
            for ny in y.saturating_sub(1)..(y + 2).min(h) {
                for nx in x.saturating_sub(1)..(x + 2).min(w) {
                    let j = ny * w + nx;
                    if !seen[j] && map[j] >= cut {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if best.is_none_or(|(s, _)| size > s) {
            best = Some((size, b));
        }
    }
    best.map(|(_, b)| b)
}

/// The localisation box of a normalised `side × side` CAM for an image of `width × height`.
pub fn localisation_box(
    cam: &[f32],
    side: u32,
    width: u32,
    height: u32,
    threshold: f32,
) -> Option<BoundingBox> {
    largest_region_box(
        &resize_map(cam, side, width, height),
        width,
        height,
        threshold,
    )
}

/// The colour the CLI and the Python package draw a localisation box in.
pub const BOX_COLOUR: [u8; 3] = [0, 255, 0];

/// Line width of a drawn box: 2 pixels per 500 of the image's larger side, at least 2.
pub fn box_thickness(width: u32, height: u32) -> u32 {
    (width.max(height) / 250).max(2)
}

/// Draws `b` on an overlay as the CLI's `--boxes` does: [`BOX_COLOUR`], [`box_thickness`].
pub fn draw_localisation_box(overlay: &mut image::RgbaImage, b: BoundingBox) {
    let thickness = box_thickness(overlay.width(), overlay.height());
    draw_box(overlay, b, BOX_COLOUR, thickness);
}

/// Draws `b`'s outline, `thickness` pixels wide inside the box, in `colour`.
pub fn draw_box(image: &mut image::RgbaImage, b: BoundingBox, colour: [u8; 3], thickness: u32) {
    let [x0, y0, x1, y1] = b;
    let (x1, y1) = (x1.min(image.width()), y1.min(image.height()));
    let pixel = image::Rgba([colour[0], colour[1], colour[2], 255]);
    for y in y0..y1 {
        for x in x0..x1 {
            let edge = x < x0 + thickness
                || x + thickness >= x1
                || y < y0 + thickness
                || y + thickness >= y1;
            if edge {
                image.put_pixel(x, y, pixel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_keeps_a_constant_map_and_matches_opencv_at_the_edges() {
        let out = resize_map(&[0.5; 4], 2, 5, 3);
        assert!(out.iter().all(|v| (v - 0.5).abs() < 1e-7));
        // 2 → 4 along x: OpenCV gives [a, .75a + .25b, .25a + .75b, b].
        let out = resize_map(&[0.0, 1.0, 0.0, 1.0], 2, 4, 2);
        assert_eq!(&out[..4], &[0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn largest_region_wins_and_diagonals_connect() {
        #[rustfmt::skip]
        let map = [
            1.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            0.0, 1.0, 0.0, 0.0, 0.9, 0.9,
            0.0, 0.0, 1.0, 0.0, 0.9, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0f32,
        ];
        // The diagonal (3 pixels) beats the L (3 pixels) by coming first; at 0.95 only the
        // diagonal's pixels count.
        assert_eq!(largest_region_box(&map, 6, 4, 0.15), Some([0, 0, 3, 3]));
        let mut bigger = map;
        bigger[17] = 0.9;
        assert_eq!(largest_region_box(&bigger, 6, 4, 0.15), Some([4, 1, 6, 3]));
        assert_eq!(largest_region_box(&[0.0; 24], 6, 4, 0.15), None);
    }
}

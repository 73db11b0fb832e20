//! `explain --boxes`: each image's localisation box (the largest 8-connected region of the CAM
//! at the image's size, at 15 % of its maximum) equals a straightforward reference computed here
//! on the CAM `--raw` writes, holds the map's peak (the object), and is drawn on the overlay.

mod common;

use std::collections::VecDeque;
use std::path::Path;

use common::{read_report, run_gradcam as gradcam};

/// OpenCV's INTER_LINEAR resize of a square map, one output pixel at a time.
fn resize(map: &[f32], side: usize, width: usize, height: usize) -> Vec<f32> {
    let source = |o: usize, out: usize| {
        let f = (o as f64 + 0.5) * side as f64 / out as f64 - 0.5;
        let f = f.clamp(0.0, (side - 1) as f64);
        let i = (f.floor() as usize).min(side - 1);
        (i, (i + 1).min(side - 1), (f - i as f64) as f32)
    };
    let mut out = vec![0f32; width * height];
    for y in 0..height {
        let (y0, y1, fy) = source(y, height);
        for x in 0..width {
            let (x0, x1, fx) = source(x, width);
            let top = map[y0 * side + x0] * (1.0 - fx) + map[y0 * side + x1] * fx;
            let bottom = map[y1 * side + x0] * (1.0 - fx) + map[y1 * side + x1] * fx;
            out[y * width + x] = top * (1.0 - fy) + bottom * fy;
        }
    }
    out
}

/// The bounding box of the largest 8-connected region at or above `threshold` × max, by
/// breadth-first search from each unvisited pixel.
fn reference_box(map: &[f32], width: usize, height: usize, threshold: f32) -> Option<[usize; 4]> {
    let max = map.iter().copied().fold(0f32, f32::max);
    if max <= 0.0 {
        return None;
    }
    let inside = |i: usize| map[i] >= threshold * max;
    let mut label = vec![usize::MAX; map.len()];
    let mut best: Option<(usize, [usize; 4])> = None;
    for start in (0..map.len()).filter(|&i| inside(i)) {
        if label[start] != usize::MAX {
            continue;
        }
        let mut queue = VecDeque::from([start]);
        label[start] = start;
        let (mut size, mut b) = (0, [usize::MAX, usize::MAX, 0, 0]);
        while let Some(i) = queue.pop_front() {
            let (x, y) = ((i % width) as i64, (i / width) as i64);
            size += 1;
            b = [
                b[0].min(x as usize),
                b[1].min(y as usize),
                b[2].max(x as usize + 1),
                b[3].max(y as usize + 1),
            ];
            for (dx, dy) in (-1..=1).flat_map(|dx| (-1..=1).map(move |dy| (dx, dy))) {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                    continue;
                }
                let j = ny as usize * width + nx as usize;
                if inside(j) && label[j] == usize::MAX {
                    label[j] = start;
                    queue.push_back(j);
                }
            }
        }
        if best.is_none_or(|(s, _)| size > s) {
            best = Some((size, b));
        }
    }
    best.map(|(_, b)| b)
}

fn raw_cam(path: &Path) -> (Vec<f32>, usize) {
    let bytes = std::fs::read(path).expect("raw output");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let cam = st.tensor("cam").expect("cam");
    let side = cam.shape()[0];
    (bytemuck::pod_collect_to_vec(cam.data()), side)
}

#[test]
fn boxes_match_a_reference_and_surround_the_objects() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = gradcam(&[
        "explain",
        "--quiet",
        "--boxes",
        "--raw",
        "--out",
        out.to_str().unwrap(),
        "examples/images/chelsea.png",
        "examples/images/coffee.png",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = read_report(&out);
    assert_eq!(report["settings"]["boxes"], 0.15);
    for entry in report["images"].as_array().unwrap() {
        let (w, h) = (
            entry["width"].as_u64().unwrap() as usize,
            entry["height"].as_u64().unwrap() as usize,
        );
        let got: Vec<usize> = entry["box"]
            .as_array()
            .expect("a box")
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let (cam, side) = raw_cam(Path::new(entry["raw"].as_str().unwrap()));
        let map = resize(&cam, side, w, h);
        let want = reference_box(&map, w, h, 0.15).expect("a region");
        assert_eq!(got, want.to_vec(), "{}", entry["image"]);
        // Around the object: a real region holding the map's peak. The cat fills chelsea's
        // frame (its box is the whole image); the cup and saucer leave coffee's margins out.
        let peak = (0..map.len()).fold(0, |m, i| if map[i] > map[m] { i } else { m });
        let (px, py) = (peak % w, peak / w);
        assert!(
            (want[0]..want[2]).contains(&px) && (want[1]..want[3]).contains(&py),
            "{}: {want:?} misses the peak ({px}, {py})",
            entry["image"]
        );
        let area = (want[2] - want[0]) * (want[3] - want[1]);
        assert!(area > w * h / 20, "{}: {want:?}", entry["image"]);
        if entry["image"].as_str().unwrap().ends_with("coffee.png") {
            assert!(area < w * h * 3 / 4, "coffee: {want:?}");
        }
        // Drawn: the box's top-left corner is the box colour.
        let overlay = image::open(entry["output"].as_str().unwrap())
            .unwrap()
            .to_rgb8();
        assert_eq!(
            overlay.get_pixel(want[0] as u32, want[1] as u32).0,
            [0, 255, 0]
        );
    }
}

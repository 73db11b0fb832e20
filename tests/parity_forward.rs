//! The forward pass against the PyTorch reference (fixtures from tools/make_fixtures.py):
//! preprocessing ≤ 1e-4, logits ≤ 1e-3 with identical top-5.

mod common;

use common::{assert_close, chw_to_hwc, decode, engine, fixtures, max_abs_diff, root, top_indices};

const SIZE: usize = 224;

fn source_image(
    name: &str,
    fx: &std::collections::HashMap<String, common::Fixture>,
) -> image::RgbImage {
    match name {
        "chelsea" | "coffee" => decode(&root().join("examples/images").join(format!("{name}.png"))),
        _ => {
            let src = &fx[&format!("{name}_src")];
            let (h, w) = (src.shape[0] as u32, src.shape[1] as u32);
            image::RgbImage::from_raw(w, h, src.bytes.clone()).expect("fixture image")
        }
    }
}

#[test]
fn preprocessing_matches_torch_interpolate() {
    let fx = fixtures("forward");
    let engine = engine();
    let mut fwd = engine.forward(1).expect("workspace");
    // chelsea: downscale, non-square; coffee: downscale; upscale: 97x61 up; mixed: one axis each way.
    for name in ["chelsea", "coffee", "upscale", "mixed"] {
        let img = source_image(name, &fx);
        fwd.upload_images(&[&img]).expect("upload");
        let mut encoder = engine
            .context()
            .device
            .create_command_encoder(&Default::default());
        fwd.record_preprocess(&mut encoder);
        engine
            .context()
            .submit("preprocess", encoder)
            .expect("preprocess");
        let got = fwd.read_tensor(engine.model().input).expect("readback");
        let expected = chw_to_hwc(&fx[&format!("{name}_input")].data, 3, SIZE, SIZE);
        let d = max_abs_diff(&got, &expected);
        println!("{name}: preprocessing max |diff| = {d:e}");
        assert_close(
            &format!("{name} preprocessed input"),
            &got,
            &expected,
            1e-4,
            0.0,
        );
    }
}

fn check_logits(name: &str, got: &[f32], expected: &[f32]) {
    let d = max_abs_diff(got, expected);
    println!("{name}: logits max |diff| = {d:e}");
    assert_close(&format!("{name} logits"), got, expected, 1e-3, 0.0);
    assert_eq!(
        top_indices(got, 5),
        top_indices(expected, 5),
        "{name}: top-5 differs"
    );
}

#[test]
fn logits_match_pytorch_on_photos() {
    let fx = fixtures("forward");
    let engine = engine();
    let mut fwd = engine.forward(1).expect("workspace");
    for name in ["chelsea", "coffee"] {
        let img = source_image(name, &fx);
        let logits = engine.classify(&mut fwd, &[&img]).expect("classify");
        check_logits(name, &logits[0], &fx[&format!("{name}_logits")].data);
    }
    let probs = gradcam::softmax(
        &engine
            .classify(&mut fwd, &[&source_image("chelsea", &fx)])
            .unwrap()[0],
    );
    assert_eq!(
        gradcam::top_k(&probs, 1)[0].0,
        285,
        "chelsea is an Egyptian cat"
    );
}

#[test]
fn logits_match_pytorch_on_random_input() {
    let fx = fixtures("forward");
    let engine = engine();
    let mut fwd = engine.forward(1).expect("workspace");
    let input = chw_to_hwc(&fx["random_input"].data, 3, SIZE, SIZE);
    fwd.upload_input(&input).expect("upload");
    fwd.run(false).expect("forward");
    let logits = fwd.read_logits().expect("logits");
    check_logits("random", &logits[0], &fx["random_logits"].data);
}

#[test]
fn batch_of_mixed_sizes_matches_single_images() {
    let fx = fixtures("forward");
    let engine = engine();
    let names = ["chelsea", "coffee", "upscale", "mixed"];
    let images: Vec<image::RgbImage> = names.iter().map(|n| source_image(n, &fx)).collect();
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    // A workspace larger than the batch, run twice: buffers are reused across batches.
    let mut fwd = engine.forward(6).expect("workspace");
    for _ in 0..2 {
        let logits = engine.classify(&mut fwd, &refs).expect("classify");
        assert_eq!(logits.len(), names.len());
        for (name, l) in names.iter().zip(&logits) {
            check_logits(name, l, &fx[&format!("{name}_logits")].data);
        }
    }
    // A smaller batch in the same workspace.
    let logits = engine.classify(&mut fwd, &refs[1..2]).expect("classify");
    check_logits(
        "coffee (batch of 1 after 4)",
        &logits[0],
        &fx["coffee_logits"].data,
    );
}

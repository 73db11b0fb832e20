//! Guided backpropagation and Guided Grad-CAM against pytorch-grad-cam 1.5.7
//! (`GuidedBackpropReLUModel`, `deprocess_image`; tools/make_guided_fixtures.py): the shipped
//! EfficientNet-Lite0, whose ReLU6 activations the reference leaves alone (the guided gradient
//! is the plain input gradient), seeded ResNet-50, every ReLU of which is guided, MobileNetV3-Small
//! (ReLU modules among hardswish) and DenseNet-121 (ReLU modules but for a functional last one);
//! for the predicted class and an explicit one.
//!
//! The guided gradient is compared as floats, after the forward activations that sit on a float32
//! tie with the reference (an activation within rounding of its step, listed in the arch
//! fixture's `flips`) are set to the reference's side, as tests/parity_arch.rs does. The pictures are `uint8(255·x)` of a value
//! normalised by the image's own mean and standard deviation, computed in float32 by numpy
//! (pairwise sums) and here (tree sums): a value within float32 rounding of an integer step
//! truncates either way, so a picture may differ by one level at such pixels, and at no pixel by
//! more.

mod common;

use common::ties::pin_ties;
use common::{ctx, fixture_metadata, fixtures, floats, max_abs_diff, normalized, reference_model};
use gradcam::{Engine, ExplainOptions, Readback, Target};

fn check(arch: &str) {
    let fx = fixtures(&format!("guided/{arch}"));
    let meta = fixture_metadata(&format!("guided/{arch}"));
    let arch_meta = fixture_metadata(&meta["weights"]);
    let engine = Engine::new(ctx(), reference_model(arch, &arch_meta));
    let input = normalized(
        &fx["image"],
        &floats(&arch_meta["mean"]),
        &floats(&arch_meta["std"]),
    );
    let classes: Vec<u32> = serde_json::from_str(&meta["classes"]).expect("classes");
    let cases = [
        ("pred", Target::Predicted),
        ("explicit", Target::Class(classes[1])),
    ];
    let flips = fixtures(&meta["weights"]).remove("flips");
    let mut explainer = engine
        .explainer(
            1,
            ExplainOptions {
                layer: meta["layer"].clone(),
                guided: true,
                ..Default::default()
            },
        )
        .expect("explainer");
    let per = input.len();
    let mut results = Vec::new();
    let mut gradient = Vec::new();
    for (_, target) in &cases {
        explainer.upload_input(&input, &[*target]).expect("upload");
        explainer.run().expect("run");
        if let Some(flips) = &flips {
            if pin_ties(&explainer, flips) > 0 {
                explainer.run_backward().expect("backward");
            }
        }
        results.push(explainer.read(Readback::ALL).expect("read").remove(0));
        gradient.extend(explainer.read_guided_gradient().expect("guided gradient"));
    }
    for (i, ((name, _), result)) in cases.iter().zip(results).enumerate() {
        let tag = if *name == "pred" {
            "pred".to_string()
        } else {
            format!("c{}", classes[1])
        };
        assert_eq!(result.class, classes[i], "{arch} {tag}: class");
        let want = &fx[&format!("gb.{tag}")].data;
        let got = &gradient[i * per..(i + 1) * per];
        let largest = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = max_abs_diff(got, want);
        eprintln!("{arch} {tag}: guided gradient max |diff| {d:.2e} (largest value {largest:.2e})");
        assert!(
            d <= 1e-4 * largest,
            "{arch} {tag}: guided gradient off by {d:.2e} (largest {largest:.2e})"
        );
        for (picture, key) in [
            (result.guided.expect("guided picture"), "guided"),
            (
                result.guided_gradcam.expect("guided grad-cam"),
                "guided_gradcam",
            ),
        ] {
            let want = &fx[&format!("{key}.{tag}")].data;
            let got: Vec<f32> = picture.as_raw().iter().map(|&v| f32::from(v)).collect();
            assert_eq!(got.len(), want.len(), "{arch} {key}.{tag}: size");
            let off: Vec<f32> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
            let worst = off.iter().fold(0f32, |m, &v| m.max(v));
            let steps = off.iter().filter(|&&v| v > 0.0).count();
            eprintln!(
                "{arch} {key}.{tag}: {steps} of {} values one level off, none more",
                off.len()
            );
            assert!(
                worst <= 1.0,
                "{arch} {key}.{tag}: a value {worst} levels off"
            );
            assert!(
                steps * 10_000 <= off.len(),
                "{arch} {key}.{tag}: {steps} values off by a level (more than 0.01 %)"
            );
        }
    }
}

/// Every ReLU of DenseNet-121 is an `nn.ReLU` module but the last, a function after `features`,
/// which the reference leaves plain.
#[test]
fn densenet121_guided_relus_but_the_functional_one() {
    check("densenet121");
}

#[test]
fn efficientnet_lite0_guided_is_the_input_gradient() {
    check("efficientnet-lite0");
}

#[test]
fn resnet50_guided_relus() {
    check("resnet50");
}

#[test]
fn mobilenet_v3_small_guided_relus_and_squeeze_excitation() {
    check("mobilenet_v3_small");
}

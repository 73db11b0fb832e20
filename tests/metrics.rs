//! Faithfulness metrics against pytorch-grad-cam 1.5.7's `metrics` module and the Grad-CAM++
//! paper's formula (tools/make_metric_fixtures.py): on the shipped Lite0 at `head`, two images in
//! one batch explained for their predicted class, each method's CAM scored by every metric with
//! softmax and logit scores, within 1e-3 of the reference (the reference's CAM and ours differ by
//! ≤ 1e-5, and the metrics move with it by as little).

mod common;

use common::{engine, fixture_metadata, fixtures, max_abs_diff, normalized};
use gradcam::{ExplainOptions, Method, Metric, Readback, Target, TargetScore};

#[test]
fn metrics_equal_pytorch_grad_cam() {
    let fx = fixtures("metrics/efficientnet-lite0");
    let meta = fixture_metadata("metrics/efficientnet-lite0");
    let methods: Vec<String> = serde_json::from_str(&meta["methods"]).expect("methods");
    let classes: Vec<u32> = serde_json::from_str(&meta["classes"]).expect("classes");
    let images = ["image.0", "image.1"];
    let input: Vec<f32> = images
        .iter()
        .flat_map(|k| normalized(&fx[*k], &[0.5; 3], &[0.5; 3]))
        .collect();
    let engine = engine();
    let mut checked = 0;
    for method in &methods {
        for score in [TargetScore::Softmax, TargetScore::Logit] {
            let mut explainer = engine
                .explainer(
                    2,
                    ExplainOptions {
                        method: method.parse().expect("method"),
                        layer: meta["layer"].clone(),
                        metrics: Metric::ALL.to_vec(),
                        target_score: score,
                        ..Default::default()
                    },
                )
                .expect("explainer");
            explainer
                .upload_input(&input, &[Target::Predicted; 2])
                .expect("upload");
            explainer.run().expect("run");
            let results = explainer.read(Readback::ALL).expect("read");
            for metric in Metric::ALL {
                let key = format!("{method}.{score}.{metric}");
                let ours: Vec<f32> = results
                    .iter()
                    .map(|r| {
                        r.metrics
                            .iter()
                            .find(|(m, _)| m == metric)
                            .map(|(_, v)| *v)
                            .expect("every metric")
                    })
                    .collect();
                let want = &fx[key.as_str()].data;
                let d = max_abs_diff(&ours, want);
                eprintln!("{key:56} {ours:?} vs {want:?}: max |diff| {d:.1e}");
                assert!(d <= 1e-3, "{key}: {ours:?} vs the reference's {want:?}");
                checked += 1;
            }
            // The class, logits and score read back are the clean input's.
            let got: Vec<u32> = results.iter().map(|r| r.class).collect();
            assert_eq!(got, classes, "{method}");
            let scores = &fx[format!("{method}.{score}.scores").as_str()].data;
            if score == TargetScore::Softmax {
                for (i, r) in results.iter().enumerate() {
                    let d = (r.score - scores[i * 2]).abs();
                    assert!(
                        d <= 1e-5,
                        "{method}: clean score {} vs {}",
                        r.score,
                        scores[i * 2]
                    );
                }
            }
        }
    }
    assert_eq!(checked, methods.len() * 2 * Metric::ALL.len());
}

/// The metrics of an image batch (preprocessed on the GPU) equal those of the same pictures
/// uploaded as normalised tensors, and a metric asked alone equals its value among all.
#[test]
fn metrics_of_images_equal_metrics_of_tensors() {
    let fx = fixtures("metrics/efficientnet-lite0");
    let pictures: Vec<image::RgbImage> = ["image.0", "image.1"]
        .iter()
        .map(|k| {
            let f = &fx[*k];
            image::RgbImage::from_raw(224, 224, f.bytes.clone()).expect("224 × 224 RGB")
        })
        .collect();
    let input: Vec<f32> = ["image.0", "image.1"]
        .iter()
        .flat_map(|k| normalized(&fx[*k], &[0.5; 3], &[0.5; 3]))
        .collect();
    let options = |metrics: Vec<Metric>| ExplainOptions {
        method: Method::GradCamPlusPlus,
        metrics,
        ..Default::default()
    };
    let engine = engine();
    let mut explainer = engine.explainer(2, options(Metric::ALL.to_vec())).unwrap();
    let refs: Vec<&image::RgbImage> = pictures.iter().collect();
    let from_images = explainer
        .explain(&refs, &[Target::Predicted; 2], Readback::ALL)
        .unwrap();
    explainer
        .upload_input(&input, &[Target::Predicted; 2])
        .unwrap();
    explainer.run().unwrap();
    let from_tensors = explainer.read(Readback::ALL).unwrap();
    let mut alone = engine
        .explainer(2, options(vec![Metric::AverageDrop]))
        .unwrap();
    let single = alone
        .explain(&refs, &[Target::Predicted; 2], Readback::ALL)
        .unwrap();
    for ((a, b), c) in from_images.iter().zip(&from_tensors).zip(&single) {
        assert!(a.overlay.is_some(), "the overlay is still made");
        for ((m, x), (n, y)) in a.metrics.iter().zip(&b.metrics) {
            assert_eq!(m, n);
            assert!(
                (x - y).abs() <= 1e-6,
                "{m}: {x} from images, {y} from tensors"
            );
        }
        let drop = |r: &gradcam::Explanation| {
            r.metrics
                .iter()
                .find(|(m, _)| *m == Metric::AverageDrop)
                .map(|(_, v)| *v)
        };
        assert_eq!(c.metrics.len(), 1);
        assert_eq!(drop(c), drop(a));
        assert!(max_abs_diff(&a.logits, &c.logits) == 0.0);
    }
}

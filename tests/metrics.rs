//! Faithfulness metrics against pytorch-grad-cam 1.5.7's `metrics` module, the Grad-CAM++
//! paper's formula and RISE's deletion and insertion as torch-cam computes them
//! (tools/make_metric_fixtures.py): on the shipped Lite0 at `head`, two images in one batch
//! explained for their predicted class, each method's CAM scored by every metric with softmax and
//! logit scores, within 1e-3 of the reference (the reference's CAM and ours differ by ≤ 1e-5, and
//! the metrics move with it by as little).

mod common;

use std::path::Path;

use common::{engine, fixture_metadata, fixtures, max_abs_diff, normalized};
use gradcam::{ExplainOptions, Method, Metric, Readback, Target, TargetScore};

#[test]
fn metrics_equal_pytorch_grad_cam() {
    let fx = fixtures("metrics/efficientnet-lite0");
    let meta = fixture_metadata("metrics/efficientnet-lite0");
    let methods: Vec<String> = serde_json::from_str(&meta["methods"]).expect("methods");
    let classes: Vec<u32> = serde_json::from_str(&meta["classes"]).expect("classes");
    let steps: u32 = meta["steps"].parse().expect("steps");
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
                        metric_steps: steps,
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
/// uploaded as normalised tensors, and a metric asked alone equals its value among all. The
/// uploaded input is intact after a run: running again gives the same results; the backward pass
/// alone, which needs the input's own activations, is refused.
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
    let mut explainer = engine
        .explainer(2, options(Metric::CONFIDENCE.to_vec()))
        .unwrap();
    let refs: Vec<&image::RgbImage> = pictures.iter().collect();
    let from_images = explainer
        .explain(&refs, &[Target::Predicted; 2], Readback::ALL)
        .unwrap();
    explainer
        .upload_input(&input, &[Target::Predicted; 2])
        .unwrap();
    explainer.run().unwrap();
    let from_tensors = explainer.read(Readback::ALL).unwrap();
    explainer.run().unwrap();
    let again = explainer.read(Readback::ALL).unwrap();
    for (a, b) in from_tensors.iter().zip(&again) {
        assert_eq!(a.metrics, b.metrics);
        assert_eq!(a.logits, b.logits);
        assert_eq!(a.cam, b.cam);
    }
    assert!(explainer.run_backward().is_err());
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

/// `gradcam evaluate`: metrics.json and metrics.csv hold each image's metrics per method (equal
/// to the reference's for the fixture's pictures), image by image; the summary is the mean; a
/// broken image is a one-line error naming it, and the others are still scored (exit 1).
#[test]
fn evaluate_writes_json_csv_and_a_summary() {
    let fx = fixtures("metrics/efficientnet-lite0");
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (i, name) in ["a.png", "b.png"].iter().enumerate() {
        let f = &fx[format!("image.{i}").as_str()];
        let path = dir.path().join(name);
        image::RgbImage::from_raw(224, 224, f.bytes.clone())
            .unwrap()
            .save(&path)
            .unwrap();
        paths.push(path.to_str().unwrap().to_string());
    }
    let broken = dir.path().join("broken.png");
    std::fs::write(&broken, b"not a png").unwrap();
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        let mut args = vec!["evaluate", &paths[0], &paths[1]];
        args.extend_from_slice(extra);
        common::run_gradcam(&args)
    };
    let broken_arg = broken.to_str().unwrap();
    let out_arg = out.to_str().unwrap();
    let done = run(&[broken_arg, "--method", "gradcam,eigencam", "--out", out_arg]);
    common::assert_no_panic(&done);
    assert_eq!(done.status.code(), Some(1));
    let err = common::stderr_lines(&done);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("broken.png"), "{err:?}");
    let stdout = String::from_utf8_lossy(&done.stdout);
    assert!(
        stdout.contains("gradcam") && stdout.contains("eigencam"),
        "{stdout}"
    );
    assert!(stdout.contains("average-drop") && stdout.contains("over 2 images"));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    let images = json["images"].as_array().unwrap();
    let order: Vec<(String, String)> = images
        .iter()
        .map(|e| {
            let image = e["image"].as_str().unwrap();
            let name = Path::new(image).file_name().unwrap().to_str().unwrap();
            (name.to_string(), e["method"].as_str().unwrap().to_string())
        })
        .collect();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        order,
        [
            pair("a.png", "gradcam"),
            pair("a.png", "eigencam"),
            pair("b.png", "gradcam"),
            pair("b.png", "eigencam")
        ]
    );
    for (k, entry) in images.iter().enumerate() {
        let (i, method) = (k / 2, entry["method"].as_str().unwrap());
        for metric in Metric::CONFIDENCE {
            let want = fx[format!("{method}.softmax.{metric}").as_str()].data[i];
            let got = entry["metrics"][metric.name()].as_f64().unwrap() as f32;
            assert!(
                (got - want).abs() <= 1e-3,
                "{method} {metric}: {got} vs {want}"
            );
        }
    }
    for method in ["gradcam", "eigencam"] {
        for metric in Metric::CONFIDENCE {
            let values: Vec<f64> = images
                .iter()
                .filter(|e| e["method"] == method)
                .map(|e| e["metrics"][metric.name()].as_f64().unwrap())
                .collect();
            let mean = values.iter().sum::<f64>() / 2.0;
            let summary = json["summary"][method][metric.name()].as_f64().unwrap();
            assert!((summary - mean).abs() < 1e-9, "{method} {metric}");
        }
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5);
    let header = format!(
        "image,class,label,method,{}",
        Metric::CONFIDENCE
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(lines[0], header);
    for (line, entry) in lines[1..].iter().zip(images) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[3], entry["method"].as_str().unwrap());
        let change: f32 = fields[4].parse().unwrap();
        let want = entry["metrics"]["cam-mult-image-confidence-change"]
            .as_f64()
            .unwrap() as f32;
        assert_eq!(change, want);
    }

    // Logit scores, three metrics, another method, over the same folder.
    let steps = fixture_metadata("metrics/efficientnet-lite0")["steps"].clone();
    let done = run(&[
        "--method",
        "layercam",
        "--metric",
        "average-drop,cam-mult-image-confidence-change,deletion-auc",
        "--steps",
        &steps,
        "--target-score",
        "logit",
        "--out",
        out_arg,
    ]);
    assert_eq!(
        done.status.code(),
        Some(0),
        "{:?}",
        common::stderr_lines(&done)
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for (i, entry) in json["images"].as_array().unwrap().iter().enumerate() {
        let metrics = entry["metrics"].as_object().unwrap();
        assert_eq!(metrics.len(), 3);
        for metric in [
            Metric::AverageDrop,
            Metric::CamMultImageConfidenceChange,
            Metric::DeletionAuc,
        ] {
            let want = fx[format!("layercam.logit.{metric}").as_str()].data[i];
            let got = metrics[metric.name()].as_f64().unwrap() as f32;
            assert!(
                (got - want).abs() <= 1e-3,
                "layercam {metric}: {got} vs {want}"
            );
        }
    }
    // An input where a result would go is refused before anything is written.
    let input = out.join("metrics.csv");
    std::fs::copy(&paths[0], &input).unwrap();
    let refused = common::run_gradcam(&["evaluate", input.to_str().unwrap(), "--out", out_arg]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(common::stderr_lines(&refused)[0].contains("where the results would go"));
    assert_eq!(
        std::fs::read(&input).unwrap(),
        std::fs::read(&paths[0]).unwrap(),
        "the input is untouched"
    );
    let bad = run(&["--metric", "road", "--out", out_arg]);
    common::assert_no_panic(&bad);
    assert_eq!(bad.status.code(), Some(2));
    let err = common::stderr_lines(&bad);
    assert!(err.len() == 1 && err[0].contains("`road`"), "{err:?}");
}

/// A profiled run with noisy samples and metrics (preprocessing timed first, then the samples,
/// the CAM and the metrics' passes) leaves the same results as a plain run, whether or not the
/// adapter has timestamps; a per-kernel profile has room for every launch it records.
#[test]
fn profiled_runs_with_samples_and_metrics_equal_plain_runs() {
    let engine = engine();
    let image = common::decode(&common::root().join("examples/images/chelsea.png"));
    let mut explainer = engine
        .explainer(
            1,
            ExplainOptions {
                method: Method::SmoothGradCamPlusPlus,
                samples: 2,
                metrics: Metric::CONFIDENCE.to_vec(),
                ..Default::default()
            },
        )
        .unwrap();
    let plain = explainer
        .explain(&[&image], &[Target::Predicted], Readback::ALL)
        .unwrap();
    let ctx = explainer.context().clone();
    for per_kernel in [false, true] {
        let mut profiler = gradcam::gpu::Profiler::new(&ctx, explainer.launches() as u32);
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        explainer.record_profiled(&mut encoder, &mut profiler, per_kernel);
        profiler.resolve(&mut encoder);
        ctx.queue.submit([encoder.finish()]);
        let profiled = explainer.read(Readback::ALL).unwrap();
        assert_eq!(profiled[0].metrics, plain[0].metrics);
        assert_eq!(profiled[0].cam, plain[0].cam);
        if profiler.enabled() {
            let stages: Vec<String> = profiler
                .read(&ctx)
                .unwrap()
                .into_iter()
                .map(|s| s.0)
                .collect();
            assert!(stages.iter().any(|s| s == "preprocess"), "{stages:?}");
        }
    }
}

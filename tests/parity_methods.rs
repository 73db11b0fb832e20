//! Every CAM method against pytorch-grad-cam 1.5.7's class of the same name
//! (tools/make_method_fixtures.py): the shipped EfficientNet-Lite0 at `head` and `blocks.8`, seeded
//! ResNet-50 at `layer4` (and seeded DenseNet-121's saliency and FullGrad maps, at the input),
//! each for the predicted class and an explicit one, max |diff| of the final
//! CAM ≤ 1e-4 (against the reference's float64 run where its float32 run flipped an activation on
//! the edge of rounding; for Eigen-CAM and EigenGradCAM against either sign of the principal
//! component). The maps made from the input gradient (saliency, FullGrad) run one image per batch
//! with the arch fixture's float32 ties pinned to the reference's side. The fixture stores the
//! maps to 7.7e-6, as round(65535 · cam) in u16.
//!
//! Keys `smooth/<method>.<layer>.<target>` hold the method with pytorch-grad-cam's
//! `eigen_smooth`, against either sign of its principal component; `aug/...` with its
//! `aug_smooth`.
//!
//! Score-CAM and Ablation-CAM, whose forward passes per channel run in chunks, are checked with
//! the default chunk and, for one target, with chunks of 7 rows, whose boundaries fall inside
//! the image.

mod common;

use std::collections::BTreeMap;

use common::ties::pin_ties;
use common::{
    assert_close, ctx, fixture_metadata, fixtures, floats, max_abs_diff, normalized,
    reference_model, Fixture,
};
use gradcam::{Engine, ExplainOptions, Method, Readback, Target};

/// A stored map: round(65535 · cam) as u16 (tools/make_method_fixtures.py), back in [0, 1].
fn map(f: &Fixture) -> Vec<f32> {
    f.data.iter().map(|v| v / 65535.0).collect()
}

/// Checks every map the fixture of `arch` holds; with `all_methods`, that it holds every method.
fn check(arch: &str, all_methods: bool) {
    // The fixture's parts (tools/make_method_fixtures.py `PARTS`), one map.
    let mut fx = fixtures(&format!("methods/{arch}"));
    for part in ["probe", "smooth"] {
        fx.extend(fixtures(&format!("methods/{arch}.{part}")));
    }
    let meta = fixture_metadata(&format!("methods/{arch}"));
    let arch_meta = fixture_metadata(&meta["weights"]);
    let model = reference_model(arch, &arch_meta);
    let input = normalized(
        &fx["image"],
        &floats(&arch_meta["mean"]),
        &floats(&arch_meta["std"]),
    );
    let engine = Engine::new(ctx(), model);

    // Keys `<method>.<layer>.<target>`, grouped by method and layer: both targets in one batch.
    // (eigen_smooth, aug_smooth, method, layer)
    type Group = (bool, bool, String, String);
    let mut groups: BTreeMap<Group, Vec<(String, Target)>> = BTreeMap::new();
    for key in fx
        .keys()
        .filter(|k| *k != "image" && !k.ends_with(".f64") && !k.ends_with(".neg"))
    {
        let (smooth, aug, plain) = match (key.strip_prefix("smooth/"), key.strip_prefix("aug/")) {
            (Some(k), _) => (true, false, k),
            (_, Some(k)) => (false, true, k),
            _ => (false, false, key.as_str()),
        };
        let (rest, target) = plain.rsplit_once('.').expect("<method>.<layer>.<target>");
        let (method, layer) = rest.split_once('.').expect("<method>.<layer>");
        let target = match target.strip_prefix('c') {
            Some(c) => Target::Class(c.parse().expect("class")),
            None => Target::Predicted,
        };
        groups
            .entry((smooth, aug, method.to_string(), layer.to_string()))
            .or_default()
            .push((key.clone(), target));
    }
    let methods: std::collections::BTreeSet<&str> = groups.keys().map(|k| k.2.as_str()).collect();
    // pytorch-grad-cam's methods (torch-cam's: `torch_cam_methods_equal_torch_cam`).
    let pytorch_grad_cam = |m: &&Method| m.reference_library() == "grad-cam";
    for method in Method::ALL
        .iter()
        .filter(|_| all_methods)
        .filter(pytorch_grad_cam)
    {
        assert!(
            methods.contains(method.name()),
            "{arch}: the fixture has no {method}"
        );
    }

    let runs = groups
        .iter()
        .flat_map(|((smooth, aug, method, layer), cases)| {
            let method: Method = method.parse().expect("method");
            let chunks = match method {
                Method::ScoreCam | Method::AblationCam if !smooth => vec![None, Some(7)],
                _ => vec![None],
            };
            // Chunk boundaries inside an image need one image: the chunked run takes the first
            // case alone.
            chunks.into_iter().map(move |chunk| {
                let cases = if chunk.is_some() {
                    &cases[..1]
                } else {
                    &cases[..]
                };
                ((*smooth, *aug), method, layer, cases, chunk)
            })
        });
    // The arch fixture's float32 ties (activations and max-pool windows on the edge of
    // rounding), pinned to the reference's side for the maps made from the input gradient, which
    // crosses every layer: one image per batch, as common::ties::pin_ties pins image 0.
    let flips = fixtures(&meta["weights"]).remove("flips");
    let runs = runs.flat_map(|(smooth, method, layer, cases, chunk)| {
        let batches: Vec<&[(String, Target)]> = if method.needs().input && flips.is_some() {
            cases.chunks(1).collect()
        } else {
            vec![cases]
        };
        batches
            .into_iter()
            .map(move |cases| (smooth, method, layer, cases, chunk))
    });
    for ((eigen_smooth, aug_smooth), method, layer, cases, method_batch) in runs {
        let mut explainer = engine
            .explainer(
                cases.len() as u32,
                ExplainOptions {
                    layer: layer.clone(),
                    method,
                    method_batch,
                    eigen_smooth,
                    aug_smooth,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{arch} {method} {layer}: {e}"));
        let batch: Vec<f32> = cases.iter().flat_map(|_| input.iter().copied()).collect();
        let targets: Vec<Target> = cases.iter().map(|c| c.1).collect();
        explainer
            .upload_input(&batch, &targets)
            .expect("upload input");
        explainer.run().expect("run");
        if let Some(flips) = flips.as_ref().filter(|_| method.needs().input) {
            if pin_ties(&explainer, flips) > 0 {
                explainer.run_backward().expect("backward pass");
            }
        }
        let results = explainer.read(Readback::ALL).expect("read");
        for ((key, _), result) in cases.iter().zip(results) {
            let cam = result.cam.expect("cam");
            let want = map(&fx[key]);
            // The other valid answers: the reference's float64 run (where its float32 run
            // flipped an activation on the edge of rounding), and for a principal component the
            // other sign (LAPACK's choice in the reference).
            let mut candidates = vec![(want, "float32")];
            if let Some(e) = fx.get(&format!("{key}.f64")) {
                candidates.push((map(e), "float64"));
            }
            if let Some(e) = fx.get(&format!("{key}.neg")) {
                candidates.push((map(e), "float32, other sign"));
            }
            let (closest, d, which) = candidates
                .into_iter()
                .map(|(c, which)| {
                    let d = max_abs_diff(&cam, &c);
                    (c, d, which)
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .expect("a reference");
            let chunk = method_batch.map_or(String::new(), |n| format!(" (chunks of {n})"));
            assert_close(&format!("{arch} {key}{chunk}"), &cam, &closest, 1e-4, 0.0);
            eprintln!("{arch} {key:40} CAM max |diff| {d:.2e} from the {which} reference{chunk}");
        }
    }
}

#[test]
fn efficientnet_lite0_shipped() {
    check("efficientnet-lite0", true);
}

#[test]
fn resnet50_seeded() {
    check("resnet50", false);
}

/// Saliency and FullGrad only: FullGrad counts the BatchNorms that follow no conv (each dense
/// layer's `norm1`, the transitions' `norm`, `norm5` before the in-place ReLU).
#[test]
fn densenet121_seeded() {
    check("densenet121", false);
}

#[test]
fn methods_without_a_gradient_run_no_backward_pass() {
    let engine = common::engine();
    let explainer = |method| {
        engine
            .explainer(
                1,
                ExplainOptions {
                    layer: "blocks.8".into(),
                    method,
                    ..Default::default()
                },
            )
            .expect("explainer")
    };
    let (grad, eigen) = (explainer(Method::GradCam), explainer(Method::EigenCam));
    assert!(!Method::EigenCam.needs().layer_gradient);
    // Grad-CAM: the logit's gradient, one launch per backward step, GAP and combine; Eigen-CAM:
    // centring, Gram matrix and power iteration, and no backward launch.
    let backward = 1 + grad.plan().steps.len();
    assert!(backward > 10, "blocks.8 is deep enough to tell");
    assert_eq!(eigen.launches() + backward, grad.launches() + 1);
    // Nor any gradient buffer.
    assert!(eigen.target_gradient_buffer().is_none());
    assert!(grad.target_gradient_buffer().is_some());
    assert!(eigen.gpu_bytes() < grad.gpu_bytes());
}

/// CAM and Smooth Grad-CAM++ against torch-cam, their reference (tools/make_torchcam_fixtures.py),
/// on the shipped Lite0 and seeded ResNet-18 (CAM also on seeded DenseNet-121, whose
/// `features.norm5` `F.relu` overwrites in place before the pool), for the predicted class and
/// another: the map at the layer's resolution (`cam_grid`, what `--raw` writes) within 1e-4 of
/// torch-cam's normalised map. Smooth Grad-CAM++ gets the same noise on both sides (the
/// fixture's `noise`), and is compared with the reference's float64 run too where its float32 run
/// differs from it by more than 1e-5. CAM elsewhere than the pool's input is a one-line error.
#[test]
fn torch_cam_methods_equal_torch_cam() {
    let fx = fixtures("methods/torchcam");
    let meta = fixture_metadata("methods/torchcam");
    let weights: BTreeMap<String, String> =
        serde_json::from_str(&meta["weights"]).expect("weights map");
    let classes: BTreeMap<String, u32> =
        serde_json::from_str(&meta["classes"]).expect("classes map");
    let noise: serde_json::Value = serde_json::from_str(&meta["noise"]).expect("noise");
    let mut checked: Vec<(Method, &str)> = Vec::new();
    for (arch, fixture) in &weights {
        let arch_meta = fixture_metadata(fixture);
        let model = reference_model(arch, &arch_meta);
        let (mean, std) = (floats(&arch_meta["mean"]), floats(&arch_meta["std"]));
        let input = normalized(&fixtures(fixture)["image"], &mean, &std);
        let engine = Engine::new(ctx(), model);
        let prefix = format!("{arch}.");
        let mut keys: Vec<&String> = fx
            .keys()
            .filter(|k| k.starts_with(&prefix) && !k.ends_with(".f64"))
            .collect();
        keys.sort();
        for key in keys {
            let (method, rest) = key[prefix.len()..].split_once('.').expect("method.rest");
            let (layer, _) = rest.rsplit_once('.').expect("layer.target");
            let method: Method = method.parse().expect("method");
            let mut explainer = engine
                .explainer(
                    1,
                    ExplainOptions {
                        method,
                        layer: layer.to_string(),
                        samples: noise["samples"].as_u64().expect("samples") as u32,
                        noise_std: noise["std"].as_f64().expect("std") as f32,
                        seed: noise["seed"].as_u64().expect("seed") as u32,
                        ..Default::default()
                    },
                )
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            let target = Target::Class(classes[key.as_str()]);
            explainer.upload_input(&input, &[target]).expect("upload");
            explainer.run().expect("run");
            let result = explainer.read(Readback::ALL).expect("read").remove(0);
            let grid = result.cam_grid.expect("cam_grid");
            let mut candidates = vec![(&fx[key.as_str()].data, "float32")];
            if let Some(e) = fx.get(&format!("{key}.f64")) {
                candidates.push((&e.data, "float64"));
            }
            let (d, which) = candidates
                .into_iter()
                .map(|(want, which)| (max_abs_diff(&grid, want), which))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .expect("a reference");
            eprintln!("{key}: cam_grid within {d:.2e} of torch-cam's {which} map");
            assert!(d <= 1e-4, "{key}: cam_grid differs by {d}");
            assert!(result.cam.expect("cam").iter().all(|v| v.is_finite()));
            checked.push((method, arch.as_str()));
        }
        if arch == "resnet18" {
            let error = engine
                .explainer(
                    1,
                    ExplainOptions {
                        method: Method::Cam,
                        layer: "layer3".into(),
                        ..Default::default()
                    },
                )
                .err()
                .map(|e| e.to_string())
                .expect("cam at layer3 is an error");
            assert!(error.contains("reads, `layer4`, and no other"), "{error}");
            assert!(!error.contains('\n'));
        }
    }
    // Each torch-cam method on the shipped model and on a ResNet.
    for method in Method::ALL
        .iter()
        .filter(|m| m.reference_library() == "torchcam")
    {
        let archs: Vec<&str> = checked
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, a)| *a)
            .collect();
        assert!(
            archs.contains(&"efficientnet-lite0") && archs.iter().any(|a| a.starts_with("resnet")),
            "{method}: checked on {archs:?}"
        );
    }
}

/// Smooth Grad-CAM++'s noise depends on the image alone: an image's map is the same alone and
/// second in a batch, and another seed gives another map. It combines with nothing that would
/// run the network on the noisy input afterwards: a one-line error.
#[test]
fn smooth_gradcam_plusplus_noise_follows_the_image() {
    let engine = common::engine();
    let images = ["coffee.png", "chelsea.png"]
        .map(|name| common::decode(&common::root().join("examples/images").join(name)));
    let options = |seed| ExplainOptions {
        method: Method::SmoothGradCamPlusPlus,
        samples: 2,
        seed,
        ..Default::default()
    };
    let cam = |batch: &[&image::RgbImage], seed| {
        let mut explainer = engine.explainer(batch.len() as u32, options(seed)).unwrap();
        let targets = vec![Target::Predicted; batch.len()];
        let results = explainer.explain(batch, &targets, Readback::ALL).unwrap();
        results.last().unwrap().cam.clone().expect("cam")
    };
    let alone = cam(&[&images[1]], 3);
    let second = cam(&[&images[0], &images[1]], 3);
    let d = max_abs_diff(&alone, &second);
    assert!(d <= 1e-6, "alone and in a batch differ by {d}");
    let other_seed = max_abs_diff(&alone, &cam(&[&images[1]], 4));
    assert!(
        other_seed > 1e-3,
        "another seed moves the map by {other_seed}"
    );
    for (what, set) in [
        ("aug-smooth", (true, false)),
        ("guided pictures", (false, true)),
    ] {
        let error = engine
            .explainer(
                1,
                ExplainOptions {
                    aug_smooth: set.0,
                    guided: set.1,
                    ..options(0)
                },
            )
            .err()
            .map(|e| e.to_string())
            .expect("an error");
        assert_eq!(
            error,
            format!("smooth-gradcam++ does not combine with {what}")
        );
    }
}

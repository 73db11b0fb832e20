//! Every architecture against its reference, with seeded weights regenerated from the fixture's
//! manifest (tools/make_arch_fixtures.py): logits, top-5, pytorch-grad-cam's GradCAM at the
//! default layer and an earlier one (for another class), and the input gradient against
//! torch.autograd.grad over the whole image (ops on a float32 tie set to the reference's side).
//! The file is recognised as its architecture with no hint. Every pipeline variant the tuner may
//! choose (src/gpu/tune.rs) is forced in turn and checked the same way.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::ties::pin_ties;
use common::{
    assert_close, ctx, fixture_metadata, fixtures, floats, max_abs_diff, normalized,
    reference_model, top_indices, Fixture,
};
use gradcam::gpu::kernels::{
    tuning_candidates, DEPTHWISE_STAGED, POINTWISE_SUBGROUP, POINTWISE_VARIANT, POINTWISE_VARIANTS,
};
use gradcam::gpu::{KernelId, TuneMode};
use gradcam::{Engine, ExplainOptions, GpuContext, Readback, Target};

struct Reference {
    tensors: HashMap<String, Fixture>,
    metadata: HashMap<String, String>,
}

fn reference(arch: &str) -> Reference {
    Reference {
        tensors: fixtures(&format!("arch/{arch}")),
        metadata: fixture_metadata(&format!("arch/{arch}")),
    }
}

fn check(arch: &str) {
    check_on(ctx(), arch);
}

fn check_on(ctx: Arc<GpuContext>, arch: &str) {
    let r = reference(arch);
    let model = reference_model(arch, &r.metadata);
    assert_eq!(model.architecture, arch, "recognised architecture");
    let (mean, std) = (floats(&r.metadata["mean"]), floats(&r.metadata["std"]));
    assert_eq!(
        (model.mean.to_vec(), model.std.to_vec()),
        (mean.clone(), std.clone())
    );
    let image = &r.tensors["image"];
    assert_eq!(image.shape[0] as u32, model.input_size);
    let input = normalized(image, &mean, &std);
    let predicted: u32 = r.metadata["classes"].parse().expect("class");
    let engine = Engine::new(ctx, model);

    let mut cams: Vec<(&str, &str, Target)> = Vec::new();
    for key in r
        .tensors
        .keys()
        .filter(|k| k.starts_with("cam.") && !k.ends_with(".f64"))
    {
        let rest = &key["cam.".len()..];
        let (layers, target) = match rest.rsplit_once(".c") {
            Some((l, c)) if c.chars().all(|d| d.is_ascii_digit()) => {
                (l, Target::Class(c.parse().expect("class")))
            }
            _ => (rest, Target::Predicted),
        };
        cams.push((key.as_str(), layers, target));
    }
    cams.sort_by_key(|c| c.0);
    assert!(
        cams.len() >= 2,
        "{arch}: the fixture has CAMs at two layers"
    );
    let default_layer = engine.model().default_layer.clone();
    assert!(
        cams.iter().any(|c| c.1 == default_layer),
        "{arch}: the fixture explains the default layer {default_layer}"
    );

    for (key, layers, target) in cams {
        let input_gradient = layers == default_layer;
        let mut explainer = engine
            .explainer(
                1,
                ExplainOptions {
                    layer: layers.to_string(),
                    input_gradient,
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{arch} {layers}: {e}"));
        explainer
            .upload_input(&input, &[target])
            .expect("upload input");
        explainer.run().expect("run");
        // An op the reference found on the edge of float32 rounding (an activation near its
        // step, a max-pool window with two near-equal maxima) may go the other way here: either
        // side is exact, and one such flip moves the gradients downstream of it, and so CAMs at
        // inner layers and the input gradient, by up to a few percent. Those ops are set to the
        // reference's side (by less than float32 rounding of the reference's own values, or for
        // seeded Lite3 the fixture's wider margin), and the backward pass and the CAM run again.
        let pinned = pin_ties(&explainer, &r.tensors["flips"]);
        if pinned > 0 {
            explainer.run_backward().expect("backward pass");
        }
        let result = explainer.read(Readback::ALL).expect("read").remove(0);

        let logits = &r.tensors["logits"].data;
        let scale = logits.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = max_abs_diff(&result.logits, logits);
        assert!(
            d <= 1e-3 * scale,
            "{arch}: logits differ by {d} (largest {scale})"
        );
        let k = logits.len().min(5);
        assert_eq!(
            top_indices(&result.logits, k),
            top_indices(logits, k),
            "{arch}: top-5"
        );
        let expected_class = match target {
            Target::Class(c) => c,
            Target::Predicted => predicted,
            Target::Rank(_) => unreachable!("the fixtures name classes"),
        };
        assert_eq!(result.class, expected_class, "{arch} {key}: class");

        let cam = result.cam.expect("cam");
        // Where the reference's float32 run flipped an activation on the edge of rounding, its
        // float64 run is the other valid answer (the fixture holds it then).
        let want = &r.tensors[key].data;
        let exact = r.tensors.get(&format!("{key}.f64")).map(|f| &f.data);
        let d32 = max_abs_diff(&cam, want);
        let (d, which) = match exact {
            Some(e) if max_abs_diff(&cam, e) < d32 => (max_abs_diff(&cam, e), "float64"),
            _ => (d32, "float32"),
        };
        let closest = if which == "float64" {
            exact.unwrap()
        } else {
            want
        };
        assert_close(&format!("{arch} {key}"), &cam, closest, 1e-4, 0.0);
        eprintln!(
            "{arch} {key}: logits max |diff| {:.2e} (largest {scale:.2}), CAM max |diff| {d:.2e} \
             from the {which} reference",
            max_abs_diff(&result.logits, logits)
        );

        if input_gradient {
            let want = &r.tensors["input_grad"].data;
            let g = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            // Compared on the whole image, with the ties pinned above.
            let got = explainer.read_input_gradient().expect("input gradient");
            let what = format!("{arch} input gradient");
            assert_close(&what, &got, want, 1e-4 * g, 0.0);
            eprintln!(
                "{arch} input gradient: max |diff| {:.2e} (largest {g:.2e}) on the whole image; \
                 {pinned} of {} ops on the edge of float32 rounding went the other way and were \
                 set to the reference's side",
                max_abs_diff(&got, want),
                r.tensors["flips"].shape[0],
            );
        }
    }
}

#[test]
fn resnet18_with_ten_classes() {
    check("resnet18");
}

#[test]
fn resnet34() {
    check("resnet34");
}

#[test]
fn resnet50() {
    check("resnet50");
}

#[test]
fn resnext50_32x4d() {
    check("resnext50_32x4d");
}

#[test]
fn resnet101() {
    check("resnet101");
}

#[test]
fn vgg16() {
    check("vgg16");
}

#[test]
fn vgg16_bn() {
    check("vgg16_bn");
}

#[test]
fn mobilenet_v2() {
    check("mobilenet_v2");
}

#[test]
fn densenet121() {
    check("densenet121");
}

#[test]
fn mobilenet_v3_small() {
    check("mobilenet_v3_small");
}

#[test]
fn mobilenet_v3_large() {
    check("mobilenet_v3_large");
}

#[test]
fn regnet_y_400mf() {
    check("regnet_y_400mf");
}

#[test]
fn convnext_tiny() {
    check("convnext_tiny");
}

#[test]
fn inception_v3() {
    check("inception_v3");
}

#[test]
fn legacy_xception() {
    check("legacy_xception");
}

#[test]
fn efficientnet_b0() {
    check("efficientnet_b0");
}

#[test]
fn efficientnet_lite0_shipped() {
    check("efficientnet-lite0");
}

#[test]
fn efficientnet_lite1() {
    check("efficientnet-lite1");
}

#[test]
fn efficientnet_lite2() {
    check("efficientnet-lite2");
}

#[test]
fn efficientnet_lite3() {
    check("efficientnet-lite3");
}

#[test]
fn efficientnet_lite4() {
    check("efficientnet-lite4");
}

/// Each variant the tuner may choose instead of the builder's, forced on every launch whose
/// candidates include it, on networks that use it: the same parity as the builder's choice.
#[test]
fn every_tuned_variant() {
    let ctx = Arc::new(GpuContext::new(&Default::default()).expect("GPU context"));
    ctx.tuner.set_mode(TuneMode::Off);
    // Every pointwise candidate besides the builder's is forced: a new variant is not forgotten.
    // The builder's is the subgroup tile where the device has it (lavapipe), else 24 × 6; on
    // lavapipe the pointwise convs and the dense convs of the subgroup tile read their inputs
    // through textures (the *_texture kernels, the same tiles).
    let texels = ctx.kernels.texel_inputs();
    let (pointwise, depthwise, dense) = if texels {
        (
            KernelId::PointwiseConvTexture,
            KernelId::DepthwiseConvTexture,
            KernelId::Conv2dTexture,
        )
    } else {
        (
            KernelId::PointwiseConv,
            KernelId::DepthwiseConv,
            KernelId::Conv2d,
        )
    };
    let builders = ctx.kernels.pointwise_variant();
    let others: Vec<usize> = tuning_candidates(pointwise, builders)
        .into_iter()
        .filter(|&v| v != builders)
        .collect();
    // The register tiles, split-K layouts and workgroup tile but the builder's (the subgroup
    // tile is a candidate only where it is the builder's).
    let expected: Vec<usize> = (1..=POINTWISE_VARIANTS.len())
        .filter(|&v| v != builders && v != POINTWISE_SUBGROUP)
        .collect();
    assert_eq!(others, expected);
    // The dense 3×3 convs: the texture kernel's other subgroup tile and its generic path, or
    // conv2d's generic, register-tiled and workgroup-tiled paths.
    let dense_builders = if texels {
        ctx.kernels.conv2d_texture_variant(3, 1, 64, 64)
    } else {
        ctx.kernels.conv2d_variant(3, 1, 64)
    };
    let dense_others: Vec<usize> = if texels {
        std::iter::once(0)
            .chain(tuning_candidates(dense, dense_builders))
            .filter(|&v| v != dense_builders)
            .collect()
    } else {
        vec![0, 2, 3]
    };
    // Each forced variant runs on the networks with launches that take it: Lite0 for the
    // pointwise and depthwise convs, its stem and its classifier; ResNet-18 for the dense 3×3
    // convs (where the stem's specialization is no candidate).
    let mut cases: Vec<(KernelId, &[usize], &str)> = vec![
        // The 24 × 6, 8 × 2 and 4 × 1 register tiles, the split-K layouts and the workgroup
        // tile, but the builder's (the subgroup tile on lavapipe, 24 × 6 on other CPU adapters,
        // 8 × 2 on a GPU).
        (pointwise, &others, "efficientnet-lite0"),
        // The generic depthwise kernel and the workgroup-staged one instead of the kernel-size
        // specializations.
        (depthwise, &[0, DEPTHWISE_STAGED], "efficientnet-lite0"),
        // The dense convs' other paths on ResNet-18 (with textures, the generic path replaces
        // the 7×7 stem there too).
        (dense, &dense_others, "resnet18"),
        // The classifier by one workgroup per output (and one output per invocation, where the
        // builder's is the subgroup variant).
        (KernelId::Linear, &[0, 1], "efficientnet-lite0"),
    ];
    // Lite's stem: with textures the generic path instead of the subgroup stem; else the
    // generic conv, the register-tiled specialization, the register-tiled and the
    // workgroup-tiled paths.
    let stems: &[usize] = if texels { &[0] } else { &[0, 1, 2, 3] };
    cases.push((dense, stems, "efficientnet-lite0"));
    for (kernel, variants, arch) in cases {
        for &variant in variants {
            ctx.tuner.force(kernel, Some(variant));
            eprintln!("{kernel:?} forced to variant {variant}: {arch}");
            check_on(ctx.clone(), arch);
            ctx.tuner.force(kernel, None);
        }
    }
    if texels {
        // The storage-buffer kernels the texture ones stand in for on lavapipe (and that run
        // where an input is too large for a texture): their subgroup tiles as the builder
        // chooses them, the squeeze-and-excitation kernels, and the 24 × 6 register tile.
        ctx.kernels.set_texel_inputs(false);
        eprintln!("without texture reads: efficientnet-lite0, resnet18, mobilenet_v3_small");
        check_on(ctx.clone(), "efficientnet-lite0");
        check_on(ctx.clone(), "resnet18");
        // Its squeeze-and-excitation blocks' pool and gate.
        check_on(ctx.clone(), "mobilenet_v3_small");
        ctx.tuner
            .force(KernelId::PointwiseConv, Some(POINTWISE_VARIANT));
        check_on(ctx.clone(), "efficientnet-lite0");
        ctx.tuner.force(KernelId::PointwiseConv, None);
        // conv2d's other paths for Lite's stem and ResNet's 3×3 convs.
        for (variants, arch) in [
            (&[0, 1, 2, 3][..], "efficientnet-lite0"),
            (&[2], "resnet18"),
        ] {
            for &variant in variants {
                ctx.tuner.force(KernelId::Conv2d, Some(variant));
                eprintln!("without texture reads, Conv2d forced to variant {variant}: {arch}");
                check_on(ctx.clone(), arch);
            }
        }
        ctx.tuner.force(KernelId::Conv2d, None);
        ctx.kernels.set_texel_inputs(true);
    }
}

/// Tuning on (as on a GPU): each launch shape is timed once, a candidate is kept for each, the
/// choices are cached on disk and read back by a new context, and the results still match the
/// reference.
#[test]
fn tuned_choices_are_cached_and_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ctx = Arc::new(GpuContext::new(&Default::default()).expect("GPU context"));
    ctx.tuner.set_cache_dir(dir.path());
    ctx.tuner.set_mode(TuneMode::On);
    check_on(ctx.clone(), "efficientnet-lite0");
    let choices = ctx.tuner.choices();
    assert!(
        choices.iter().any(|(k, _)| k.starts_with("pointwise_conv"))
            && choices.iter().any(|(k, _)| k.starts_with("depthwise_conv"))
            && choices.iter().any(|(k, _)| k.starts_with("conv2d")),
        "every tuned kernel was timed: {choices:?}"
    );
    let path = ctx.tuner.cache_path().expect("a cache path");
    assert!(
        path.starts_with(dir.path()) && path.exists(),
        "{}",
        path.display()
    );

    let again = Arc::new(GpuContext::new(&Default::default()).expect("GPU context"));
    again.tuner.set_cache_dir(dir.path());
    assert_eq!(
        again.tuner.choices(),
        choices,
        "read back from {}",
        path.display()
    );
    // An unwritable cache costs nothing but time.
    again.tuner.set_cache_dir(path.join("not-a-folder"));
    again.tuner.set_mode(TuneMode::Again);
    check_on(again.clone(), "efficientnet-lite0");
}

//! Vision transformers against pytorch-grad-cam run as its ViT tutorial runs it
//! (tools/make_vit_fixtures.py), the weights regenerated from the fixture's manifest: seeded timm
//! ViT-Tiny, distilled DeiT-Small, a two-block DeiT III (LayerScale, a position embedding of the
//! patches only), a two-block ViT with timm's mean-pooled head (`global_pool="avg"`, `fc_norm`),
//! a two-block torchvision `VisionTransformer` (torchvision's names), and Score-CAM and
//! Ablation-CAM (the reference's `AblationLayerVit`) on a one-block torchvision ViT. Logits
//! within 1e-4 of the largest and the same top-5; each CAM (Grad-CAM, Grad-CAM++, XGrad-CAM,
//! LayerCAM, Eigen-CAM at two blocks, the prefix tokens dropped and the patch tokens laid on
//! their grid) within 1e-4. The file is recognised as its architecture with no hint. The
//! attention's key-tiled variant is forced and checked the same way.

mod common;

use common::{
    ctx, fixture_metadata, fixtures, floats, max_abs_diff, normalized, reference_model, top_indices,
};
use std::sync::Arc;

use gradcam::gpu::kernels::{tuning_candidates, ATTENTION_KEY_TILES};
use gradcam::gpu::{KernelId, TuneMode};
use gradcam::{Engine, ExplainOptions, GpuContext, Method, Readback, Target};

fn check(arch: &str) {
    check_on(ctx(), arch);
}

fn check_on(ctx: Arc<GpuContext>, arch: &str) {
    let tensors = fixtures(&format!("vit/{arch}"));
    let meta = fixture_metadata(&format!("vit/{arch}"));
    let model = reference_model(arch, &meta);
    assert_eq!(model.architecture, meta["arch"], "recognised architecture");
    let (mean, std) = (floats(&meta["mean"]), floats(&meta["std"]));
    assert_eq!(
        (model.mean.to_vec(), model.std.to_vec()),
        (mean.clone(), std.clone())
    );
    let grid = model.token_grid.expect("a token grid");
    assert_eq!(grid.prefix.to_string(), meta["prefix"]);
    assert_eq!(grid.height.to_string(), meta["grid"]);
    let image = &tensors["image"];
    let input = normalized(image, &mean, &std);
    let predicted: u32 = meta["classes"].parse().expect("class");
    let engine = Engine::new(ctx, model);
    let default_layer = engine.model().default_layer.clone();
    assert!(
        tensors
            .keys()
            .any(|k| k.ends_with(&format!(".{default_layer}"))
                || k.contains(&format!(".{default_layer}.c"))),
        "{arch}: the fixture explains the default layer {default_layer}"
    );

    let mut keys: Vec<&String> = tensors
        .keys()
        .filter(|k| k.starts_with("cam.") && !k.ends_with(".f64") && !k.ends_with(".neg"))
        .collect();
    keys.sort();
    assert!(keys.len() >= 2, "{arch}: CAMs at two layers");
    for key in keys {
        let rest = &key["cam.".len()..];
        let (method, rest) = rest.split_once('.').expect("cam.<method>.<layer>");
        let (layer, target) = match rest.rsplit_once(".c") {
            Some((l, c)) if c.chars().all(|d| d.is_ascii_digit()) => {
                (l, Target::Class(c.parse().expect("class")))
            }
            _ => (rest, Target::Predicted),
        };
        let method: Method = method.parse().expect("method");
        let mut explainer = engine
            .explainer(
                1,
                ExplainOptions {
                    method,
                    layer: layer.to_string(),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{arch} {key}: {e}"));
        explainer
            .upload_input(&input, &[target])
            .expect("upload input");
        explainer.run().expect("run");
        let result = explainer.read(Readback::ALL).expect("read").remove(0);

        let logits = &tensors["logits"].data;
        let scale = logits.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = max_abs_diff(&result.logits, logits);
        assert!(
            d <= 1e-4 * scale,
            "{arch}: logits differ by {d} (largest {scale})"
        );
        assert_eq!(
            top_indices(&result.logits, 5),
            top_indices(logits, 5),
            "{arch}: top-5"
        );
        let expected = match target {
            Target::Class(c) => c,
            _ => predicted,
        };
        assert_eq!(result.class, expected, "{arch} {key}: class");

        let cam = result.cam.expect("cam");
        let want = &tensors[key.as_str()].data;
        // The other valid answers: the reference's float64 run, and for Eigen-CAM the principal
        // component's other sign (LAPACK's choice in the reference).
        let mut d = max_abs_diff(&cam, want);
        for other in ["f64", "neg"] {
            if let Some(e) = tensors.get(&format!("{key}.{other}")) {
                d = d.min(max_abs_diff(&cam, &e.data));
            }
        }
        eprintln!("{arch} {key}: CAM within {d:.2e}");
        assert!(d <= 1e-4, "{arch} {key}: CAM differs by {d}");
    }
}

#[test]
fn vit_tiny_equals_the_reference() {
    check("vit_tiny_patch16_224");
}

#[test]
fn deit_small_distilled_equals_the_reference() {
    check("deit_small_distilled_patch16_224");
}

#[test]
fn torchvision_vit_equals_the_reference() {
    check("vision_transformer");
}

#[test]
fn deit3_custom_vit_equals_the_reference() {
    check("vit");
}

#[test]
fn score_cam_and_ablation_cam_at_token_layers_equal_the_reference() {
    check("vit_probe");
}

#[test]
fn mean_pooled_vit_equals_the_reference() {
    check("vit_avg");
}

/// Each attention variant the tuner may choose, forced on every launch: the key-tiled one (for
/// GPUs) on a two-block ViT (197 tokens: a last tile of 5 keys) and, through Score-CAM's probe
/// batches, on a one-block ViT of 17 tokens.
#[test]
fn every_attention_variant() {
    assert_eq!(
        tuning_candidates(KernelId::Attention, 0),
        vec![0, ATTENTION_KEY_TILES]
    );
    let ctx = Arc::new(GpuContext::new(&Default::default()).expect("GPU context"));
    ctx.tuner.set_mode(TuneMode::Off);
    ctx.tuner
        .force(KernelId::Attention, Some(ATTENTION_KEY_TILES));
    for arch in ["vision_transformer", "vit_probe"] {
        check_on(ctx.clone(), arch);
    }
}

//! ONNX import against the reference: two small CNNs written for the tests (tools/
//! make_onnx_fixtures.py), exported by torch's TorchScript and dynamo exporters, loaded with the
//! layer names their PyTorch modules have, give the modules' logits and pytorch-grad-cam's
//! GradCAM at several layers: `tinynet` (residual blocks, ReLU6, everything fused into the
//! convs) and `actnet` (SiLU, Hardswish, GELU, LeakyReLU, Hardsigmoid, BatchNorm-ReLU before a
//! conv: elementwise ops that keep their input; squeeze-and-excitation with a squeezed width that
//! is no multiple of 4; 1×7, 7×1, grouped and dilated convs). Broken files are one-line errors naming the
//! file.

mod common;

use std::path::PathBuf;

use common::{
    assert_close, ctx, fixture_metadata, fixtures, floats, max_abs_diff, normalized, root,
    top_indices,
};
use gradcam::model::LoadOptions;
use gradcam::{Engine, Error, ExplainOptions, Model, Readback, Target};

fn onnx(name: &str) -> PathBuf {
    root().join("tests/fixtures/onnx").join(name)
}

fn check(net: &str, exporter: &str, layers: &[&str], classes: u32) {
    let r = fixtures(&format!("onnx/{net}"));
    let meta = fixture_metadata(&format!("onnx/{net}"));
    let path = onnx(&format!("{net}.{exporter}.onnx"));
    let model = Model::load(&path).unwrap_or_else(|e| panic!("{exporter}: {e}"));
    let (mean, std) = (floats(&meta["mean"]), floats(&meta["std"]));
    assert_eq!(
        (model.mean.to_vec(), model.std.to_vec()),
        (mean.clone(), std.clone())
    );
    assert_eq!(model.input_size, 64, "{exporter}: the input's static size");
    assert_eq!(model.classes, classes);
    assert_eq!(
        model.default_layer, "head",
        "{net} {exporter}: what the pool reads"
    );
    let names: Vec<&str> = model
        .target_layers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    for name in layers {
        assert!(
            names.contains(name),
            "{net} {exporter}: no layer `{name}` in {names:?}"
        );
    }
    let input = normalized(&r["image"], &mean, &std);
    let predicted: u32 = meta["classes"].parse().expect("class");
    let engine = Engine::new(ctx(), model);
    for &layer in layers {
        let mut explainer = engine
            .explainer(
                1,
                ExplainOptions {
                    layer: layer.to_string(),
                    ..Default::default()
                },
            )
            .unwrap_or_else(|e| panic!("{exporter} {layer}: {e}"));
        explainer
            .upload_input(&input, &[Target::Predicted])
            .expect("upload input");
        explainer.run().expect("run");
        let result = explainer.read(Readback::ALL).expect("read").remove(0);
        let logits = &r["logits"].data;
        let scale = logits.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = max_abs_diff(&result.logits, logits);
        assert!(
            d <= 1e-4 * scale,
            "{exporter}: logits differ by {d} (largest {scale})"
        );
        assert_eq!(
            top_indices(&result.logits, 5),
            top_indices(logits, 5),
            "{exporter}: top-5"
        );
        assert_eq!(result.class, predicted, "{exporter}: class");
        let cam = result.cam.expect("cam");
        let key = format!("cam.{layer}");
        let want = &r[&key].data;
        let (closest, which) = match r.get(&format!("{key}.f64")) {
            Some(e) if max_abs_diff(&cam, &e.data) < max_abs_diff(&cam, want) => {
                (&e.data, "float64")
            }
            _ => (want, "float32"),
        };
        assert_close(&format!("{exporter} {key}"), &cam, closest, 1e-4, 0.0);
        eprintln!(
            "{exporter} {layer}: logits max |diff| {d:.2e} (largest {scale:.2}), CAM max |diff| \
             {:.2e} from the {which} reference",
            max_abs_diff(&cam, closest)
        );
    }
}

const TINYNET: &[&str] = &["head", "layer2", "layer1"];
const ACTNET: &[&str] = &["head", "factor", "layer3", "mix", "se", "layer2", "layer1"];

#[test]
fn torchscript_export_equals_the_reference() {
    check("tinynet", "torchscript", TINYNET, 10);
    check("actnet", "torchscript", ACTNET, 10);
}

#[test]
fn dynamo_export_equals_the_reference() {
    check("tinynet", "dynamo", TINYNET, 10);
    check("actnet", "dynamo", ACTNET, 10);
}

#[test]
fn layer_names_are_module_paths() {
    for exporter in ["torchscript", "dynamo"] {
        let model = Model::load(onnx(&format!("tinynet.{exporter}.onnx"))).expect("model");
        let names: Vec<&str> = model
            .target_layers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        for name in ["layer1.0", "layer1.1", "layer2.0", "maxpool"] {
            assert!(
                names.contains(&name),
                "{exporter}: no layer `{name}` in {names:?}"
            );
        }
        // A layer a fused kernel computes inside (the conv before its ReLU) is not a tensor.
        assert!(!names.contains(&"layer1.0.conv1"), "{exporter}: {names:?}");
        // `layer1` is `layer1.1`'s output, as `model.layer1` is.
        let of = |n: &str| {
            model
                .target_layers
                .iter()
                .find(|(m, _)| m == n)
                .map(|(_, t)| *t)
        };
        assert_eq!(of("layer1"), of("layer1.1"), "{exporter}");
    }
}

#[test]
fn broken_files_are_one_line_errors() {
    let bytes = std::fs::read(onnx("tinynet.torchscript.onnx")).expect("fixture");
    let dir = tempfile::tempdir().expect("temp dir");
    // Truncated.
    let cut = dir.path().join("cut.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = Model::load(&cut).unwrap_err();
    assert!(matches!(e, Error::WeightsFormat { .. }), "{e:?}");
    let message = e.to_string();
    assert!(
        message.contains("cut.onnx") && !message.contains('\n'),
        "{message}"
    );
    // Not protobuf at all.
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"\xff\xff\xff\xff not a model").unwrap();
    let e = Model::load(&junk).unwrap_err().to_string();
    assert!(
        e.contains("junk.onnx") && e.contains("not an ONNX model"),
        "{e}"
    );
    // Every prefix decodes to an error or a model, never a panic; so does the file with bytes
    // changed along its length (attributes, shapes, initializers).
    for end in (0..bytes.len()).step_by(997) {
        let _ = Model::from_bytes(std::path::Path::new("prefix.onnx"), bytes[..end].to_vec());
    }
    for (step, xor) in [(37usize, 0x01u8), (101, 0x80), (211, 0xff)] {
        for start in 0..step.min(8) {
            let mut changed = bytes.clone();
            for b in changed.iter_mut().skip(start).step_by(step) {
                *b ^= xor;
            }
            let _ = Model::from_bytes(std::path::Path::new("changed.onnx"), changed);
        }
    }
}

#[test]
fn unsupported_ops_and_missing_external_data_name_the_problem() {
    let e = Model::load(onnx("unsupported.onnx"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unsupported.onnx")
            && e.contains("node `gate` (Tanh): op Tanh is not supported; supported ops: Conv"),
        "{e}"
    );
    // The external-data form loads with its data file, and names the file when it is missing.
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("external.onnx");
    std::fs::copy(onnx("tinynet.external.onnx"), &model).unwrap();
    let e = Model::load(&model).unwrap_err().to_string();
    assert!(
        e.contains("external data") && e.contains("tinynet.external.onnx.data"),
        "{e}"
    );
    std::fs::copy(
        onnx("tinynet.external.onnx.data"),
        dir.path().join("tinynet.external.onnx.data"),
    )
    .unwrap();
    let external = Model::load(&model).expect("with its data file");
    let inline = Model::load(onnx("tinynet.torchscript.onnx")).expect("inline");
    assert_eq!(
        format!("{:?}", external.convs),
        format!("{:?}", inline.convs)
    );
}

#[test]
fn a_static_input_size_is_kept_and_another_refused() {
    let path = onnx("tinynet.torchscript.onnx");
    let side = Model::load(&path).expect("model").input_size;
    let with = |input_size| LoadOptions {
        input_size: Some(input_size),
        ..LoadOptions::default()
    };
    let same = Model::load_with(&path, &with(side)).expect("its own size");
    assert_eq!(same.input_size, side);
    let e = Model::load_with(&path, &with(side + 32))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tinynet.torchscript.onnx") && e.contains(&format!("fixed at {side}×{side}")),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
    let e = Model::load_with(&path, &with(0)).unwrap_err().to_string();
    assert!(e.contains("input size 0"), "{e}");
}

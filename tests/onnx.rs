//! ONNX import against the reference.
//!
//! - Two small CNNs written for the tests (tools/make_onnx_fixtures.py), exported by torch's
//!   TorchScript and dynamo exporters with their defaults, loaded with the layer names their
//!   PyTorch modules have, give the modules' logits and pytorch-grad-cam's GradCAM at several
//!   layers: `tinynet` (residual blocks, ReLU6, everything fused into the convs) and `actnet`
//!   (SiLU, Hardswish, GELU, LeakyReLU, Hardsigmoid, BatchNorm-ReLU before a conv: elementwise
//!   ops that keep their input; squeeze-and-excitation with a squeezed width that is no
//!   multiple of 4; 1×7, 7×1, grouped and dilated convs; a zero Pad before a conv; ceil-mode
//!   pools).
//! - The families of the architecture fixtures, exported both ways from the same seeded models
//!   (tools/make_onnx_family_fixtures.py), equal their safetensors forms and the reference.
//! - Broken files are one-line errors naming the file.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::seeded::seeded_values;
use common::{
    assert_close, ctx, fixture_metadata, fixtures, floats, max_abs_diff, normalized,
    reference_model, root, top_indices,
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

/// The families of the architecture fixtures, in their ONNX forms (tools/
/// make_onnx_family_fixtures.py): the same seeded models, exported by both exporters, their
/// weights written here from the seed.
const FAMILIES: &[&str] = &[
    "densenet121",
    "efficientnet_b0",
    "mobilenet_v3_large",
    "convnext_tiny",
    "regnet_y_400mf",
    "inception_v3",
    "legacy_xception",
];

/// `<arch>.weights` of a family's ONNX form: the manifest's float32 tensors seeded, in its order,
/// then the transposes of its 2-D ones, then each `[conv, BatchNorm, ε]` fold's weight and bias,
/// little-endian (the layout tools/make_onnx_family_fixtures.py gave the external data).
fn family_weights(manifest: &str, seed: u64, folds: &[(String, String, f64)]) -> Vec<u8> {
    let entries: Vec<(String, Vec<usize>, String)> =
        serde_json::from_str(manifest).expect("manifest is [[name, shape, dtype], ...]");
    let tensors: HashMap<&str, (&[usize], Vec<f32>)> = entries
        .iter()
        .filter(|(_, _, dtype)| dtype == "float32")
        .map(|(n, s, _)| (n.as_str(), (s.as_slice(), seeded_values(n, s, seed))))
        .collect();
    let floats = || entries.iter().filter(|(_, _, dtype)| dtype == "float32");
    let mut out: Vec<f32> = Vec::new();
    for (name, _, _) in floats() {
        out.extend(&tensors[name.as_str()].1);
    }
    for (name, shape, _) in floats().filter(|(_, s, _)| s.len() == 2) {
        let v = &tensors[name.as_str()].1;
        let (rows, cols) = (shape[0], shape[1]);
        out.extend((0..cols * rows).map(|i| v[(i % rows) * cols + i / rows]));
    }
    let get = |name: String| -> &[f32] { &tensors[name.as_str()].1 };
    for (conv, bn, eps) in folds {
        // The dynamo exporter's folding, operation for operation (float32, no fused
        // multiply-add): s = γ / √(var + ε), w·s, (b − μ)·s + β.
        let (gamma, beta) = (get(format!("{bn}.weight")), get(format!("{bn}.bias")));
        let (mean, var) = (
            get(format!("{bn}.running_mean")),
            get(format!("{bn}.running_var")),
        );
        let scale: Vec<f32> = gamma
            .iter()
            .zip(var)
            .map(|(g, v)| g / (v + *eps as f32).sqrt())
            .collect();
        let weight = get(format!("{conv}.weight"));
        let per = weight.len() / scale.len();
        out.extend(weight.iter().enumerate().map(|(i, w)| w * scale[i / per]));
        let bias = tensors.get(format!("{conv}.bias").as_str());
        out.extend((0..scale.len()).map(|c| {
            let b = bias.map_or(0.0, |b| b.1[c]);
            (b - mean[c]) * scale[c] + beta[c]
        }));
    }
    out.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Logits and the CAMs at every fixture layer of `model` on the fixture's image.
fn family_outputs(
    model: Model,
    arch: &str,
    cams: &[(String, Target)],
) -> Vec<(Vec<f32>, Vec<f32>)> {
    let r = fixtures(&format!("arch/{arch}"));
    let meta = fixture_metadata(&format!("arch/{arch}"));
    let input = normalized(&r["image"], &floats(&meta["mean"]), &floats(&meta["std"]));
    let engine = Engine::new(ctx(), model);
    cams.iter()
        .map(|(layer, target)| {
            let options = ExplainOptions {
                layer: layer.clone(),
                ..Default::default()
            };
            let mut explainer = engine
                .explainer(1, options)
                .unwrap_or_else(|e| panic!("{arch} {layer}: {e}"));
            explainer
                .upload_input(&input, &[*target])
                .expect("upload input");
            explainer.run().expect("run");
            let result = explainer.read(Readback::ALL).expect("read").remove(0);
            (result.logits, result.cam.expect("cam"))
        })
        .collect()
}

#[test]
fn family_onnx_forms_equal_their_safetensors_forms_and_the_reference() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut failures = Vec::new();
    for arch in FAMILIES {
        let r = fixtures(&format!("arch/{arch}"));
        let meta = fixture_metadata(&format!("arch/{arch}"));
        let mut cams: Vec<(String, Target)> = r
            .keys()
            .filter(|k| k.starts_with("cam.") && !k.ends_with(".f64"))
            .map(|key| {
                let rest = &key["cam.".len()..];
                match rest.rsplit_once(".c") {
                    Some((l, c)) if c.chars().all(|d| d.is_ascii_digit()) => {
                        (l.to_string(), Target::Class(c.parse().expect("class")))
                    }
                    _ => (rest.to_string(), Target::Predicted),
                }
            })
            .collect();
        cams.sort_by(|a, b| a.0.cmp(&b.0));
        let reference = reference_model(arch, &meta);
        let default_layer = reference.default_layer.clone();
        let safetensors = family_outputs(reference, arch, &cams);
        let want = &r["logits"].data;
        let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
        let seed: u64 = meta["seed"].parse().expect("seed");
        // `torchscript17`: ConvNeXt at opset 17, its GELU written with `Erf`.
        for exporter in ["dynamo", "torchscript", "torchscript17"] {
            let form = format!("{arch}.{exporter}");
            let fixture = |ext: &str| onnx(&format!("families/{form}.{ext}"));
            if exporter == "torchscript17" && !fixture("onnx").exists() {
                continue;
            }
            let folds: Vec<(String, String, f64)> = std::fs::read_to_string(fixture("folds.json"))
                .map(|text| serde_json::from_str(&text).expect("folds"))
                .unwrap_or_default();
            let weights = family_weights(&meta["manifest"], seed, &folds);
            std::fs::write(dir.path().join(format!("{arch}.weights")), weights).expect("weights");
            let path = dir.path().join(format!("{form}.onnx"));
            std::fs::copy(fixture("onnx"), &path).expect("copy the model");
            let model = Model::load(&path).unwrap_or_else(|e| panic!("{form}: {e}"));
            assert_eq!(
                model.input_size, r["image"].shape[0] as u32,
                "{form}: input size"
            );
            let names: Vec<&str> = model
                .target_layers
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            for (layer, _) in &cams {
                assert!(
                    names.contains(&layer.as_str()),
                    "{form}: no layer `{layer}`"
                );
            }
            // The ONNX form's own default layer (named from its module paths, `features` where
            // the builder says `features.norm5`) stands for the builder's: the same CAM.
            let own: Vec<(String, Target)> = cams
                .iter()
                .map(|(layer, target)| match layer == &default_layer {
                    true => (model.default_layer.clone(), *target),
                    false => (layer.clone(), *target),
                })
                .collect();
            let outputs = family_outputs(model, arch, &own);
            for ((layer, target), ((logits, cam), (st_logits, st_cam))) in
                cams.iter().zip(outputs.iter().zip(&safetensors))
            {
                let key = match target {
                    Target::Class(c) => format!("cam.{layer}.c{c}"),
                    _ => format!("cam.{layer}"),
                };
                let reference = &r[&key].data;
                let exact = r.get(&format!("{key}.f64")).map(|f| &f.data);
                let closest = match exact {
                    Some(e) if max_abs_diff(cam, e) < max_abs_diff(cam, reference) => e,
                    _ => reference,
                };
                let d = max_abs_diff(logits, st_logits);
                let dr = max_abs_diff(logits, want);
                let dc = max_abs_diff(cam, st_cam);
                let dcr = max_abs_diff(cam, closest);
                let conditioned = exact.is_none();
                eprintln!(
                    "{form} {key}: logits max |diff| {d:.2e} from the safetensors form, {dr:.2e} \
                     from the reference (largest {scale:.2}); CAM max |diff| {dc:.2e} from the \
                     safetensors form, {dcr:.2e} from the reference{}",
                    if conditioned {
                        ""
                    } else {
                        " (ill-conditioned: its float32 and float64 runs differ)"
                    }
                );
                // The TorchScript forms hold the state_dict() tensors themselves: the same model,
                // bit for bit. The dynamo exporter folds each BatchNorm into the conv before it
                // in float32, so its weights are the exact ones rounded: the same model to
                // float32 rounding, whose CAMs are then checked against the reference (the
                // closer of its float32 and float64 runs) as the safetensors forms' are.
                let same = if exporter != "dynamo" || folds.is_empty() {
                    dc <= 1e-6
                } else {
                    dcr <= 1e-4
                };
                if d > 1e-6 * scale
                    || dr > 1e-4 * scale
                    || top_indices(logits, 5) != top_indices(want, 5)
                    || !same
                {
                    failures.push(format!("{form} {key}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "differ: {failures:?}");
}

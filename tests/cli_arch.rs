//! The command line on architectures other than the built-in one: a ResNet-18 saved straight from
//! `state_dict()` (seeded weights, 10 classes) is recognised with no flag; layers by their
//! PyTorch module paths, several at once, a class, raw output; files that fit no architecture.

mod common;

use std::path::{Path, PathBuf};

use common::seeded::seeded_safetensors;
use common::{assert_no_panic, run_gradcam, stderr_lines};

/// The seeded ResNet-18 of the parity fixture, written to `dir`, with `edit` applied to its
/// manifest first.
fn resnet18(dir: &Path, edit: impl Fn(&mut Vec<serde_json::Value>)) -> PathBuf {
    let path = common::root().join("tests/fixtures/arch/resnet18.safetensors");
    let bytes = std::fs::read(&path).expect("fixture");
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
    let meta = meta.metadata().clone().expect("metadata");
    let mut manifest: Vec<serde_json::Value> =
        serde_json::from_str(&meta["manifest"]).expect("manifest");
    edit(&mut manifest);
    let weights = seeded_safetensors(
        &serde_json::to_string(&manifest).unwrap(),
        meta["seed"].parse().unwrap(),
    );
    let out = dir.join("resnet18.safetensors");
    std::fs::write(&out, weights).unwrap();
    out
}

fn one_error_line(run: &std::process::Output, needles: &[&str]) {
    assert_no_panic(run);
    assert_eq!(run.status.code(), Some(2), "{:?}", stderr_lines(run));
    let lines = stderr_lines(run);
    assert_eq!(lines.len(), 1, "{lines:?}");
    for n in needles {
        assert!(lines[0].contains(n), "`{n}` not in {lines:?}");
    }
}

#[test]
fn resnet_from_state_dict_explains_with_no_flag() {
    let dir = tempfile::tempdir().unwrap();
    let weights = resnet18(dir.path(), |_| {});
    let w = weights.to_str().unwrap();

    let run = run_gradcam(&["layers", "--weights", w]);
    assert_no_panic(&run);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    let text = String::from_utf8(run.stdout).unwrap();
    for (name, shape) in [
        ("layer4", "512 × 7 × 7"),
        ("layer3", "256 × 14 × 14"),
        ("layer2.1", "128 × 28 × 28"),
        ("maxpool", "64 × 56 × 56"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("{name} ")) && l.contains(shape)),
            "{name} {shape} not listed:\n{text}"
        );
    }
    assert!(text
        .lines()
        .any(|l| l.starts_with("layer4 ") && l.ends_with("(default)")));

    let out = dir.path().join("out");
    let run = run_gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--weights",
        w,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_no_panic(&run);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    let overlay = image::open(out.join("chelsea.png")).expect("overlay");
    assert_eq!((overlay.width(), overlay.height()), (451, 300));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["layer"], "layer4");
    let class = report["images"][0]["class"].as_u64().unwrap();
    assert!(class < 10, "one of the model's own 10 classes");
    assert_eq!(report["images"][0]["label"], format!("class {class}"));

    // Several layers, another class, raw tensors.
    let out = dir.path().join("multi");
    let run = run_gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--weights",
        w,
        "--out",
        out.to_str().unwrap(),
        "--layer",
        "layer3,layer4",
        "--class",
        "7",
        "--raw",
    ]);
    assert_no_panic(&run);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    let bytes = std::fs::read(out.join("chelsea.safetensors")).expect("raw output");
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("cam").unwrap().shape(), [224, 224]);
    assert_eq!(st.tensor("cam_grid").unwrap().shape(), [14, 14]);
    assert_eq!(st.tensor("logits").unwrap().shape(), [10]);
    let cam: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("cam").unwrap().data());
    assert!(
        cam.iter().all(|v| (0.0..=1.0).contains(v)),
        "normalised CAM"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["images"][0]["class"], 7);
    assert_eq!(report["layer"], "layer3,layer4");

    // `--layer help` lists the layers and touches nothing.
    let help_out = dir.path().join("help");
    let run = run_gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--weights",
        w,
        "--out",
        help_out.to_str().unwrap(),
        "--layer",
        "help",
    ]);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("layer3.1 "));
    assert!(!help_out.exists());

    // A class the model does not have, and a layer it does not have.
    let run = run_gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--weights",
        w,
        "--out",
        out.to_str().unwrap(),
        "--class",
        "10",
    ]);
    one_error_line(&run, &["class 10", "0..=9"]);
    let run = run_gradcam(&["layers", "--weights", w, "--arch", "resnet34"]);
    one_error_line(&run, &["layer1.2.conv1.weight"]);
    let run = run_gradcam(&["layers", "--weights", w, "--arch", "vgg99"]);
    one_error_line(&run, &["unknown architecture `vgg99`", "resnet50"]);
}

#[test]
fn files_that_fit_no_architecture_name_the_closest_and_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    // A ResNet whose classifier is missing: recognised, and the missing tensor named.
    let weights = resnet18(dir.path(), |m| m.retain(|e| e[0] != "fc.weight"));
    let run = run_gradcam(&["layers", "--weights", weights.to_str().unwrap()]);
    one_error_line(&run, &["resnet18.safetensors", "`fc.weight` is missing"]);
    // A stem that is not torchvision's: no architecture fits; the closest is named.
    let weights = resnet18(dir.path(), |m| {
        m.retain(|e| e[0] != "conv1.weight");
        m.push(serde_json::json!(["stem.weight", [64, 3, 7, 7], "float32"]));
    });
    let run = run_gradcam(&["layers", "--weights", weights.to_str().unwrap()]);
    one_error_line(&run, &["no known architecture fits", "the closest is"]);
}

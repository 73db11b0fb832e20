//! The `gradcam` binary: output format, exit codes, and one-line errors that name the file.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{
    assert_no_panic, read_report, root, run_gradcam as gradcam, stderr_lines, weights_path,
};

/// Writes a copy of the default weights with `edit` applied to its tensor list.
fn edited_weights(
    dir: &Path,
    name: &str,
    edit: impl FnOnce(&mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) -> PathBuf {
    let bytes = std::fs::read(weights_path()).expect("weights");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid weights");
    let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).expect("view"),
            )
        })
        .collect();
    let out = safetensors::serialize(views, None).expect("serialize");
    let path = dir.join(name);
    std::fs::write(&path, out).expect("write weights");
    path
}

#[test]
fn classify_prints_json_lines_in_input_order() {
    let out = gradcam(&[
        "classify",
        "examples/images/chelsea.png",
        "examples/images/coffee.png",
        "--top",
        "3",
    ]);
    assert_no_panic(&out);
    assert!(out.status.success(), "stderr: {:?}", stderr_lines(&out));
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["image"], "examples/images/chelsea.png");
    assert_eq!(lines[0]["top"].as_array().unwrap().len(), 3);
    assert_eq!(lines[0]["top"][0]["label"], "Egyptian cat");
    assert_eq!(lines[0]["top"][0]["class"], 285);
    let p = lines[0]["top"][0]["score"].as_f64().unwrap();
    assert!((p - 0.79).abs() < 0.01, "Egyptian cat score {p}");
    assert_eq!(lines[1]["top"][0]["label"], "espresso");
    let p = lines[1]["top"][0]["score"].as_f64().unwrap();
    assert!((p - 0.88).abs() < 0.01, "espresso score {p}");
}

#[test]
fn corrupt_image_is_reported_and_others_still_classified() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.png");
    let good = std::fs::read(root().join("examples/images/chelsea.png")).unwrap();
    std::fs::write(&bad, &good[..good.len() / 3]).unwrap();
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "this is not a picture").unwrap();
    let out = gradcam(&[
        "classify",
        bad.to_str().unwrap(),
        "examples/images/coffee.png",
        text.to_str().unwrap(),
    ]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "coffee is still classified");
    assert!(stdout.contains("espresso"));
    let err = stderr_lines(&out);
    assert_eq!(err.len(), 2, "one line per failed image: {err:?}");
    assert!(err[0].contains("broken.png"), "{err:?}");
    assert!(err[1].contains("notes.jpg"), "{err:?}");
}

#[test]
fn missing_image_file_is_named() {
    let out = gradcam(&["classify", "no/such/image.png"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr_lines(&out);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("no/such/image.png"), "{err:?}");
}

fn assert_setup_error(out: &Output, needles: &[&str]) {
    assert_no_panic(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stderr: {:?}",
        stderr_lines(out)
    );
    let err = stderr_lines(out);
    assert_eq!(err.len(), 1, "a one-line error: {err:?}");
    for n in needles {
        assert!(
            err[0].contains(n),
            "error {:?} should mention {n:?}",
            err[0]
        );
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_weights_file_is_one_line_error() {
    let out = gradcam(&[
        "classify",
        "--weights",
        "nowhere/model.safetensors",
        "examples/images/chelsea.png",
    ]);
    assert_setup_error(&out, &["nowhere/model.safetensors"]);
}

#[test]
fn weights_with_missing_tensor_is_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_weights(dir.path(), "missing.safetensors", |t| {
        t.retain(|(n, ..)| n != "_blocks.7._depthwise_conv.weight")
    });
    let out = gradcam(&[
        "classify",
        "--weights",
        path.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_setup_error(
        &out,
        &[
            "missing.safetensors",
            "_blocks.7._depthwise_conv.weight",
            "missing",
        ],
    );
}

#[test]
fn weights_with_wrong_shape_is_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_weights(dir.path(), "shape.safetensors", |t| {
        let e = t
            .iter_mut()
            .find(|(n, ..)| n == "_conv_head.weight")
            .unwrap();
        e.2 = vec![640, 640, 1, 1];
    });
    let out = gradcam(&[
        "classify",
        "--weights",
        path.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_setup_error(
        &out,
        &[
            "shape.safetensors",
            "_conv_head.weight",
            "[640, 640, 1, 1]",
            "[1280, 320, 1, 1]",
        ],
    );
}

#[test]
fn corrupt_weights_file_is_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.safetensors");
    let bytes = std::fs::read(weights_path()).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let out = gradcam(&[
        "classify",
        "--weights",
        path.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_setup_error(&out, &["truncated.safetensors"]);
}

#[test]
fn f16_weights_with_own_classes_and_labels() {
    // A "fine-tuned" model: 3 classes, F16 storage. The class count comes from _fc.weight.
    let dir = tempfile::tempdir().unwrap();
    let path = edited_weights(dir.path(), "three.safetensors", |t| {
        for e in t.iter_mut() {
            let f32s: Vec<f32> = bytemuck::pod_collect_to_vec(&e.3);
            if e.0 == "_fc.weight" {
                e.2 = vec![3, 1280];
                e.3 = bytemuck::cast_slice(&f32s[..3 * 1280]).to_vec();
            } else if e.0 == "_fc.bias" {
                e.2 = vec![3];
                e.3 = bytemuck::cast_slice(&f32s[..3]).to_vec();
            }
            if e.0.starts_with("_conv_head") {
                // Keep one tensor in F16 to exercise the conversion.
                e.1 = safetensors::Dtype::F16;
                e.3 = f32s
                    .iter()
                    .flat_map(|v| f32_to_f16(*v).to_le_bytes())
                    .collect();
            }
        }
    });
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "alpha\nbeta\ngamma\n").unwrap();
    let out = gradcam(&[
        "classify",
        "--weights",
        path.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_no_panic(&out);
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = v["top"].as_array().unwrap();
    assert_eq!(top.len(), 3, "only three classes exist");
    assert!(top
        .iter()
        .all(|t| ["alpha", "beta", "gamma"].contains(&t["label"].as_str().unwrap())));

    // A labels file whose line count differs from the class count is an error naming it.
    std::fs::write(&labels, "alpha\nbeta\n").unwrap();
    let out = gradcam(&[
        "classify",
        "--weights",
        path.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_setup_error(&out, &["labels.txt", "2 labels", "3 classes"]);
}

/// Round-to-nearest-even f32 → f16 for normal-range values (enough for weights).
fn f32_to_f16(v: f32) -> u16 {
    let bits = v.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let mant = bits & 0x7f_ffff;
    if exp <= 0 {
        return sign; // flush tiny values to zero
    }
    if exp >= 31 {
        return sign | 0x7c00;
    }
    let half = ((exp as u32) << 10) | (mant >> 13);
    let round = mant & 0x1fff;
    let half = if round > 0x1000 || (round == 0x1000 && half & 1 == 1) {
        half + 1
    } else {
        half
    };
    sign | half as u16
}

#[test]
fn usage_errors_exit_2() {
    let out = gradcam(&["classify"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    let out = gradcam(&["classify", "--top", "0", "examples/images/chelsea.png"]);
    assert_eq!(out.status.code(), Some(2));
    let out = gradcam(&["explode"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unknown_adapter_is_one_line_error() {
    let out = gradcam(&[
        "classify",
        "--adapter",
        "no-such-gpu-xyz",
        "examples/images/chelsea.png",
    ]);
    assert_setup_error(&out, &["no-such-gpu-xyz", "mesa-vulkan-drivers"]);
}

#[test]
fn help_documents_everything() {
    let out = gradcam(&["classify", "--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in ["--top", "--weights", "--labels", "--adapter", "--batch"] {
        assert!(text.contains(flag), "classify --help lacks {flag}");
    }
    let out = gradcam(&["explain", "--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--out",
        "--layer",
        "--class",
        "--method",
        "--method-batch",
        "--top-k",
        "--guided",
        "--eigen-smooth",
        "--aug-smooth",
        "--colormap",
        "--image-weight",
        "--raw",
        "--weights",
        "--labels",
        "--adapter",
        "--batch",
        "--in-flight",
    ] {
        assert!(text.contains(flag), "explain --help lacks {flag}");
    }
    let out = gradcam(&["--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Exit status") && text.contains("WGPU_BACKEND"));
}

#[test]
fn method_is_chosen_by_name_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = gradcam(&[
        "explain",
        "--quiet",
        "--method",
        "layercam",
        "--class",
        "281",
        "--out",
        out.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = read_report(&out);
    assert_eq!(report["method"], "layercam");
    assert_eq!(report["settings"]["method"], "layercam");
    let entry = &report["images"][0];
    assert_eq!(entry["method"], "layercam");
    assert_eq!(entry["layer"], "head");
    assert_eq!(entry["target"], "class");
    assert_eq!(entry["class"], 281);

    let bad = gradcam(&[
        "explain",
        "--method",
        "no-such-cam",
        "--out",
        out.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("no-such-cam") && err.contains("gradcam++") && err.contains("layercam"),
        "{err}"
    );
}

#[test]
fn probe_methods_run_in_chunks_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = gradcam(&[
        "explain",
        "--quiet",
        "--method",
        "ablationcam",
        "--method-batch",
        "100",
        "--out",
        out.to_str().unwrap(),
        "examples/images/chelsea.png",
        "examples/images/coffee.png",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = read_report(&out);
    assert_eq!(report["method"], "ablationcam");
    assert_eq!(report["images"][0]["class"], 285);
    assert!(out.join("chelsea.png").is_file() && out.join("coffee.png").is_file());

    let bad = gradcam(&[
        "explain",
        "--method",
        "scorecam",
        "--method-batch",
        "0",
        "--out",
        out.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--method-batch"));
}

#[test]
fn top_k_explains_each_images_most_likely_classes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "explain",
            "--quiet",
            "--top-k",
            "2",
            "--out",
            out.to_str().unwrap(),
            "examples/images/chelsea.png",
            "examples/images/coffee.png",
        ];
        a.extend_from_slice(extra);
        gradcam(&a)
    };
    let run = args(&[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = read_report(&out);
    let entries = report["images"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "two entries per image");
    for (i, e) in entries.iter().enumerate() {
        let rank = i % 2;
        assert_eq!(e["rank"], rank);
        assert_eq!(e["target"], "rank");
        // The class of that rank in the image's own top list.
        assert_eq!(e["class"], e["top"][rank]["class"]);
        let stem = if i < 2 { "chelsea" } else { "coffee" };
        let name = format!("{stem}_{}.png", e["class"]);
        assert!(out.join(&name).is_file(), "{name}");
        assert!(e["output"].as_str().unwrap().ends_with(&name));
    }
    assert_eq!(entries[0]["class"], 285);
    // Every (image, rank) is recorded: a resumed run has nothing left to do.
    let again = args(&["--resume"]);
    assert!(again.status.success());
    assert_eq!(read_report(&out)["totals"]["resumed"], 4);

    let bad = gradcam(&[
        "explain",
        "--top-k",
        "2",
        "--class",
        "3",
        "--out",
        out.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn shards_cover_every_input_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("in");
    std::fs::create_dir(&images).unwrap();
    for name in ["c.png", "a.png", "b.png"] {
        std::fs::copy("examples/images/chelsea.png", images.join(name)).unwrap();
    }
    let mut explained = Vec::new();
    for (k, want) in [(0, vec!["a.png", "c.png"]), (1, vec!["b.png"])] {
        let out = dir.path().join(format!("out{k}"));
        let shard = format!("{k}/2");
        let run = gradcam(&[
            "explain",
            "--quiet",
            "--shard",
            &shard,
            "--out",
            out.to_str().unwrap(),
            images.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let report = read_report(&out);
        assert_eq!(report["settings"]["shard"], shard.as_str());
        let names: Vec<String> = report["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let path = PathBuf::from(e["image"].as_str().unwrap());
                path.file_name().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        assert_eq!(names, want, "shard {shard}");
        explained.extend(names);
    }
    explained.sort();
    assert_eq!(explained, ["a.png", "b.png", "c.png"]);

    for bad in ["2/2", "1", "0/0"] {
        let run = gradcam(&[
            "explain",
            "--shard",
            bad,
            "--out",
            dir.path().join("bad").to_str().unwrap(),
            images.to_str().unwrap(),
        ]);
        assert_eq!(run.status.code(), Some(2), "--shard {bad}");
        assert!(String::from_utf8_lossy(&run.stderr).contains("--shard"));
    }
}

#[test]
fn guided_writes_guided_backpropagation_and_guided_grad_cam() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // An input named like another's guided output keeps its own name's output apart.
    let images = dir.path().join("in");
    std::fs::create_dir(&images).unwrap();
    for name in ["chelsea.png", "chelsea_guided.png"] {
        std::fs::copy("examples/images/chelsea.png", images.join(name)).unwrap();
    }
    let run = gradcam(&[
        "explain",
        "--quiet",
        "--guided",
        "--out",
        out.to_str().unwrap(),
        images.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = read_report(&out);
    assert_eq!(report["settings"]["guided"], true);
    let mut written = std::collections::HashSet::new();
    for entry in report["images"].as_array().unwrap() {
        for key in ["output", "guided", "guided_gradcam"] {
            let path = entry[key].as_str().unwrap().to_string();
            let img = image::open(&path).unwrap();
            if key != "output" {
                assert_eq!((img.width(), img.height()), (224, 224), "{path}");
            }
            assert!(written.insert(path.clone()), "{path} written twice");
        }
        assert_eq!(entry["files"].as_array().unwrap().len(), 3);
    }
    assert_eq!(written.len(), 6);
}

#[test]
fn targets_file_gives_per_image_classes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let csv = dir.path().join("targets.csv");
    std::fs::write(
        &csv,
        "image,class\n# tabby cat for the cat; the cup keeps its predicted class\n\nexamples/images/chelsea.png,281\n",
    )
    .unwrap();
    let run = gradcam(&[
        "explain",
        "--quiet",
        "--targets",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "examples/images/chelsea.png",
        "examples/images/coffee.png",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report = read_report(&out);
    let images = report["images"].as_array().unwrap();
    assert_eq!(
        (images[0]["class"].as_u64(), images[0]["target"].as_str()),
        (Some(281), Some("class"))
    );
    assert_eq!(images[1]["target"], "predicted");
    assert_eq!(images[1]["class"], images[1]["top"][0]["class"]);

    std::fs::write(
        &csv,
        "examples/images/chelsea.png,281\nexamples/images/coffee.png,1000\n",
    )
    .unwrap();
    let bad = gradcam(&[
        "explain",
        "--targets",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "examples/images/chelsea.png",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("targets.csv:2") && err.contains("1000"),
        "{err}"
    );
}

#[test]
fn explain_writes_overlays_at_image_size_and_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.to_str().unwrap();
    let run = gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "examples/images/coffee.png",
        "--out",
        out_s,
    ]);
    assert_no_panic(&run);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    let chelsea = image::open(out.join("chelsea.png")).expect("overlay PNG");
    assert_eq!(
        (chelsea.width(), chelsea.height()),
        (451, 300),
        "overlay at the input's own size"
    );
    let coffee = image::open(out.join("coffee.png")).expect("overlay PNG");
    assert_eq!((coffee.width(), coffee.height()), (600, 400));
    let report = read_report(&out);
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0]["label"], "Egyptian cat");
    assert_eq!(images[0]["class"], 285);
    assert_eq!(images[0]["image"], "examples/images/chelsea.png");
    assert_eq!(
        images[0]["output"],
        out.join("chelsea.png").to_str().unwrap()
    );
    assert!((images[0]["score"].as_f64().unwrap() - 0.79).abs() < 0.01);
    assert_eq!(images[0]["top"].as_array().unwrap().len(), 5);
    assert_eq!(images[1]["label"], "espresso");
    assert_eq!(report["layer"], "head");
    assert_eq!(report["totals"]["images"], 2);
    assert_eq!(report["totals"]["failed"], 0);
    // Nothing but the outputs is left in the directory (no temporary files).
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["chelsea.png", "coffee.png", "report.json"]);
}

#[test]
fn explain_raw_writes_cam_matching_pytorch_grad_cam() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let run = gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--out",
        out.to_str().unwrap(),
        "--raw",
        "--layer",
        "blocks.8",
        "--class",
        "281",
        "--colormap",
        "viridis",
        "--image-weight",
        "0.3",
    ]);
    assert_no_panic(&run);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    let bytes = std::fs::read(out.join("chelsea.safetensors")).expect("raw output");
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("cam").unwrap().shape(), [224, 224]);
    assert_eq!(st.tensor("cam_grid").unwrap().shape(), [14, 14]);
    assert_eq!(st.tensor("logits").unwrap().shape(), [1000]);
    let report = read_report(out);
    assert_eq!(report["images"][0]["class"], 281);
    assert_eq!(report["images"][0]["label"], "tabby");
    assert_eq!(report["colormap"], "viridis");

    // The head CAM of the full-size photo against pytorch-grad-cam.
    let run = gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--out",
        out.to_str().unwrap(),
        "--raw",
    ]);
    assert!(run.status.success());
    let bytes = std::fs::read(out.join("chelsea.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let cam: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("cam").unwrap().data());
    let fx = common::fixtures("cam");
    let d = common::max_abs_diff(&cam, &fx["chelsea.head.argmax.cam"].data);
    assert!(d <= 1e-3, "cam max |diff| {d}");
}

#[test]
fn explain_keeps_same_stems_apart_and_never_replaces_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let chelsea = std::fs::read(root().join("examples/images/chelsea.png")).unwrap();
    let coffee = std::fs::read(root().join("examples/images/coffee.png")).unwrap();
    std::fs::write(a.join("photo.png"), &chelsea).unwrap();
    std::fs::write(b.join("photo.png"), &coffee).unwrap();
    // Output into a/: a/photo.png is an input and must survive unchanged.
    let run = gradcam(&[
        "explain",
        a.join("photo.png").to_str().unwrap(),
        b.join("photo.png").to_str().unwrap(),
        "--out",
        a.to_str().unwrap(),
    ]);
    assert_no_panic(&run);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    assert_eq!(
        std::fs::read(a.join("photo.png")).unwrap(),
        chelsea,
        "input untouched"
    );
    let report = read_report(&a);
    let outputs: Vec<&str> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["output"].as_str().unwrap())
        .collect();
    assert_eq!(outputs.len(), 2);
    assert_ne!(outputs[0], outputs[1]);
    assert!(
        outputs.iter().all(|o| !o.ends_with("a/photo.png")),
        "{outputs:?}"
    );
    assert_eq!(image::open(outputs[0]).unwrap().width(), 451);
    assert_eq!(image::open(outputs[1]).unwrap().width(), 600);
}

#[test]
fn explain_bad_image_is_reported_and_others_written() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("empty.png");
    std::fs::write(&bad, b"").unwrap();
    let out = dir.path().join("out");
    let run = gradcam(&[
        "explain",
        bad.to_str().unwrap(),
        "examples/images/coffee.png",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_no_panic(&run);
    assert_eq!(run.status.code(), Some(1));
    let err = stderr_lines(&run);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("empty.png"), "{err:?}");
    assert!(out.join("coffee.png").exists());
    let report = read_report(&out);
    assert_eq!(report["totals"]["failed"], 1);
    assert!(report["images"][0]["error"].is_string());
}

#[test]
fn explain_argument_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let img = "examples/images/chelsea.png";
    let run = gradcam(&["explain", img, "--out", out, "--layer", "blocks.99"]);
    assert_setup_error(&run, &["blocks.99", "head", "blocks.0", "blocks.15"]);
    let run = gradcam(&["explain", img, "--out", out, "--class", "1000"]);
    assert_setup_error(&run, &["1000", "0..=999"]);
    let run = gradcam(&["explain", img, "--out", out, "--colormap", "rainbow"]);
    assert_no_panic(&run);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("viridis"));
    let run = gradcam(&["explain", img, "--out", out, "--image-weight", "1.5"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("[0, 1]"));
    let run = gradcam(&["explain", img, "--out", out, "--samples", "2"]);
    assert_setup_error(&run, &["--samples", "smooth-gradcam++", "gradcam"]);
    let run = gradcam(&["explain", img, "--out", out, "--method", "smooth-gradcam++"]);
    let run_aug = gradcam(&[
        "explain",
        img,
        "--out",
        out,
        "--method",
        "smooth-gradcam++",
        "--aug-smooth",
    ]);
    assert_eq!(run.status.code(), Some(0), "{:?}", stderr_lines(&run));
    assert_setup_error(&run_aug, &["smooth-gradcam++", "aug-smooth"]);
    let run = gradcam(&["explain", img]);
    assert_eq!(run.status.code(), Some(2), "--out is required");
    // An output directory that cannot be made: a path under a regular file.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let run = gradcam(&["explain", img, "--out", file.join("sub").to_str().unwrap()]);
    assert_setup_error(&run, &["plain-file"]);
}

#[test]
fn explain_a_folder_of_200_images_of_mixed_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("photos");
    std::fs::create_dir(&inputs).unwrap();
    let chelsea = image::open(root().join("examples/images/chelsea.png")).unwrap();
    for i in 0..200u32 {
        // Sizes from 17×9 to 400-odd pixels wide, tall and wide, some upscaled, some downscaled.
        let w = 17 + (i * 37) % 400;
        let h = 9 + (i * 53) % 300;
        let img = chelsea
            .resize_exact(w, h, image::imageops::FilterType::Triangle)
            .to_rgb8();
        let ext = if i % 3 == 0 { "jpg" } else { "png" };
        img.save(inputs.join(format!("img{i:03}.{ext}"))).unwrap();
    }
    std::fs::write(
        inputs.join("notes.txt"),
        "not an image, not taken from the folder",
    )
    .unwrap();
    let out = dir.path().join("out");
    let run = gradcam(&[
        "explain",
        inputs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch",
        "24",
    ]);
    assert_no_panic(&run);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    let report = read_report(&out);
    assert_eq!(report["totals"]["images"], 200);
    assert_eq!(report["totals"]["explained"], 200);
    assert_eq!(report["totals"]["failed"], 0);
    assert!(report["totals"]["images_per_second"].as_f64().unwrap() > 0.0);
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 200);
    for (i, entry) in images.iter().enumerate() {
        let i = i as u32;
        let (w, h) = (17 + (i * 37) % 400, 9 + (i * 53) % 300);
        assert!(
            entry["image"]
                .as_str()
                .unwrap()
                .contains(&format!("img{i:03}")),
            "input order kept"
        );
        let overlay = image::open(entry["output"].as_str().unwrap()).unwrap();
        assert_eq!(
            (overlay.width(), overlay.height()),
            (w, h),
            "overlay {i} at its image's size"
        );
    }
}

#[test]
fn layers_lists_every_target_with_its_shape() {
    let out = gradcam(&["layers"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1 + 16 + 1,
        "header, blocks.0..15, head: {text}"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("blocks.0 ") && l.contains("16 × 112 × 112")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("head ") && l.contains("1280 × 7 × 7") && l.ends_with("(default)")));
    // An unknown layer's error points to the list, before the output folder is touched.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let run = gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--out",
        out_dir.to_str().unwrap(),
        "--layer",
        "x",
    ]);
    assert_setup_error(&run, &["unknown layer `x`", "gradcam layers"]);
    assert!(!out_dir.exists());
    let out = gradcam(&["layers", "--weights", "no-such-file.safetensors"]);
    assert_setup_error(&out, &["no-such-file.safetensors"]);
}

#[test]
fn input_size_and_normalisation_are_chosen_and_reported() {
    // The shapes of the layers follow the input size.
    let out = gradcam(&["layers", "--input-size", "160"]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("head ") && l.contains("1280 × 5 × 5")),
        "{text}"
    );
    // The CAM is at the input size; the report says what was used.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let run = gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--out",
        out_dir.to_str().unwrap(),
        "--input-size",
        "160",
        "--mean",
        "0.4,0.45,0.5",
        "--raw",
    ]);
    assert_no_panic(&run);
    assert!(run.status.success(), "{:?}", stderr_lines(&run));
    let report = read_report(&out_dir);
    assert_eq!(report["input_size"], 160);
    let mean: Vec<f64> = report["mean"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert!(
        mean.iter()
            .zip([0.4, 0.45, 0.5])
            .all(|(a, b)| (a - b).abs() < 1e-6),
        "{mean:?}"
    );
    assert_eq!(report["std"], serde_json::json!([0.5, 0.5, 0.5]));
    assert_eq!(report["settings"]["input_size"], 160);
    let overlay = image::open(out_dir.join("chelsea.png")).expect("overlay");
    assert_eq!((overlay.width(), overlay.height()), (451, 300));
    let bytes = std::fs::read(out_dir.join("chelsea.safetensors")).expect("raw output");
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("cam").unwrap().shape(), [160, 160]);
    assert_eq!(st.tensor("cam_grid").unwrap().shape(), [5, 5]);
    // A size no network can take is a usage error before anything is written.
    let bad = dir.path().join("bad");
    let run = gradcam(&[
        "explain",
        "examples/images/chelsea.png",
        "--out",
        bad.to_str().unwrap(),
        "--input-size",
        "0",
    ]);
    assert_setup_error(&run, &["input size 0"]);
    assert!(!bad.exists());
}

#[test]
fn two_batches_in_flight_write_what_one_does() {
    // --in-flight 2 (the default on a GPU) alternates two explainers, reading one batch back
    // while the other runs; outputs, bad-input handling and order are those of one at a time.
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let chelsea = image::open(root().join("examples/images/chelsea.png")).unwrap();
    for i in 0..7u32 {
        let img = chelsea.resize_exact(
            60 + i * 13,
            40 + i * 7,
            image::imageops::FilterType::Triangle,
        );
        img.to_rgb8()
            .save(inputs.join(format!("img{i}.png")))
            .unwrap();
    }
    std::fs::write(inputs.join("img3b.png"), b"not a png").unwrap();
    let mut outputs = Vec::new();
    for in_flight in ["1", "2"] {
        let out = dir.path().join(format!("out{in_flight}"));
        let run = gradcam(&[
            "explain",
            inputs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--batch",
            "2",
            "--boxes",
            "--in-flight",
            in_flight,
        ]);
        assert_no_panic(&run);
        assert_eq!(run.status.code(), Some(1), "{:?}", stderr_lines(&run));
        let report = read_report(&out);
        assert_eq!(report["totals"]["explained"], 7);
        assert_eq!(report["totals"]["failed"], 1);
        let entries: Vec<(String, serde_json::Value, serde_json::Value)> = report["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let name = Path::new(e["image"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (name, e["class"].clone(), e["box"].clone())
            })
            .collect();
        let pixels: Vec<Vec<u8>> = (0..7)
            .map(|i| {
                image::open(out.join(format!("img{i}.png")))
                    .unwrap()
                    .to_rgb8()
                    .into_raw()
            })
            .collect();
        outputs.push((entries, pixels));
    }
    assert_eq!(outputs[0].0, outputs[1].0, "report entries");
    assert!(outputs[0].1 == outputs[1].1, "overlays differ");
    let err = gradcam(&["explain", "examples/images/chelsea.png", "--in-flight", "3"]);
    assert_eq!(err.status.code(), Some(2));
}

#[test]
fn forced_variants_explain_as_the_builders_choice() {
    // A pipeline variant of each tuned kernel, forced through the whole CLI (GRADCAM_FORCE),
    // gives the overlay and CAM of the builder's choice. (Every variant is checked against the
    // reference in tests/parity_arch.rs `every_tuned_variant`; here, that the CLI forces them.)
    let dir = tempfile::tempdir().unwrap();
    let run_with = |force: &str, out: &Path| {
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_gradcam"))
            .args([
                "explain",
                "examples/images/chelsea.png",
                "examples/images/coffee.png",
            ])
            .args(["--raw", "--quiet", "--out", out.to_str().unwrap()])
            .env("GRADCAM_FORCE", force)
            .current_dir(root())
            .output()
            .expect("run gradcam");
        assert_no_panic(&run);
        assert!(run.status.success(), "{force}: {:?}", stderr_lines(&run));
        ["chelsea", "coffee"].map(|stem| {
            let overlay = image::open(out.join(format!("{stem}.png")))
                .unwrap()
                .to_rgb8();
            let bytes = std::fs::read(out.join(format!("{stem}.safetensors"))).unwrap();
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let cam: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("cam").unwrap().data());
            (overlay, cam)
        })
    };
    let baseline = run_with("", &dir.path().join("builder"));
    let forced = [
        // The 24 × 6 register tile, where the builder's is the subgroup tile (lavapipe).
        "pointwise_conv=tile_24x6",
        // The workgroup tile.
        "pointwise_conv=workgroup_tiled",
        "depthwise_conv=staged",
        // The stem's register-tiled specialization, where the builder's is the subgroup stem.
        "conv2d=stem_3x3_s2",
        "linear=split",
    ];
    for (i, force) in forced.iter().enumerate() {
        // A name the engine does not know would be ignored and compare the builder's to itself.
        let (kernel, variant) = force.split_once('=').unwrap();
        assert!(
            gradcam::gpu::kernels::KernelId::from_name(kernel)
                .and_then(|k| k.variant_named(variant))
                .is_some(),
            "{force}: no such kernel variant"
        );
        let got = run_with(force, &dir.path().join(format!("forced{i}")));
        for ((overlay, cam), (want_overlay, want_cam)) in got.iter().zip(&baseline) {
            let d = common::max_abs_diff(cam, want_cam);
            assert!(d <= 1e-4, "{force}: CAM max |diff| {d}");
            // Float sums in another order may move `255 * cam` across an integer, so that a
            // pixel takes the neighbouring colormap entry (jet moves a channel by at most 4 per
            // entry, blended at half weight) and rounds the other way: at most 3, rarely.
            let diffs: Vec<u8> = overlay
                .as_raw()
                .iter()
                .zip(want_overlay.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .collect();
            let max = diffs.iter().copied().max().unwrap_or(0);
            let changed = diffs.iter().filter(|d| **d > 0).count();
            eprintln!(
                "{force}: overlay max |diff| {max}, {changed} of {} channels",
                diffs.len()
            );
            assert!(max <= 3, "{force}: overlay channel off by {max}");
            assert!(
                changed * 1000 < diffs.len(),
                "{force}: {changed} channels differ"
            );
        }
    }
}

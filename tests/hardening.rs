//! Bad and unusual inputs: every one gets a clear error naming the file (or is processed), never a
//! panic, and a failing input never stops the others. Also GPU errors as values, and determinism.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    assert_no_panic as no_panic, engine, root, run_gradcam as gradcam, stderr_lines, weights_path,
};
use gradcam::{ExplainOptions, Model, Readback, Target};

fn images_dir() -> PathBuf {
    root().join("tests/fixtures/images")
}

/// Writes synthetic images the fixtures do not hold: extreme shapes, 16 bits, a huge one.
fn synthetic(dir: &Path) -> Vec<(PathBuf, (u32, u32))> {
    let mut out = Vec::new();
    for (name, w, h) in [
        ("one.png", 1, 1),
        ("tall.png", 1, 10_000),
        ("wide.png", 10_000, 1),
    ] {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
        });
        let p = dir.join(name);
        img.save(&p).unwrap();
        out.push((p, (w, h)));
    }
    let img16 = image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 1600) as u16, (y * 2100) as u16, 40_000])
    });
    let p = dir.join("rgb16.png");
    img16.save(&p).unwrap();
    out.push((p, (40, 30)));
    out
}

#[test]
fn unusual_formats_decode_as_a_viewer_shows_them() {
    let dir = images_dir();
    for name in [
        "rgb.png",
        "gray.png",
        "gray_alpha.png",
        "rgba.png",
        "palette.png",
        "cmyk.jpg",
        "rgb.jpg",
        "rgb.webp",
        "rgb.bmp",
        "rgb.tiff",
        "animated.gif",
        "exif_rotate90.jpg",
    ] {
        let img = gradcam::decode_image(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            img.dimensions(),
            (48, 32),
            "{name}: size as a viewer shows it"
        );
        // The bright marker is in the top-left quadrant, the far corner is not white.
        let marker = img.get_pixel(3, 3);
        let corner = img.get_pixel(46, 30);
        let gray = name.starts_with("gray");
        assert!(
            marker.0.iter().all(|c| *c > 200),
            "{name}: marker top-left, got {marker:?}"
        );
        if !gray {
            assert!(corner.0[2] < 200, "{name}: far corner {corner:?}");
        }
        if gray {
            assert!(
                marker[0] == marker[1] && marker[1] == marker[2],
                "{name}: gray replicated"
            );
        }
    }
    // The animated GIF's first frame is the picture, not the blue second frame.
    let gif = gradcam::decode_image(dir.join("animated.gif")).unwrap();
    assert!(gif.get_pixel(40, 5)[0] > 150, "first frame");
}

#[test]
fn broken_files_are_errors_naming_the_file() {
    let dir = images_dir();
    for (name, needle) in [
        ("empty.png", "empty"),
        ("truncated.png", ""),
        ("truncated.jpg", ""),
        ("text.jpg", "format"),
    ] {
        let err = gradcam::decode_image(dir.join(name))
            .expect_err(name)
            .to_string();
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    let err = gradcam::decode_image(dir.join("missing.png"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.png"), "{err}");
}

#[test]
fn pixel_limit_refuses_before_decoding() {
    let tmp = tempfile::tempdir().unwrap();
    // 12000×9000: 108 M pixels, over the default limit; refused from the header alone.
    let big = tmp.path().join("huge.png");
    {
        let file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut enc = png::Encoder::new(file, 12_000, 9_000);
        enc.set_color(png::ColorType::Rgb);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header().unwrap().into_stream_writer().unwrap();
        let row = vec![0u8; 12_000 * 3];
        for _ in 0..9_000 {
            std::io::Write::write_all(&mut writer, &row).unwrap();
        }
        writer.finish().unwrap();
    }
    let err = gradcam::decode_image(&big).unwrap_err().to_string();
    assert!(
        err.contains("huge.png") && err.contains("12000×9000") && err.contains("--max-pixels"),
        "{err}"
    );
    let small = images_dir().join("rgb.png");
    let err = gradcam::decode_image_limited(&small, 1000)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1536") && err.contains("1000"), "{err}");

    // Through the CLI: the huge image is refused, the other explained.
    let out = tmp.path().join("out");
    let run = gradcam(&[
        "explain",
        big.to_str().unwrap(),
        small.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    no_panic(&run);
    assert_eq!(run.status.code(), Some(1));
    assert!(out.join("rgb.png").exists());
    assert!(stderr_lines(&run)
        .iter()
        .any(|l| l.contains("huge.png") && l.contains("--max-pixels")));
}

#[test]
fn one_run_over_every_kind_of_input() {
    let tmp = tempfile::tempdir().unwrap();
    let mut inputs: Vec<(PathBuf, Option<(u32, u32)>)> = synthetic(tmp.path())
        .into_iter()
        .map(|(p, s)| (p, Some(s)))
        .collect();
    for name in [
        "gray.png",
        "gray_alpha.png",
        "rgba.png",
        "palette.png",
        "cmyk.jpg",
        "rgb.webp",
        "rgb.bmp",
        "rgb.tiff",
        "animated.gif",
        "exif_rotate90.jpg",
    ] {
        inputs.push((images_dir().join(name), Some((48, 32))));
    }
    for bad in ["empty.png", "truncated.png", "truncated.jpg", "text.jpg"] {
        inputs.push((images_dir().join(bad), None));
    }
    let out = tmp.path().join("out");
    let mut args: Vec<String> = vec!["explain".into()];
    args.extend(inputs.iter().map(|(p, _)| p.display().to_string()));
    args.extend([
        "--out".into(),
        out.display().to_string(),
        "--batch".into(),
        "4".into(),
    ]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = gradcam(&refs);
    no_panic(&run);
    assert_eq!(run.status.code(), Some(1), "some inputs failed: exit 1");
    let errors = stderr_lines(&run);
    assert_eq!(errors.len(), 4, "{errors:?}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let entries = report["images"].as_array().unwrap();
    assert_eq!(entries.len(), inputs.len());
    for ((path, size), entry) in inputs.iter().zip(entries) {
        assert_eq!(entry["image"], path.display().to_string());
        match size {
            Some((w, h)) => {
                let overlay = image::open(entry["output"].as_str().unwrap()).unwrap();
                assert_eq!(
                    (overlay.width(), overlay.height()),
                    (*w, *h),
                    "{}",
                    path.display()
                );
            }
            None => assert!(entry["error"]
                .as_str()
                .unwrap()
                .contains(path.file_name().unwrap().to_str().unwrap())),
        }
    }
    // The rotated JPEG's overlay is upright: 48 wide, 32 tall, as a viewer shows the photo.
    assert_eq!(report["totals"]["failed"], 4);
}

/// The default weights' tensors, for building broken variants.
fn tensors() -> Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(weights_path()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect()
}

fn serialize(t: &[(String, safetensors::Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, safetensors::tensor::TensorView)> = t
        .iter()
        .map(|(n, d, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn load_error(name: &str, bytes: Vec<u8>) -> String {
    let e = Model::from_bytes(Path::new(name), bytes)
        .expect_err(name)
        .to_string();
    assert!(e.contains(name), "error names the file: {e}");
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn broken_weights_are_one_line_errors_naming_file_and_tensor() {
    let good = std::fs::read(weights_path()).unwrap();
    // Truncated data.
    load_error("truncated.safetensors", good[..good.len() - 1000].to_vec());
    // A header length pointing beyond the end.
    let mut beyond = good[..64].to_vec();
    beyond[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    load_error("beyond.safetensors", beyond);
    // A header that is not JSON.
    let mut bad_json = 8u64.to_le_bytes().to_vec();
    bad_json.extend_from_slice(b"{not jso");
    load_error("json.safetensors", bad_json);
    // Too short to hold a header length.
    load_error("short.safetensors", vec![1, 2, 3]);
    // An unsupported dtype.
    let mut t = tensors();
    let bias = t.iter_mut().find(|e| e.0 == "_fc.bias").unwrap();
    bias.1 = safetensors::Dtype::I32;
    let e = load_error("dtype.safetensors", serialize(&t));
    assert!(e.contains("_fc.bias") && e.contains("I32"), "{e}");
    // NaN and infinity.
    for (value, file) in [
        (f32::NAN, "nan.safetensors"),
        (f32::INFINITY, "inf.safetensors"),
    ] {
        let mut t = tensors();
        let w = t
            .iter_mut()
            .find(|e| e.0 == "_blocks.5._bn1.running_var")
            .unwrap();
        w.3[8..12].copy_from_slice(&value.to_le_bytes());
        let e = load_error(file, serialize(&t));
        assert!(
            e.contains("_blocks.5._bn1.running_var")
                && e.contains("non-finite")
                && e.contains("index 2"),
            "{e}"
        );
    }
    // A missing tensor and a wrong shape.
    let mut t = tensors();
    t.retain(|e| e.0 != "_bn0.running_mean");
    let e = load_error("missing.safetensors", serialize(&t));
    assert!(
        e.contains("_bn0.running_mean") && e.contains("missing"),
        "{e}"
    );
}

#[test]
fn gpu_validation_errors_are_values() {
    // A bind group made for one kernel's layout used with another kernel: wgpu reports a
    // validation error, which must come back as an error, not a panic or abort.
    let ctx = common::ctx();
    let kernels = &ctx.kernels;
    let buf = ctx.storage("x", 64).unwrap();
    let params = ctx.storage_with("p", &[0u32; 8]);
    let wrong = kernels.get(gradcam::gpu::KernelId::GlobalAvgPool);
    let params_uniform = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM,
        mapped_at_creation: false,
    });
    let bind_group = wrong.bind(
        &ctx.device,
        &params_uniform,
        &gradcam::gpu::launch::GlobalAvgPool {
            input: &buf,
            output: &params,
        },
    );
    let dispatch = gradcam::gpu::Dispatch {
        kernel: gradcam::gpu::KernelId::Linear,
        variant: 0,
        bind_group,
        params: params_uniform,
        invocations: 64,
        work: Default::default(),
    };
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    ctx.record(&mut encoder, "bad", std::slice::from_ref(&dispatch));
    let err = ctx
        .submit("a deliberately wrong dispatch", encoder)
        .expect_err("validation error");
    assert!(
        err.to_string().contains("a deliberately wrong dispatch"),
        "{err}"
    );
    // The device is still usable afterwards.
    let v = ctx.read_f32(&buf, 4).unwrap();
    assert_eq!(v.len(), 4);
}

#[test]
fn no_adapter_is_an_error_saying_what_to_install() {
    let out = Command::new(env!("CARGO_BIN_EXE_gradcam"))
        .args(["classify", "examples/images/chelsea.png"])
        .current_dir(root())
        .env("WGPU_BACKEND", "metal")
        .output()
        .unwrap();
    no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_lines(&out);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("no GPU adapter")
            && err[0].contains("metal")
            && err[0].contains("mesa-vulkan-drivers"),
        "{err:?}"
    );
}

#[test]
fn same_input_gives_bit_identical_outputs() {
    let photo = common::decode(&root().join("examples/images/chelsea.png"));
    let other = common::decode(&root().join("examples/images/coffee.png"));
    let mut results = Vec::new();
    for layer in ["head", "blocks.8"] {
        let mut ex = engine()
            .explainer(
                2,
                ExplainOptions {
                    layer: layer.into(),
                    ..Default::default()
                },
            )
            .unwrap();
        let first = ex.explain(&[&photo, &other], &[], Readback::ALL).unwrap();
        // Another batch in between, then the same again, and in a fresh workspace.
        ex.explain(&[&other], &[Target::Class(3)], Readback::ALL)
            .unwrap();
        let second = ex.explain(&[&photo, &other], &[], Readback::ALL).unwrap();
        let mut fresh = engine()
            .explainer(
                2,
                ExplainOptions {
                    layer: layer.into(),
                    ..Default::default()
                },
            )
            .unwrap();
        let third = fresh
            .explain(&[&photo, &other], &[], Readback::ALL)
            .unwrap();
        for (a, b) in first.iter().zip(&second).chain(first.iter().zip(&third)) {
            assert_eq!(a.logits, b.logits, "{layer}: logits");
            assert_eq!(a.cam, b.cam, "{layer}: cam");
            assert_eq!(a.cam_grid, b.cam_grid, "{layer}: grid");
            assert_eq!(a.overlay, b.overlay, "{layer}: overlay");
        }
        results.push(first);
    }
    // And the CLI writes byte-identical files run after run.
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for dir in [&a, &b] {
        let run = gradcam(&[
            "explain",
            "examples/images/chelsea.png",
            "--raw",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(run.status.success());
    }
    for f in ["chelsea.png", "chelsea.safetensors"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn ctrl_c_leaves_only_whole_files_and_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    let photo = std::fs::read(root().join("examples/images/chelsea.png")).unwrap();
    for i in 0..120 {
        std::fs::write(inputs.join(format!("p{i:03}.png")), &photo).unwrap();
    }
    let out = tmp.path().join("out");
    let child = Command::new(env!("CARGO_BIN_EXE_gradcam"))
        .args([
            "explain",
            inputs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--batch",
            "4",
        ])
        .current_dir(root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once the first overlays are on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let written = std::fs::read_dir(&out)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
                    .count()
            })
            .unwrap_or(0);
        if written >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    no_panic(&output);
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["totals"]["interrupted"], true);
    let listed: Vec<String> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["output"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !listed.is_empty() && listed.len() < 120,
        "{} listed",
        listed.len()
    );
    let mut on_disk: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    on_disk.sort();
    for path in &on_disk {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(!name.starts_with('.'), "temporary file left behind: {name}");
        if name == "report.json" {
            continue;
        }
        image::open(path).unwrap_or_else(|e| panic!("{name} is not a whole PNG: {e}"));
        assert!(
            listed.contains(&path.display().to_string()),
            "{name} written but not in the report"
        );
    }
    assert_eq!(on_disk.len(), listed.len() + 1);
    // Inputs untouched.
    assert_eq!(std::fs::read(inputs.join("p000.png")).unwrap(), photo);
}

#[test]
fn batches_beyond_the_adapters_limits_are_errors_not_aborts() {
    let engine = engine();
    // A workspace whose activations cannot fit one storage binding.
    let err = engine
        .explainer(engine.max_batch() * 4, ExplainOptions::default())
        .err()
        .expect("too large a batch")
        .to_string();
    assert!(err.contains("smaller batch"), "{err}");
    // A batch whose overlays cannot fit one binding: three 12-megapixel images at once.
    let limit = engine.context().limits.max_storage_buffer_binding_size;
    let side = ((limit / 4 / 2) as f64).sqrt() as u32 + 1; // two of these already exceed the limit
    let big = image::RgbImage::new(side, side);
    let mut ex = engine.explainer(3, ExplainOptions::default()).unwrap();
    let err = ex.upload(&[&big, &big, &big], &[]).unwrap_err().to_string();
    assert!(
        err.contains("smaller batch") || err.contains("more than"),
        "{err}"
    );
    // The workspace is still usable for a batch that fits.
    let small = common::decode(&root().join("examples/images/chelsea.png"));
    let out = ex.explain(&[&small], &[], Readback::ALL).unwrap();
    assert_eq!(out[0].class, 285);
}

//! Grad-CAM against pytorch-grad-cam (fixtures from tools/make_fixtures.py): CAMs, overlays,
//! the head gradient's closed form, the jet table, an all-zero CAM, and batching.

mod common;

use std::collections::HashMap;

use common::{decode, engine, fixtures, max_abs_diff, root, Fixture};
use gradcam::{Colormap, ExplainOptions, Explainer, Readback, Target};

fn explainer(layer: &str, capacity: u32) -> Explainer {
    explainer_with(layer, capacity, 0.5)
}

fn explainer_with(layer: &str, capacity: u32, image_weight: f32) -> Explainer {
    engine()
        .explainer(
            capacity,
            ExplainOptions {
                layer: layer.into(),
                colormap: Colormap::Jet,
                image_weight,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("explainer for {layer}: {e}"))
}

fn image(name: &str) -> image::RgbImage {
    match name {
        "chelsea" | "coffee" => decode(&root().join("examples/images").join(format!("{name}.png"))),
        _ => decode(&root().join("tests/fixtures").join(format!("{name}.png"))),
    }
}

fn target_of(tag: &str) -> Target {
    match tag {
        "argmax" => Target::Predicted,
        c => Target::Class(c.trim_start_matches('c').parse().expect("class tag")),
    }
}

/// The CAM cases in the fixture, grouped by (image, layer): [(target tag, fixture key)].
fn cases(fx: &HashMap<String, Fixture>) -> Vec<(String, String, Vec<String>)> {
    let mut groups: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut keys: Vec<&String> = fx
        .keys()
        .filter(|k| k.ends_with(".cam") && !k.starts_with("overlay"))
        .collect();
    keys.sort();
    for key in keys {
        let parts: Vec<&str> = key.split('.').collect();
        // <img>.<layer...>.<target>.cam
        let img = parts[0].to_string();
        let layer = parts[1..parts.len() - 2].join(".");
        let tag = parts[parts.len() - 2].to_string();
        match groups.iter_mut().find(|(i, l, _)| *i == img && *l == layer) {
            Some(g) => g.2.push(tag),
            None => groups.push((img, layer, vec![tag])),
        }
    }
    groups
}

fn check_group(
    img_name: &str,
    layer: &str,
    tags: &[String],
    fx: &HashMap<String, Fixture>,
    tolerance: f32,
) {
    let img = image(img_name);
    // All targets of one image and layer as one batch: different classes per image.
    let images: Vec<&image::RgbImage> = tags.iter().map(|_| &img).collect();
    let targets: Vec<Target> = tags.iter().map(|t| target_of(t)).collect();
    let mut ex = explainer(layer, tags.len() as u32);
    let out = ex
        .explain(&images, &targets, Readback::ALL)
        .unwrap_or_else(|e| panic!("{e}"));
    for (tag, result) in tags.iter().zip(&out) {
        let key = format!("{img_name}.{layer}.{tag}");
        let expected_class = fx[&format!("{key}.class")].data[0] as u32;
        assert_eq!(result.class, expected_class, "{key}: class");
        let cam = result.cam.as_ref().expect("cam read");
        let d = max_abs_diff(cam, &fx[&format!("{key}.cam")].data);
        let grid = result.cam_grid.as_ref().expect("grid read");
        let expected_grid = &fx[&format!("{key}.grid")].data;
        let grid_scale = expected_grid.iter().copied().fold(0.0, f32::max).max(1e-12);
        let gd = max_abs_diff(grid, expected_grid) / grid_scale;
        println!("{key:30} cam max |diff| {d:.2e}   grid max |diff| / max {gd:.2e}");
        assert!(d <= tolerance, "{key}: cam max |diff| {d} > {tolerance}");
        assert!(cam.iter().all(|v| v.is_finite()), "{key}: non-finite cam");
    }
}

#[test]
fn cam_matches_pytorch_grad_cam_on_224_inputs() {
    let fx = fixtures("cam");
    let groups: Vec<_> = cases(&fx)
        .into_iter()
        .filter(|(img, _, _)| img.ends_with("_224"))
        .collect();
    assert_eq!(groups.len(), 8, "two images × four layers");
    for layer in ["head", "blocks.15", "blocks.8", "blocks.3"] {
        assert!(groups
            .iter()
            .any(|(i, l, t)| i == "chelsea_224" && l == layer && t.len() == 3));
    }
    for (img, layer, tags) in &groups {
        check_group(img, layer, tags, &fx, 1e-4);
    }
}

#[test]
fn cam_matches_pytorch_grad_cam_on_full_size_photos() {
    let fx = fixtures("cam");
    for img in ["chelsea", "coffee"] {
        check_group(img, "head", &["argmax".to_string()], &fx, 1e-3);
    }
}

#[test]
fn overlay_matches_show_cam_on_image() {
    let fx = fixtures("cam");
    let mut keys: Vec<&String> = fx.keys().filter(|k| k.starts_with("overlay.")).collect();
    keys.sort();
    assert!(keys.len() >= 3);
    for key in keys {
        // overlay.<img>.<layer...>.<target>.w<W>
        let parts: Vec<&str> = key.split('.').collect();
        let img_name = parts[1];
        let layer = parts[2..parts.len() - 2].join(".");
        let tag = parts[parts.len() - 2];
        let weight: f32 = parts[parts.len() - 1]
            .trim_start_matches('w')
            .parse::<f32>()
            .unwrap()
            / 100.0;
        let img = image(img_name);
        let mut ex = explainer_with(&layer, 1, weight);
        let out = ex
            .explain(&[&img], &[target_of(tag)], Readback::ALL)
            .unwrap();
        let overlay = out[0].overlay.as_ref().expect("overlay");
        assert_eq!(overlay.dimensions(), img.dimensions());
        let expected = &fx[key.as_str()].bytes;
        let ours_cam = out[0].cam.as_ref().expect("cam");
        let ref_cam = &fx[&format!("{img_name}.{layer}.{tag}.cam")].data;
        let cam_error = max_abs_diff(ours_cam, ref_cam);
        // show_cam_on_image with the reference's CAM, in f32 as numpy computes it, except that a
        // pixel's colormap index may be taken from our CAM instead.
        let blend = |i: usize, index: usize| -> [f32; 3] {
            let lut = Colormap::Jet.table();
            let src = img.as_raw();
            std::array::from_fn(|c| {
                let heat = f32::from(lut[3 * index + c]) / 255.0;
                let rgb = f32::from(src[3 * i + c]) / 255.0;
                (1.0 - f64::from(weight)) as f32 * heat + weight * rgb
            })
        };
        let index_of = |v: f32| ((255.0 * v) as usize).min(255);
        let ref_max = (0..ref_cam.len())
            .flat_map(|i| blend(i, index_of(ref_cam[i])))
            .fold(0.0f32, f32::max);
        let mut worst = 0i32;
        let mut flips = 0usize;
        let mut failures = Vec::new();
        for (i, px) in overlay.pixels().enumerate() {
            assert_eq!(px[3], 255, "opaque");
            for c in 0..3 {
                let d = (i32::from(px[c]) - i32::from(expected[i * 3 + c])).abs();
                worst = worst.max(d);
                if d <= 2 {
                    continue;
                }
                // Truncation picks the colormap index: where the reference's 255·cam lies within
                // our measured CAM error of an integer, the neighbouring colour is as faithful.
                // Then the pixel must equal show_cam_on_image at our index.
                let v = 255.0 * ref_cam[i];
                let near_boundary = (v - v.round()).abs() <= 255.0 * cam_error + 1e-4;
                let ours_index = index_of(ours_cam[i]);
                let flipped = ours_index != index_of(ref_cam[i]);
                let at_ours = (255.0 * (blend(i, ours_index)[c] / ref_max)) as i32;
                let consistent = (i32::from(px[c]) - at_ours).abs() <= 2;
                if near_boundary && flipped && consistent {
                    flips += 1;
                } else {
                    failures.push(format!(
                        "pixel {i} channel {c}: ours {} vs reference {} (255·cam: reference {v}, ours {}; \
                         CAM error {cam_error:e}; show_cam_on_image at our index gives {at_ours})",
                        px[c],
                        expected[i * 3 + c],
                        255.0 * ours_cam[i]
                    ));
                }
            }
        }
        println!(
            "{key}: worst channel difference {worst}; {flips} channel values beyond ±2, all at colormap \
             index boundaries (reference 255·cam within {:.1e} of an integer)",
            255.0 * cam_error
        );
        if !failures.is_empty() {
            let dir = root().join("target/test-output");
            std::fs::create_dir_all(&dir).ok();
            overlay.save(dir.join(format!("{key}.ours.png"))).ok();
            image::RgbImage::from_raw(224, 224, expected.clone())
                .map(|e| e.save(dir.join(format!("{key}.reference.png"))));
            panic!(
                "{key}: {} channel values differ by more than 2 (both images written to {}):\n{}",
                failures.len(),
                dir.display(),
                failures
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

#[test]
fn head_gradient_is_the_closed_form() {
    // d logit_c / d A[p, k] = W_fc[c, k] / (7 · 7) for the head's output A, at every pixel.
    let engine = engine();
    let img = image("chelsea_224");
    let mut ex = explainer("head", 2);
    let targets = [Target::Class(285), Target::Class(967)];
    ex.upload(&[&img, &img], &targets).unwrap();
    ex.run().unwrap();
    let grad = ex.read_target_gradient().unwrap();
    let model = engine.model();
    let k = 1280;
    assert_eq!(grad.len(), 2 * 49 * k);
    for (n, class) in [285usize, 967].into_iter().enumerate() {
        let row = &model.classifier().weight[class * k..(class + 1) * k];
        for p in 0..49 {
            let got = &grad[(n * 49 + p) * k..(n * 49 + p + 1) * k];
            let expected: Vec<f32> = row.iter().map(|w| w / 49.0).collect();
            common::assert_close(
                &format!("class {class} pixel {p}"),
                got,
                &expected,
                0.0,
                1e-6,
            );
        }
    }
}

#[test]
fn jet_table_is_opencv_byte_for_byte() {
    let fx = fixtures("cam");
    assert_eq!(&Colormap::Jet.table()[..], &fx["jet_lut"].bytes[..]);
    for c in Colormap::ALL {
        assert_eq!(c.name().parse::<Colormap>().unwrap(), c);
    }
    let err = "rainbow".parse::<Colormap>().unwrap_err().to_string();
    assert!(err.contains("rainbow") && err.contains("viridis"), "{err}");
}

#[test]
fn all_zero_cam_gives_zero_map_without_nan() {
    let fx = fixtures("cam");
    let class = fx["zero.class"].data[0] as u32;
    let img = image("chelsea_224");
    let mut ex = explainer("head", 1);
    let out = ex
        .explain(&[&img], &[Target::Class(class)], Readback::ALL)
        .unwrap();
    let r = &out[0];
    assert_eq!(r.class, class);
    assert!(
        r.cam_grid.as_ref().unwrap().iter().all(|v| *v == 0.0),
        "grid all zero"
    );
    assert!(
        r.cam.as_ref().unwrap().iter().all(|v| *v == 0.0),
        "cam all zero, no NaN"
    );
    // The overlay of an all-zero map is the image under jet's lowest colour; never garbage.
    let overlay = r.overlay.as_ref().unwrap();
    let jet0 = &Colormap::Jet.table()[..3];
    let px = overlay.get_pixel(0, 0);
    let src = img.get_pixel(0, 0);
    let blend: Vec<f32> = (0..3)
        .map(|c| 0.5 * f32::from(jet0[c]) / 255.0 + 0.5 * f32::from(src[c]) / 255.0)
        .collect();
    assert!(blend.iter().all(|v| v.is_finite()) && px[3] == 255);
}

#[test]
fn batch_with_different_classes_equals_single_runs() {
    let names = ["chelsea_224", "coffee_224", "chelsea", "coffee"];
    let images: Vec<image::RgbImage> = names.iter().map(|n| image(n)).collect();
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let targets = [
        Target::Class(281),
        Target::Predicted,
        Target::Class(967),
        Target::Class(504),
    ];
    for layer in ["head", "blocks.8"] {
        let mut batch = explainer(layer, 4);
        let together = batch.explain(&refs, &targets, Readback::ALL).unwrap();
        let mut single = explainer(layer, 1);
        for (i, (img, target)) in refs.iter().zip(targets).enumerate() {
            let alone = single.explain(&[img], &[target], Readback::ALL).unwrap();
            let (a, b) = (&together[i], &alone[0]);
            assert_eq!(a.class, b.class, "{layer} image {i}");
            assert_eq!(
                a.cam, b.cam,
                "{layer} image {i}: cam differs between batch and single run"
            );
            assert_eq!(a.cam_grid, b.cam_grid, "{layer} image {i}: grid");
            assert_eq!(a.overlay, b.overlay, "{layer} image {i}: overlay");
        }
        assert_eq!(
            together[1].class, 967,
            "coffee_224's prediction is espresso"
        );
    }
}

#[test]
fn ranked_targets_follow_the_logits() {
    // Rank r: the r-th class by logit, chosen on the GPU; its map is that class's map.
    let img = image("chelsea_224");
    let ranks = [0u32, 1, 4, 999];
    let imgs: Vec<&image::RgbImage> = ranks.iter().map(|_| &img).collect();
    let targets: Vec<Target> = ranks.iter().map(|&r| Target::Rank(r)).collect();
    let mut ex = explainer("head", 4);
    let ranked = ex.explain(&imgs, &targets, Readback::ALL).unwrap();
    let logits = &ranked[0].logits;
    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
    order.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    let explicit: Vec<Target> = ranks
        .iter()
        .map(|&r| Target::Class(order[r as usize]))
        .collect();
    let by_class = ex.explain(&imgs, &explicit, Readback::ALL).unwrap();
    for ((r, a), b) in ranks.iter().zip(&ranked).zip(&by_class) {
        assert_eq!(a.class, order[*r as usize], "rank {r}");
        assert_eq!(a.cam, b.cam, "rank {r}: the map of its class");
    }
    let err = ex
        .explain(&[&img], &[Target::Rank(1000)], Readback::ALL)
        .unwrap_err()
        .to_string();
    assert!(err.contains("rank 1000"), "{err}");
}

#[test]
fn bad_requests_are_errors() {
    let engine = engine();
    let err = engine
        .explainer(
            1,
            ExplainOptions {
                layer: "blocks.16".into(),
                ..Default::default()
            },
        )
        .err()
        .expect("unknown layer")
        .to_string();
    assert!(
        err.contains("blocks.16") && err.contains("head") && err.contains("blocks.15"),
        "{err}"
    );
    let err = engine
        .explainer(
            1,
            ExplainOptions {
                image_weight: 1.5,
                ..Default::default()
            },
        )
        .err()
        .expect("weight out of range")
        .to_string();
    assert!(err.contains("1.5"), "{err}");
    let img = image("chelsea_224");
    let mut ex = explainer("head", 1);
    let err = ex
        .upload(&[&img], &[Target::Class(1000)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("1000") && err.contains("0..=999"), "{err}");
}

#[test]
fn results_carry_label_and_score() {
    let mut ex = explainer("head", 2);
    let img = image("chelsea");
    let out = ex
        .explain(
            &[&img, &img],
            &[Target::Predicted, Target::Class(281)],
            Readback {
                cam: false,
                cam_grid: false,
                overlay: false,
                guided: false,
            },
        )
        .expect("explain");
    assert_eq!((out[0].class, out[0].label.as_str()), (285, "Egyptian cat"));
    assert_eq!((out[1].class, out[1].label.as_str()), (281, "tabby"));
    for r in &out {
        let p = gradcam::softmax(&r.logits)[r.class as usize];
        assert!(
            (r.score - p).abs() < 1e-6,
            "score {} vs softmax {p}",
            r.score
        );
    }
    assert!(out[0].score > 0.5 && out[1].score < out[0].score);

    let model = engine().model().clone();
    let err = model
        .with_labels(gradcam::Labels::numbered(10))
        .expect_err("10 labels for 1000 classes");
    assert!(err.to_string().contains("10 labels"), "{err}");
}

#[test]
fn overlays_copy_into_textures_as_read_back() {
    // Each overlay, copied from the batch's buffer into a texture on the GPU, holds the pixels
    // that `read` brings back; the regions tile the buffer 256-byte aligned.
    let mut odd = image::RgbImage::new(37, 23);
    for (x, y, px) in odd.enumerate_pixels_mut() {
        *px = image::Rgb([(x * 7) as u8, (y * 11) as u8, ((x + y) * 3) as u8]);
    }
    let images = [image("chelsea"), image("coffee_224"), odd];
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let mut ex = explainer("head", 3);
    let read = ex.explain(&refs, &[], Readback::ALL).unwrap();
    let regions = ex.overlay_regions();
    assert_eq!(regions.len(), 3);
    let mut end = 0;
    for (r, img) in regions.iter().zip(&images) {
        assert_eq!((r.width, r.height), img.dimensions());
        assert_eq!(r.offset, end, "regions follow one another");
        assert_eq!(r.offset % 256, 0);
        assert_eq!(r.bytes_per_row % 256, 0);
        assert!(r.bytes_per_row >= r.width * 4 && r.bytes_per_row < r.width * 4 + 256);
        end = r.offset + r.len();
    }
    assert!(end <= ex.overlay_buffer().size());

    let ctx = ex.context().clone();
    for (i, result) in read.iter().enumerate() {
        let region = regions[i];
        let texture = ex
            .create_overlay_texture(i, gradcam::wgpu::TextureFormat::Rgba8UnormSrgb)
            .unwrap();
        assert_eq!(
            (texture.width(), texture.height()),
            (region.width, region.height)
        );
        let staging = ctx.staging("texture_readback", region.len());
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        ex.copy_overlay_to_texture(&mut encoder, i, &texture)
            .unwrap();
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            gradcam::wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: gradcam::wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(region.bytes_per_row),
                    rows_per_image: Some(region.height),
                },
            },
            region.extent(),
        );
        ctx.submit("texture", encoder).unwrap();
        let bytes = ctx.read_staging("texture", &staging, region.len()).unwrap();
        let row = region.width as usize * 4;
        let pixels: Vec<u8> = bytes
            .chunks_exact(region.bytes_per_row as usize)
            .flat_map(|r| r[..row].to_vec())
            .collect();
        let expected = result.overlay.as_ref().expect("overlay");
        assert_eq!(
            &pixels,
            expected.as_raw(),
            "image {i}: texture differs from read()"
        );
    }

    // Wrong requests are errors, not panics or validation failures.
    let format = gradcam::wgpu::TextureFormat::Rgba8Unorm;
    let err = ex
        .create_overlay_texture(3, format)
        .unwrap_err()
        .to_string();
    assert!(err.contains("image 3 is not in the batch"), "{err}");
    let err = ex
        .create_overlay_texture(0, gradcam::wgpu::TextureFormat::R32Float)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Rgba8Unorm"), "{err}");
    let small = ex.create_overlay_texture(2, format).unwrap();
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    let err = ex
        .copy_overlay_to_texture(&mut encoder, 0, &small)
        .unwrap_err()
        .to_string();
    assert!(err.contains("larger than the texture"), "{err}");
}

#[test]
fn activations_nothing_reads_later_share_buffers_and_change_nothing() {
    // An explainer from Engine::explainer keeps only the activations read after the forward
    // pass; one made on Forward::new keeps every one. Their results are identical, bit for bit.
    // (Every method's parity test, tests/parity_methods.rs, runs on explainers that share.)
    let eng = engine();
    let images = [image("chelsea"), image("coffee_224")];
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    for (layer, method) in [
        ("head", gradcam::Method::GradCam),
        ("blocks.8", gradcam::Method::GradCam),
        ("blocks.8", gradcam::Method::GradCamPlusPlus),
        ("head", gradcam::Method::FullGrad),
    ] {
        let options = ExplainOptions {
            layer: layer.into(),
            method,
            ..Default::default()
        };
        let mut lean = eng.explainer(2, options.clone()).unwrap();
        let mut full = Explainer::new(eng.forward(2).unwrap(), options).unwrap();
        let a = lean.explain(&refs, &[], Readback::ALL).unwrap();
        let b = full.explain(&refs, &[], Readback::ALL).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.logits, y.logits, "{layer} {method:?}: logits");
            assert_eq!(x.cam, y.cam, "{layer} {method:?}: cam");
            assert_eq!(x.overlay, y.overlay, "{layer} {method:?}: overlay");
        }
        let (lean_bytes, full_bytes) = (lean.gpu_bytes(), full.gpu_bytes());
        println!("{layer} {method:?}: {lean_bytes} bytes, every activation kept {full_bytes}");
        assert!(lean_bytes <= full_bytes, "{layer} {method:?}");
        if (layer, method) == ("head", gradcam::Method::GradCam) {
            // At head, Grad-CAM reads the head's activations and the logits only: more than
            // half the activations' bytes are saved.
            let model = eng.model();
            let activations = model.activation_values() as u64 * 4 * 2;
            assert!(
                full_bytes - lean_bytes > activations / 2,
                "{lean_bytes} vs {full_bytes}, activations {activations}"
            );
            let forward = lean.forward();
            let head = model.target_layer("head").expect("head tensor");
            assert!(forward.keeps(head) && forward.keeps(model.logits));
            let stem = model.ops[1].output();
            assert!(!forward.keeps(stem));
            let err = forward.read_tensor(stem).unwrap_err().to_string();
            assert!(err.contains("not kept"), "{err}");
            assert!(forward.read_tensor(head).is_ok());
        }
    }
}

#[test]
fn shared_activation_buffers_never_hold_two_live_tensors() {
    let model = engine().model();
    let kept = vec![false; model.tensors.len()];
    let (slots, sizes) =
        gradcam::pipeline::share_by_liveness(model, &kept, |t| model.tensors[t].len() as u64 * 4);
    // Each tensor lives from the op that writes it to the last op that reads it.
    let mut span = vec![(usize::MAX, 0usize); model.tensors.len()];
    for (i, op) in model.ops.iter().enumerate() {
        let o = op.output();
        span[o] = (span[o].0.min(i), span[o].1.max(i));
        for t in op.reads() {
            span[t].1 = span[t].1.max(i);
        }
    }
    for a in 0..slots.len() {
        let Some(sa) = slots[a] else { continue };
        assert!(sizes[sa] >= model.tensors[a].len() as u64 * 4);
        for b in a + 1..slots.len() {
            if slots[b] == Some(sa) {
                let (x, y) = (span[a], span[b]);
                assert!(
                    x.1 < y.0 || y.1 < x.0,
                    "tensors {a} and {b} overlap in buffer {sa}"
                );
            }
        }
    }
    assert!(
        sizes.len() <= 4,
        "{} shared buffers for Lite0's chain",
        sizes.len()
    );
}

#[test]
fn results_copied_with_the_batch_equal_a_separate_readback() {
    // run_with_readback puts the copies in the batch's own submission (two explainers in turn,
    // as the CLI runs on a GPU); read then returns what explain does. Reading something else
    // than what was copied copies again.
    let images = [image("chelsea"), image("coffee_224")];
    let refs: Vec<&image::RgbImage> = images.iter().collect();
    let want = explainer("head", 2)
        .explain(&refs, &[], Readback::ALL)
        .unwrap();
    let mut pair = [explainer("head", 1), explainer("head", 1)];
    for (ex, img) in pair.iter_mut().zip(&refs) {
        ex.upload(&[img], &[]).unwrap();
        ex.run_with_readback(Readback::ALL).unwrap();
    }
    for (i, ex) in pair.iter_mut().enumerate() {
        let got = ex.read(Readback::ALL).unwrap().remove(0);
        assert_eq!(got.logits, want[i].logits, "image {i}");
        assert_eq!(got.cam, want[i].cam, "image {i}");
        assert_eq!(got.overlay, want[i].overlay, "image {i}");
    }
    let only_cam = Readback {
        cam: true,
        cam_grid: false,
        overlay: false,
        guided: false,
    };
    let ex = &mut pair[0];
    ex.upload(&[refs[0]], &[]).unwrap();
    ex.run_with_readback(only_cam).unwrap();
    let got = ex.read(Readback::ALL).unwrap().remove(0);
    assert_eq!(got.overlay, want[0].overlay);
    assert_eq!(got.cam_grid, want[0].cam_grid);
}

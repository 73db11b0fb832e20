//! End-to-end CAM throughput as the comparison script measures it: images decoded
//! beforehand (decode excluded), then per batch upload RGB8 → GPU pipeline → overlay RGBA8 read
//! back at each image's own size (overlay included). Prints one JSON line.
//!
//! cargo run --release --example throughput -- [--batch N] [--images N] [--layer L]
//!     [--method NAME] [--guided] [--weights FILE] IMAGE...
//!
//! `--guided` also makes and reads back the guided backpropagation and Guided Grad-CAM pictures.

use std::sync::Arc;
use std::time::Instant;

use gradcam::{ExplainOptions, GpuContext, Method, Model, Readback};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut batch = 16u32;
    let mut count = 64usize;
    let mut layer = String::new();
    let mut method = Method::GradCam;
    let mut guided = false;
    let mut weights = "weights/efficientnet_lite0.safetensors".to_string();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--batch" => batch = args.next().ok_or("--batch N")?.parse()?,
            "--images" => count = args.next().ok_or("--images N")?.parse()?,
            "--layer" => layer = args.next().ok_or("--layer L")?,
            "--method" => method = args.next().ok_or("--method NAME")?.parse()?,
            "--weights" => weights = args.next().ok_or("--weights FILE")?,
            "--guided" => guided = true,
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        files = vec![
            "examples/images/chelsea.png".into(),
            "examples/images/coffee.png".into(),
        ];
    }
    let decoded: Vec<image::RgbImage> = files
        .iter()
        .map(gradcam::decode_image)
        .collect::<Result<_, _>>()?;
    let images: Vec<&image::RgbImage> = (0..count).map(|i| &decoded[i % decoded.len()]).collect();

    let ctx = Arc::new(GpuContext::new(&Default::default())?);
    let engine = gradcam::Engine::new(ctx.clone(), Model::load(&weights)?);
    let gpu_batch = batch.min(engine.max_batch());
    let mut ex = engine.explainer(
        gpu_batch,
        ExplainOptions {
            layer: layer.clone(),
            method,
            guided,
            ..Default::default()
        },
    )?;
    let what = Readback {
        cam: false,
        cam_grid: false,
        overlay: true,
        guided,
    };
    // Warm-up: pipelines compiled, buffers sized.
    ex.explain(&images[..gpu_batch as usize], &[], what)?;

    let start = Instant::now();
    let mut pixels = 0u64;
    for chunk in images.chunks(gpu_batch as usize) {
        for r in ex.explain(chunk, &[], what)? {
            pixels += r.overlay.map_or(0, |o| u64::from(o.width() * o.height()));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "engine": "gradcam",
            "adapter": ctx.adapter_name(),
            "batch": batch,
            "gpu_batch": gpu_batch,
            "layer": layer,
            "method": method.name(),
            "guided": guided,
            "images": count,
            "overlay_pixels": pixels,
            "seconds": seconds,
            "images_per_second": count as f64 / seconds,
        })
    );
    Ok(())
}

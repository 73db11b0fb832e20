//! Per-kernel GPU time of one Grad-CAM batch, from timestamp queries (one pass per kernel).
//!
//! cargo run --release --example profile_kernels -- [BATCH] [LAYER] [WEIGHTS] [METHOD]

use std::sync::Arc;

use gradcam::gpu::profile::totals;
use gradcam::gpu::Profiler;
use gradcam::{ExplainOptions, GpuContext, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batch: u32 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(16);
    let layer = std::env::args().nth(2).unwrap_or_else(|| "head".into());
    let ctx = Arc::new(GpuContext::new(&Default::default())?);
    println!("adapter: {}", ctx.adapter_name());
    let engine = gradcam::Engine::new(
        ctx.clone(),
        Model::load(
            std::env::args()
                .nth(3)
                .unwrap_or_else(|| "weights/efficientnet_lite0.safetensors".into()),
        )?,
    );
    let mut ex = engine.explainer(
        batch,
        ExplainOptions {
            layer,
            method: std::env::args()
                .nth(4)
                .map(|m| m.parse())
                .transpose()?
                .unwrap_or_default(),
            ..Default::default()
        },
    )?;
    let image = gradcam::decode_image("examples/images/chelsea.png")?;
    let images: Vec<&image::RgbImage> = (0..batch).map(|_| &image).collect();
    ex.upload(&images, &[])?;
    ex.run()?; // warm-up
    let mut profiler = Profiler::new(&ctx, ex.launches() as u32);
    if !profiler.enabled() {
        return Err("this adapter has no TIMESTAMP_QUERY".into());
    }
    // The least time of a few runs per kernel: shared machines are noisy.
    let mut best: Vec<(String, f64, usize)> = Vec::new();
    let runs: usize = std::env::var("RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    for _ in 0..runs {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        ex.record_profiled(&mut encoder, &mut profiler, true);
        profiler.resolve(&mut encoder);
        ctx.submit("profile", encoder)?;
        let times = profiler.read(&ctx)?;
        if std::env::var_os("PER_LAUNCH").is_some() {
            // The slowest launches of this run, in launch order within their kernel.
            let mut launches: Vec<(usize, &(String, f64))> = times.iter().enumerate().collect();
            launches.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
            // PER_LAUNCH=all: every launch.
            let shown = if std::env::var("PER_LAUNCH").as_deref() == Ok("all") {
                usize::MAX
            } else {
                12
            };
            for (i, (k, t)) in launches.into_iter().take(shown) {
                println!("  launch {i:3} {k:22} {:8.2} ms", t * 1e3);
            }
        }
        let run = totals(&times);
        if best.is_empty() {
            best = run;
        } else {
            for (b, r) in best.iter_mut().zip(run) {
                b.1 = b.1.min(r.1);
            }
        }
    }
    let total: f64 = best.iter().map(|t| t.1).sum();
    best.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "batch {batch}: {:.1} ms GPU, {:.2} ms per image",
        total * 1e3,
        total * 1e3 / f64::from(batch)
    );
    for (k, t, n) in best {
        println!(
            "{k:22} {:8.2} ms  {:5.1}%  ({n} launches)",
            t * 1e3,
            100.0 * t / total
        );
    }
    Ok(())
}

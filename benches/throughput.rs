//! Throughput benchmarks on whatever adapter is present (set WGPU_ADAPTER_NAME to pick one):
//!
//! - `explain/batchN`: end-to-end Grad-CAM, GPU-resident: uploaded RGB8 in, overlay RGBA8 out on
//!   the GPU (preprocess, forward, target choice, backward to `head`, CAM, colormap and blend at
//!   each image's size), waiting for the GPU, no readback; batch 1, 16 and 64 (a batch larger
//!   than the adapter's storage bindings allow runs as several GPU batches);
//! - `forward/batchN`: the forward pass alone (preprocessing included), batch 1 and 16.
//!
//! `cargo bench --bench throughput`; criterion reports time per batch and images/s ("elem/s").

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gradcam::{AdapterOptions, Engine, ExplainOptions, GpuContext, Model};

fn setup() -> (Engine, Vec<image::RgbImage>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ctx = Arc::new(GpuContext::new(&AdapterOptions::default()).expect("GPU context"));
    eprintln!("adapter: {}", ctx.adapter_name());
    let model = Model::load(root.join("weights/efficientnet_lite0.safetensors")).expect("weights");
    let images = ["chelsea.png", "coffee.png"]
        .iter()
        .map(|f| gradcam::decode_image(root.join("examples/images").join(f)).expect("image"))
        .collect();
    (Engine::new(ctx, model), images)
}

fn benches(c: &mut Criterion) {
    let (engine, photos) = setup();
    let ctx = engine.context().clone();

    let mut group = c.benchmark_group("explain");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for batch in [1u32, 16, 64] {
        let gpu_batch = batch.min(engine.max_batch());
        let mut ex = engine
            .explainer(gpu_batch, ExplainOptions::default())
            .expect("explainer");
        let images: Vec<&image::RgbImage> = (0..batch as usize)
            .map(|i| &photos[i % photos.len()])
            .collect();
        group.throughput(Throughput::Elements(u64::from(batch)));
        group.bench_function(format!("batch{batch}"), |b| {
            b.iter(|| {
                for chunk in images.chunks(gpu_batch as usize) {
                    ex.upload(chunk, &[]).expect("upload");
                    ex.run().expect("run");
                    ctx.wait().expect("wait");
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("forward");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for batch in [1u32, 16] {
        let mut fwd = engine.forward(batch).expect("workspace");
        let images: Vec<&image::RgbImage> = (0..batch as usize)
            .map(|i| &photos[i % photos.len()])
            .collect();
        fwd.upload_images(&images).expect("upload");
        group.throughput(Throughput::Elements(u64::from(batch)));
        group.bench_function(format!("batch{batch}"), |b| {
            b.iter(|| {
                fwd.run(true).expect("forward");
                ctx.wait().expect("wait");
            })
        });
    }
    group.finish();
}

criterion_group!(throughput, benches);
criterion_main!(throughput);

//! Forward-pass throughput on whatever adapter is present: uploaded RGB8 in, logits on the GPU
//! (preprocessing included, no readback), at batch 1 and 16.
//!
//! `cargo bench --bench forward` (set WGPU_ADAPTER_NAME to pick an adapter).

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gradcam::{AdapterOptions, Engine, GpuContext, Model};

fn forward(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ctx = Arc::new(GpuContext::new(&AdapterOptions::default()).expect("GPU context"));
    eprintln!("adapter: {}", ctx.adapter_name());
    let model = Model::load(root.join("weights/efficientnet_lite0.safetensors")).expect("weights");
    let engine = Engine::new(ctx, model);
    let image = gradcam::decode_image(root.join("examples/images/chelsea.png")).expect("image");
    let mut group = c.benchmark_group("forward");
    group.sample_size(10);
    for batch in [1u32, 16] {
        let mut fwd = engine.forward(batch).expect("workspace");
        let images: Vec<&image::RgbImage> = (0..batch).map(|_| &image).collect();
        fwd.upload_images(&images).expect("upload");
        fwd.run(true).expect("warm-up");
        group.throughput(Throughput::Elements(u64::from(batch)));
        group.bench_function(format!("batch{batch}"), |b| {
            b.iter(|| fwd.run(true).expect("forward"))
        });
    }
    group.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);

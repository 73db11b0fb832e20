//! Embedding the engine in an application that already has a wgpu device: the app records
//! Grad-CAM into its own command encoder and keeps the results on the GPU (here they are read
//! back only to show what the buffers hold).
//!
//! cargo run --release --example embed -- examples/images/chelsea.png

use std::sync::Arc;

use gradcam::{ExplainOptions, GpuContext, Model, Readback, Target};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "examples/images/chelsea.png".into());

    // The application's own device, as a renderer would have made it.
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("app"),
        required_limits: adapter.limits(),
        ..Default::default()
    }))?;

    // The engine on that device.
    let ctx = Arc::new(GpuContext::from_device(device.clone(), queue.clone())?);
    let engine = gradcam::Engine::new(ctx, Model::load("weights/efficientnet_lite0.safetensors")?);
    let mut explainer = engine.explainer(1, ExplainOptions::default())?;

    let image = gradcam::decode_image(&path)?;
    explainer.upload(&[&image], &[Target::Predicted])?;

    // A texture for the overlay, made once; the app samples it like any other.
    let texture = explainer.create_overlay_texture(0, wgpu::TextureFormat::Rgba8UnormSrgb)?;

    // Each frame: record into the app's encoder, next to its own work, and submit it with that
    // work. The overlay goes from the engine's buffer into the texture without leaving the GPU.
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("frame"),
    });
    explainer.record(&mut encoder);
    explainer.copy_overlay_to_texture(&mut encoder, 0, &texture)?;
    queue.submit([encoder.finish()]);

    // The results are GPU resources the app can bind directly.
    let region = explainer.overlay_regions()[0];
    println!(
        "overlay texture {}x{} ({:?}); in the overlay buffer at byte {}, {} bytes per row; \
         cam buffer: {} bytes (f32 224x224)",
        texture.width(),
        texture.height(),
        texture.format(),
        region.offset,
        region.bytes_per_row,
        explainer.cam_buffer().size()
    );

    // Reading back is optional.
    let result = explainer.read(Readback::ALL)?.remove(0);
    let probs = gradcam::softmax(&result.logits);
    println!(
        "explained class {} (p = {:.3})",
        result.class, probs[result.class as usize]
    );
    if let Some(overlay) = result.overlay {
        overlay.save("embed_overlay.png")?;
        println!("wrote embed_overlay.png");
    }
    Ok(())
}

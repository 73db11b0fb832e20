//! Buffers read through textures, on lavapipe.
//!
//! lavapipe runs a subgroup of 8 invocations as one SIMD vector, and compiles a storage-buffer
//! load whose index differs between the lanes, or that sits inside any loop, into eight scalar
//! loads, each behind a branch on its lane's execution mask; a texel fetch is one vectorized
//! gather. The convs load their inputs and weights that way, so on this driver the pointwise and
//! depthwise convs, the dense convs of the subgroup stems and tile, the elementwise ops and the
//! squeeze-and-excitation blocks' pool and gate read them as textures (the `*_texture` kernels):
//! the weights are uploaded as textures once ([`upload`]), and each launch's input is copied into
//! a texture the forward pass shares among them ([`TexelCopy`]) just before it. Vec4 `i` of a buffer is
//! texel `(i % TEXEL_ROW, i / TEXEL_ROW)` (shaders/lib/texel.wgsl).

use crate::gpu::kernels::TEXEL_ROW;
use crate::gpu::GpuContext;
use crate::pipeline::steps::{BatchShape, Repeat};

/// Bytes of one texel: four f32.
const TEXEL_BYTES: u64 = 16;

/// The rows of a texture holding `texels` texels, if the device allows a texture that tall.
fn rows_for(ctx: &GpuContext, texels: u64) -> Option<u32> {
    let rows = texels.div_ceil(u64::from(TEXEL_ROW)).max(1);
    (rows <= u64::from(ctx.limits.max_texture_dimension_2d)
        && TEXEL_ROW <= ctx.limits.max_texture_dimension_2d)
        .then_some(rows as u32)
}

/// Whether a buffer of `texels` vec4s fits a texture on this device.
pub fn fits(ctx: &GpuContext, texels: u64) -> bool {
    rows_for(ctx, texels).is_some()
}

fn texture(ctx: &GpuContext, label: &str, rows: u32) -> wgpu::Texture {
    ctx.device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width: TEXEL_ROW,
            height: rows,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// A texture to copy buffers of up to `texels` vec4s into, or `None` where the device's
/// largest texture is smaller.
pub fn scratch(ctx: &GpuContext, label: &str, texels: u64) -> Option<wgpu::Texture> {
    rows_for(ctx, texels).map(|rows| texture(ctx, label, rows))
}

/// `data` (a whole number of vec4s) uploaded as a texture, or `None` where it does not fit one.
pub fn upload(ctx: &GpuContext, label: &str, data: &[f32]) -> Option<wgpu::TextureView> {
    debug_assert_eq!(data.len() % 4, 0);
    let texels = (data.len() / 4) as u64;
    let rows = rows_for(ctx, texels)?;
    let texture = texture(ctx, label, rows);
    // Whole rows: the last one padded with zeros.
    let mut padded = data.to_vec();
    padded.resize(rows as usize * TEXEL_ROW as usize * 4, 0.0);
    ctx.queue.write_texture(
        texture.as_image_copy(),
        bytemuck::cast_slice(&padded),
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(TEXEL_ROW * TEXEL_BYTES as u32),
            rows_per_image: None,
        },
        texture.size(),
    );
    Some(texture.create_view(&Default::default()))
}

/// Copies the batch's part of a buffer (`per_image` vec4s per image) into a texture, between
/// two launches of the forward pass.
pub struct TexelCopy {
    /// The buffer.
    pub buffer: wgpu::Buffer,
    /// The texture, large enough for the workspace's capacity.
    pub texture: wgpu::Texture,
    /// Vec4s per image.
    pub per_image: u64,
}

impl Repeat for TexelCopy {
    fn configure(&mut self, _ctx: &GpuContext, _shape: BatchShape) {}

    fn record(
        &self,
        _ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchShape,
        timestamp_writes: Option<wgpu::ComputePassTimestampWrites<'_>>,
    ) {
        // A profiled run times an empty pass here: the copy is not a compute pass.
        if let Some(writes) = timestamp_writes {
            drop(encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("texel copy"),
                timestamp_writes: Some(writes),
            }));
        }
        let texels = u64::from(shape.images) * self.per_image;
        let row = u64::from(TEXEL_ROW);
        let (full, rest) = (texels / row, texels % row);
        let copy = |encoder: &mut wgpu::CommandEncoder, first_row: u64, width: u64, rows: u64| {
            encoder.copy_buffer_to_texture(
                wgpu::TexelCopyBufferInfo {
                    buffer: &self.buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: first_row * row * TEXEL_BYTES,
                        bytes_per_row: Some((row * TEXEL_BYTES) as u32),
                        rows_per_image: None,
                    },
                },
                wgpu::TexelCopyTextureInfo {
                    texture: &self.texture,
                    mip_level: 0,
                    origin: wgpu::Origin3d {
                        x: 0,
                        y: first_row as u32,
                        z: 0,
                    },
                    aspect: wgpu::TextureAspect::All,
                },
                wgpu::Extent3d {
                    width: width as u32,
                    height: rows as u32,
                    depth_or_array_layers: 1,
                },
            );
        };
        if full > 0 {
            copy(encoder, 0, row, full);
        }
        if rest > 0 {
            copy(encoder, full, rest, 1);
        }
    }

    fn gpu_bytes(&self) -> u64 {
        // The texture is the forward pass's, shared by every copy.
        0
    }

    fn name(&self) -> &'static str {
        "texel copy"
    }
}

/// The texture the forward pass copies the pointwise convs' inputs into, one at a time.
pub struct Scratch {
    texture: wgpu::Texture,
    view: wgpu::TextureView,
    /// Vec4s it holds.
    texels: u64,
    /// Images per batch of the workspace.
    capacity: u32,
}

impl Scratch {
    /// A texture for the largest of the inputs, `per_image` vec4s per image each, of a
    /// workspace of `capacity` images: those that fit a texture on this device. `None` where
    /// none does.
    pub fn new(
        ctx: &GpuContext,
        capacity: u32,
        per_image: impl IntoIterator<Item = u64>,
    ) -> Option<Self> {
        let texels = per_image
            .into_iter()
            .map(|p| p * u64::from(capacity))
            .filter(|&t| fits(ctx, t))
            .max()?;
        let texture = scratch(ctx, "texel inputs", texels)?;
        let view = texture.create_view(&Default::default());
        Some(Self {
            texture,
            view,
            texels,
            capacity,
        })
    }

    /// The copy of `buffer`, `per_image` vec4s per image, into the texture, if it fits.
    pub fn copy(&self, buffer: &wgpu::Buffer, per_image: u64) -> Option<TexelCopy> {
        (per_image * u64::from(self.capacity) <= self.texels).then(|| TexelCopy {
            buffer: buffer.clone(),
            texture: self.texture.clone(),
            per_image,
        })
    }

    /// The texture's view, to bind.
    pub fn view(&self) -> &wgpu::TextureView {
        &self.view
    }

    /// Bytes of the texture.
    pub fn gpu_bytes(&self) -> u64 {
        let size = self.texture.size();
        u64::from(size.width) * u64::from(size.height) * TEXEL_BYTES
    }
}

//! The forward pass: preprocessing of uploaded RGB8 images, every layer of the plan, logits.
//! All activations stay in per-tensor buffers sized for the workspace's batch capacity, so a
//! backward pass can reuse them; the only readback is the logits, on request.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::kernels::{Dispatch, KernelId};
use crate::gpu::params::{
    ConvParams, DepthwiseParams, ImageMeta, LinearParams, PointwiseParams, PoolParams,
    PreprocessParams,
};
use crate::gpu::GpuContext;
use crate::model::{ConvKind, Model, Op};

/// A model's weights on the GPU, uploaded once and shared by every workspace.
pub struct GpuModel {
    /// The network description.
    pub model: Arc<Model>,
    /// Per conv: (weight in GPU layout, bias).
    pub convs: Vec<(wgpu::Buffer, wgpu::Buffer)>,
    /// Classifier weight `[classes, features]`.
    pub fc_weight: wgpu::Buffer,
    /// Classifier bias `[classes]`.
    pub fc_bias: wgpu::Buffer,
}

impl GpuModel {
    /// Uploads `model`'s weights.
    pub fn upload(ctx: &GpuContext, model: Arc<Model>) -> Self {
        let convs = model
            .convs
            .iter()
            .map(|c| {
                (
                    ctx.storage_with(&format!("{}.weight", c.name), &c.weight),
                    ctx.storage_with(&format!("{}.bias", c.name), &c.bias),
                )
            })
            .collect();
        let fc_weight = ctx.storage_with("_fc.weight", &model.fc_weight);
        let fc_bias = ctx.storage_with("_fc.bias", &model.fc_bias);
        Self {
            model,
            convs,
            fc_weight,
            fc_bias,
        }
    }
}

/// Buffers and recorded dispatches for running the forward pass on up to `capacity` images.
/// Made once, reused for every batch: nothing is allocated per batch unless a batch's pixels
/// outgrow the upload buffer.
pub struct Forward {
    ctx: Arc<GpuContext>,
    gpu_model: Arc<GpuModel>,
    capacity: u32,
    batch: u32,
    configured: bool,
    /// One buffer per model tensor (NHWC, `capacity` images).
    tensors: Vec<wgpu::Buffer>,
    pixels: wgpu::Buffer,
    pixel_bytes: Vec<u8>,
    metas: wgpu::Buffer,
    dispatches: Vec<Dispatch>,
    logits_staging: wgpu::Buffer,
}

const INITIAL_PIXEL_BYTES: u64 = 4 << 20;

impl Forward {
    /// A workspace for batches of up to `capacity` images.
    pub fn new(ctx: Arc<GpuContext>, gpu_model: Arc<GpuModel>, capacity: u32) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::InvalidRequest(
                "batch size must be at least 1".into(),
            ));
        }
        let model = gpu_model.model.clone();
        let tensors = model
            .tensors
            .iter()
            .map(|t| ctx.storage(&t.name, t.len() as u64 * 4 * u64::from(capacity)))
            .collect::<Result<Vec<_>>>()?;
        let pixels = ctx.storage("pixels", INITIAL_PIXEL_BYTES)?;
        let metas = ctx.storage(
            "image_metas",
            std::mem::size_of::<ImageMeta>() as u64 * u64::from(capacity),
        )?;
        let logits_staging = ctx.staging(
            "logits_readback",
            u64::from(model.classes) * 4 * u64::from(capacity),
        );
        let mut f = Self {
            ctx,
            gpu_model,
            capacity,
            batch: capacity,
            configured: false,
            tensors,
            pixels,
            pixel_bytes: Vec::new(),
            metas,
            dispatches: Vec::new(),
            logits_staging,
        };
        f.dispatches = f.build_dispatches();
        Ok(f)
    }

    /// The most images one batch can hold.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The images in the current batch.
    pub fn batch(&self) -> u32 {
        self.batch
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.gpu_model.model
    }

    /// The buffer of model tensor `id` (NHWC, f32).
    pub fn tensor(&self, id: usize) -> &wgpu::Buffer {
        &self.tensors[id]
    }

    fn build_dispatches(&self) -> Vec<Dispatch> {
        let ctx = &self.ctx;
        let model = &self.gpu_model.model;
        let k = &ctx.kernels;
        model
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let (kernel, bytes, _) = step(model, op, self.batch);
                let params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("params.{i}")),
                    size: bytes.len() as u64,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let t = &self.tensors;
                let bind_group = match *op {
                    Op::Preprocess { output } => k.preprocess.bind(
                        &ctx.device,
                        &[&params, &self.pixels, &self.metas, &t[output]],
                    ),
                    Op::Conv {
                        conv,
                        input,
                        output,
                        residual,
                        ..
                    } => {
                        let (w, b) = &self.gpu_model.convs[conv];
                        match model.convs[conv].kind {
                            ConvKind::Dense => k
                                .conv2d
                                .bind(&ctx.device, &[&params, &t[input], w, b, &t[output]]),
                            ConvKind::Depthwise => k
                                .depthwise_conv
                                .bind(&ctx.device, &[&params, &t[input], w, b, &t[output]]),
                            ConvKind::Pointwise => {
                                // Without a residual the binding still needs a buffer; the bias is never read there.
                                let r = residual.map(|r| &t[r]).unwrap_or(b);
                                k.pointwise_conv
                                    .bind(&ctx.device, &[&params, &t[input], w, b, r, &t[output]])
                            }
                        }
                    }
                    Op::GlobalAvgPool { input, output } => k
                        .global_avg_pool
                        .bind(&ctx.device, &[&params, &t[input], &t[output]]),
                    Op::Linear { input, output } => k.linear.bind(
                        &ctx.device,
                        &[
                            &params,
                            &t[input],
                            &self.gpu_model.fc_weight,
                            &self.gpu_model.fc_bias,
                            &t[output],
                        ],
                    ),
                };
                ctx.queue.write_buffer(&params, 0, &bytes);
                Dispatch {
                    kernel,
                    bind_group,
                    params,
                    invocations: 0,
                }
            })
            .collect()
    }

    /// Sets the number of images the next run processes, rewriting the kernels' parameters.
    pub fn set_batch(&mut self, batch: u32) -> Result<()> {
        if batch == 0 || batch > self.capacity {
            return Err(Error::InvalidRequest(format!(
                "batch of {batch} images does not fit this workspace (1..={})",
                self.capacity
            )));
        }
        let model = self.gpu_model.model.clone();
        for (op, d) in model.ops.iter().zip(self.dispatches.iter_mut()) {
            let (_, bytes, invocations) = step(&model, op, batch);
            if batch != self.batch || !self.configured {
                self.ctx.queue.write_buffer(&d.params, 0, &bytes);
            }
            d.invocations = invocations;
        }
        self.batch = batch;
        self.configured = true;
        Ok(())
    }

    /// Uploads a batch of RGB8 images (any sizes) to be preprocessed on the GPU.
    pub fn upload_images(&mut self, images: &[&image::RgbImage]) -> Result<()> {
        let n = u32::try_from(images.len()).unwrap_or(u32::MAX);
        self.set_batch(n)?;
        self.pixel_bytes.clear();
        let mut metas = Vec::with_capacity(images.len());
        for img in images {
            if img.width() == 0 || img.height() == 0 {
                return Err(Error::InvalidRequest("image has no pixels".into()));
            }
            let offset = u32::try_from(self.pixel_bytes.len())
                .map_err(|_| Error::InvalidRequest("batch pixels exceed 4 GiB".into()))?;
            metas.push(ImageMeta {
                offset,
                width: img.width(),
                height: img.height(),
                _pad: 0,
            });
            self.pixel_bytes.extend_from_slice(img.as_raw());
        }
        while self.pixel_bytes.len() % 4 != 0 {
            self.pixel_bytes.push(0);
        }
        let needed = self.pixel_bytes.len() as u64;
        if needed > self.pixels.size() {
            // Grow geometrically so a stream of large images reallocates only a few times.
            let size = needed.next_power_of_two().max(INITIAL_PIXEL_BYTES);
            let limit = self
                .ctx
                .limits
                .max_storage_buffer_binding_size
                .min(self.ctx.limits.max_buffer_size);
            let size = if size > limit { needed } else { size };
            self.pixels = self.ctx.storage("pixels", size)?;
            let model = self.gpu_model.model.clone();
            let (i, out) = model
                .ops
                .iter()
                .enumerate()
                .find_map(|(i, op)| match op {
                    Op::Preprocess { output } => Some((i, *output)),
                    _ => None,
                })
                .ok_or_else(|| {
                    Error::InvalidRequest("the model has no preprocessing step".into())
                })?;
            let d = &mut self.dispatches[i];
            d.bind_group = self.ctx.kernels.preprocess.bind(
                &self.ctx.device,
                &[&d.params, &self.pixels, &self.metas, &self.tensors[out]],
            );
        }
        self.ctx
            .queue
            .write_buffer(&self.pixels, 0, &self.pixel_bytes);
        self.ctx
            .queue
            .write_buffer(&self.metas, 0, bytemuck::cast_slice(&metas));
        Ok(())
    }

    /// Uploads already-normalized input tensors (NHWC, `[batch, size, size, 3]`), bypassing
    /// preprocessing: for tests and callers with their own preprocessing.
    pub fn upload_input(&mut self, nhwc: &[f32]) -> Result<()> {
        let per = self.gpu_model.model.tensors[self.gpu_model.model.input].len();
        if nhwc.is_empty() || nhwc.len() % per != 0 {
            return Err(Error::InvalidRequest(format!(
                "input holds {} values, not a multiple of {per}",
                nhwc.len()
            )));
        }
        self.set_batch((nhwc.len() / per) as u32)?;
        let input = &self.tensors[self.gpu_model.model.input];
        self.ctx
            .queue
            .write_buffer(input, 0, bytemuck::cast_slice(nhwc));
        Ok(())
    }

    /// Records the forward pass; with `preprocess` false the input tensor is used as uploaded.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder, preprocess: bool) {
        let skip = usize::from(!preprocess);
        self.ctx
            .record(encoder, "forward", &self.dispatches[skip..]);
    }

    /// Records the preprocessing step alone.
    pub fn record_preprocess(&self, encoder: &mut wgpu::CommandEncoder) {
        self.ctx
            .record(encoder, "preprocess", &self.dispatches[..1]);
    }

    /// Runs the forward pass on what was uploaded and waits for it.
    pub fn run(&self, preprocess: bool) -> Result<()> {
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.record(&mut encoder, preprocess);
        self.ctx.submit("forward pass", encoder)
    }

    /// Reads the logits of the current batch back, one `Vec` per image.
    pub fn read_logits(&self) -> Result<Vec<Vec<f32>>> {
        let classes = self.gpu_model.model.classes as usize;
        let bytes = (classes * self.batch as usize * 4) as u64;
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(
            &self.tensors[self.gpu_model.model.logits],
            0,
            &self.logits_staging,
            0,
            bytes,
        );
        self.ctx.submit("logits readback", encoder)?;
        let raw = self
            .ctx
            .read_staging("logits readback", &self.logits_staging, bytes)?;
        let values: Vec<f32> = bytemuck::pod_collect_to_vec(&raw);
        Ok(values.chunks(classes).map(<[f32]>::to_vec).collect())
    }

    /// Reads model tensor `id` of the current batch (NHWC), for tests and debugging.
    pub fn read_tensor(&self, id: usize) -> Result<Vec<f32>> {
        let n = self.gpu_model.model.tensors[id].len() * self.batch as usize;
        self.ctx.read_f32(&self.tensors[id], n)
    }
}

/// Kernel, parameter bytes and invocation count of one op at batch size `batch`.
fn step(model: &Model, op: &Op, batch: u32) -> (KernelId, Vec<u8>, u32) {
    let t = &model.tensors;
    match *op {
        Op::Preprocess { output } => {
            let o = &t[output];
            let p = PreprocessParams {
                batch,
                out_h: o.height,
                out_w: o.width,
                _pad: 0,
            };
            (
                KernelId::Preprocess,
                bytemuck::bytes_of(&p).to_vec(),
                batch * o.height * o.width,
            )
        }
        Op::Conv {
            conv,
            input,
            output,
            residual,
            pad_top,
            pad_left,
        } => {
            let c = &model.convs[conv];
            let (i, o) = (&t[input], &t[output]);
            match c.kind {
                ConvKind::Dense => {
                    let p = ConvParams {
                        batch,
                        in_h: i.height,
                        in_w: i.width,
                        in_c: i.channels,
                        out_h: o.height,
                        out_w: o.width,
                        out_c: o.channels,
                        kernel: c.kernel,
                        stride: c.stride,
                        pad_top,
                        pad_left,
                        activation: c.activation as u32,
                    };
                    let n = batch * o.height * o.width * o.channels / 4;
                    (KernelId::Conv2d, bytemuck::bytes_of(&p).to_vec(), n)
                }
                ConvKind::Depthwise => {
                    let p = DepthwiseParams {
                        batch,
                        in_h: i.height,
                        in_w: i.width,
                        channels: o.channels,
                        out_h: o.height,
                        out_w: o.width,
                        kernel: c.kernel,
                        stride: c.stride,
                        pad_top,
                        pad_left,
                        activation: c.activation as u32,
                        _pad: 0,
                    };
                    let n = batch * o.height * o.width * o.channels / 4;
                    (KernelId::DepthwiseConv, bytemuck::bytes_of(&p).to_vec(), n)
                }
                ConvKind::Pointwise => {
                    let rows = batch * o.height * o.width;
                    let p = PointwiseParams {
                        rows,
                        in_channels: i.channels,
                        out_channels: o.channels,
                        activation: c.activation as u32,
                        has_residual: u32::from(residual.is_some()),
                        _pad: [0; 3],
                    };
                    (
                        KernelId::PointwiseConv,
                        bytemuck::bytes_of(&p).to_vec(),
                        pointwise_invocations(rows, o.channels),
                    )
                }
            }
        }
        Op::GlobalAvgPool { input, output } => {
            let i = &t[input];
            let p = PoolParams {
                batch,
                pixels: i.height * i.width,
                channels: i.channels,
                _pad: 0,
            };
            (
                KernelId::GlobalAvgPool,
                bytemuck::bytes_of(&p).to_vec(),
                batch * t[output].channels / 4,
            )
        }
        Op::Linear { input, output } => {
            let p = LinearParams {
                batch,
                in_features: t[input].channels,
                out_features: t[output].channels,
                _pad: 0,
            };
            (
                KernelId::Linear,
                bytemuck::bytes_of(&p).to_vec(),
                batch * t[output].channels,
            )
        }
    }
}

/// Rows per invocation in shaders/pointwise_conv.wgsl (`ROWS`).
pub const POINTWISE_ROWS: u32 = 8;

/// Invocations of shaders/pointwise_conv.wgsl for a `rows × out_channels` output.
pub fn pointwise_invocations(rows: u32, out_channels: u32) -> u32 {
    rows.div_ceil(POINTWISE_ROWS) * (out_channels / 4).div_ceil(2)
}

//! The forward pass: preprocessing of uploaded RGB8 images, every layer of the plan, logits.
//! Activations are buffers sized for the workspace's batch capacity. A workspace made with
//! [`Forward::new`] keeps every tensor in its own buffer. An explainer's workspace keeps only the
//! tensors read after the forward pass (those its backward pass, CAM and readback ask for with
//! [`Forward::tensor`] while it is set up); the others share a few buffers, each reused once the
//! tensor it held has been read for the last time ([`share_by_liveness`]). The only readback is
//! the logits, on request.

use std::sync::{Arc, OnceLock};

use super::steps::{BatchShape, Step, Steps};
use super::texel;
use crate::error::{Error, Result};
use crate::gpu::kernels::{
    depthwise_variant, kind, launch, CONV2D_SUBGROUP_STEM, CONV2D_SUBGROUP_STEM7,
    CONV2D_SUBGROUP_TILE,
};
use crate::gpu::params::{
    overlay_row_pitch, AttentionParams, AvgPoolParams, ConcatParams, ConvGeneralParams, ConvParams,
    DepthwiseParams, ElementwiseParams, ImageMeta, LayerNormParams, LinearParams, MaxPoolParams,
    PointwiseParams, PoolParams, PreprocessParams, SqueezeExciteParams, TokenEmbedParams,
    TokenRowsParams,
};
use crate::gpu::upload::Upload;
use crate::gpu::{GpuContext, Profiler};
use crate::model::{ConvBackward, ConvKind, Model, Op};

/// A model's weights on the GPU, uploaded once and shared by every workspace.
pub struct GpuModel {
    /// The network description.
    pub model: Arc<Model>,
    /// Per conv: (weight in GPU layout, bias).
    pub convs: Vec<(wgpu::Buffer, wgpu::Buffer)>,
    /// Per conv: the folded weight in the layout its gradient kernel reads where that is not the
    /// forward's: PyTorch's `[out, in]` for a pointwise conv, `[kh, kw, out, in / groups]` where
    /// the gradient runs in conv_general_grad, transposed and flipped where it is a forward conv
    /// ([`ConvBackward`]); `None` where the backward uses the forward's layout.
    pub convs_torch: Vec<Option<wgpu::Buffer>>,
    /// Per conv: its weight as a texture, for the pointwise convs that read their weights
    /// through textures (src/pipeline/texel.rs); `None` for the others.
    pub convs_texel: Vec<Option<wgpu::TextureView>>,
    /// Zeros, the bias of the transposed convs that compute input gradients
    /// ([`ConvBackward::Transposed`]): as many as the widest one's outputs.
    pub zeros: wgpu::Buffer,
    /// Per linear layer, its rows in ranges that each fit one binding.
    pub linears: Vec<Vec<LinearChunk>>,
    /// Per elementwise op: (scale, bias), ones and zeros where it has no BatchNorm.
    pub elementwise: Vec<(wgpu::Buffer, wgpu::Buffer)>,
    /// Whether the ops that can read their inputs through textures do (src/pipeline/texel.rs):
    /// [`crate::gpu::Kernels::texel_inputs`] when the model was uploaded.
    pub texel_inputs: bool,
    /// Per elementwise op: (scale, bias) as textures, where elementwise ops read their inputs
    /// through textures (src/pipeline/texel.rs).
    pub elementwise_texel: Vec<Option<(wgpu::TextureView, wgpu::TextureView)>>,
    /// Per squeeze-and-excitation block: its reduction's weight and bias, then its expansion's.
    pub squeeze_excite: Vec<[wgpu::Buffer; 4]>,
    /// Per LayerNorm: (γ, β).
    pub layer_norms: Vec<(wgpu::Buffer, wgpu::Buffer)>,
    /// Per token embedding: its table (prefix tokens and position embedding).
    pub token_embeds: Vec<wgpu::Buffer>,
}

/// A range of a linear layer's rows with its own weight and bias buffers: a layer whose weights
/// exceed the adapter's largest binding (VGG-16's first classifier layer is 392 MiB) is split.
pub struct LinearChunk {
    /// Weight rows `[rows, in]`.
    pub weight: wgpu::Buffer,
    /// Bias `[rows]`.
    pub bias: wgpu::Buffer,
    /// First row.
    pub offset: u32,
    /// Rows.
    pub rows: u32,
}

impl GpuModel {
    /// Bytes of GPU buffers holding the weights.
    pub fn gpu_bytes(&self) -> u64 {
        let convs: u64 = self.convs.iter().map(|(w, b)| w.size() + b.size()).sum();
        let torch: u64 = self
            .convs_torch
            .iter()
            .flatten()
            .map(wgpu::Buffer::size)
            .sum();
        let linears: u64 = self
            .linears
            .iter()
            .flatten()
            .map(|c| c.weight.size() + c.bias.size())
            .sum();
        let elementwise: u64 = self
            .elementwise
            .iter()
            .map(|(s, b)| s.size() + b.size())
            .sum();
        let squeeze_excite: u64 = self
            .squeeze_excite
            .iter()
            .flatten()
            .map(wgpu::Buffer::size)
            .sum();
        let layer_norms: u64 = self
            .layer_norms
            .iter()
            .map(|(g, b)| g.size() + b.size())
            .sum();
        let token_embeds: u64 = self.token_embeds.iter().map(wgpu::Buffer::size).sum();
        let texel: u64 = self
            .convs_texel
            .iter()
            .flatten()
            .chain(
                self.elementwise_texel
                    .iter()
                    .flatten()
                    .flat_map(|(s, b)| [s, b]),
            )
            .map(|v| {
                let size = v.texture().size();
                u64::from(size.width) * u64::from(size.height) * 16
            })
            .sum();
        convs
            + torch
            + texel
            + self.zeros.size()
            + linears
            + elementwise
            + squeeze_excite
            + layer_norms
            + token_embeds
    }

    /// The classifier's weight `[classes, features]`, when it fits one binding.
    pub fn classifier_weight(&self) -> Option<&wgpu::Buffer> {
        match self.linears.last().map(Vec::as_slice) {
            Some([whole]) => Some(&whole.weight),
            _ => None,
        }
    }

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
        let backward: Vec<ConvBackward> = (0..model.convs.len())
            .map(|i| model.conv_backward(i))
            .collect();
        let convs_torch = model
            .convs
            .iter()
            .zip(&backward)
            .map(|(c, b)| {
                let weight = match *b {
                    ConvBackward::Transposed => transposed_weight(c),
                    ConvBackward::General => general_grad_weight(c),
                    ConvBackward::Own if c.kind == ConvKind::Pointwise => c.weight_torch.clone(),
                    ConvBackward::Own => return None,
                };
                Some(ctx.storage_with(&format!("{}.weight_t", c.name), &weight))
            })
            .collect();
        let convs_texel = model
            .convs
            .iter()
            .map(|c| {
                let reads_texels = match c.kind {
                    ConvKind::Pointwise | ConvKind::Depthwise => true,
                    // The convs that run a subgroup stem or tile.
                    ConvKind::Dense => matches!(
                        ctx.kernels
                            .conv2d_variant(c.kernel, c.stride, c.in_channels),
                        CONV2D_SUBGROUP_TILE | CONV2D_SUBGROUP_STEM | CONV2D_SUBGROUP_STEM7
                    ),
                    _ => false,
                };
                (ctx.kernels.texel_inputs() && reads_texels)
                    .then(|| texel::upload(ctx, &format!("{}.weight texels", c.name), &c.weight))
                    .flatten()
            })
            .collect();
        // The bias of the transposed convs: none.
        let widest = model
            .convs
            .iter()
            .zip(&backward)
            .filter(|(_, b)| **b == ConvBackward::Transposed)
            .map(|(c, _)| c.in_channels)
            .max()
            .unwrap_or(4);
        let zeros = ctx.storage_with("zeros", &vec![0f32; widest as usize]);
        let limit = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size);
        let linears = model
            .linears
            .iter()
            .map(|l| {
                let row = l.in_features as usize;
                let per = ((limit / (row as u64 * 4)) as usize).max(1);
                (0..l.out_features as usize)
                    .step_by(per)
                    .map(|start| {
                        let end = (start + per).min(l.out_features as usize);
                        LinearChunk {
                            weight: ctx.storage_with(
                                &format!("{}.weight[{start}..{end}]", l.name),
                                &l.weight[start * row..end * row],
                            ),
                            bias: ctx.storage_with(
                                &format!("{}.bias[{start}..{end}]", l.name),
                                &l.bias[start..end],
                            ),
                            offset: start as u32,
                            rows: (end - start) as u32,
                        }
                    })
                    .collect()
            })
            .collect();
        let (elementwise, elementwise_texel): (Vec<_>, Vec<_>) = model
            .elementwise
            .iter()
            .zip(&model.elementwise_channels())
            .map(|(e, &channels)| {
                let (scale, bias) = e
                    .affine
                    .clone()
                    .unwrap_or_else(|| (vec![1.0; channels], vec![0.0; channels]));
                let texels = ctx
                    .kernels
                    .texel_inputs()
                    .then(|| {
                        Some((
                            texel::upload(ctx, &format!("{}.scale texels", e.name), &scale)?,
                            texel::upload(ctx, &format!("{}.shift texels", e.name), &bias)?,
                        ))
                    })
                    .flatten();
                (
                    (
                        ctx.storage_with(&format!("{}.scale", e.name), &scale),
                        ctx.storage_with(&format!("{}.shift", e.name), &bias),
                    ),
                    texels,
                )
            })
            .unzip();
        let squeeze_excite = model
            .squeeze_excite
            .iter()
            .map(|se| {
                let name = &se.name;
                [
                    ctx.storage_with(&format!("{name}.reduce.weight"), &se.reduce_weight),
                    ctx.storage_with(&format!("{name}.reduce.bias"), &se.reduce_bias),
                    ctx.storage_with(&format!("{name}.expand.weight"), &se.expand_weight),
                    ctx.storage_with(&format!("{name}.expand.bias"), &se.expand_bias),
                ]
            })
            .collect();
        let layer_norms = model
            .layer_norms
            .iter()
            .map(|n| {
                (
                    ctx.storage_with(&format!("{}.weight", n.name), &n.gamma),
                    ctx.storage_with(&format!("{}.bias", n.name), &n.beta),
                )
            })
            .collect();
        let token_embeds = model
            .token_embeds
            .iter()
            .map(|e| ctx.storage_with(&format!("{}.table", e.name), &e.table))
            .collect();
        Self {
            model,
            convs,
            convs_torch,
            convs_texel,
            elementwise_texel,
            texel_inputs: ctx.kernels.texel_inputs(),
            zeros,
            linears,
            elementwise,
            squeeze_excite,
            layer_norms,
            token_embeds,
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
    shape: BatchShape,
    /// One buffer per model tensor (NHWC, `capacity` images); tensors that are not kept share
    /// theirs. Empty until the workspace is finished.
    tensors: Vec<wgpu::Buffer>,
    /// While the workspace is set up: the buffers handed out so far (those tensors are kept).
    asked: Vec<OnceLock<wgpu::Buffer>>,
    /// Per tensor, whether it has a buffer of its own (once finished).
    kept: Vec<bool>,
    /// The buffers the tensors that are not kept share.
    shared: Vec<wgpu::Buffer>,
    /// The texture the pointwise convs' inputs are copied into, where they read it as one
    /// (src/pipeline/texel.rs).
    scratch: Option<texel::Scratch>,
    pixels: wgpu::Buffer,
    pixels_generation: u64,
    metas: wgpu::Buffer,
    image_sizes: Vec<(u32, u32)>,
    steps: Steps,
    /// The preprocessing step (once finished).
    preprocess_step: Option<Step<kind::Preprocess>>,
    logits_staging: wgpu::Buffer,
    /// The reused, mapped buffer the pixels are written through.
    upload: Upload,
}

const INITIAL_PIXEL_BYTES: u64 = 4 << 20;

impl Forward {
    /// A workspace for batches of up to `capacity` images, every tensor in its own buffer (any
    /// activation can be read back).
    pub fn new(ctx: Arc<GpuContext>, gpu_model: Arc<GpuModel>, capacity: u32) -> Result<Self> {
        let mut forward = Self::deferred(ctx, gpu_model, capacity)?;
        let all = forward.asked.len();
        for id in 0..all {
            forward.tensor(id);
        }
        forward.finish()?;
        Ok(forward)
    }

    /// A workspace whose tensor buffers are handed out on request ([`Forward::tensor`]) while
    /// its readers are set up; [`Forward::finish`] then shares the buffers of the rest and
    /// records the forward pass.
    pub(crate) fn deferred(
        ctx: Arc<GpuContext>,
        gpu_model: Arc<GpuModel>,
        capacity: u32,
    ) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::InvalidRequest(
                "batch size must be at least 1".into(),
            ));
        }
        let model = gpu_model.model.clone();
        // Every tensor's size is checked here, so that handing one out cannot fail.
        for t in &model.tensors {
            ctx.check_storage(&t.name, tensor_bytes(t, capacity))?;
        }
        let pixels = ctx.storage("pixels", INITIAL_PIXEL_BYTES)?;
        let metas = ctx.storage(
            "image_metas",
            std::mem::size_of::<ImageMeta>() as u64 * u64::from(capacity),
        )?;
        let logits_staging = ctx.staging(
            "logits_readback",
            u64::from(model.classes) * 4 * u64::from(capacity),
        );
        Ok(Self {
            ctx,
            gpu_model,
            capacity,
            shape: BatchShape::default(),
            tensors: Vec::new(),
            asked: model.tensors.iter().map(|_| OnceLock::new()).collect(),
            kept: Vec::new(),
            shared: Vec::new(),
            scratch: None,
            pixels,
            pixels_generation: 0,
            metas,
            image_sizes: Vec::new(),
            steps: Steps::new("forward"),
            preprocess_step: None,
            logits_staging,
            upload: Upload::new(),
        })
    }

    /// Gives the tensors no one asked for shared buffers and records the forward pass; nothing
    /// once finished.
    pub(crate) fn finish(&mut self) -> Result<()> {
        if self.preprocess_step.is_some() {
            return Ok(());
        }
        let model = self.gpu_model.model.clone();
        // The logits are always read back.
        self.tensor(model.logits);
        let asked = std::mem::take(&mut self.asked);
        self.kept = asked.iter().map(|b| b.get().is_some()).collect();
        let capacity = self.capacity;
        let bytes = |t: usize| tensor_bytes(&model.tensors[t], capacity);
        let (slots, sizes) = share_by_liveness(&model, &self.kept, bytes);
        self.shared = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| self.ctx.storage(&format!("activations.{i}"), size))
            .collect::<Result<_>>()?;
        self.tensors = asked
            .into_iter()
            .zip(&slots)
            .enumerate()
            .map(|(t, (own, slot))| match (own.into_inner(), slot) {
                (Some(own), _) => Ok(own),
                (None, Some(slot)) => Ok(self.shared[*slot].clone()),
                // Not kept and never written (no op makes it): its own buffer.
                (None, None) => {
                    self.kept[t] = true;
                    self.ctx.storage(&model.tensors[t].name, bytes(t))
                }
            })
            .collect::<Result<_>>()?;
        self.scratch = texel::Scratch::new(
            &self.ctx,
            capacity,
            model
                .ops
                .iter()
                .filter_map(|op| texel_input(&self.gpu_model, op)),
        );
        let mut steps = Steps::new("forward");
        for op in &model.ops {
            let pushed = push_op(
                &self.ctx,
                &self.gpu_model,
                &self.tensors,
                &self.pixels,
                &self.metas,
                self.scratch.as_ref(),
                &mut steps,
                op,
            );
            if let Pushed::Preprocess(step) = pushed {
                self.preprocess_step = Some(step);
            }
        }
        self.steps = steps;
        if self.preprocess_step.is_none() {
            return Err(Error::UnsupportedModel {
                path: model.source.clone(),
                reason: "the graph has no preprocessing op".into(),
            });
        }
        Ok(())
    }

    /// Whether tensor `id` has a buffer of its own, so that it holds the batch's activations
    /// after the forward pass (see the module's documentation).
    pub fn keeps(&self, id: usize) -> bool {
        self.kept.get(id).copied().unwrap_or(true)
    }

    /// The most images one batch can hold.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// The images in the current batch.
    pub fn batch(&self) -> u32 {
        self.shape.images
    }

    /// The current batch's shape.
    pub fn shape(&self) -> BatchShape {
        self.shape
    }

    /// Width and height of each image of the current batch (as uploaded).
    pub fn image_sizes(&self) -> &[(u32, u32)] {
        &self.image_sizes
    }

    /// Bytes of GPU buffers this workspace holds (activations, uploads, readback), not counting
    /// the shared weights.
    pub fn gpu_bytes(&self) -> u64 {
        let own: u64 = (self.tensors.iter().zip(&self.kept))
            .filter(|(_, kept)| **kept)
            .map(|(b, _)| b.size())
            .sum();
        let shared: u64 = self.shared.iter().map(wgpu::Buffer::size).sum();
        let scratch = self.scratch.as_ref().map_or(0, texel::Scratch::gpu_bytes);
        own + shared
            + scratch
            + self.pixels.size()
            + self.metas.size()
            + self.logits_staging.size()
            + self.upload.gpu_bytes()
    }

    /// Number of kernel launches per batch, counting each texel copy between them as one (a
    /// profiled run times it as a pass of its own).
    pub fn launches(&self) -> usize {
        self.steps.len() + self.steps.repeats()
    }

    /// The model.
    pub fn model(&self) -> &Model {
        &self.gpu_model.model
    }

    /// The GPU context.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The weights on the GPU.
    pub fn gpu_model(&self) -> &Arc<GpuModel> {
        &self.gpu_model
    }

    /// The buffer of model tensor `id` (NHWC, f32). Asked for while an explainer is set up, the
    /// tensor is kept; once finished, a tensor that is not kept ([`Forward::keeps`]) returns the
    /// buffer it shares, which after the forward pass holds a later tensor.
    pub fn tensor(&self, id: usize) -> &wgpu::Buffer {
        match self.asked.get(id) {
            Some(own) => own.get_or_init(|| {
                let t = &self.gpu_model.model.tensors[id];
                self.ctx
                    .storage_unchecked(&t.name, tensor_bytes(t, self.capacity))
            }),
            None => &self.tensors[id],
        }
    }

    /// The uploaded RGB8 pixels of the batch, and a counter that changes whenever the buffer is
    /// reallocated (so that users of it can rebind).
    pub fn pixels(&self) -> (&wgpu::Buffer, u64) {
        (&self.pixels, self.pixels_generation)
    }

    /// The per-image [`ImageMeta`] array.
    pub fn metas(&self) -> &wgpu::Buffer {
        &self.metas
    }

    fn set_shape(&mut self, shape: BatchShape) -> Result<()> {
        if shape.images == 0 || shape.images > self.capacity {
            return Err(Error::InvalidRequest(format!(
                "a batch of {} images does not fit this workspace (1..={})",
                shape.images, self.capacity
            )));
        }
        self.steps.configure(&self.ctx, shape);
        self.shape = shape;
        Ok(())
    }

    /// Uploads a batch of RGB8 images (any sizes) to be preprocessed on the GPU.
    pub fn upload_images(&mut self, images: &[&image::RgbImage]) -> Result<()> {
        if images.is_empty() || images.len() > self.capacity as usize {
            return Err(Error::InvalidRequest(format!(
                "a batch of {} images does not fit this workspace (1..={})",
                images.len(),
                self.capacity
            )));
        }
        self.image_sizes.clear();
        let (metas, total_pixels, len) = image_layout(images)?;
        self.image_sizes
            .extend(images.iter().map(|i| (i.width(), i.height())));
        let needed = len as u64;
        if needed > self.pixels.size() {
            // Grow geometrically so a stream of large images reallocates only a few times.
            let limit = self
                .ctx
                .limits
                .max_storage_buffer_binding_size
                .min(self.ctx.limits.max_buffer_size);
            let size = needed
                .next_power_of_two()
                .max(INITIAL_PIXEL_BYTES)
                .min(limit.max(needed));
            self.pixels = self.ctx.storage("pixels", size)?;
            self.pixels_generation += 1;
            let model = self.gpu_model.model.clone();
            let out = model.input;
            if let Some(step) = self.preprocess_step {
                self.steps.rebind(
                    &self.ctx,
                    step,
                    launch::Preprocess {
                        pixels: &self.pixels,
                        metas: &self.metas,
                        output: &self.tensors[out],
                    },
                );
            }
        }
        self.set_shape(BatchShape {
            images: images.len() as u32,
            total_pixels,
            largest_pixels: images
                .iter()
                .map(|i| i.width() * i.height())
                .max()
                .unwrap_or(0),
        })?;
        // Packed straight into mapped upload memory: no host copy of the batch is kept.
        let parts: Vec<&[u8]> = images.iter().map(|i| i.as_raw().as_slice()).collect();
        self.upload.write(&self.ctx, &self.pixels, &parts, len)?;
        self.ctx
            .queue
            .write_buffer(&self.metas, 0, bytemuck::cast_slice(&metas));
        Ok(())
    }

    /// Uploads already-normalized input tensors (NHWC, `[batch, size, size, 3]`), bypassing
    /// preprocessing: for tests and callers with their own preprocessing. There are no source
    /// images, so no overlay can be made from such a batch.
    pub fn upload_input(&mut self, nhwc: &[f32]) -> Result<()> {
        let per = self.gpu_model.model.tensors[self.gpu_model.model.input].len();
        if nhwc.is_empty() || !nhwc.len().is_multiple_of(per) {
            return Err(Error::InvalidRequest(format!(
                "input holds {} values, not a multiple of {per}",
                nhwc.len()
            )));
        }
        self.image_sizes.clear();
        self.set_shape(BatchShape {
            images: (nhwc.len() / per) as u32,
            ..Default::default()
        })?;
        let input = &self.tensors[self.gpu_model.model.input];
        self.ctx
            .queue
            .write_buffer(input, 0, bytemuck::cast_slice(nhwc));
        Ok(())
    }

    /// Records the forward pass; with `preprocess` false the input tensor is used as uploaded.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder, preprocess: bool) {
        let Some(p) = self.preprocess_step else {
            return;
        };
        let first = if preprocess { 0 } else { p.index() + 1 };
        self.steps
            .record_range(&self.ctx, encoder, first..self.steps.len());
    }

    /// Records the forward pass timed by `profiler`: stages `preprocess` and `forward`, or with
    /// `per_kernel` one timed pass per kernel.
    pub fn record_profiled(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        preprocess: bool,
        profiler: &mut Profiler,
        per_kernel: bool,
    ) {
        let Some(p) = self.preprocess_step.map(|s| s.index()) else {
            return;
        };
        if preprocess {
            self.record_preprocess_profiled(encoder, profiler, per_kernel);
        }
        self.steps.record_range_profiled(
            &self.ctx,
            encoder,
            p + 1..self.steps.len(),
            profiler,
            "forward",
            per_kernel,
        );
    }

    /// Records the preprocessing step alone, timed by `profiler` as stage `preprocess`.
    pub fn record_preprocess_profiled(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        profiler: &mut Profiler,
        per_kernel: bool,
    ) {
        if let Some(p) = self.preprocess_step.map(|s| s.index()) {
            self.steps.record_range_profiled(
                &self.ctx,
                encoder,
                p..p + 1,
                profiler,
                "preprocess",
                per_kernel,
            );
        }
    }

    /// Records the preprocessing step alone.
    pub fn record_preprocess(&self, encoder: &mut wgpu::CommandEncoder) {
        if let Some(p) = self.preprocess_step {
            self.steps
                .record_range(&self.ctx, encoder, p.index()..p.index() + 1);
        }
    }

    /// Submits the forward pass on what was uploaded ([`Forward::run_async`], blocking).
    pub fn run(&self, preprocess: bool) -> Result<()> {
        self.ctx.block_on(self.run_async(preprocess))
    }

    /// Submits the forward pass on what was uploaded; resolves to any error the submission
    /// raised.
    pub async fn run_async(&self, preprocess: bool) -> Result<()> {
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        self.record(&mut encoder, preprocess);
        self.ctx.submit_async("forward pass", encoder).await
    }

    /// Reads the logits of the current batch back, one `Vec` per image
    /// ([`Forward::read_logits_async`], blocking).
    pub fn read_logits(&self) -> Result<Vec<Vec<f32>>> {
        self.ctx.block_on(self.read_logits_async())
    }

    /// Reads the logits of the current batch back, one `Vec` per image, once the GPU is done.
    pub async fn read_logits_async(&self) -> Result<Vec<Vec<f32>>> {
        let classes = self.gpu_model.model.classes as usize;
        let bytes = (classes * self.batch() as usize * 4) as u64;
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(
            &self.tensors[self.gpu_model.model.logits],
            0,
            &self.logits_staging,
            0,
            bytes,
        );
        self.ctx.submit_async("logits readback", encoder).await?;
        let values: Vec<f32> = self
            .ctx
            .read_staging_async("logits readback", &self.logits_staging, bytes, |raw| {
                bytemuck::pod_collect_to_vec(raw)
            })
            .await?;
        Ok(values.chunks(classes).map(<[f32]>::to_vec).collect())
    }

    /// Reads model tensor `id` of the current batch (NHWC), for tests and debugging.
    pub fn read_tensor(&self, id: usize) -> Result<Vec<f32>> {
        if !self.keeps(id) {
            return Err(Error::InvalidRequest(format!(
                "tensor `{}` is not kept by this workspace: nothing after the forward pass reads it",
                self.gpu_model.model.tensors[id].name
            )));
        }
        let n = self.gpu_model.model.tensors[id].len() * self.batch() as usize;
        self.ctx.read_f32(&self.tensors[id], n)
    }
}

/// A dense conv's weights transposed and flipped, in the forward layout of shaders/conv2d.wgsl
/// (`[kh, kw, in, out]` of the conv that maps the output gradient to the input gradient):
/// `w'[y, x, o, i] = w[o, i, kh − 1 − y, kw − 1 − x]` (from PyTorch's `[out, in, kh, kw]`).
fn transposed_weight(c: &crate::model::Conv) -> Vec<f32> {
    let (k, ci, co) = (
        c.kernel as usize,
        c.in_channels as usize,
        c.out_channels as usize,
    );
    let mut out = vec![0f32; c.weight_torch.len()];
    for o in 0..co {
        for i in 0..ci {
            for y in 0..k {
                for x in 0..k {
                    let from = ((o * ci + i) * k + y) * k + x;
                    let to = (((k - 1 - y) * k + (k - 1 - x)) * co + o) * ci + i;
                    out[to] = c.weight_torch[from];
                }
            }
        }
    }
    out
}

/// The weights of a conv whose gradient runs in conv_general_grad
/// ([`ConvBackward::General`]) in the layout that kernel reads,
/// `[kh, kw, out, in / groups]` (from PyTorch's `[out, in / groups, kh, kw]`).
fn general_grad_weight(c: &crate::model::Conv) -> Vec<f32> {
    let g = c.geometry;
    let [kh, kw] = g.kernel.map(|k| k as usize);
    let (co, cig) = (c.out_channels as usize, (c.in_channels / g.groups) as usize);
    let mut out = vec![0f32; c.weight_torch.len()];
    for o in 0..co {
        for i in 0..cig {
            for y in 0..kh {
                for x in 0..kw {
                    out[((y * kw + x) * co + o) * cig + i] =
                        c.weight_torch[((o * cig + i) * kh + y) * kw + x];
                }
            }
        }
    }
    out
}

/// Bytes of tensor `t`'s buffer for `capacity` images (f32).
fn tensor_bytes(t: &crate::model::TensorSpec, capacity: u32) -> u64 {
    t.len() as u64 * 4 * u64::from(capacity)
}

/// Shares buffers among the tensors that are not `kept`: walking the ops in order, a tensor's
/// buffer is free again after the last op that reads it, and an op's output takes the smallest
/// free buffer that holds it (else the largest, grown; else a new one). Returns each tensor's
/// buffer (`None` for kept tensors, and for any no op writes or that two ops write) and the
/// buffers' sizes in bytes (`bytes` of a tensor).
pub fn share_by_liveness(
    model: &Model,
    kept: &[bool],
    bytes: impl Fn(usize) -> u64,
) -> (Vec<Option<usize>>, Vec<u64>) {
    let n = model.tensors.len();
    let mut writers = vec![0usize; n];
    let mut last_use = vec![0usize; n];
    for (i, op) in model.ops.iter().enumerate() {
        writers[op.output()] += 1;
        last_use[op.output()] = last_use[op.output()].max(i);
        for t in op.reads() {
            last_use[t] = last_use[t].max(i);
        }
    }
    let mut slot_of: Vec<Option<usize>> = vec![None; n];
    let mut sizes: Vec<u64> = Vec::new();
    // Per buffer, the tensor in it, or None when it is free.
    let mut occupant: Vec<Option<usize>> = Vec::new();
    for (i, op) in model.ops.iter().enumerate() {
        for o in occupant.iter_mut() {
            if o.is_some_and(|t| last_use[t] < i) {
                *o = None;
            }
        }
        let t = op.output();
        if kept[t] || writers[t] != 1 {
            continue;
        }
        let need = bytes(t);
        let free = || (0..sizes.len()).filter(|&s| occupant[s].is_none());
        let slot = free()
            .filter(|&s| sizes[s] >= need)
            .min_by_key(|&s| sizes[s])
            .or_else(|| free().max_by_key(|&s| sizes[s]))
            .unwrap_or_else(|| {
                sizes.push(0);
                occupant.push(None);
                sizes.len() - 1
            });
        sizes[slot] = sizes[slot].max(need);
        occupant[slot] = Some(t);
        slot_of[t] = Some(slot);
    }
    (slot_of, sizes)
}

/// Packs a batch's RGB8 pixels one image after another into `bytes` (cleared first, padded to a
/// multiple of four) and describes each image for the kernels: byte offset, size, and pixel offset
/// of its overlay. Returns the metas and the batch's overlay pixels (rows padded to
/// [`overlay_row_pitch`]). Fails on an empty image or a
/// batch whose offsets do not fit 32 bits.
pub fn pack_images(
    images: &[&image::RgbImage],
    bytes: &mut Vec<u8>,
) -> Result<(Vec<ImageMeta>, u32)> {
    let (metas, total, len) = image_layout(images)?;
    bytes.clear();
    bytes.reserve(len);
    for img in images {
        bytes.extend_from_slice(img.as_raw());
    }
    bytes.resize(len, 0);
    Ok((metas, total))
}

/// The layout [`pack_images`] gives a batch, without packing it: the metas, the overlay's pixels
/// (rows padded) and the packed length in bytes (a multiple of four).
pub fn image_layout(images: &[&image::RgbImage]) -> Result<(Vec<ImageMeta>, u32, usize)> {
    let mut metas = Vec::with_capacity(images.len());
    let mut bytes = 0usize;
    let mut out_offset = 0u64;
    for img in images {
        if img.width() == 0 || img.height() == 0 {
            return Err(Error::InvalidRequest("an image has no pixels".into()));
        }
        let offset = u32::try_from(bytes)
            .map_err(|_| Error::InvalidRequest("the batch's pixels exceed 4 GiB".into()))?;
        let out = u32::try_from(out_offset)
            .map_err(|_| Error::InvalidRequest("the batch holds more than 4 G pixels".into()))?;
        metas.push(ImageMeta {
            offset,
            width: img.width(),
            height: img.height(),
            out_offset: out,
        });
        out_offset += u64::from(overlay_row_pitch(img.width())) * u64::from(img.height());
        bytes += img.as_raw().len();
    }
    let total = u32::try_from(out_offset)
        .map_err(|_| Error::InvalidRequest("the batch holds more than 4 G pixels".into()))?;
    Ok((metas, total, bytes.next_multiple_of(4)))
}

/// What [`push_op`] recorded.
pub(super) enum Pushed {
    /// The preprocessing step, rebound when the pixel buffer grows.
    Preprocess(Step<kind::Preprocess>),
    /// Another op's steps.
    Other,
}

impl<K> From<Step<K>> for Pushed {
    fn from(_: Step<K>) -> Self {
        Pushed::Other
    }
}

/// Appends the launch of one forward op to `steps`.
/// The vec4s per image of `op`'s input where it reads it through a texture (a conv or an
/// elementwise op whose weights are textures: src/pipeline/texel.rs).
fn texel_input(gpu_model: &GpuModel, op: &Op) -> Option<u64> {
    match *op {
        Op::Conv { conv, input, .. } if gpu_model.convs_texel[conv].is_some() => {
            let t = &gpu_model.model.tensors[input];
            // Whole texels per image (a stem's RGB input may end inside one).
            let values = t.height * t.width * t.channels;
            values.is_multiple_of(4).then_some(u64::from(values / 4))
        }
        Op::Elementwise { op, input, .. } if gpu_model.elementwise_texel[op].is_some() => {
            Some(u64::from(gpu_model.model.tensors[input].len() as u32 / 4))
        }
        // Read by the block's pool and gate.
        Op::SqueezeExcite { input, .. } if gpu_model.texel_inputs => {
            Some(u64::from(gpu_model.model.tensors[input].len() as u32 / 4))
        }
        _ => None,
    }
}

/// The copy of `op`'s input tensor `input` into `scratch` where `op` reads it through a texture
/// and it fits ([`texel_input`]), with the texture.
fn texel_copy<'a>(
    gpu_model: &GpuModel,
    scratch: Option<&'a texel::Scratch>,
    tensors: &[wgpu::Buffer],
    op: &Op,
    input: usize,
) -> Option<(texel::TexelCopy, &'a texel::Scratch)> {
    let scratch = scratch?;
    let copy = scratch.copy(&tensors[input], texel_input(gpu_model, op)?)?;
    Some((copy, scratch))
}

/// Appends the launches of `op` to `steps`; with `scratch`, the pointwise convs that can read
/// their input through it are preceded by its copy ([`texel::TexelCopy`]), which only a list
/// recorded with its repeats runs (not the probe loop's).
#[allow(clippy::too_many_arguments)]
pub(super) fn push_op(
    ctx: &GpuContext,
    gpu_model: &GpuModel,
    tensors: &[wgpu::Buffer],
    pixels: &wgpu::Buffer,
    metas: &wgpu::Buffer,
    scratch: Option<&texel::Scratch>,
    steps: &mut Steps,
    op: &Op,
) -> Pushed {
    let model = &gpu_model.model;
    let t = &model.tensors;
    match *op {
        Op::Preprocess { output } => {
            let (h, w) = (t[output].height, t[output].width);
            let lanes = |v: [f32; 3]| [v[0], v[1], v[2], 1.0];
            let (mean, std) = (lanes(model.mean), lanes(model.std));
            Pushed::Preprocess(steps.push(
                ctx,
                launch::Preprocess {
                    pixels,
                    metas,
                    output: &tensors[output],
                },
                move |s| PreprocessParams {
                    batch: s.images,
                    out_h: h,
                    out_w: w,
                    _pad: 0,
                    mean,
                    deviation: std,
                },
            ))
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
            let (i, o) = (t[input].clone(), t[output].clone());
            let (w, b) = &gpu_model.convs[conv];
            let (kernel, stride, activation) = (c.kernel, c.stride, c.activation as u32);
            // Without a residual the binding still needs a buffer; it is never read.
            let r = residual.map(|r| &tensors[r]).unwrap_or(b);
            let has_residual = match (residual, c.add_before_activation) {
                (None, _) => 0,
                (Some(_), false) => 1,
                (Some(_), true) => 2,
            };
            let texels = texel_copy(gpu_model, scratch, tensors, op, input)
                .zip(gpu_model.convs_texel[conv].as_ref())
                .map(|((copy, scratch), weight)| (copy, scratch, weight));
            match c.kind {
                ConvKind::Dense => {
                    let params = move |s: &BatchShape| ConvParams {
                        batch: s.images,
                        in_h: i.height,
                        in_w: i.width,
                        in_c: i.channels,
                        out_h: o.height,
                        out_w: o.width,
                        out_c: o.channels,
                        kernel,
                        stride,
                        pad_top,
                        pad_left,
                        activation,
                        has_residual,
                        _pad: [0; 3],
                    };
                    match texels {
                        Some((copy, scratch, weight)) => {
                            steps.push_repeat(Box::new(copy));
                            steps
                                .push_variant(
                                    ctx,
                                    ctx.kernels.conv2d_texture_variant(
                                        kernel, stride, i.channels, o.channels,
                                    ),
                                    launch::Conv2dTexture {
                                        input: scratch.view(),
                                        weight,
                                        bias: b,
                                        residual: r,
                                        output: &tensors[output],
                                    },
                                    params,
                                )
                                .into()
                        }
                        None => steps
                            .push_variant(
                                ctx,
                                ctx.kernels.conv2d_variant(kernel, stride, i.channels),
                                launch::Conv2d {
                                    input: &tensors[input],
                                    // The same buffer, read as vec4s by the subgroup tile.
                                    input4: &tensors[input],
                                    weight: w,
                                    bias: b,
                                    residual: r,
                                    output: &tensors[output],
                                },
                                params,
                            )
                            .into(),
                    }
                }
                ConvKind::Depthwise => {
                    let params = move |s: &BatchShape| DepthwiseParams {
                        batch: s.images,
                        in_h: i.height,
                        in_w: i.width,
                        channels: o.channels,
                        out_h: o.height,
                        out_w: o.width,
                        kernel,
                        stride,
                        pad_top,
                        pad_left,
                        activation,
                        _pad: 0,
                    };
                    match texels {
                        Some((copy, scratch, weight)) => {
                            steps.push_repeat(Box::new(copy));
                            steps
                                .push_variant(
                                    ctx,
                                    depthwise_variant(kernel, stride),
                                    launch::DepthwiseConvTexture {
                                        input: scratch.view(),
                                        weight,
                                        bias: b,
                                        output: &tensors[output],
                                    },
                                    params,
                                )
                                .into()
                        }
                        None => steps
                            .push_variant(
                                ctx,
                                depthwise_variant(kernel, stride),
                                launch::DepthwiseConv {
                                    input: &tensors[input],
                                    weight: w,
                                    bias: b,
                                    output: &tensors[output],
                                },
                                params,
                            )
                            .into(),
                    }
                }
                ConvKind::General => {
                    let g = c.geometry;
                    steps
                        .push(
                            ctx,
                            launch::ConvGeneral {
                                input: &tensors[input],
                                weight: w,
                                bias: b,
                                residual: r,
                                output: &tensors[output],
                            },
                            move |s| ConvGeneralParams {
                                batch: s.images,
                                in_h: i.height,
                                in_w: i.width,
                                in_c: i.channels,
                                out_h: o.height,
                                out_w: o.width,
                                out_c: o.channels,
                                groups: g.groups,
                                kernel_h: g.kernel[0],
                                kernel_w: g.kernel[1],
                                stride_h: g.stride[0],
                                stride_w: g.stride[1],
                                dilation_h: g.dilation[0],
                                dilation_w: g.dilation[1],
                                pad_top,
                                pad_left,
                                activation,
                                has_residual,
                                add_extra: 0,
                                _pad: 0,
                            },
                        )
                        .into()
                }
                ConvKind::Pointwise => {
                    let params = move |s: &BatchShape| PointwiseParams {
                        rows: s.images * o.height * o.width,
                        in_channels: i.channels,
                        out_channels: o.channels,
                        activation,
                        has_residual,
                        _pad: [0; 3],
                    };
                    match texels {
                        Some((copy, scratch, weight)) => {
                            steps.push_repeat(Box::new(copy));
                            steps
                                .push_variant(
                                    ctx,
                                    ctx.kernels.pointwise_variant(),
                                    launch::PointwiseConvTexture {
                                        input: scratch.view(),
                                        weight,
                                        bias: b,
                                        residual: r,
                                        output: &tensors[output],
                                    },
                                    params,
                                )
                                .into()
                        }
                        None => steps
                            .push_variant(
                                ctx,
                                ctx.kernels.pointwise_variant(),
                                launch::PointwiseConv {
                                    input: &tensors[input],
                                    weight: w,
                                    bias: b,
                                    residual: r,
                                    output: &tensors[output],
                                },
                                params,
                            )
                            .into(),
                    }
                }
            }
        }
        Op::GlobalAvgPool { input, output } => {
            let (pixels, channels) = (t[input].height * t[input].width, t[input].channels);
            steps
                .push(
                    ctx,
                    launch::GlobalAvgPool {
                        input: &tensors[input],
                        output: &tensors[output],
                    },
                    move |s| PoolParams {
                        batch: s.images,
                        pixels,
                        channels,
                        _pad: 0,
                    },
                )
                .into()
        }
        Op::MaxPool {
            input,
            output,
            kernel,
            stride,
            pad,
        } => {
            let (i, o) = (t[input].clone(), t[output].clone());
            steps
                .push(
                    ctx,
                    launch::MaxPool {
                        input: &tensors[input],
                        output: &tensors[output],
                    },
                    move |s| MaxPoolParams {
                        batch: s.images,
                        in_h: i.height,
                        in_w: i.width,
                        channels: i.channels,
                        out_h: o.height,
                        out_w: o.width,
                        kernel,
                        stride,
                        pad,
                        _pad: [0; 3],
                    },
                )
                .into()
        }
        Op::AvgPool {
            input,
            output,
            kernel,
            stride,
            pad,
            count_include_pad,
        } => {
            let (i, o) = (t[input].clone(), t[output].clone());
            steps
                .push(
                    ctx,
                    launch::AvgPool {
                        input: &tensors[input],
                        output: &tensors[output],
                    },
                    move |s| AvgPoolParams {
                        batch: s.images,
                        in_h: i.height,
                        in_w: i.width,
                        channels: i.channels,
                        out_h: o.height,
                        out_w: o.width,
                        kernel,
                        stride,
                        pad,
                        count_include_pad: u32::from(count_include_pad),
                        add_extra: 0,
                        _pad: 0,
                    },
                )
                .into()
        }
        Op::Concat { ref inputs, output } => {
            let o = t[output].clone();
            let mut offset_c4 = 0;
            for &input in inputs {
                let part_c4 = t[input].channels / 4;
                let (pixels, total_c4) = (o.height * o.width, o.channels / 4);
                steps.push(
                    ctx,
                    launch::Concat {
                        part: &tensors[input],
                        output: &tensors[output],
                    },
                    move |s| ConcatParams {
                        pixels: pixels * s.images,
                        part_c4,
                        total_c4,
                        offset_c4,
                        add_extra: 0,
                        _pad: [0; 3],
                    },
                );
                offset_c4 += part_c4;
            }
            Pushed::Other
        }
        Op::Elementwise {
            op: e_op,
            input,
            output,
        } => {
            let e = &model.elementwise[e_op];
            let (scale, bias) = &gpu_model.elementwise[e_op];
            let (len4, channels4) = (t[input].len() as u32 / 4, t[input].channels / 4);
            let (activation, has_affine, slope) =
                (e.activation as u32, u32::from(e.affine.is_some()), e.slope);
            let params = move |s: &BatchShape| ElementwiseParams {
                len4: len4 * s.images,
                channels4,
                activation,
                has_affine,
                slope,
                _pad: [0; 3],
            };
            let texels = texel_copy(gpu_model, scratch, tensors, op, input)
                .zip(gpu_model.elementwise_texel[e_op].as_ref())
                .map(|((copy, scratch), (scale, bias))| (copy, scratch, scale, bias));
            match texels {
                Some((copy, scratch, scale, bias)) => {
                    steps.push_repeat(Box::new(copy));
                    steps
                        .push(
                            ctx,
                            launch::ElementwiseTexture {
                                input: scratch.view(),
                                scale,
                                bias,
                                output: &tensors[output],
                            },
                            params,
                        )
                        .into()
                }
                None => steps
                    .push(
                        ctx,
                        launch::Elementwise {
                            input: &tensors[input],
                            scale,
                            bias,
                            output: &tensors[output],
                        },
                        params,
                    )
                    .into(),
            }
        }
        Op::TokenEmbed { op, input, output } => {
            let (tokens, channels4) = (t[output].width, t[output].channels / 4);
            let prefix = model.token_embeds[op].prefix;
            steps
                .push(
                    ctx,
                    launch::TokenEmbed {
                        input: &tensors[input],
                        table: &gpu_model.token_embeds[op],
                        output: &tensors[output],
                    },
                    move |s| TokenEmbedParams {
                        batch: s.images,
                        tokens,
                        channels4,
                        prefix,
                    },
                )
                .into()
        }
        Op::Attention {
            op,
            input,
            output,
            stats,
        } => steps
            .push(
                ctx,
                launch::Attention {
                    qkv: &tensors[input],
                    output: &tensors[output],
                    stats: &tensors[stats],
                },
                attention_params(model, op, output, false),
            )
            .into(),
        Op::TokenRows {
            input,
            output,
            first,
            count,
        } => {
            let (tokens, channels) = (t[input].width, t[input].channels);
            push_token_rows(
                ctx,
                steps,
                (&tensors[input], &tensors[output], None),
                channels,
                (tokens, count),
                (first, 0),
                count,
            );
            Pushed::Other
        }
        Op::LayerNorm { op, input, output } => {
            let (gamma, beta) = &gpu_model.layer_norms[op];
            let (pixels, channels) = (t[input].height * t[input].width, t[input].channels);
            let eps = model.layer_norms[op].eps;
            steps
                .push(
                    ctx,
                    launch::LayerNorm {
                        input: &tensors[input],
                        gamma,
                        beta,
                        output: &tensors[output],
                    },
                    move |s| LayerNormParams {
                        pixels: pixels * s.images,
                        channels,
                        eps,
                        add_extra: 0,
                    },
                )
                .into()
        }
        Op::SqueezeExcite {
            se,
            input,
            output,
            pooled,
            squeezed,
            excited,
        } => {
            let b = &model.squeeze_excite[se];
            let [reduce_w, reduce_b, expand_w, expand_b] = &gpu_model.squeeze_excite[se];
            let (pixels, channels) = (t[input].height * t[input].width, t[input].channels);
            let (squeeze, activation, gate) = (b.squeeze, b.activation as u32, b.gate as u32);
            let params = move |s: &BatchShape| SqueezeExciteParams {
                batch: s.images,
                pixels,
                channels,
                squeeze,
                activation,
                gate,
                add_extra: 0,
                _pad: 0,
            };
            let pool = move |s: &BatchShape| PoolParams {
                batch: s.images,
                pixels,
                channels,
                _pad: 0,
            };
            // With textures, one copy of the input serves the pool and the gate: the squeeze and
            // excitation between them copy nothing.
            let copy = texel_copy(gpu_model, scratch, tensors, op, input);
            let texture = copy.map(|(copy, scratch)| {
                steps.push_repeat(Box::new(copy));
                scratch.view()
            });
            match texture {
                Some(texture) => {
                    steps.push(
                        ctx,
                        launch::GlobalAvgPoolTexture {
                            input: texture,
                            output: &tensors[pooled],
                        },
                        pool,
                    );
                }
                None => {
                    steps.push(
                        ctx,
                        launch::GlobalAvgPool {
                            input: &tensors[input],
                            output: &tensors[pooled],
                        },
                        pool,
                    );
                }
            }
            steps.push(
                ctx,
                launch::SeSqueeze {
                    pooled: &tensors[pooled],
                    weight: reduce_w,
                    bias: reduce_b,
                    squeezed: &tensors[squeezed],
                },
                params,
            );
            steps.push(
                ctx,
                launch::SeExcite {
                    squeezed: &tensors[squeezed],
                    weight: expand_w,
                    bias: expand_b,
                    excited: &tensors[excited],
                },
                params,
            );
            match texture {
                Some(texture) => {
                    steps.push(
                        ctx,
                        launch::SeScaleTexture {
                            input: texture,
                            excited: &tensors[excited],
                            output: &tensors[output],
                        },
                        params,
                    );
                }
                None => {
                    steps.push(
                        ctx,
                        launch::SeScale {
                            input: &tensors[input],
                            excited: &tensors[excited],
                            output: &tensors[output],
                        },
                        params,
                    );
                }
            }
            Pushed::Other
        }
        Op::Linear {
            linear,
            input,
            output,
        } => {
            let l = &model.linears[linear];
            let (features, total, activation) =
                (l.in_features, l.out_features, l.activation as u32);
            for chunk in &gpu_model.linears[linear] {
                let (offset, rows) = (chunk.offset, chunk.rows);
                steps.push_variant(
                    ctx,
                    ctx.kernels.linear_variant(),
                    launch::Linear {
                        input: &tensors[input],
                        weight: &chunk.weight,
                        bias: &chunk.bias,
                        output: &tensors[output],
                    },
                    move |s| LinearParams {
                        batch: s.images,
                        in_features: features,
                        out_features: rows,
                        activation,
                        out_offset: offset,
                        out_total: total,
                        _pad: [0; 2],
                    },
                );
            }
            Pushed::Other
        }
    }
}

/// The parameters of attention `op` (writing `output`) for a batch, shared by its forward and
/// gradient kernels; `add_extra` for a gradient that adds the one its input already has.
pub(super) fn attention_params(
    model: &Model,
    op: usize,
    output: usize,
    add_extra: bool,
) -> impl Fn(&BatchShape) -> AttentionParams + Copy + 'static {
    let a = &model.attentions[op];
    let o = &model.tensors[output];
    let (tokens, heads, scale) = (o.width, a.heads, a.scale);
    let head_dim4 = o.channels / heads / 4;
    let add_extra = u32::from(add_extra);
    move |s| AttentionParams {
        batch: s.images,
        tokens,
        heads,
        head_dim4,
        scale,
        add_extra,
        _pad: [0; 2],
    }
}

/// One launch of shaders/token_rows.wgsl: `count` tokens of `input` from token `first.0` (of
/// `tokens.0` per image) into `output` from token `first.1` (of `tokens.1` per image), the other
/// output tokens zero, plus `extra` where given (same shape as the output). A head's class
/// tokens, their gradient, a token embedding's gradient, and a token layer's patch grid.
pub(super) fn push_token_rows(
    ctx: &GpuContext,
    steps: &mut Steps,
    (input, output, extra): (&wgpu::Buffer, &wgpu::Buffer, Option<&wgpu::Buffer>),
    channels: u32,
    (in_tokens, out_tokens): (u32, u32),
    (in_first, out_first): (u32, u32),
    count: u32,
) {
    let add_extra = u32::from(extra.is_some());
    steps.push(
        ctx,
        launch::TokenRows {
            input,
            // Without an extra the binding still needs a buffer; it is never read.
            extra: extra.unwrap_or(input),
            output,
        },
        move |s| TokenRowsParams {
            batch: s.images,
            channels4: channels / 4,
            in_tokens,
            out_tokens,
            in_first,
            out_first,
            count,
            add_extra,
        },
    );
}

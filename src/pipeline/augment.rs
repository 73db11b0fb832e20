//! pytorch-grad-cam's `aug_smooth` (base_cam.py `forward_augmentation_smoothing`): the whole
//! pipeline (forward, target choice, backward, CAM with its normalisations) runs on six variants
//! of the normalised input, left-right flipped or not times 0.9, 1 or 1.1 (ttach
//! `HorizontalFlip`, `Multiply`); each variant's CAM is flipped back and the six are averaged
//! with no renormalisation. All on the GPU in one command stream: the preprocessed input is kept
//! aside, each variant written from it, and each variant's CAM kept in its own slot until the
//! mean.

use super::forward::Forward;
use super::steps::{BatchShape, Steps};
use crate::error::Result;
use crate::gpu::kernels::launch;
use crate::gpu::params::{AugMeanParams, AugmentParams};
use crate::gpu::GpuContext;

/// The variants in the reference's order: (flip, factor).
const VARIANTS: [(bool, f32); 6] = [
    (false, 0.9),
    (false, 1.0),
    (false, 1.1),
    (true, 0.9),
    (true, 1.0),
    (true, 1.1),
];

/// The order they run in: the plain image last, so that what is read back besides the CAM
/// (logits, class, the grid, guided pictures) is the plain image's.
const RUN_ORDER: [usize; 6] = [0, 2, 3, 4, 5, 1];

/// The buffers and steps of aug-smooth around the shared pipeline.
pub(super) struct AugSmooth {
    pristine: wgpu::Buffer,
    slots: wgpu::Buffer,
    /// Per variant: the input written from `pristine`.
    augment: Vec<Steps>,
    /// Per variant: its CAM flipped back into its slot.
    store: Vec<Steps>,
    /// The mean into the CAM buffer.
    finish: Steps,
}

impl AugSmooth {
    /// For `forward`'s input and the final CAM buffer `cam` (`[batch, S, S]`).
    pub(super) fn new(ctx: &GpuContext, forward: &Forward, cam: &wgpu::Buffer) -> Result<Self> {
        let model = forward.model();
        let cap = u64::from(forward.capacity());
        let size = model.input_size;
        let input_len = model.tensors[model.input].len() as u64;
        let pristine = ctx.storage("aug_pristine", input_len * 4 * cap)?;
        let variants = VARIANTS.len() as u32;
        let slots = ctx.storage(
            "aug_slots",
            u64::from(size * size) * 4 * cap * u64::from(variants),
        )?;
        let mut augment = Vec::new();
        let mut store = Vec::new();
        for (variant, &(flip, factor)) in VARIANTS.iter().enumerate() {
            let flip = u32::from(flip);
            let mut steps = Steps::new("aug_smooth");
            steps.push(
                ctx,
                launch::Augment {
                    pristine: &pristine,
                    input: forward.tensor(model.input),
                },
                move |s| AugmentParams {
                    batch: s.images,
                    size,
                    flip,
                    factor,
                },
            );
            augment.push(steps);
            let mut steps = Steps::new("aug_smooth");
            let variant = variant as u32;
            steps.push(ctx, launch::AugMean { cam, slots: &slots }, move |s| {
                AugMeanParams {
                    batch: s.images,
                    size,
                    variant,
                    variants,
                    flip,
                    finish: 0,
                    _pad: [0; 2],
                }
            });
            store.push(steps);
        }
        let mut finish = Steps::new("aug_smooth");
        finish.push(ctx, launch::AugMean { cam, slots: &slots }, move |s| {
            AugMeanParams {
                batch: s.images,
                size,
                variant: 0,
                variants,
                flip: 0,
                finish: 1,
                _pad: [0; 2],
            }
        });
        Ok(Self {
            pristine,
            slots,
            augment,
            store,
            finish,
        })
    }

    /// Sets the steps' parameters for the batch.
    pub(super) fn configure(&mut self, ctx: &GpuContext, shape: BatchShape) {
        for steps in self.augment.iter_mut().chain(&mut self.store) {
            steps.configure(ctx, shape);
        }
        self.finish.configure(ctx, shape);
    }

    /// How many times the pipeline runs per batch.
    pub(super) fn variants(&self) -> usize {
        RUN_ORDER.len()
    }

    /// Bytes of its buffers.
    pub(super) fn gpu_bytes(&self) -> u64 {
        self.pristine.size() + self.slots.size()
    }

    /// Records everything between preprocessing (recorded here for image batches) and the
    /// overlay: the input kept aside, then per variant its input, `pipeline` (the forward pass
    /// on the input tensor as it is, target choice, backward and CAM) and its CAM kept; then the
    /// mean into the CAM buffer.
    pub(super) fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        forward: &Forward,
        with_images: bool,
        mut pipeline: impl FnMut(&mut wgpu::CommandEncoder),
    ) {
        if with_images {
            forward.record_preprocess(encoder);
        }
        let model = forward.model();
        let bytes = model.tensors[model.input].len() as u64 * 4 * u64::from(forward.batch());
        encoder.copy_buffer_to_buffer(forward.tensor(model.input), 0, &self.pristine, 0, bytes);
        for v in RUN_ORDER {
            self.augment[v].record(ctx, encoder);
            pipeline(encoder);
            self.store[v].record(ctx, encoder);
        }
        self.finish.record(ctx, encoder);
    }
}

//! A list of recorded kernel launches whose parameters depend on the batch: bind groups are made
//! once, parameters are rewritten only when the batch's shape changes.

use crate::gpu::kernels::{Dispatch, KernelId};
use crate::gpu::{GpuContext, Profiler};

/// What the parameters of a batch's kernels depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchShape {
    /// Images in the batch.
    pub images: u32,
    /// Pixels of all the batch's images at their own sizes (the overlay's size).
    pub total_pixels: u32,
}

/// Computes a step's parameter bytes and invocation count for a batch.
pub type Configure = Box<dyn Fn(&BatchShape) -> (Vec<u8>, u32) + Send + Sync>;

/// Kernel launches in execution order.
pub struct Steps {
    label: &'static str,
    dispatches: Vec<Dispatch>,
    configures: Vec<Configure>,
    shape: Option<BatchShape>,
}

impl Steps {
    /// An empty list; `label` names its compute pass.
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            dispatches: Vec::new(),
            configures: Vec::new(),
            shape: None,
        }
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.dispatches.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.dispatches.is_empty()
    }

    /// Appends a launch of `kernel` over `buffers` (its bindings after the parameters) and
    /// returns its index.
    pub fn push(
        &mut self,
        ctx: &GpuContext,
        kernel: KernelId,
        buffers: &[&wgpu::Buffer],
        configure: impl Fn(&BatchShape) -> (Vec<u8>, u32) + Send + Sync + 'static,
    ) -> usize {
        self.push_variant(ctx, kernel, 0, buffers, configure)
    }

    /// [`Steps::push`] with pipeline `variant` of the kernel.
    pub fn push_variant(
        &mut self,
        ctx: &GpuContext,
        kernel: KernelId,
        variant: usize,
        buffers: &[&wgpu::Buffer],
        configure: impl Fn(&BatchShape) -> (Vec<u8>, u32) + Send + Sync + 'static,
    ) -> usize {
        let (bytes, _) = configure(&BatchShape {
            images: 1,
            total_pixels: 1,
        });
        let params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(ctx.kernels.get(kernel).spec.name),
            size: (bytes.len() as u64).max(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut all = vec![&params];
        all.extend_from_slice(buffers);
        let bind_group = ctx.kernels.get(kernel).bind(&ctx.device, &all);
        self.dispatches.push(Dispatch {
            kernel,
            variant,
            bind_group,
            params,
            invocations: 0,
        });
        self.configures.push(Box::new(configure));
        self.shape = None;
        self.dispatches.len() - 1
    }

    /// Rebinds step `index` to new buffers (after a buffer was reallocated to grow).
    pub fn rebind(&mut self, ctx: &GpuContext, index: usize, buffers: &[&wgpu::Buffer]) {
        let d = &mut self.dispatches[index];
        let mut all = vec![&d.params];
        all.extend_from_slice(buffers);
        d.bind_group = ctx.kernels.get(d.kernel).bind(&ctx.device, &all);
    }

    /// Sets every step's parameters for `shape`; writes nothing when the shape is unchanged.
    pub fn configure(&mut self, ctx: &GpuContext, shape: BatchShape) {
        if self.shape == Some(shape) {
            return;
        }
        for (d, configure) in self.dispatches.iter_mut().zip(&self.configures) {
            let (bytes, invocations) = configure(&shape);
            ctx.queue.write_buffer(&d.params, 0, &bytes);
            d.invocations = invocations;
        }
        self.shape = Some(shape);
    }

    /// Records steps `range` into one compute pass.
    pub fn record_range(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        range: std::ops::Range<usize>,
    ) {
        ctx.record(encoder, self.label, &self.dispatches[range]);
    }

    /// Records steps `range` timed by `profiler`: as one pass labelled `label`, or with
    /// `per_kernel` one pass per step.
    pub fn record_range_profiled(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        range: std::ops::Range<usize>,
        profiler: &mut Profiler,
        label: &str,
        per_kernel: bool,
    ) {
        ctx.record_profiled(
            encoder,
            label,
            &self.dispatches[range],
            profiler,
            per_kernel,
        );
    }

    /// Records every step into one compute pass.
    pub fn record(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder) {
        self.record_range(ctx, encoder, 0..self.dispatches.len());
    }
}

/// Parameter bytes of a `Pod` value, for [`Steps::push`] closures.
pub fn bytes<T: bytemuck::Pod>(value: &T) -> Vec<u8> {
    bytemuck::bytes_of(value).to_vec()
}

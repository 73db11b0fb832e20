//! A list of recorded kernel launches whose parameters depend on the batch: bind groups are made
//! once, parameters are rewritten only when the batch's shape changes.

use std::marker::PhantomData;

use crate::gpu::kernels::{Dispatch, KernelKind, Launch, Work};
use crate::gpu::{GpuContext, Profiler};

/// What the parameters of a batch's kernels depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchShape {
    /// Images in the batch.
    pub images: u32,
    /// Pixels of all the batch's images at their own sizes (the overlay's size).
    pub total_pixels: u32,
    /// Pixels of the batch's largest image.
    pub largest_pixels: u32,
}

/// Computes a step's parameter bytes and invocation count for a batch.
type Configure = Box<dyn Fn(&BatchShape) -> (Vec<u8>, u32, Work) + Send + Sync>;

/// A step of a [`Steps`] list, typed by its kernel so that it can only be rebound to that
/// kernel's bindings.
#[derive(Debug)]
pub struct Step<K> {
    index: usize,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Step<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Step<K> {}

impl<K> Step<K> {
    /// Its position in the list.
    pub fn index(self) -> usize {
        self.index
    }
}

/// The type-erased `configure` of kernel `K`: its parameter bytes and its invocation count as
/// the kernel declares it.
fn configured<K: KernelKind>(
    variant: usize,
    configure: impl Fn(&BatchShape) -> K::Params + Send + Sync + 'static,
) -> Configure {
    Box::new(move |shape| {
        let params = configure(shape);
        (
            bytemuck::bytes_of(&params).to_vec(),
            K::invocations(&params, variant),
            K::work(&params),
        )
    })
}

/// Work recorded between two steps whose number of launches depends on the batch: a chunked
/// loop such as the probe batches of Score-CAM and Ablation-CAM (`src/pipeline/probe.rs`).
pub trait Repeat: Send + Sync {
    /// Sets its parameters for the batch `shape`.
    fn configure(&mut self, ctx: &GpuContext, shape: BatchShape);
    /// Records its work for the batch `shape` as one compute pass, timed with
    /// `timestamp_writes` when given.
    fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchShape,
        timestamp_writes: Option<wgpu::ComputePassTimestampWrites<'_>>,
    );
    /// Bytes of the GPU buffers only it holds.
    fn gpu_bytes(&self) -> u64;
}

/// Kernel launches in execution order, with [`Repeat`]s between them.
pub struct Steps {
    label: &'static str,
    dispatches: Vec<Dispatch>,
    configures: Vec<Configure>,
    shape: Option<BatchShape>,
    /// Each recorded before the step at its index (or at the end when the index is `len`).
    repeats: Vec<(usize, Box<dyn Repeat>)>,
}

impl Steps {
    /// An empty list; `label` names its compute pass.
    pub fn new(label: &'static str) -> Self {
        Self {
            label,
            dispatches: Vec::new(),
            configures: Vec::new(),
            shape: None,
            repeats: Vec::new(),
        }
    }

    /// Appends `repeat`, recorded after the steps pushed so far and before the next.
    pub fn push_repeat(&mut self, repeat: Box<dyn Repeat>) {
        self.repeats.push((self.dispatches.len(), repeat));
        self.shape = None;
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.dispatches.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.dispatches.is_empty()
    }

    /// Appends a launch of `launch`'s kernel over its buffers, with the parameters `configure`
    /// computes for each batch shape, and returns its handle.
    pub fn push<L: Launch>(
        &mut self,
        ctx: &GpuContext,
        launch: L,
        configure: impl Fn(&BatchShape) -> <L::Kind as KernelKind>::Params + Send + Sync + 'static,
    ) -> Step<L::Kind> {
        self.push_variant(ctx, 0, launch, configure)
    }

    /// [`Steps::push`] with pipeline `variant` of the kernel.
    pub fn push_variant<L: Launch>(
        &mut self,
        ctx: &GpuContext,
        variant: usize,
        launch: L,
        configure: impl Fn(&BatchShape) -> <L::Kind as KernelKind>::Params + Send + Sync + 'static,
    ) -> Step<L::Kind> {
        let kernel = ctx.kernels.get(<L::Kind as KernelKind>::ID);
        let params = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(kernel.spec.name),
            size: (kernel.spec.params_size as u64).max(16),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = kernel.bind(&ctx.device, &params, &launch);
        self.dispatches.push(Dispatch {
            kernel: <L::Kind as KernelKind>::ID,
            variant,
            bind_group,
            params,
            invocations: 0,
            work: Work::default(),
        });
        self.configures
            .push(configured::<L::Kind>(variant, configure));
        self.shape = None;
        Step {
            index: self.dispatches.len() - 1,
            kind: PhantomData,
        }
    }

    /// Rebinds `step` to new buffers (after a buffer was reallocated to grow).
    pub fn rebind<L: Launch>(&mut self, ctx: &GpuContext, step: Step<L::Kind>, launch: L) {
        let d = &mut self.dispatches[step.index];
        d.bind_group = ctx
            .kernels
            .get(d.kernel)
            .bind(&ctx.device, &d.params, &launch);
    }

    /// Sets every step's parameters for `shape`; writes nothing when the shape is unchanged.
    pub fn configure(&mut self, ctx: &GpuContext, shape: BatchShape) {
        if self.shape == Some(shape) {
            return;
        }
        for (d, configure) in self.dispatches.iter_mut().zip(&self.configures) {
            let (bytes, invocations, work) = configure(&shape);
            ctx.queue.write_buffer(&d.params, 0, &bytes);
            d.invocations = invocations;
            d.work = work;
        }
        for (_, repeat) in &mut self.repeats {
            repeat.configure(ctx, shape);
        }
        self.shape = Some(shape);
    }

    /// The segments of `range` between the repeats inside it: (steps, the repeat after them).
    fn segments(
        &self,
        range: std::ops::Range<usize>,
    ) -> Vec<(std::ops::Range<usize>, Option<&dyn Repeat>)> {
        let len = self.dispatches.len();
        let mut out = Vec::new();
        let mut start = range.start;
        for (at, repeat) in &self.repeats {
            let inside = (range.start..range.end).contains(at) || (*at == len && range.end == len);
            if inside {
                out.push((start..*at, Some(repeat.as_ref())));
                start = *at;
            }
        }
        out.push((start..range.end, None));
        out
    }

    /// Records steps `range` (and the repeats among them) into compute passes.
    pub fn record_range(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        range: std::ops::Range<usize>,
    ) {
        let shape = self.shape.unwrap_or_default();
        for (steps, repeat) in self.segments(range) {
            if !steps.is_empty() {
                ctx.record(encoder, self.label, &self.dispatches[steps]);
            }
            if let Some(repeat) = repeat {
                repeat.record(ctx, encoder, shape, None);
            }
        }
    }

    /// The launches, in order.
    pub(crate) fn dispatches(&self) -> &[Dispatch] {
        &self.dispatches
    }

    /// Records steps `range` timed by `profiler`: as one pass labelled `label`, or with
    /// `per_kernel` one pass per step; each repeat among them is one pass labelled by its stage
    /// `label` and `probe`.
    pub fn record_range_profiled(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        range: std::ops::Range<usize>,
        profiler: &mut Profiler,
        label: &str,
        per_kernel: bool,
    ) {
        let shape = self.shape.unwrap_or_default();
        for (steps, repeat) in self.segments(range) {
            // An empty timed pass only where there is nothing else to record.
            if !steps.is_empty() || repeat.is_none() {
                ctx.record_profiled(
                    encoder,
                    label,
                    &self.dispatches[steps],
                    profiler,
                    per_kernel,
                );
            }
            if let Some(repeat) = repeat {
                let writes = profiler.pass(&format!("{label} probe"));
                repeat.record(ctx, encoder, shape, writes);
            }
        }
    }

    /// Records every step (and repeat) into compute passes.
    pub fn record(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder) {
        self.record_range(ctx, encoder, 0..self.dispatches.len());
    }
}

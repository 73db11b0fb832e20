//! A list of recorded kernel launches whose parameters depend on the batch: bind groups are made
//! once, parameters are rewritten only when the batch's shape changes.

use std::marker::PhantomData;

use crate::gpu::kernels::{tuning_candidates, Dispatch, KernelKind, Launch, Work};
use crate::gpu::tune::Choice;
use crate::gpu::{GpuContext, Profiler};

/// What the parameters of a batch's kernels depend on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchShape {
    /// Images in the batch.
    pub images: u32,
    /// Pixels of the batch's overlays at the images' own sizes, each row padded to
    /// [`overlay_row_pitch`](crate::gpu::params::overlay_row_pitch).
    pub total_pixels: u32,
    /// Pixels of the batch's largest image.
    pub largest_pixels: u32,
}

/// Computes a step's parameter bytes and work for a batch.
type Configure = Box<dyn Fn(&BatchShape) -> (Vec<u8>, Work) + Send + Sync>;

/// How a step's launch is sized: the builder's pipeline variant, the kernel's invocation count
/// for any variant from the parameter bytes (the tuner may choose another variant), and the
/// parameter bytes last written (a batch of another shape that leaves them alone writes nothing).
struct Sizing {
    variant: usize,
    invocations: fn(&[u8], usize) -> u32,
    written: Vec<u8>,
}

fn invocations_of<K: KernelKind>(params: &[u8], variant: usize) -> u32 {
    K::invocations(&bytemuck::pod_read_unaligned(params), variant)
}

/// Timed runs per candidate when tuning (the least is kept).
const TUNING_RUNS: usize = 3;

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

/// The type-erased `configure` of kernel `K`: its parameter bytes and its work as the kernel
/// declares it.
fn configured<K: KernelKind>(
    configure: impl Fn(&BatchShape) -> K::Params + Send + Sync + 'static,
) -> Configure {
    Box::new(move |shape| {
        let params = configure(shape);
        (bytemuck::bytes_of(&params).to_vec(), K::work(&params))
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
    /// What a profile calls it, after its list's label.
    fn name(&self) -> &'static str {
        "probe"
    }
}

/// Kernel launches in execution order, with [`Repeat`]s between them.
pub struct Steps {
    label: &'static str,
    dispatches: Vec<Dispatch>,
    configures: Vec<Configure>,
    sizings: Vec<Sizing>,
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
            sizings: Vec::new(),
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

    /// Number of repeats among the steps (each recorded as a pass of its own).
    pub fn repeats(&self) -> usize {
        self.repeats.len()
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
        self.configures.push(configured::<L::Kind>(configure));
        self.sizings.push(Sizing {
            variant,
            invocations: invocations_of::<L::Kind>,
            written: Vec::new(),
        });
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
        let mut untimed = Vec::new();
        for (i, (d, configure)) in self.dispatches.iter_mut().zip(&self.configures).enumerate() {
            let (bytes, work) = configure(&shape);
            let sizing = &mut self.sizings[i];
            if sizing.written == bytes {
                continue; // the same launch as before: parameters, variant and work stand
            }
            ctx.queue.write_buffer(&d.params, 0, &bytes);
            let choice = ctx.tuner.choose(d.kernel, sizing.variant, &bytes);
            d.variant = match choice {
                Choice::Use(v) => v,
                Choice::Time => sizing.variant,
            };
            d.invocations = (sizing.invocations)(&bytes, d.variant);
            d.work = work;
            if choice == Choice::Time {
                untimed.push((i, bytes.clone()));
            }
            sizing.written = bytes;
        }
        if !untimed.is_empty() {
            self.tune(ctx, &untimed);
        }
        for (_, repeat) in &mut self.repeats {
            repeat.configure(ctx, shape);
        }
        self.shape = Some(shape);
    }

    /// Times every candidate variant of the steps `untimed` (index, parameter bytes) on their
    /// own buffers, keeps the fastest for each, and tells the tuner. Their outputs are
    /// overwritten, which is why only forward kernels are tuned (the next run writes them again).
    /// On any error the builder's variants stay.
    fn tune(&mut self, ctx: &GpuContext, untimed: &[(usize, Vec<u8>)]) {
        // (step, candidate, invocations)
        let jobs: Vec<(usize, usize, u32)> = untimed
            .iter()
            .flat_map(|(i, bytes)| {
                let sizing = &self.sizings[*i];
                tuning_candidates(self.dispatches[*i].kernel, sizing.variant)
                    .into_iter()
                    .map(move |c| (*i, c, (sizing.invocations)(bytes, c)))
            })
            .collect();
        let mut best = vec![f64::INFINITY; jobs.len()];
        let per_submit = (wgpu::QUERY_SET_MAX_QUERIES as usize / 2 / TUNING_RUNS).max(1);
        for (c, chunk) in jobs.chunks(per_submit).enumerate() {
            let mut profiler = Profiler::new(ctx, (chunk.len() * TUNING_RUNS) as u32);
            if !profiler.enabled() {
                return;
            }
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            for _ in 0..TUNING_RUNS {
                for &(i, variant, invocations) in chunk {
                    let d = &self.dispatches[i];
                    let writes = profiler.pass(ctx.kernels.get(d.kernel).spec.name);
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("tuning"),
                        timestamp_writes: writes,
                    });
                    ctx.dispatch(&mut pass, d, variant, invocations);
                }
            }
            profiler.resolve(&mut encoder);
            if ctx.submit("tuning", encoder).is_err() {
                return;
            }
            let Ok(times) = profiler.read(ctx) else {
                return;
            };
            for (k, (_, t)) in times.iter().enumerate() {
                let j = c * per_submit + k % chunk.len();
                best[j] = best[j].min(*t);
            }
        }
        let mut results = Vec::new();
        for (i, bytes) in untimed {
            let sizing = &self.sizings[*i];
            // The builder's variant comes first among the candidates and wins ties.
            let (mut choice, mut least) = (sizing.variant, f64::INFINITY);
            let mut times = Vec::new();
            for (j, &(step, variant, _)) in jobs.iter().enumerate() {
                if step == *i {
                    times.push((variant, best[j]));
                    if best[j] < least {
                        (choice, least) = (variant, best[j]);
                    }
                }
            }
            let d = &mut self.dispatches[*i];
            d.variant = choice;
            d.invocations = (sizing.invocations)(bytes, choice);
            results.push((d.kernel, sizing.variant, bytes.clone(), choice, times));
        }
        ctx.tuner.record(results);
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
    /// `label` and its name.
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
                let writes = profiler.pass(&format!("{label} {}", repeat.name()));
                repeat.record(ctx, encoder, shape, writes);
            }
        }
    }

    /// Records every step (and repeat) into compute passes.
    pub fn record(&self, ctx: &GpuContext, encoder: &mut wgpu::CommandEncoder) {
        self.record_range(ctx, encoder, 0..self.dispatches.len());
    }
}

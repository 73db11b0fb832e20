//! Probe batches: the extra forward passes of Score-CAM and Ablation-CAM, one per (image,
//! channel) pair of the target layer (thousands per batch), run on the GPU in chunks of `rows`
//! copies of the network from one op on.
//!
//! A chunk is three recorded lists: `prepare` (the method's kernels writing each row's input:
//! masked images, or ablated activations plus copies of the skip connections the rest of the
//! network reads), the forward ops, and `gather` (each row's target logit to its score, then the
//! cursor to the next chunk). The cursor lives on the GPU, so the same bind groups and
//! parameters serve every chunk and nothing is read back between them: only the number of
//! chunks, ⌈images·channels / rows⌉, is decided on the host when the batch is recorded.
//! Never more than `rows` copies exist at once, whatever the layer's width.

use std::collections::BTreeSet;

use super::forward::{push_op, Forward};
use super::steps::{BatchShape, Repeat, Steps};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{ProbeBroadcastParams, ProbeGatherParams};
use crate::gpu::GpuContext;

/// The most bytes of activations a probe batch holds by default.
const DEFAULT_PROBE_BYTES: u64 = 1 << 30;
/// The most rows a probe batch holds by default.
const DEFAULT_PROBE_ROWS: u32 = 256;

/// A chunked probe loop under construction; [`Probe::finish`] makes it a [`Repeat`].
pub(crate) struct Probe {
    rows: u32,
    per_image: u32,
    cursor: wgpu::Buffer,
    tensors: Vec<wgpu::Buffer>,
    live_ins: Vec<usize>,
    prepare: Steps,
    forward: Steps,
    bytes: u64,
}

/// The tensors ops `first_op..` read or write.
fn used_tensors(main: &Forward, first_op: usize) -> BTreeSet<usize> {
    main.model().ops[first_op..]
        .iter()
        .flat_map(|op| {
            op.reads()
                .into_iter()
                .chain([op.output()])
                .chain(op.scratch())
        })
        .collect()
}

/// The default chunk for a probe from op `first_op` on: as many rows as fit
/// [`DEFAULT_PROBE_BYTES`] and one binding per tensor, at most [`DEFAULT_PROBE_ROWS`].
pub(crate) fn default_rows(ctx: &GpuContext, main: &Forward, first_op: usize) -> u32 {
    let model = main.model();
    let limit = ctx
        .limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size);
    let used = used_tensors(main, first_op);
    let per_row: u64 = used
        .iter()
        .map(|&t| model.tensors[t].len() as u64 * 4)
        .sum();
    let largest = used
        .iter()
        .map(|&t| model.tensors[t].len() as u64 * 4)
        .max()
        .unwrap_or(4);
    let rows = (DEFAULT_PROBE_BYTES / per_row.max(1)).min(limit / largest.max(1));
    rows.clamp(1, u64::from(DEFAULT_PROBE_ROWS)) as u32
}

impl Probe {
    /// A probe running `main`'s ops from `first_op` on over chunks of `rows` rows, `per_image`
    /// rows per image (the layer's channels). Allocates only the tensors those ops touch.
    pub(crate) fn new(
        ctx: &GpuContext,
        main: &Forward,
        first_op: usize,
        rows: u32,
        per_image: u32,
    ) -> Result<Self> {
        let model = main.model();
        let gpu_model = main.gpu_model();
        let cursor = ctx.storage("probe_cursor", 16)?;
        let used = used_tensors(main, first_op);
        let mut bytes = cursor.size();
        let mut tensors = Vec::with_capacity(model.tensors.len());
        for (id, t) in model.tensors.iter().enumerate() {
            let buffer = if used.contains(&id) {
                let b = ctx
                    .storage(
                        &format!("probe.{}", t.name),
                        t.len() as u64 * 4 * u64::from(rows),
                    )
                    .map_err(|_| {
                        Error::InvalidRequest(format!(
                            "a method batch of {rows} copies of `{}` exceeds one binding on this \
                             adapter ({} bytes); use a smaller method batch",
                            t.name,
                            ctx.limits
                                .max_storage_buffer_binding_size
                                .min(ctx.limits.max_buffer_size)
                        ))
                    })?;
                bytes += b.size();
                b
            } else {
                // Never bound: the ops before `first_op` are not recorded.
                cursor.clone()
            };
            tensors.push(buffer);
        }
        let written: BTreeSet<usize> = model.ops[first_op..]
            .iter()
            .flat_map(|op| op.scratch().into_iter().chain([op.output()]))
            .collect();
        let live_ins = used
            .iter()
            .copied()
            .filter(|t| !written.contains(t))
            .collect();
        let mut forward = Steps::new("probe forward");
        for op in &model.ops[first_op..] {
            push_op(
                ctx,
                gpu_model,
                &tensors,
                &cursor,
                &cursor,
                None,
                &mut forward,
                op,
            );
        }
        forward.configure(
            ctx,
            BatchShape {
                images: rows,
                ..Default::default()
            },
        );
        Ok(Self {
            rows,
            per_image,
            cursor,
            tensors,
            live_ins,
            prepare: Steps::new("probe prepare"),
            forward,
            bytes,
        })
    }

    /// The GPU cursor: the first global row of the chunk now running.
    pub(crate) fn cursor(&self) -> &wgpu::Buffer {
        &self.cursor
    }

    /// The probe's copy of tensor `id` (`rows` images).
    pub(crate) fn tensor(&self, id: usize) -> &wgpu::Buffer {
        &self.tensors[id]
    }

    /// The per-chunk steps before the forward ops; their `configure` gets the main batch's shape.
    pub(crate) fn prepare(&mut self) -> &mut Steps {
        &mut self.prepare
    }

    /// Adds to [`Probe::prepare`] a copy of each tensor the probe's ops read but do not write
    /// (a skip connection crossing its first op), but `except`, from `main`'s
    /// image to every row of the chunk.
    pub(crate) fn broadcast_live_ins(
        &mut self,
        ctx: &GpuContext,
        main: &Forward,
        except: &[usize],
    ) {
        let (rows, per_image) = (self.rows, self.per_image);
        for &t in self.live_ins.iter().filter(|t| !except.contains(t)) {
            let len = main.model().tensors[t].len() as u32;
            self.prepare.push(
                ctx,
                launch::ProbeBroadcast {
                    cursor: &self.cursor,
                    source: main.tensor(t),
                    copies: &self.tensors[t],
                },
                move |s| ProbeBroadcastParams {
                    rows,
                    per_image,
                    images: s.images,
                    len,
                },
            );
        }
    }

    /// Completes the loop: after each chunk, the target logit (`targets` per image) of every row
    /// goes to `scores` (`[images, per_image]`).
    pub(crate) fn finish(
        self,
        ctx: &GpuContext,
        main: &Forward,
        targets: &wgpu::Buffer,
        scores: &wgpu::Buffer,
    ) -> Box<dyn Repeat> {
        let model = main.model();
        let (rows, per_image, classes) = (self.rows, self.per_image, model.classes);
        let mut gather = Steps::new("probe gather");
        gather.push(
            ctx,
            launch::ProbeGather {
                logits: &self.tensors[model.logits],
                targets,
                cursor: &self.cursor,
                scores,
            },
            move |s| ProbeGatherParams {
                rows,
                per_image,
                images: s.images,
                classes,
            },
        );
        Box::new(ProbeLoop {
            probe: self,
            gather,
        })
    }
}

/// A finished probe: what [`Steps`] records between the method's steps.
struct ProbeLoop {
    probe: Probe,
    gather: Steps,
}

impl Repeat for ProbeLoop {
    fn configure(&mut self, ctx: &GpuContext, shape: BatchShape) {
        self.probe.prepare.configure(ctx, shape);
        self.gather.configure(ctx, shape);
    }

    fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        shape: BatchShape,
        timestamp_writes: Option<wgpu::ComputePassTimestampWrites<'_>>,
    ) {
        let p = &self.probe;
        let total = shape.images * p.per_image;
        if total == 0 {
            return;
        }
        encoder.clear_buffer(&p.cursor, 0, None);
        // Every chunk in one pass: wgpu orders the dispatches that read what earlier ones wrote.
        let chunk = p
            .prepare
            .dispatches()
            .iter()
            .chain(p.forward.dispatches())
            .chain(self.gather.dispatches());
        let chunks = total.div_ceil(p.rows) as usize;
        ctx.record_dispatches(
            encoder,
            "probe",
            std::iter::repeat_n(chunk, chunks).flatten(),
            timestamp_writes,
        );
    }

    fn gpu_bytes(&self) -> u64 {
        self.probe.bytes
    }
}

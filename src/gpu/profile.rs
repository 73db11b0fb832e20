//! GPU timing with timestamp queries at compute-pass boundaries (`TIMESTAMP_QUERY`), one pass per
//! profiled stage or kernel; where the adapter lacks timestamps nothing is recorded and callers
//! fall back to wall-clock time.

use super::{GpuContext, Work};
use crate::error::Result;

/// What a pass timed one launch at a time ran.
#[derive(Clone, Copy, Debug)]
pub struct LaunchInfo {
    /// The kernel's name (its WGSL file).
    pub kernel: &'static str,
    /// Its pipeline variant.
    pub variant: usize,
    /// Invocations launched.
    pub invocations: u32,
    /// Workgroups launched (x, y).
    pub workgroups: (u32, u32),
    /// Invocations per workgroup.
    pub workgroup_size: u32,
    /// The launch's work, as its kernel declares it.
    pub work: Work,
}

/// One timed pass: its label, the launch it held when timed one launch at a time, its duration.
#[derive(Clone, Debug)]
pub struct Timed {
    /// The pass's label (the kernel's name for a single launch).
    pub label: String,
    /// The launch, when the pass held exactly one.
    pub launch: Option<LaunchInfo>,
    /// Seconds on the GPU.
    pub seconds: f64,
}

/// Collects begin/end timestamps of labelled compute passes over one or more submissions.
pub struct Profiler {
    query_set: Option<wgpu::QuerySet>,
    resolve: Option<wgpu::Buffer>,
    staging: Option<wgpu::Buffer>,
    capacity: u32,
    labels: Vec<String>,
    launches: Vec<Option<LaunchInfo>>,
}

impl Profiler {
    /// Room for `passes` timed passes per read-out.
    pub fn new(ctx: &GpuContext, passes: u32) -> Self {
        if !ctx
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
            || passes == 0
        {
            return Self {
                query_set: None,
                resolve: None,
                staging: None,
                capacity: 0,
                labels: Vec::new(),
                launches: Vec::new(),
            };
        }
        let count = (2 * passes).min(wgpu::QUERY_SET_MAX_QUERIES);
        let query_set = ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("profiler"),
            ty: wgpu::QueryType::Timestamp,
            count,
        });
        let bytes = u64::from(count) * 8;
        let resolve = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("profiler_resolve"),
            size: bytes,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Self {
            query_set: Some(query_set),
            resolve: Some(resolve),
            staging: Some(ctx.staging("profiler_readback", bytes)),
            capacity: count / 2,
            labels: Vec::new(),
            launches: Vec::new(),
        }
    }

    /// Whether timestamps are available on this device.
    pub fn enabled(&self) -> bool {
        self.query_set.is_some()
    }

    /// Timestamp writes for the next pass, labelled `label`; `None` when disabled or full.
    pub fn pass(&mut self, label: &str) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        self.pass_of(label, None)
    }

    /// Timestamp writes for the next pass, labelled `label` and holding `launch` alone.
    pub fn pass_of(
        &mut self,
        label: &str,
        launch: Option<LaunchInfo>,
    ) -> Option<wgpu::ComputePassTimestampWrites<'_>> {
        let i = self.labels.len() as u32;
        if i >= self.capacity {
            return None;
        }
        let query_set = self.query_set.as_ref()?;
        self.labels.push(label.to_string());
        self.launches.push(launch);
        Some(wgpu::ComputePassTimestampWrites {
            query_set,
            beginning_of_pass_write_index: Some(2 * i),
            end_of_pass_write_index: Some(2 * i + 1),
        })
    }

    /// Records the resolve of every timestamp written so far; call once at the end of the last
    /// encoder before [`Profiler::read`].
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        let (Some(q), Some(r), Some(s)) = (&self.query_set, &self.resolve, &self.staging) else {
            return;
        };
        let n = self.labels.len() as u32;
        if n == 0 {
            return;
        }
        encoder.resolve_query_set(q, 0..2 * n, r, 0);
        encoder.copy_buffer_to_buffer(r, 0, s, 0, u64::from(2 * n) * 8);
    }

    /// Reads the durations of the timed passes (seconds, in recording order) and starts over
    /// ([`Profiler::read_async`], blocking).
    pub fn read(&mut self, ctx: &GpuContext) -> Result<Vec<(String, f64)>> {
        ctx.block_on(self.read_async(ctx))
    }

    /// Reads the durations of the timed passes once the GPU is done with them, and starts over.
    pub async fn read_async(&mut self, ctx: &GpuContext) -> Result<Vec<(String, f64)>> {
        Ok(self
            .read_timed_async(ctx)
            .await?
            .into_iter()
            .map(|t| (t.label, t.seconds))
            .collect())
    }

    /// Reads the timed passes with the launch each held ([`Profiler::read_timed_async`],
    /// blocking).
    pub fn read_timed(&mut self, ctx: &GpuContext) -> Result<Vec<Timed>> {
        ctx.block_on(self.read_timed_async(ctx))
    }

    /// Reads the timed passes, in recording order, with the launch each held when recorded one
    /// launch at a time; starts over.
    pub async fn read_timed_async(&mut self, ctx: &GpuContext) -> Result<Vec<Timed>> {
        let Some(staging) = &self.staging else {
            return Ok(Vec::new());
        };
        let n = self.labels.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let raw = ctx
            .read_staging_async(
                "profiler readback",
                staging,
                (n * 16) as u64,
                <[u8]>::to_vec,
            )
            .await?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&raw);
        let period = f64::from(ctx.queue.get_timestamp_period()) * 1e-9;
        let out = self
            .labels
            .drain(..)
            .zip(self.launches.drain(..))
            .enumerate()
            .map(|(i, (label, launch))| Timed {
                label,
                launch,
                seconds: ticks[2 * i + 1].saturating_sub(ticks[2 * i]) as f64 * period,
            })
            .collect();
        Ok(out)
    }
}

impl GpuContext {
    /// Records `dispatches` like [`GpuContext::record`], timing them with `profiler`: one pass
    /// labelled `label` for all, or with `per_kernel` one pass per dispatch labelled by kernel.
    pub fn record_profiled(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        dispatches: &[super::Dispatch],
        profiler: &mut Profiler,
        per_kernel: bool,
    ) {
        if !per_kernel {
            let writes = profiler.pass(label);
            self.record_pass(encoder, label, dispatches, writes);
            return;
        }
        let max = self.limits.max_compute_workgroups_per_dimension;
        for d in dispatches {
            let kernel = self.kernels.get(d.kernel);
            let name = kernel.spec.name;
            let launch = LaunchInfo {
                kernel: name,
                variant: d.variant,
                invocations: d.invocations,
                workgroups: kernel.grid(d.invocations, max),
                workgroup_size: kernel.workgroup_size,
                work: d.work,
            };
            let writes = profiler.pass_of(name, Some(launch));
            self.record_pass(encoder, name, std::slice::from_ref(d), writes);
        }
    }
}

/// Sums durations by label, keeping first-seen order.
pub fn totals(times: &[(String, f64)]) -> Vec<(String, f64, usize)> {
    let mut out: Vec<(String, f64, usize)> = Vec::new();
    for (label, t) in times {
        match out.iter_mut().find(|(l, ..)| l == label) {
            Some(e) => {
                e.1 += t;
                e.2 += 1;
            }
            None => out.push((label.clone(), *t, 1)),
        }
    }
    out
}

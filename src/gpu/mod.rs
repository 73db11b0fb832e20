//! The one place that talks to wgpu: adapter and device set-up, the kernel registry, buffers,
//! recording of dispatches and readback.

pub mod kernels;
mod oneshot;
pub mod params;
pub mod profile;
pub mod tune;
pub mod upload;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use wgpu::util::DeviceExt;

use crate::error::{one_line, Error, Result};
use kernels::SUBGROUP_LANES;
pub use kernels::{launch, Dispatch, Kernel, KernelId, KernelKind, Kernels, Launch, Work};
pub use profile::Profiler;
pub use tune::{TuneMode, Tuner};

/// How to pick an adapter.
#[derive(Clone, Debug, Default)]
pub struct AdapterOptions {
    /// Case-insensitive substring of the adapter's name (`--adapter`). When `None`, the
    /// `WGPU_ADAPTER_NAME` environment variable is used if set.
    pub name: Option<String>,
}

/// Device, queue and compiled kernels: made once, reused for every batch.
pub struct GpuContext {
    /// The wgpu device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the device runs on.
    pub adapter_info: wgpu::AdapterInfo,
    /// Every kernel, compiled.
    pub kernels: Kernels,
    /// The limits the device was created with.
    pub limits: wgpu::Limits,
    /// The pipeline variant chosen per launch shape on this adapter (src/gpu/tune.rs).
    pub tuner: Tuner,
    /// Errors wgpu raised outside any error scope, collected rather than panicking.
    uncaptured: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter_info.name)
            .field("backend", &self.adapter_info.backend)
            .finish_non_exhaustive()
    }
}

const SOFTWARE_DRIVER_HINT: &str = "On Linux without a GPU, install a software Vulkan driver: \
`apt-get install mesa-vulkan-drivers libvulkan1` (lavapipe). Choose an adapter with --adapter \
NAME or WGPU_ADAPTER_NAME, and backends with WGPU_BACKEND=vulkan,metal,dx12,gl.";

fn adapter_rank(info: &wgpu::AdapterInfo) -> u32 {
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_rank(backend: wgpu::Backend) -> u32 {
    // GL's compute support is the weakest; prefer the native APIs.
    match backend {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

/// The names `WGPU_BACKEND` accepts (wgpu's spellings), comma-separated.
const BACKEND_NAMES: &[&str] = &[
    "vulkan", "vk", "metal", "mtl", "dx12", "d3d12", "gl", "gles", "opengl", "webgpu",
];

/// Refuses a `WGPU_BACKEND` with a name wgpu would silently skip: every name must be a backend.
fn check_backend_env() -> Result<()> {
    let Ok(value) = std::env::var("WGPU_BACKEND") else {
        return Ok(());
    };
    let names: Vec<String> = value
        .split(',')
        .map(|b| b.trim().to_lowercase())
        .filter(|b| !b.is_empty())
        .collect();
    let unknown: Vec<&String> = names
        .iter()
        .filter(|b| !BACKEND_NAMES.contains(&b.as_str()))
        .collect();
    if names.is_empty() || !unknown.is_empty() {
        let shown = unknown
            .iter()
            .map(|b| format!("`{}`", crate::one_line(b)))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Error::InvalidRequest(format!(
            "WGPU_BACKEND={:?}: {} is not a backend; valid names (comma-separated): vulkan, metal, \
             dx12, gl (also vk, mtl, d3d12, gles, opengl, webgpu)",
            crate::one_line(&value),
            if shown.is_empty() { "empty".to_string() } else { shown },
        )));
    }
    Ok(())
}

impl GpuContext {
    /// Opens a device on the best adapter matching `options` (discrete before integrated before
    /// software), on the backends `WGPU_BACKEND` allows (all by default).
    pub fn new(options: &AdapterOptions) -> Result<Self> {
        pollster::block_on(Self::new_async(options))
    }

    async fn new_async(options: &AdapterOptions) -> Result<Self> {
        check_backend_env()?;
        let descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        let backends = descriptor.backends;
        let instance = wgpu::Instance::new(descriptor);
        let wanted = options
            .name
            .clone()
            .or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok())
            .filter(|s| !s.is_empty());
        let mut adapters = instance.enumerate_adapters(backends).await;
        let names: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({:?})", i.name, i.backend)
            })
            .collect();
        if let Some(w) = &wanted {
            let w = w.to_lowercase();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&w));
        }
        adapters.sort_by_key(|a| {
            let i = a.get_info();
            (adapter_rank(&i), backend_rank(i.backend))
        });
        let Some(adapter) = adapters.into_iter().next() else {
            let backend_names: Vec<&str> = [
                (wgpu::Backends::VULKAN, "vulkan"),
                (wgpu::Backends::METAL, "metal"),
                (wgpu::Backends::DX12, "dx12"),
                (wgpu::Backends::GL, "gl"),
            ]
            .into_iter()
            .filter(|(b, _)| backends.contains(*b))
            .map(|(_, n)| n)
            .collect();
            let available = if names.is_empty() {
                String::new()
            } else {
                format!("Adapters present: {}. ", names.join(", "))
            };
            return Err(Error::NoAdapter {
                wanted: wanted
                    .map(|w| format!(" matching `{w}`"))
                    .unwrap_or_default(),
                backends: backend_names.join(", "),
                hint: format!("{available}{SOFTWARE_DRIVER_HINT}"),
            });
        };
        let info = adapter.get_info();
        // Ask for what the adapter offers: large activations need the full storage binding and
        // buffer sizes, which wgpu's defaults cap at 128/256 MiB.
        let limits = adapter.limits();
        let features =
            adapter.features() & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("gradcam"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Device {
                adapter: info.name.clone(),
                reason: one_line(&e.to_string()),
            })?;
        Self::with_info(device, queue, info, limits)
    }

    /// Builds the engine on a caller's device and queue (an app that already renders with wgpu).
    /// The device must allow storage buffers as large as the batches it will run.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        let info = device.adapter_info();
        let limits = device.limits();
        Self::with_info(device, queue, info, limits)
    }

    fn with_info(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter_info: wgpu::AdapterInfo,
        limits: wgpu::Limits,
    ) -> Result<Self> {
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        // Compiled when first needed: the shaders are validated by the test suite, and a driver
        // that rejects one reports it (naming the kernel) through `uncaptured`, checked after
        // each submission.
        // Subgroup variants where they were measured and their layout holds: a CPU adapter
        // (lavapipe) with 8-lane subgroups.
        let subgroups = device.features().contains(wgpu::Features::SUBGROUP)
            && adapter_info.device_type == wgpu::DeviceType::Cpu
            && adapter_info.subgroup_min_size == SUBGROUP_LANES
            && adapter_info.subgroup_max_size == SUBGROUP_LANES;
        let cpu = adapter_info.device_type == wgpu::DeviceType::Cpu;
        let kernels = Kernels::new(&device, uncaptured.clone(), subgroups, cpu);
        let tuner = Tuner::new(
            &adapter_info,
            device.features().contains(wgpu::Features::TIMESTAMP_QUERY),
        );
        Ok(Self {
            device,
            queue,
            adapter_info,
            kernels,
            limits,
            tuner,
            uncaptured,
        })
    }

    /// A short description: "name (backend)".
    pub fn adapter_name(&self) -> String {
        format!(
            "{} ({:?})",
            self.adapter_info.name, self.adapter_info.backend
        )
    }

    /// A storage buffer initialised with `data`.
    pub fn storage_with<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: bytemuck::cast_slice(data),
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
            })
    }

    /// An uninitialised (zeroed) storage buffer of `bytes` bytes (at least 16).
    pub fn storage(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.check_storage(label, bytes)?;
        Ok(self.storage_unchecked(label, bytes))
    }

    /// Whether a storage buffer of `bytes` fits one binding on this adapter, or the error saying
    /// it does not.
    pub fn check_storage(&self, label: &str, bytes: u64) -> Result<()> {
        let bytes = bytes.max(16).next_multiple_of(4);
        if bytes > self.limits.max_storage_buffer_binding_size
            || bytes > self.limits.max_buffer_size
        {
            return Err(Error::InvalidRequest(format!(
                "buffer `{label}` needs {bytes} bytes, more than this adapter allows in one binding \
                 ({} bytes); use a smaller batch",
                self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size as _)
            )));
        }
        Ok(())
    }

    /// [`GpuContext::storage`] for a size [`GpuContext::check_storage`] accepted.
    pub(crate) fn storage_unchecked(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        let bytes = bytes.max(16).next_multiple_of(4);
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// A staging buffer for reading `bytes` back.
    pub fn staging(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Records `dispatches` into one compute pass of `encoder`.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder, label: &str, dispatches: &[Dispatch]) {
        self.record_pass(encoder, label, dispatches, None);
    }

    fn record_pass(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        dispatches: &[Dispatch],
        timestamp_writes: Option<wgpu::ComputePassTimestampWrites<'_>>,
    ) {
        self.record_dispatches(encoder, label, dispatches.iter(), timestamp_writes);
    }

    /// Records `dispatches` into one compute pass (timed when `timestamp_writes` is given).
    pub fn record_dispatches<'d>(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        label: &str,
        dispatches: impl Iterator<Item = &'d Dispatch>,
        timestamp_writes: Option<wgpu::ComputePassTimestampWrites<'_>>,
    ) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes,
        });
        for d in dispatches {
            self.dispatch(&mut pass, d, d.variant, d.invocations);
        }
    }

    /// Records `d`'s launch into `pass` with pipeline `variant` over `invocations` (the tuner
    /// times variants other than `d`'s own); nothing for no invocations.
    pub(crate) fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass<'_>,
        d: &Dispatch,
        variant: usize,
        invocations: u32,
    ) {
        if invocations == 0 {
            return;
        }
        let kernel = self.kernels.get(d.kernel);
        let (x, y) = kernel.grid(
            invocations,
            self.limits.max_compute_workgroups_per_dimension,
        );
        let Some(pipeline) = kernel.pipelines.get(variant).and_then(Option::as_ref) else {
            // Never chosen: the builder and the tuner pick only variants the device has.
            if let Ok(mut errors) = self.uncaptured.lock() {
                errors.push(format!(
                    "{} has no pipeline variant {variant} on this device",
                    kernel.spec.name
                ));
            }
            return;
        };
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &d.bind_group, &[]);
        pass.dispatch_workgroups(x, y, 1);
    }

    /// Submits `encoder` inside validation and out-of-memory error scopes and turns any error
    /// into [`Error::Gpu`]. Blocks only on [`GpuContext::submit_async`].
    pub fn submit(&self, stage: &str, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.block_on(self.submit_async(stage, encoder))
    }

    /// Submits `encoder` inside validation and out-of-memory error scopes; resolves to any error
    /// they caught, as [`Error::Gpu`]. Does not wait for the GPU to finish the work.
    pub async fn submit_async(&self, stage: &str, encoder: wgpu::CommandEncoder) -> Result<()> {
        self.submit_indexed_async(stage, encoder).await.map(|_| ())
    }

    /// [`GpuContext::submit_async`], resolving to the submission's index (to wait for it alone
    /// with [`GpuContext::block_on_submission`]).
    pub async fn submit_indexed_async(
        &self,
        stage: &str,
        encoder: wgpu::CommandEncoder,
    ) -> Result<wgpu::SubmissionIndex> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let index = self.queue.submit([encoder.finish()]);
        let v = validation.pop().await;
        let o = oom.pop().await;
        self.check(stage, v.or(o))?;
        Ok(index)
    }

    /// Runs `future` (one of the engine's `*_async` operations) to completion on this thread,
    /// polling the device while it waits: native wgpu runs its callbacks (buffer mapping) only
    /// when the device is polled. The engine's core is asynchronous, so that a browser build can
    /// await the same operations; the CLI, the Python binding and the blocking methods call this.
    pub fn block_on<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        self.block_on_submission(None, future)
    }

    /// [`GpuContext::block_on`] for a future that needs only submission `index` (and earlier
    /// ones) done: the first wait is for that submission alone, so work submitted after it (the
    /// next batch) keeps running while the future's callbacks run; later waits are for all.
    pub fn block_on_submission<T>(
        &self,
        index: Option<wgpu::SubmissionIndex>,
        future: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let mut future = std::pin::pin!(future);
        let mut index = index;
        pollster::block_on(std::future::poll_fn(|cx| {
            match future.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(out),
                Poll::Pending => {
                    let wait = wgpu::PollType::Wait {
                        submission_index: index.take(),
                        timeout: None,
                    };
                    if let Err(e) = self.device.poll(wait) {
                        return Poll::Ready(Err(Error::Gpu {
                            stage: "waiting for the GPU".into(),
                            reason: e.to_string(),
                        }));
                    }
                    // Its callback has run (or is running on another thread that polled the
                    // device at the same time): look again.
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            }
        }))
    }

    fn check(&self, stage: &str, scoped: Option<wgpu::Error>) -> Result<()> {
        // Errors reported outside a scope (a kernel that failed to compile) come first: they
        // are usually the cause of the scoped one ("pipeline is invalid").
        let mut reasons: Vec<String> = self
            .uncaptured
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        reasons.extend(scoped.map(|e| e.to_string()));
        match reasons.first() {
            Some(first) => Err(Error::Gpu {
                stage: stage.to_string(),
                reason: one_line(first),
            }),
            None => Ok(()),
        }
    }

    /// Waits until the GPU has finished all submitted work.
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu {
                stage: "waiting for the GPU".into(),
                reason: e.to_string(),
            })
    }

    /// Maps `staging` (already filled by a submitted copy), returns its first `bytes` bytes and
    /// unmaps it. Waits for the GPU.
    pub fn read_staging(&self, stage: &str, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        self.read_staging_with(stage, staging, bytes, <[u8]>::to_vec)
    }

    /// Like [`GpuContext::read_staging`], but hands the mapped bytes to `f` instead of copying
    /// them whole: a caller that splits the readback (per-image overlays) copies each byte once.
    pub fn read_staging_with<T>(
        &self,
        stage: &str,
        staging: &wgpu::Buffer,
        bytes: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        self.block_on(self.read_staging_async(stage, staging, bytes, f))
    }

    /// Maps the first `bytes` of `staging` (filled by submitted work) for reading, resolving when
    /// the GPU has finished that work; hands the mapped bytes to `f`, unmaps, and resolves to its
    /// result. Never blocks: the mapping completes when the device is polled (natively, by
    /// [`GpuContext::block_on`]) or by the browser's event loop.
    pub async fn read_staging_async<T>(
        &self,
        stage: &str,
        staging: &wgpu::Buffer,
        bytes: u64,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<T> {
        let gpu_error = |reason: String| Error::Gpu {
            stage: stage.to_string(),
            reason,
        };
        let (tx, rx) = oneshot::channel();
        let slice = staging.slice(..bytes);
        slice.map_async(wgpu::MapMode::Read, move |r| tx.send(r));
        let mapped = rx
            .await
            .ok_or_else(|| gpu_error("the readback buffer was never mapped".into()))?;
        mapped.map_err(|e| gpu_error(format!("mapping the readback buffer failed: {e}")))?;
        let out = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| gpu_error(e.to_string()))?;
            f(&view)
        };
        staging.unmap();
        self.check(stage, None)?;
        Ok(out)
    }

    /// Copies `bytes` of `src` into a fresh staging buffer and reads them back. For tests and
    /// one-off inspection; the batch path keeps its own staging buffers.
    pub fn read_buffer(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        self.block_on(self.read_buffer_async(src, bytes))
    }

    /// [`GpuContext::read_buffer`] as a future.
    pub async fn read_buffer_async(&self, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
        let staging = self.staging("readback", bytes);
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes.next_multiple_of(4));
        self.submit_async("readback", encoder).await?;
        let mut v = self
            .read_staging_async(
                "readback",
                &staging,
                bytes.next_multiple_of(4),
                <[u8]>::to_vec,
            )
            .await?;
        v.truncate(bytes as usize);
        Ok(v)
    }

    /// Runs `launch`'s kernel once with `params`, over as many invocations as the kernel
    /// declares for them, and submits: for kernel tests and one-off work, not the batch path.
    pub fn run_kernel<L: Launch>(
        &self,
        launch: L,
        params: &<L::Kind as KernelKind>::Params,
    ) -> Result<()> {
        self.run_kernel_variant(0, launch, params)
    }

    /// [`GpuContext::run_kernel`] with pipeline `variant` of the kernel.
    pub fn run_kernel_variant<L: Launch>(
        &self,
        variant: usize,
        launch: L,
        params: &<L::Kind as KernelKind>::Params,
    ) -> Result<()> {
        let k = self.kernels.get(<L::Kind as KernelKind>::ID);
        let uniform = self
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: bytemuck::bytes_of(params),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let dispatch = Dispatch {
            kernel: <L::Kind as KernelKind>::ID,
            variant,
            bind_group: k.bind(&self.device, &uniform, &launch),
            params: uniform,
            invocations: <L::Kind as KernelKind>::invocations(params, variant),
            work: <L::Kind as KernelKind>::work(params),
        };
        let mut encoder = self.device.create_command_encoder(&Default::default());
        self.record(&mut encoder, k.spec.name, std::slice::from_ref(&dispatch));
        self.submit(k.spec.name, encoder)
    }

    /// Reads `count` f32 values from the start of `src`.
    pub fn read_f32(&self, src: &wgpu::Buffer, count: usize) -> Result<Vec<f32>> {
        let bytes = self.read_buffer(src, (count * 4) as u64)?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }
}

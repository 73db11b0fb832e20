//! The kernel registry: every WGSL kernel compiled once into a pipeline with an explicit bind
//! group layout built from its declared binding list.

/// How a kernel's binding is used; the order of a kernel's list is its binding numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    /// `var<uniform>`: the parameter struct.
    Uniform,
    /// `var<storage, read>`.
    Storage,
    /// `var<storage, read_write>`.
    StorageReadWrite,
}

/// A kernel's static description: its name (= `shaders/<name>.wgsl` = wgpu label), source and
/// bindings, in binding order, all in group 0.
#[derive(Debug)]
pub struct KernelSpec {
    /// The file stem and wgpu label.
    pub name: &'static str,
    /// The WGSL source with its `#import`s resolved (build.rs), compiled into the binary.
    pub source: &'static str,
    /// The bindings of group 0, in order.
    pub bindings: &'static [BindingKind],
    /// `Some(n)` for kernels with a fixed workgroup size (one workgroup per image reductions,
    /// dispatched with `n` invocations per image); `None` for kernels sized by the
    /// `WORKGROUP_SIZE` override.
    pub fixed_workgroup: Option<u32>,
    /// Specializations besides the default (variant 0): each a list of override constants,
    /// compiled into its own pipeline sharing the kernel's bind group layout.
    pub variants: &'static [&'static [(&'static str, f64)]],
}

macro_rules! kernels {
    ($($id:ident => $name:literal, [$($binding:ident),* $(,)?] $(, fixed $fixed:literal)? $(, variants $variants:expr)?;)*) => {
        /// Identifies a kernel; the discriminant indexes [`ALL_KERNELS`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum KernelId {
            $(
                #[doc = concat!("shaders/", $name, ".wgsl")]
                $id,
            )*
        }

        /// Every kernel the engine builds, in [`KernelId`] order; a test checks this list
        /// against the files in `shaders/`.
        pub const ALL_KERNELS: &[KernelSpec] = &[
            $(KernelSpec {
                name: $name,
                // With its `#import`s resolved by build.rs.
                source: include_str!(concat!(env!("OUT_DIR"), "/shaders/", $name, ".wgsl")),
                bindings: &[$(BindingKind::$binding),*],
                fixed_workgroup: kernels!(@fixed $($fixed)?),
                variants: kernels!(@variants $($variants)?),
            },)*
        ];
    };
    (@fixed) => { None };
    (@fixed $n:literal) => { Some($n) };
    (@variants) => { &[] };
    (@variants $v:expr) => { $v };
}

kernels! {
    Preprocess => "preprocess", [Uniform, Storage, Storage, StorageReadWrite];
    Conv2d => "conv2d", [Uniform, Storage, Storage, Storage, Storage, StorageReadWrite], variants CONV2D_VARIANTS;
    DepthwiseConv => "depthwise_conv", [Uniform, Storage, Storage, Storage, StorageReadWrite],
        variants DEPTHWISE_VARIANTS;
    PointwiseConv => "pointwise_conv", [Uniform, Storage, Storage, Storage, Storage, StorageReadWrite],
        variants POINTWISE_TILE;
    GlobalAvgPool => "global_avg_pool", [Uniform, Storage, StorageReadWrite];
    Linear => "linear", [Uniform, Storage, Storage, Storage, StorageReadWrite];
    SelectTarget => "select_target", [Uniform, Storage, Storage, StorageReadWrite];
    LinearGrad => "linear_grad", [Uniform, Storage, Storage, Storage, StorageReadWrite];
    LogitGrad => "logit_grad", [Uniform, Storage, Storage, StorageReadWrite];
    PointwiseConvGrad => "pointwise_conv_grad", [Uniform, Storage, Storage, Storage, Storage, StorageReadWrite],
        variants POINTWISE_TILE;
    DepthwiseConvGrad => "depthwise_conv_grad", [Uniform, Storage, Storage, Storage, Storage, StorageReadWrite];
    Conv2dGrad => "conv2d_grad", [Uniform, Storage, Storage, Storage, Storage, StorageReadWrite];
    ActivationGrad => "activation_grad", [Uniform, Storage, Storage, StorageReadWrite];
    MaxPool => "max_pool", [Uniform, Storage, StorageReadWrite];
    MaxPoolGrad => "max_pool_grad", [Uniform, Storage, Storage, Storage, StorageReadWrite];
    CamCombine => "cam_combine", [Uniform, Storage, Storage, StorageReadWrite];
    CamMinMax => "cam_minmax", [Uniform, Storage, StorageReadWrite], fixed 64;
    CamResize => "cam_resize", [Uniform, Storage, Storage, StorageReadWrite];
    CamNormalize => "cam_normalize", [Uniform, Storage, StorageReadWrite];
    OverlayMax => "overlay_max", [Uniform, Storage, Storage, Storage, Storage, StorageReadWrite], fixed 64;
    Overlay => "overlay", [Uniform, Storage, Storage, Storage, Storage, Storage, StorageReadWrite];
}

/// Register tiles of shaders/pointwise_conv.wgsl and pointwise_conv_grad.wgsl (rows × vec4
/// columns per invocation) as variants 1..: variant 1 is what the engine uses (16 × 3, the fastest
/// measured on lavapipe); the 8 × 2 tile keeps fewer registers live for GPUs with small register
/// files. The default pipeline (variant 0) uses the WGSL defaults, 16 × 3.
pub const POINTWISE_TILE: &[&[(&str, f64)]] = &[
    &[("ROWS", 16.0), ("COLS", 3.0)],
    &[("ROWS", 8.0), ("COLS", 2.0)],
];

/// Rows and vec4 columns per invocation of pointwise pipeline `variant`.
pub fn pointwise_tile(variant: usize) -> (u32, u32) {
    match variant {
        0 => (16, 3),
        v => POINTWISE_TILE
            .get(v - 1)
            .map_or((16, 3), |c| (c[0].1 as u32, c[1].1 as u32)),
    }
}

/// Specializations of shaders/conv2d.wgsl: variant 1 the EfficientNet stem (3×3/2 over RGB),
/// variant 2 ([`CONV2D_TILED`]) the register-tiled generic path.
pub const CONV2D_VARIANTS: &[&[(&str, f64)]] = &[
    &[("KERNEL", 3.0), ("STRIDE", 2.0), ("IN_C", 3.0)],
    &[("TILED", 1.0)],
];

/// The register-tiled variant of shaders/conv2d.wgsl.
pub const CONV2D_TILED: usize = 2;

/// The conv2d variant the engine runs for `kernel` × `stride` over `in_channels`: the one
/// specialized for it, or the register-tiled generic path.
pub fn conv2d_variant(kernel: u32, stride: u32, in_channels: u32) -> usize {
    CONV2D_VARIANTS
        .iter()
        .position(|v| {
            v.len() == 3
                && v[0].1 == f64::from(kernel)
                && v[1].1 == f64::from(stride)
                && v[2].1 == f64::from(in_channels)
        })
        .map_or(CONV2D_TILED, |i| i + 1)
}

/// Specializations of shaders/depthwise_conv.wgsl by kernel size and stride (variants 1..).
pub const DEPTHWISE_VARIANTS: &[&[(&str, f64)]] = &[
    &[("KERNEL", 3.0), ("STRIDE", 1.0)],
    &[("KERNEL", 3.0), ("STRIDE", 2.0)],
    &[("KERNEL", 5.0), ("STRIDE", 1.0)],
    &[("KERNEL", 5.0), ("STRIDE", 2.0)],
];

/// The depthwise variant specialized for `kernel` × `stride`, or 0 (the generic kernel).
pub fn depthwise_variant(kernel: u32, stride: u32) -> usize {
    DEPTHWISE_VARIANTS
        .iter()
        .position(|v| v[0].1 == f64::from(kernel) && v[1].1 == f64::from(stride))
        .map_or(0, |i| i + 1)
}

/// Invocations per workgroup for kernels sized by the `WORKGROUP_SIZE` override.
pub const WORKGROUP_SIZE: u32 = 64;

/// One compiled kernel.
#[derive(Debug)]
pub struct Kernel {
    /// What it was built from.
    pub spec: &'static KernelSpec,
    /// The compute pipelines: the default, then one per [`KernelSpec::variants`] entry.
    pub pipelines: Vec<wgpu::ComputePipeline>,
    /// The layout of its group 0.
    pub layout: wgpu::BindGroupLayout,
    /// Invocations per workgroup.
    pub workgroup_size: u32,
}

impl Kernel {
    fn new(device: &wgpu::Device, spec: &'static KernelSpec) -> Self {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = spec
            .bindings
            .iter()
            .enumerate()
            .map(|(i, kind)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: match kind {
                        BindingKind::Uniform => wgpu::BufferBindingType::Uniform,
                        BindingKind::Storage => {
                            wgpu::BufferBindingType::Storage { read_only: true }
                        }
                        BindingKind::StorageReadWrite => {
                            wgpu::BufferBindingType::Storage { read_only: false }
                        }
                    },
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(spec.name),
            entries: &entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(spec.name),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(spec.name),
            source: wgpu::ShaderSource::Wgsl(spec.source.into()),
        });
        let workgroup: &[(&str, f64)] = if spec.fixed_workgroup.is_some() {
            &[]
        } else {
            &[("WORKGROUP_SIZE", WORKGROUP_SIZE as f64)]
        };
        let pipelines = std::iter::once(&[][..])
            .chain(spec.variants.iter().copied())
            .map(|constants| {
                let all: Vec<(&str, f64)> = workgroup.iter().chain(constants).copied().collect();
                device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(spec.name),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants: &all,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
            })
            .collect();
        Self {
            spec,
            pipelines,
            layout,
            workgroup_size: spec.fixed_workgroup.unwrap_or(WORKGROUP_SIZE),
        }
    }

    /// A bind group over `buffers`, one per declared binding, in order.
    ///
    /// # Panics
    /// When the number of buffers differs from the kernel's binding list: a programming error in
    /// the engine, never a consequence of user input.
    pub fn bind(&self, device: &wgpu::Device, buffers: &[&wgpu::Buffer]) -> wgpu::BindGroup {
        assert_eq!(
            buffers.len(),
            self.spec.bindings.len(),
            "kernel {} takes {} bindings",
            self.spec.name,
            self.spec.bindings.len()
        );
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(self.spec.name),
            layout: &self.layout,
            entries: &entries,
        })
    }

    /// Workgroup counts (x, y) covering `invocations` when the shader computes its linear index
    /// as `gid.x + gid.y * num_workgroups.x * WORKGROUP_SIZE`.
    pub fn grid(&self, invocations: u32, max_per_dimension: u32) -> (u32, u32) {
        let groups = invocations.div_ceil(self.workgroup_size).max(1);
        if groups <= max_per_dimension {
            (groups, 1)
        } else {
            let y = groups.div_ceil(max_per_dimension);
            (groups.div_ceil(y), y)
        }
    }
}

/// All pipelines of a device, each compiled when first needed (a forward-only workspace never
/// compiles the backward, CAM and overlay kernels) and kept for the device's lifetime.
#[derive(Debug)]
pub struct Kernels {
    device: wgpu::Device,
    kernels: Vec<std::sync::OnceLock<Kernel>>,
    /// Where compile errors go: the context's list of errors reported outside a submission,
    /// which its next check returns (before the "pipeline is invalid" they cause).
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Kernels {
    /// The kernels of `device`; none is compiled yet. Compile errors are appended to `errors`.
    pub fn new(
        device: &wgpu::Device,
        errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    ) -> Self {
        Self {
            device: device.clone(),
            kernels: ALL_KERNELS
                .iter()
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            errors,
        }
    }

    /// The kernel `id` names, compiled on first use inside its own error scope: a driver that
    /// rejects the shader has its message recorded, naming the kernel, and the next submission
    /// returns it as an error value.
    pub fn get(&self, id: KernelId) -> &Kernel {
        self.kernels[id as usize].get_or_init(|| {
            let spec = &ALL_KERNELS[id as usize];
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
            let kernel = Kernel::new(&self.device, spec);
            if let Some(e) = pollster::block_on(scope.pop()) {
                if let Ok(mut errors) = self.errors.lock() {
                    errors.push(format!("compiling kernel {}: {e}", spec.name));
                }
            }
            kernel
        })
    }

    /// How many kernels have been compiled so far.
    pub fn compiled(&self) -> usize {
        self.kernels.iter().filter(|k| k.get().is_some()).count()
    }
}

/// A recorded kernel launch: which kernel, over which buffers, how many invocations.
#[derive(Debug)]
pub struct Dispatch {
    /// The kernel.
    pub kernel: KernelId,
    /// Which of its pipelines (0: default; see [`KernelSpec::variants`]).
    pub variant: usize,
    /// Its bind group (fixed for the workspace's lifetime).
    pub bind_group: wgpu::BindGroup,
    /// Its uniform parameter buffer, rewritten when the batch size changes.
    pub params: wgpu::Buffer,
    /// Invocations for the current batch size.
    pub invocations: u32,
}

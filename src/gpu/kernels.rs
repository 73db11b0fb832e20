//! The kernel registry: every WGSL kernel declared once in [`kernels!`] (file, parameter struct,
//! bindings by name, invocation count) and compiled on first use into pipelines with an explicit
//! bind group layout.
//!
//! Adding a kernel: write `shaders/<name>.wgsl` (shared helpers by `#import`), declare its
//! parameter struct with `gpu_struct!` in `params.rs`, and add one entry to [`kernels!`]. The
//! engine launches it through its typed bindings struct, `launch::<Kernel> { .. }`, with
//! [`crate::pipeline::steps::Steps::push`] or [`crate::GpuContext::run_kernel`]: a missing or
//! misnamed binding, or the wrong parameter struct, does not compile, and `tests/shaders.rs`
//! checks the declaration against the WGSL (binding names, numbers and kinds; parameter field
//! offsets and size).

use std::future::Future;

use super::params::*;

/// How a kernel's binding is used; the order of a kernel's list is its binding numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    /// `var<uniform>`: the parameter struct.
    Uniform,
    /// `var<storage, read>`.
    Storage,
    /// `var<storage, read_write>`.
    StorageReadWrite,
    /// `texture_2d<f32>` read with `textureLoad` (unfilterable floats): a buffer's vec4s copied
    /// into a texture ([`TEXEL_ROW`] texels to a row), where lavapipe reads faster than from
    /// storage buffers (src/pipeline/texel.rs).
    Texture,
}

/// The Rust type of each [`BindingKind`] in a kernel's bindings struct ([`launch`]).
pub mod binding {
    /// `var<storage, read>`.
    pub type Storage<'a> = &'a wgpu::Buffer;
    /// `var<storage, read_write>`.
    pub type StorageReadWrite<'a> = &'a wgpu::Buffer;
    /// `texture_2d<f32>`.
    pub type Texture<'a> = &'a wgpu::TextureView;
}

/// A binding's resource: a whole buffer or a texture view.
pub trait Resource {
    /// The resource as bound.
    fn resource(&self) -> wgpu::BindingResource<'_>;
}

impl Resource for &wgpu::Buffer {
    fn resource(&self) -> wgpu::BindingResource<'_> {
        self.as_entire_binding()
    }
}

impl Resource for &wgpu::TextureView {
    fn resource(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::TextureView(self)
    }
}

/// Texels per row of the textures kernels read buffers through ([`BindingKind::Texture`]):
/// vec4 `i` of the buffer is texel `(i % TEXEL_ROW, i / TEXEL_ROW)` (shaders/lib/texel.wgsl
/// `TEXEL_ROW_SHIFT`).
pub const TEXEL_ROW: u32 = 1 << 12;

/// A kernel's static description: its name (= `shaders/<name>.wgsl` = wgpu label), source,
/// bindings and parameter struct, as declared once in [`kernels!`].
#[derive(Debug)]
pub struct KernelSpec {
    /// The file stem and wgpu label.
    pub name: &'static str,
    /// The WGSL source with its `#import`s resolved (build.rs), compiled into the binary.
    pub source: &'static str,
    /// The bindings of group 0, in binding order: the uniform `params` first.
    pub bindings: &'static [(&'static str, BindingKind)],
    /// The Rust mirror of the WGSL `Params` struct: its fields' names and offsets, and its size.
    pub params_fields: &'static [(&'static str, usize)],
    /// `size_of` the parameter struct.
    pub params_size: usize,
    /// `Some(n)` for kernels with a fixed workgroup size (one workgroup per image reductions,
    /// dispatched with `n` invocations per image); `None` for kernels sized by the
    /// `WORKGROUP_SIZE` override.
    pub fixed_workgroup: Option<u32>,
    /// Specializations besides the default (variant 0, named [`DEFAULT_VARIANT`]): each
    /// compiled into its own pipeline sharing the kernel's bind group layout.
    pub variants: &'static [Variant],
}

/// One pipeline variant of a kernel: its name (in `GRADCAM_FORCE`, the tune cache and reports)
/// and the override constants (and markers) it is compiled with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Variant {
    /// Unique among the kernel's variants: `tile_24x6`, `subgroup_tile`, `k3_s2`, ...
    pub name: &'static str,
    /// The override constants, and the [`SUBGROUPS`] or [`WORKGROUP_TILED`] marker.
    pub constants: &'static [(&'static str, f64)],
}

impl Variant {
    /// The variant `name` compiled with `constants`.
    pub const fn new(name: &'static str, constants: &'static [(&'static str, f64)]) -> Self {
        Self { name, constants }
    }
}

/// The name of every kernel's variant 0: the WGSL's own defaults.
pub const DEFAULT_VARIANT: &str = "default";

/// Output columns per invocation of shaders/conv_general.wgsl, input columns of
/// conv_general_grad.wgsl (their `TILE`).
pub const CONV_GENERAL_TILE: u32 = 4;

/// A kernel at the type level: its id, parameter struct and invocation count. Implemented by
/// the marker types in [`kind`], one per kernel.
pub trait KernelKind: 'static {
    /// The kernel.
    const ID: KernelId;
    /// Its uniform parameter struct (binding 0, `params`).
    type Params: GpuStruct;
    /// Invocations a launch of pipeline `variant` with `params` needs.
    fn invocations(params: &Self::Params, variant: usize) -> u32;
    /// The arithmetic and the least memory traffic a launch with `params` needs (for the GPU
    /// report's achieved GFLOP/s and GB/s); zero where the kernel declares none.
    #[allow(unused_variables)]
    fn work(params: &Self::Params) -> Work {
        Work::default()
    }
}

/// What one launch must do at the least: floating-point operations (a fused multiply-add counts
/// two) and bytes read and written once each (inputs, weights, outputs; caches not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Work {
    /// Floating-point operations.
    pub flops: u64,
    /// Bytes moved to and from memory.
    pub bytes: u64,
}

impl Work {
    /// `flops` operations over `floats` f32 values moved.
    fn new(flops: u64, floats: u64) -> Self {
        Self {
            flops,
            bytes: 4 * floats,
        }
    }
}

/// A typed launch: the buffers (and textures) of one kernel's bindings after its parameters, by
/// the names the WGSL gives them. Implemented by the structs in [`launch`], one per kernel.
pub trait Launch {
    /// The kernel it launches.
    type Kind: KernelKind;
    /// The resources in binding order (binding 1 onwards).
    fn resources(&self) -> Vec<wgpu::BindingResource<'_>>;
}

/// Declares every kernel once: its id, WGSL file, parameter struct, optional fixed workgroup
/// and pipeline variants, its bindings after `params` by their WGSL names and kinds, and its
/// invocation count as a function of its parameters and variant. From that it generates
/// [`KernelId`], [`ALL_KERNELS`], a marker type in [`kind`] and a bindings struct in [`launch`]
/// per kernel; `tests/shaders.rs` checks every name, kind, number, field offset and size against
/// the WGSL as naga reads it.
macro_rules! kernels {
    ($(
        $id:ident => $name:literal ($params:ty) $(fixed $fixed:literal)? $(variants $variants:ident)? {
            $($binding:ident: $kind:ident),* $(,)?
        } invocations($p:ident, $v:tt) = $invocations:expr $(, work($wp:ident) = $work:expr)?;
    )*) => {
        /// Identifies a kernel; the discriminant indexes [`ALL_KERNELS`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum KernelId {
            $(
                #[doc = concat!("shaders/", $name, ".wgsl")]
                $id,
            )*
        }

        /// Every kernel's id, in [`KernelId`] order.
        pub const ALL_KERNEL_IDS: &[KernelId] = &[$(KernelId::$id),*];

        /// Every kernel the engine builds, in [`KernelId`] order; a test checks this list
        /// against the files in `shaders/`.
        pub const ALL_KERNELS: &[KernelSpec] = &[
            $(KernelSpec {
                name: $name,
                // With its `#import`s resolved by build.rs.
                source: include_str!(concat!(env!("OUT_DIR"), "/shaders/", $name, ".wgsl")),
                bindings: &[
                    ("params", BindingKind::Uniform),
                    $((stringify!($binding), BindingKind::$kind)),*
                ],
                params_fields: <$params as GpuStruct>::FIELDS,
                params_size: std::mem::size_of::<$params>(),
                fixed_workgroup: kernels!(@fixed $($fixed)?),
                variants: kernels!(@variants $($variants)?),
            },)*
        ];

        /// One marker type per kernel, naming it at the type level.
        pub mod kind {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[doc = concat!("shaders/", $name, ".wgsl")]
                #[derive(Debug)]
                pub enum $id {}

                impl KernelKind for $id {
                    const ID: KernelId = KernelId::$id;
                    type Params = $params;
                    #[allow(unused_variables)]
                    fn invocations($p: &$params, $v: usize) -> u32 {
                        $invocations
                    }
                    $(
                        fn work($wp: &$params) -> Work {
                            $work
                        }
                    )?
                }
            )*
        }

        /// One struct per kernel holding the buffers (and textures) of its bindings after
        /// `params`, named as in the WGSL.
        pub mod launch {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[doc = concat!("The bindings of shaders/", $name, ".wgsl after its parameters.")]
                #[derive(Clone, Copy, Debug)]
                pub struct $id<'a> {
                    $(
                        #[doc = concat!("`", stringify!($binding), "` (", stringify!($kind), ")")]
                        pub $binding: binding::$kind<'a>,
                    )*
                }

                impl Launch for $id<'_> {
                    type Kind = kind::$id;
                    fn resources(&self) -> Vec<wgpu::BindingResource<'_>> {
                        vec![$(self.$binding.resource()),*]
                    }
                }
            )*
        }
    };
    (@fixed) => { None };
    (@fixed $n:literal) => { Some($n) };
    (@variants) => { &[] };
    (@variants $v:ident) => { $v };
}

kernels! {
    Preprocess => "preprocess" (PreprocessParams) {
        pixels: Storage, metas: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.out_h * p.out_w;
    Conv2d => "conv2d" (ConvParams) variants CONV2D_VARIANTS {
        input: Storage, input4: Storage, weight: Storage, bias: Storage, residual: Storage, output: StorageReadWrite,
    } invocations(p, v) = conv2d_invocations(v, p.batch, p.out_h, p.out_w, p.out_c),
    work(p) = conv_work(p.batch, p.in_h * p.in_w, p.in_c, p.out_h * p.out_w, p.out_c, p.kernel,
                        p.has_residual);
    Conv2dTexture => "conv2d_texture" (ConvParams) variants CONV2D_TEXTURE_VARIANTS {
        input: Texture, weight: Texture, bias: Storage, residual: Storage, output: StorageReadWrite,
    } invocations(p, v) = conv2d_texture_invocations(v, p.batch, p.out_h, p.out_w, p.out_c),
    work(p) = conv_work(p.batch, p.in_h * p.in_w, p.in_c, p.out_h * p.out_w, p.out_c, p.kernel,
                        p.has_residual);
    DepthwiseConv => "depthwise_conv" (DepthwiseParams) variants DEPTHWISE_VARIANTS {
        input: Storage, weight: Storage, bias: Storage, output: StorageReadWrite,
    } invocations(p, v) = depthwise_invocations(v, p.batch, p.out_h, p.out_w, p.channels),
    work(p) = depthwise_work(p.batch, p.in_h * p.in_w, p.out_h * p.out_w, p.channels, p.kernel, 0);
    DepthwiseConvTexture => "depthwise_conv_texture" (DepthwiseParams) variants DEPTHWISE_VARIANTS {
        input: Texture, weight: Texture, bias: Storage, output: StorageReadWrite,
    } invocations(p, v) = depthwise_invocations(v, p.batch, p.out_h, p.out_w, p.channels),
    work(p) = depthwise_work(p.batch, p.in_h * p.in_w, p.out_h * p.out_w, p.channels, p.kernel, 0);
    PointwiseConv => "pointwise_conv" (PointwiseParams) variants POINTWISE_VARIANTS {
        input: Storage, weight: Storage, bias: Storage, residual: Storage, output: StorageReadWrite,
    } invocations(p, v) = pointwise_invocations(v, p.rows, p.out_channels),
    work(p) = conv_work(1, p.rows, p.in_channels, p.rows, p.out_channels, 1, p.has_residual);
    PointwiseConvTexture => "pointwise_conv_texture" (PointwiseParams) variants POINTWISE_VARIANTS {
        input: Texture, weight: Texture, bias: Storage, residual: Storage, output: StorageReadWrite,
    } invocations(p, v) = pointwise_invocations(v, p.rows, p.out_channels),
    work(p) = conv_work(1, p.rows, p.in_channels, p.rows, p.out_channels, 1, p.has_residual);
    GlobalAvgPool => "global_avg_pool" (PoolParams) {
        input: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels / 4,
    work(p) = Work::new(u64::from(p.batch * p.pixels * p.channels),
                        u64::from(p.batch) * u64::from(p.pixels + 1) * u64::from(p.channels));
    GlobalAvgPoolTexture => "global_avg_pool_texture" (PoolParams) {
        input: Texture, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels / 4,
    work(p) = Work::new(u64::from(p.batch * p.pixels * p.channels),
                        u64::from(p.batch) * u64::from(p.pixels + 1) * u64::from(p.channels));
    GlobalAvgPoolGrad => "global_avg_pool_grad" (PoolGradParams) {
        grad_out: Storage, extra: Storage, grad_in: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels * p.channels / 4;
    ConvGeneral => "conv_general" (ConvGeneralParams) {
        input: Storage, weight: Storage, bias: Storage, residual: Storage,
        output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.out_h * p.out_w.div_ceil(CONV_GENERAL_TILE) * p.out_c / 4,
    work(p) = Work::new(
        2 * u64::from(p.batch * p.out_h * p.out_w * p.out_c)
            * u64::from(p.kernel_h * p.kernel_w * p.in_c / p.groups),
        u64::from(p.batch) * u64::from(p.in_h * p.in_w * p.in_c + p.out_h * p.out_w * p.out_c)
            + u64::from(p.kernel_h * p.kernel_w * p.out_c * p.in_c / p.groups));
    ConvGeneralGrad => "conv_general_grad" (ConvGeneralParams) {
        grad_out: Storage, forward_out: Storage, weight: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, _) = p.batch * p.in_h * p.in_w.div_ceil(CONV_GENERAL_TILE) * p.in_c / 4,
    work(p) = Work::new(
        2 * u64::from(p.batch * p.out_h * p.out_w * p.out_c)
            * u64::from(p.kernel_h * p.kernel_w * p.in_c / p.groups),
        u64::from(p.batch) * u64::from(2 * p.out_h * p.out_w * p.out_c + p.in_h * p.in_w * p.in_c)
            + u64::from(p.kernel_h * p.kernel_w * p.out_c * p.in_c / p.groups));
    LayerNorm => "layer_norm" (LayerNormParams) {
        input: Storage, gamma: Storage, beta: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.pixels,
    work(p) = Work::new(6 * u64::from(p.pixels * p.channels),
                        2 * u64::from(p.pixels * p.channels));
    LayerNormGrad => "layer_norm_grad" (LayerNormParams) {
        grad_out: Storage, input: Storage, gamma: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, _) = p.pixels,
    work(p) = Work::new(12 * u64::from(p.pixels * p.channels),
                        (3 + u64::from(p.add_extra)) * u64::from(p.pixels * p.channels));
    TokenEmbed => "token_embed" (TokenEmbedParams) {
        input: Storage, table: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.tokens * p.channels4;
    TokenRows => "token_rows" (TokenRowsParams) {
        input: Storage, extra: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.out_tokens * p.channels4;
    Attention => "attention" (AttentionParams) variants ATTENTION_VARIANTS {
        qkv: Storage, output: StorageReadWrite, stats: StorageReadWrite,
    } invocations(p, _) = attention_invocations(p),
    work(p) = attention_work(p, 2);
    AttentionGradQuery => "attention_grad_query" (AttentionParams) {
        grad_out: Storage, qkv: Storage, output: Storage, stats: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, _) = attention_invocations(p),
    work(p) = attention_work(p, 3);
    AttentionGradKeyValue => "attention_grad_key_value" (AttentionParams) {
        grad_out: Storage, qkv: Storage, output: Storage, stats: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, _) = attention_invocations(p),
    work(p) = attention_work(p, 5);
    Linear => "linear" (LinearParams) variants LINEAR_VARIANTS {
        input: Storage, weight: Storage, bias: Storage, output: StorageReadWrite,
    } invocations(p, v) = linear_invocations(v, p.batch, p.out_features),
    work(p) = conv_work(p.batch, 1, p.in_features, 1, p.out_features, 1, 0);
    SelectTarget => "select_target" (SelectTargetParams) {
        logits: Storage, requested: Storage, targets: StorageReadWrite,
    } invocations(p, _) = p.batch * p.classes;
    LinearGrad => "linear_grad" (LinearGradParams) variants LINEAR_GRAD_VARIANTS {
        grad_out: Storage, forward_out: Storage, weight: Storage, grad_in: StorageReadWrite,
    } invocations(p, v) = if v == LINEAR_GRAD_SUBGROUP {
        p.in_features.div_ceil(4 * SUBGROUP_LANES) * p.batch.div_ceil(SUBGROUP_LANES)
            * SUBGROUP_LANES
    } else {
        p.batch * p.in_features
    };
    LogitGrad => "logit_grad" (LogitGradParams) {
        targets: Storage, fc_weight: Storage, grad: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels * p.channels / 4;
    PointwiseConvGrad => "pointwise_conv_grad" (PointwiseGradParams)
            variants POINTWISE_GRAD_VARIANTS {
        grad_out: Storage, forward_out: Storage, weight: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, v) = pointwise_grad_invocations(v, p.rows, p.in_channels),
    work(p) = conv_work(1, p.rows, p.out_channels, p.rows, p.in_channels, 1, 1 + p.add_extra);
    DepthwiseConvGrad => "depthwise_conv_grad" (DepthwiseGradParams)
            variants DEPTHWISE_GRAD_VARIANTS {
        grad_out: Storage, forward_out: Storage, weight: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, v) = depthwise_grad_invocations(v, p),
    work(p) = depthwise_work(p.batch, p.out_h * p.out_w, p.in_h * p.in_w, p.channels, p.kernel,
                             1 + p.add_extra);
    Conv2dGrad => "conv2d_grad" (ConvGradParams) variants CONV2D_GRAD_VARIANTS {
        grad_out: Storage, forward_out: Storage, weight: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, v) = conv2d_grad_invocations(v, p),
    work(p) = conv_work(p.batch, p.out_h * p.out_w, p.out_c, p.in_h * p.in_w, p.in_c, p.kernel,
                        1 + p.add_extra);
    ActivationGrad => "activation_grad" (ActivationGradParams) {
        forward: Storage, from_grad: Storage, to_grad: StorageReadWrite,
    } invocations(p, _) = p.len4;
    Concat => "concat" (ConcatParams) {
        part: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.pixels * p.part_c4,
    work(p) = Work::new(0, 2 * 4 * u64::from(p.pixels * p.part_c4));
    ConcatGrad => "concat_grad" (ConcatParams) {
        grad_out: Storage, extra: Storage, grad_in: StorageReadWrite,
    } invocations(p, _) = p.pixels * p.part_c4,
    work(p) = Work::new(0, (2 + u64::from(p.add_extra)) * 4 * u64::from(p.pixels * p.part_c4));
    AvgPool => "avg_pool" (AvgPoolParams) {
        input: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.out_h * p.out_w * p.channels / 4;
    AvgPoolGrad => "avg_pool_grad" (AvgPoolParams) {
        grad_out: Storage, extra: Storage, grad_in: StorageReadWrite,
    } invocations(p, _) = p.batch * p.in_h * p.in_w * p.channels / 4;
    Elementwise => "elementwise" (ElementwiseParams) {
        input: Storage, scale: Storage, bias: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.len4,
    work(p) = Work::new(2 * 4 * u64::from(p.len4), 2 * 4 * u64::from(p.len4));
    ElementwiseTexture => "elementwise_texture" (ElementwiseParams) {
        input: Texture, scale: Texture, bias: Texture, output: StorageReadWrite,
    } invocations(p, _) = p.len4,
    work(p) = Work::new(2 * 4 * u64::from(p.len4), 2 * 4 * u64::from(p.len4));
    ElementwiseGrad => "elementwise_grad" (ElementwiseGradParams) {
        grad_out: Storage, forward: Storage, scale: Storage, bias: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, _) = p.len4,
    work(p) = Work::new(3 * 4 * u64::from(p.len4), (3 + u64::from(p.add_extra)) * 4 * u64::from(p.len4));
    SeSqueeze => "se_squeeze" (SqueezeExciteParams) {
        pooled: Storage, weight: Storage, bias: Storage, squeezed: StorageReadWrite,
    } invocations(p, _) = p.batch * p.squeeze;
    SeExcite => "se_excite" (SqueezeExciteParams) {
        squeezed: Storage, weight: Storage, bias: Storage, excited: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels;
    SeScale => "se_scale" (SqueezeExciteParams) {
        input: Storage, excited: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels * p.channels / 4,
    work(p) = Work::new(u64::from(p.batch * p.pixels * p.channels),
                        2 * u64::from(p.batch * p.pixels * p.channels));
    SeScaleTexture => "se_scale_texture" (SqueezeExciteParams) {
        input: Texture, excited: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels * p.channels / 4,
    work(p) = Work::new(u64::from(p.batch * p.pixels * p.channels),
                        2 * u64::from(p.batch * p.pixels * p.channels));
    SeGateGrad => "se_gate_grad" (SqueezeExciteParams) {
        grad_out: Storage, input: Storage, excited: Storage, grad_excited: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels / 4,
    work(p) = Work::new(2 * u64::from(p.batch * p.pixels * p.channels),
                        2 * u64::from(p.batch * p.pixels * p.channels));
    SeExciteGrad => "se_excite_grad" (SqueezeExciteParams) {
        grad_excited: Storage, squeezed: Storage, weight: Storage,
        grad_squeezed: StorageReadWrite,
    } invocations(p, _) = p.batch * p.squeeze;
    SeSqueezeGrad => "se_squeeze_grad" (SqueezeExciteParams) {
        grad_squeezed: Storage, weight: Storage, grad_pooled: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels;
    SeScaleGrad => "se_scale_grad" (SqueezeExciteParams) {
        grad_out: Storage, excited: Storage, grad_pooled: Storage, extra: Storage,
        grad_in: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels * p.channels / 4,
    work(p) = Work::new(2 * u64::from(p.batch * p.pixels * p.channels),
                        (2 + u64::from(p.add_extra)) * u64::from(p.batch * p.pixels * p.channels));
    MaxPool => "max_pool" (MaxPoolParams) {
        input: Storage, output: StorageReadWrite,
    } invocations(p, _) = p.batch * p.out_h * p.out_w * p.channels / 4;
    MaxPoolGrad => "max_pool_grad" (MaxPoolGradParams) {
        grad_out: Storage, input: Storage, extra: Storage, grad_in: StorageReadWrite,
    } invocations(p, _) = p.batch * p.in_h * p.in_w * p.channels / 4;
    CamCombine => "cam_combine" (CamCombineParams) {
        activations: Storage, weights: Storage, grid: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels;
    CamChannelWeights => "cam_channel_weights" (CamChannelWeightsParams) {
        activations: Storage, gradient: Storage, weights: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels;
    CamElementwise => "cam_elementwise" (CamElementwiseParams) {
        activations: Storage, gradient: Storage, grid: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels;
    CamCenter => "cam_center" (CamCenterParams) {
        activations: Storage, gradient: Storage, centred: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels;
    CamGram => "cam_gram" (CamGramParams) {
        centred: Storage, gram: StorageReadWrite,
    } invocations(p, _) = p.batch * gram_side(p.mode, p.pixels, p.channels).pow(2);
    CamEigen => "cam_eigen" (CamEigenParams) fixed 64 {
        gram: Storage, centred: Storage, activations: Storage, gradient: Storage,
        grid: StorageReadWrite,
    } invocations(p, _) = p.batch * 64;
    CamSaliency => "cam_saliency" (CamSaliencyParams) {
        gradient: Storage, grid: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels;
    FullGradStats => "full_grad_stats" (FullGradParams) {
        gradient: Storage, forward: Storage, factors: Storage, stats: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels;
    FullGradSum => "full_grad_sum" (FullGradParams) {
        gradient: Storage, forward: Storage, factors: Storage, stats: Storage,
        map: StorageReadWrite,
    } invocations(p, _) = p.batch * p.pixels;
    ScoreMinMax => "score_minmax" (ScoreMinMaxParams) fixed 64 {
        activations: Storage, stats: StorageReadWrite,
    } invocations(p, _) = p.items * 64;
    ScoreMask => "score_mask" (ScoreMaskParams) {
        cursor: Storage, activations: Storage, stats: Storage, input: Storage,
        masked: StorageReadWrite,
    } invocations(p, _) = p.rows * p.size * p.size;
    Ablate => "ablate" (AblateParams) {
        cursor: Storage, activations: Storage, stats: Storage, ablated: StorageReadWrite,
    } invocations(p, _) = p.rows * p.pixels * p.channels;
    ProbeBroadcast => "probe_broadcast" (ProbeBroadcastParams) {
        cursor: Storage, source: Storage, copies: StorageReadWrite,
    } invocations(p, _) = p.rows * p.len;
    ProbeGather => "probe_gather" (ProbeGatherParams) fixed 64 {
        logits: Storage, targets: Storage, cursor: StorageReadWrite, scores: StorageReadWrite,
    } invocations(p, _) = 64;
    ProbeWeights => "probe_weights" (ProbeWeightsParams) fixed 64 {
        scores: Storage, logits: Storage, targets: Storage, weights: StorageReadWrite,
    } invocations(p, _) = p.batch * 64;
    GuidedStats => "guided_stats" (GuidedStatsParams) fixed 64 {
        gradient: Storage, cam: Storage, stats: StorageReadWrite,
    } invocations(p, _) = p.batch * 2 * 64;
    GuidedImage => "guided_image" (GuidedStatsParams) {
        gradient: Storage, cam: Storage, stats: Storage, images: StorageReadWrite,
    } invocations(p, _) = p.batch * 2 * p.pixels;
    Augment => "augment" (AugmentParams) {
        pristine: Storage, input: StorageReadWrite,
    } invocations(p, _) = p.batch * p.size * p.size * 3;
    AugMean => "aug_mean" (AugMeanParams) {
        cam: StorageReadWrite, slots: StorageReadWrite,
    } invocations(p, _) = p.batch * p.size * p.size;
    MetricPerturb => "metric_perturb" (MetricPerturbParams) {
        pristine: Storage, cam: Storage, ranks: Storage, input: StorageReadWrite,
    } invocations(p, _) = p.batch * p.size * p.size * 3;
    RankInit => "rank_init" (RankParams) {
        cam: Storage, pairs: StorageReadWrite,
    } invocations(p, _) = p.batch * p.padded;
    RankSort => "rank_sort" (RankParams) {
        pairs: StorageReadWrite,
    } invocations(p, _) = p.batch * p.padded / 2;
    RankScatter => "rank_scatter" (RankParams) {
        pairs: Storage, ranks: StorageReadWrite,
    } invocations(p, _) = p.batch * p.positions;
    TargetScore => "target_score" (TargetScoreParams) fixed 64 {
        logits: Storage, targets: Storage, scores: StorageReadWrite,
    } invocations(p, _) = p.batch * 64;
    SmoothNoise => "smooth_noise" (SmoothNoiseParams) {
        pristine: Storage, input: StorageReadWrite,
    } invocations(p, _) = p.batch * p.size * p.size * 3;
    GradientMoments => "gradient_moments" (GradientMomentsParams) {
        gradient: Storage, squares: StorageReadWrite, cubes: StorageReadWrite,
    } invocations(p, _) = p.len;
    SmoothGradCamPlusPlusWeights => "smooth_gradcampp_weights" (SmoothGradCamPlusPlusParams) {
        clean: Storage, squares: Storage, cubes: Storage, gradient: Storage,
        weights: StorageReadWrite,
    } invocations(p, _) = p.batch * p.channels;
    CamMinMax => "cam_minmax" (CamMinMaxParams) fixed 64 {
        map: Storage, stats: StorageReadWrite,
    } invocations(p, _) = p.batch * p.chunks.max(1) * 64;
    CamResize => "cam_resize" (CamResizeParams) {
        src: Storage, stats: Storage, dst: StorageReadWrite,
    } invocations(p, _) = p.batch * p.out_h * p.out_w;
    CamNormalize => "cam_normalize" (CamNormalizeParams) {
        stats: Storage, map: StorageReadWrite,
    } invocations(p, _) = p.batch * p.len;
    OverlayMax => "overlay_max" (OverlayParams) fixed 64 {
        cam: Storage, lut: Storage, pixels: Storage, metas: Storage, maxima: StorageReadWrite,
    } invocations(p, _) = p.batch * p.chunks * 64;
    Overlay => "overlay" (OverlayParams) {
        cam: Storage, lut: Storage, pixels: Storage, metas: Storage, stats: Storage,
        overlay: StorageReadWrite,
    } invocations(p, _) = p.total_pixels.div_ceil(OVERLAY_PIXELS);
}

/// Register tiles of shaders/pointwise_conv.wgsl and pointwise_conv_grad.wgsl (rows × vec4
/// columns per invocation) as variants 1..: variant 1 is what the builder chooses (24 × 6, the
/// fastest measured on lavapipe, where every storage load is eight scalar loads, so the fewer
/// loads per multiply-add the better: 20 % less time in Lite0's pointwise convs than 16 × 3,
/// which 24 × 4, 24 × 5, 16 × 6 and 32 × 6 did not beat); the 8 × 2 and 4 × 1 tiles keep fewer
/// registers live and launch many more invocations, for GPUs and for small layers (batch 1,
/// late blocks), where the tuner ([`tuning_candidates`]) picks per layer. The default pipeline
/// (variant 0) uses the WGSL defaults, 24 × 6.
pub const POINTWISE_TILE: &[&[(&str, f64)]] = &[
    &[("ROWS", 24.0), ("COLS", 6.0)],
    &[("ROWS", 8.0), ("COLS", 2.0)],
    &[("ROWS", 4.0), ("COLS", 1.0)],
];

/// Pipeline variants of shaders/pointwise_conv.wgsl: 1 to 3 the register tiles of
/// [`POINTWISE_TILE`], in its order; 4 to 6 the split-K layouts (a workgroup of 64 computes 4
/// rows × 16, 8 or 4 vec4 columns, its invocations splitting the input channels 4, 8 or 16 ways),
/// for layers with too few rows to fill a GPU with register tiles (batch 1, late blocks: the
/// 1152 → 192 projection at 7×7 is 624 invocations of 288 steps each as a 4 × 1 tile);
/// 7 [`POINTWISE_SUBGROUP`]; 8 [`POINTWISE_WORKGROUP_TILED`].
pub const POINTWISE_VARIANTS: &[Variant] = &[
    Variant::new("tile_24x6", &[("ROWS", 24.0), ("COLS", 6.0)]),
    Variant::new("tile_8x2", &[("ROWS", 8.0), ("COLS", 2.0)]),
    Variant::new("tile_4x1", &[("ROWS", 4.0), ("COLS", 1.0)]),
    Variant::new("split_16", &[("SPLIT_COLS", 16.0)]),
    Variant::new("split_8", &[("SPLIT_COLS", 8.0)]),
    Variant::new("split_4", &[("SPLIT_COLS", 4.0)]),
    Variant::new("subgroup_tile", &[(SUBGROUPS, 1.0)]),
    Variant::new("workgroup_tiled", &[(WORKGROUP_TILED, 1.0)]),
];

/// Variant 8 of shaders/pointwise_conv.wgsl, for GPUs: the workgroup tile. A workgroup of 64
/// computes [`GEMM_TILE`] (64 rows × 16 vec4s of output channels), staging each step's 16 input
/// channels of its rows and the matching weight rows in workgroup memory (read from memory
/// coalesced), each invocation 8 rows × 2 vec4s from there: every weight vec4 loaded from memory
/// serves 64 rows, every input vec4 64 output channels. A tuner candidate everywhere; on lavapipe,
/// where workgroup memory is ordinary memory read lane by lane, it is several times slower than
/// the register tiles.
pub const POINTWISE_WORKGROUP_TILED: usize = 8;

/// Pipeline variants of shaders/pointwise_conv_grad.wgsl: 1 to 3 the register tiles of
/// [`POINTWISE_TILE`], in its order; 4 [`POINTWISE_GRAD_SUBGROUP`].
pub const POINTWISE_GRAD_VARIANTS: &[Variant] = &[
    Variant::new("tile_24x6", &[("ROWS", 24.0), ("COLS", 6.0)]),
    Variant::new("tile_8x2", &[("ROWS", 8.0), ("COLS", 2.0)]),
    Variant::new("tile_4x1", &[("ROWS", 4.0), ("COLS", 1.0)]),
    Variant::new("subgroup_tile", &[(SUBGROUPS, 1.0)]),
];

/// Variant 4 of shaders/pointwise_conv_grad.wgsl, the builder's choice where the device has
/// 8-lane subgroups (lavapipe): the subgroup tile of [`POINTWISE_SUBGROUP`], over the masked
/// output gradient and the transposed weight.
pub const POINTWISE_GRAD_SUBGROUP: usize = 4;

/// Marks a variant run from the kernel's entry point `main_workgroup_tiled` (its workgroup-tiled
/// layout, whose workgroup memory the other variants' pipelines then do not hold); not a constant
/// of the shader.
pub const WORKGROUP_TILED: &str = "WORKGROUP_TILED";

/// Marks a variant built from the kernel's subgroup copy (`<kernel>.subgroups.wgsl`, entry point
/// `main_subgroups`), made only on devices whose subgroups the engine uses
/// ([`Kernels::subgroups`]); not a constant of the shader.
pub const SUBGROUPS: &str = "SUBGROUPS";

/// Lanes per subgroup of the [`SUBGROUPS`] variants: they are built only on devices whose
/// subgroups have exactly this many (`subgroup_index` in shaders/lib/index.wgsl).
pub const SUBGROUP_LANES: u32 = 8;

/// A hash of every kernel's source (subgroup copies included) and variant constants: tuned
/// choices are cached under it, so a build whose kernels or variants differ times them again.
pub fn fingerprint() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for spec in ALL_KERNELS {
        spec.name.hash(&mut h);
        spec.source.hash(&mut h);
        subgroup_source(spec.name).hash(&mut h);
        format!("{:?}", spec.variants).hash(&mut h);
    }
    h.finish()
}

/// The subgroup copies build.rs writes of the kernels with a `#subgroups` block (`None` for the
/// others; tests/shaders.rs checks that every such kernel is listed).
pub fn subgroup_source(kernel: &str) -> Option<&'static str> {
    match kernel {
        "pointwise_conv" => Some(include_str!(concat!(
            env!("OUT_DIR"),
            "/shaders/pointwise_conv.subgroups.wgsl"
        ))),
        "pointwise_conv_texture" => Some(include_str!(concat!(
            env!("OUT_DIR"),
            "/shaders/pointwise_conv_texture.subgroups.wgsl"
        ))),
        "conv2d" => Some(include_str!(concat!(
            env!("OUT_DIR"),
            "/shaders/conv2d.subgroups.wgsl"
        ))),
        "conv2d_texture" => Some(include_str!(concat!(
            env!("OUT_DIR"),
            "/shaders/conv2d_texture.subgroups.wgsl"
        ))),
        "linear" => Some(include_str!(concat!(
            env!("OUT_DIR"),
            "/shaders/linear.subgroups.wgsl"
        ))),
        "linear_grad" => Some(include_str!(concat!(
            env!("OUT_DIR"),
            "/shaders/linear_grad.subgroups.wgsl"
        ))),
        "pointwise_conv_grad" => Some(include_str!(concat!(
            env!("OUT_DIR"),
            "/shaders/pointwise_conv_grad.subgroups.wgsl"
        ))),
        _ => None,
    }
}

/// Variant 7 of shaders/pointwise_conv.wgsl, the builder's choice where the device has 8-lane
/// subgroups of consecutive invocations (lavapipe): the subgroup's 8 lanes take 8 ×
/// [`SUBGROUP_TILE`]`.0` consecutive rows of the same [`SUBGROUP_TILE`]`.1` vec4 columns, and each
/// step's 32 weight vec4s, the same for all 8 lanes, are loaded 4 per lane and shared by
/// `subgroupBroadcast`. On lavapipe every storage load is 8 scalar loads and a broadcast is a
/// register shuffle: Lite0's pointwise convs at batch 16 took 288 ms against 340 with the
/// 24 × 6 register tile (16 × 8, 12 × 8, 24 × 8, 8 × 16, 16 × 12 and 32 × 6 were no faster).
pub const POINTWISE_SUBGROUP: usize = 7;

/// Rows and vec4 columns per lane of [`POINTWISE_SUBGROUP`] and [`POINTWISE_GRAD_SUBGROUP`] (the
/// `#generate subgroup_tile` lines of shaders/pointwise_conv.wgsl and pointwise_conv_grad.wgsl).
pub const SUBGROUP_TILE: (u32, u32) = (8, 8);

/// Variants of shaders/linear.wgsl: [`LINEAR_SPLIT`], one workgroup per output, and
/// [`LINEAR_SUBGROUP`].
pub const LINEAR_VARIANTS: &[Variant] = &[
    Variant::new("split", &[("SPLIT", 1.0)]),
    Variant::new("subgroup", &[(SUBGROUPS, 1.0)]),
];

/// Pipeline variants of shaders/attention.wgsl: 1 [`ATTENTION_KEY_TILES`].
pub const ATTENTION_VARIANTS: &[Variant] = &[Variant::new("key_tiles", &[(WORKGROUP_TILED, 1.0)])];

/// Variant 1 of shaders/attention.wgsl, for GPUs: a workgroup's queries take the keys and values
/// in tiles staged in workgroup memory, each read from memory once per workgroup.
pub const ATTENTION_KEY_TILES: usize = 1;

/// The variant of shaders/linear.wgsl where a workgroup of 64 computes one output, reading the
/// weight row side by side (coalesced): for few images, as the classifier at batch 1.
pub const LINEAR_SPLIT: usize = 1;

/// The variant of shaders/linear.wgsl where a subgroup's 8 lanes compute 8 outputs of the same 8
/// images, sharing the images' inputs by `subgroupBroadcast`: the builder's choice where the
/// device has 8-lane subgroups (lavapipe; Lite0's classifier at batch 16 took 13.2 ms one output
/// per invocation).
pub const LINEAR_SUBGROUP: usize = 2;

/// Variants of shaders/linear_grad.wgsl: [`LINEAR_GRAD_SUBGROUP`].
pub const LINEAR_GRAD_VARIANTS: &[Variant] = &[Variant::new("subgroup", &[(SUBGROUPS, 1.0)])];

/// The variant of shaders/linear_grad.wgsl where a subgroup's 8 lanes compute 4 input features
/// each of the same 8 images, sharing each output's masked gradient by `subgroupBroadcast`: the
/// builder's choice where the device has 8-lane subgroups (lavapipe), where one input feature per
/// invocation loads a gradient, a forward output and a weight per multiply-add.
pub const LINEAR_GRAD_SUBGROUP: usize = 1;

/// Invocations of shaders/linear.wgsl's pipeline `variant` for `batch` × `outputs`.
fn linear_invocations(variant: usize, batch: u32, outputs: u32) -> u32 {
    match variant {
        LINEAR_SPLIT => batch * outputs * WORKGROUP_SIZE,
        LINEAR_SUBGROUP => {
            batch.div_ceil(SUBGROUP_LANES) * outputs.div_ceil(SUBGROUP_LANES) * SUBGROUP_LANES
        }
        _ => batch * outputs,
    }
}

/// Rows per workgroup of the split-K variants (`SPLIT_ROWS` in shaders/pointwise_conv.wgsl).
const SPLIT_ROWS: u32 = 4;

/// The vec4 columns per workgroup of pointwise pipeline `variant` when it is a split-K layout.
pub fn pointwise_split(variant: usize) -> Option<u32> {
    let constants = POINTWISE_VARIANTS.get(variant.checked_sub(1)?)?.constants;
    constants
        .iter()
        .find(|(name, _)| *name == "SPLIT_COLS")
        .map(|(_, v)| *v as u32)
}

/// Invocations of shaders/pointwise_conv.wgsl's pipeline `variant` for `rows × channels`.
fn pointwise_invocations(variant: usize, rows: u32, channels: u32) -> u32 {
    match pointwise_split(variant) {
        Some(cols) => rows.div_ceil(SPLIT_ROWS) * (channels / 4).div_ceil(cols) * WORKGROUP_SIZE,
        None if variant == POINTWISE_WORKGROUP_TILED => {
            rows.div_ceil(GEMM_TILE.0) * (channels / 4).div_ceil(GEMM_TILE.1) * WORKGROUP_SIZE
        }
        None if variant == POINTWISE_SUBGROUP => subgroup_tile_invocations(rows, channels),
        None => tiled_invocations(variant, rows, channels),
    }
}

/// Invocations of shaders/pointwise_conv_grad.wgsl's pipeline `variant` for `rows × channels`
/// (the conv's input channels).
fn pointwise_grad_invocations(variant: usize, rows: u32, channels: u32) -> u32 {
    if variant == POINTWISE_GRAD_SUBGROUP {
        subgroup_tile_invocations(rows, channels)
    } else {
        tiled_invocations(variant, rows, channels)
    }
}

/// Invocations of a subgroup tile ([`SUBGROUP_TILE`] per lane) over `rows × channels`.
fn subgroup_tile_invocations(rows: u32, channels: u32) -> u32 {
    tile_invocations(SUBGROUP_TILE, rows, channels)
}

/// Invocations of a subgroup tile of `(r, c)` per lane over `rows × channels`.
fn tile_invocations((r, c): (u32, u32), rows: u32, channels: u32) -> u32 {
    rows.div_ceil(SUBGROUP_LANES * r) * (channels / 4).div_ceil(c) * SUBGROUP_LANES
}

/// Rows and vec4 columns per invocation of pointwise pipeline `variant` (a register tile).
pub fn pointwise_tile(variant: usize) -> (u32, u32) {
    match variant {
        0 => (24, 6),
        v => POINTWISE_TILE
            .get(v - 1)
            .map_or((24, 6), |c| (c[0].1 as u32, c[1].1 as u32)),
    }
}

/// Variants of shaders/conv2d.wgsl: 1 the EfficientNet stem (3×3/2 over RGB), 2
/// [`CONV2D_TILED`], 3 [`CONV2D_GEMM`], 4 [`CONV2D_SUBGROUP_STEM`], 5 [`CONV2D_SUBGROUP_TILE`],
/// 6 [`CONV2D_SUBGROUP_STEM7`].
pub const CONV2D_VARIANTS: &[Variant] = &[
    Variant::new(
        "stem_3x3_s2",
        &[("KERNEL", 3.0), ("STRIDE", 2.0), ("IN_C", 3.0)],
    ),
    Variant::new("tiled", &[("TILED", 1.0)]),
    Variant::new("gemm", &[("GEMM", 1.0)]),
    Variant::new("subgroup_stem_3x3", &[(SUBGROUPS, 1.0)]),
    Variant::new("subgroup_tile", &[(SUBGROUPS, 1.0), ("CONV_TILE", 1.0)]),
    Variant::new(
        "subgroup_stem_7x7",
        &[(SUBGROUPS, 1.0), ("STEM_KERNEL", 7.0)],
    ),
];

/// The subgroup tile of shaders/conv2d.wgsl, the builder's choice for convs over a multiple of 4
/// input channels (ResNet's and VGG's) where the device has 8-lane subgroups (lavapipe): the
/// pointwise conv's [`POINTWISE_SUBGROUP`] tile ([`CONV_SUBGROUP_TILE`] per lane) run over the
/// filter taps, rows being output pixels, reading the input as vec4s (its `input4` binding, the
/// same buffer as `input`: 12 % less time than four scalar loads). Seeded ResNet-50 at batch 2
/// on lavapipe: 186 ms in conv2d against 910 with the register-tiled path.
pub const CONV2D_SUBGROUP_TILE: usize = 5;

/// Output pixels and vec4s of output channels per lane of [`CONV2D_SUBGROUP_TILE`] (the
/// `#generate subgroup_tile ... conv` line of shaders/conv2d.wgsl).
pub const CONV_SUBGROUP_TILE: (u32, u32) = (8, 16);

/// Variants of shaders/conv2d_texture.wgsl: its subgroup tiles, 8 output pixels per lane by 16
/// ([`CONV2D_TEXTURE_WIDE`]) or 8 ([`CONV2D_TEXTURE_NARROW`]) vec4s of output channels, and the
/// subgroup stems ([`CONV2D_TEXTURE_STEM`], [`CONV2D_TEXTURE_STEM7`]).
pub const CONV2D_TEXTURE_VARIANTS: &[Variant] = &[
    Variant::new(
        "subgroup_tile_8x16",
        &[(SUBGROUPS, 1.0), ("TILE_COLS", 16.0)],
    ),
    Variant::new("subgroup_tile_8x8", &[(SUBGROUPS, 1.0), ("TILE_COLS", 8.0)]),
    Variant::new(
        "subgroup_stem_3x3",
        &[(SUBGROUPS, 1.0), ("STEM_KERNEL", 3.0)],
    ),
    Variant::new(
        "subgroup_stem_7x7",
        &[(SUBGROUPS, 1.0), ("STEM_KERNEL", 7.0)],
    ),
];

/// The 8 × 16 subgroup tile of shaders/conv2d_texture.wgsl: the builder's choice where the
/// device reads inputs through textures ([`Kernels::texel_inputs`]) and the conv has more than
/// 32 output channels.
pub const CONV2D_TEXTURE_WIDE: usize = 1;

/// The 8 × 8 subgroup tile of shaders/conv2d_texture.wgsl, for at most 32 output channels.
pub const CONV2D_TEXTURE_NARROW: usize = 2;

/// The 3×3 / 2 subgroup stem of shaders/conv2d_texture.wgsl ([`CONV2D_SUBGROUP_STEM`]'s).
pub const CONV2D_TEXTURE_STEM: usize = 3;

/// The 7×7 / 2 subgroup stem of shaders/conv2d_texture.wgsl ([`CONV2D_SUBGROUP_STEM7`]'s).
pub const CONV2D_TEXTURE_STEM7: usize = 4;

/// Output pixels and vec4s of output channels per lane of [`CONV2D_TEXTURE_WIDE`] and
/// [`CONV2D_TEXTURE_NARROW`] (the `#generate subgroup_tile ... conv` lines of
/// shaders/conv2d_texture.wgsl, in order).
pub const CONV2D_TEXTURE_TILES: [(u32, u32); 2] = [(8, 16), (8, 8)];

/// Invocations of shaders/conv2d_texture.wgsl pipeline `variant` for an output of
/// `batch × height × width × channels`.
fn conv2d_texture_invocations(
    variant: usize,
    batch: u32,
    height: u32,
    width: u32,
    channels: u32,
) -> u32 {
    let rows = batch * height * width;
    match variant {
        CONV2D_TEXTURE_WIDE | CONV2D_TEXTURE_NARROW => {
            tile_invocations(CONV2D_TEXTURE_TILES[variant - 1], rows, channels)
        }
        CONV2D_TEXTURE_STEM | CONV2D_TEXTURE_STEM7 => {
            conv2d_invocations(CONV2D_SUBGROUP_STEM, batch, height, width, channels)
        }
        _ => rows * (channels / 4),
    }
}

/// The subgroup stem of shaders/conv2d.wgsl (`#generate subgroup_stem`): the builder's choice for
/// the 3×3 / 2 conv over RGB where the device has 8-lane subgroups (lavapipe). A subgroup's 8
/// lanes take 8 vec4s of output channels at the same [`STEM_OX`] pixels and share the input
/// values by `subgroupBroadcast`: loads per multiply-add drop from 0.44 to 0.15.
pub const CONV2D_SUBGROUP_STEM: usize = 4;

/// The subgroup stem for ResNet's 7×7 / 2 conv over RGB, as [`CONV2D_SUBGROUP_STEM`].
pub const CONV2D_SUBGROUP_STEM7: usize = 6;

/// Adjacent output pixels per lane of [`CONV2D_SUBGROUP_STEM`] and [`CONV2D_SUBGROUP_STEM7`].
pub const STEM_OX: u32 = 8;

/// The register-tiled variant of shaders/conv2d.wgsl.
pub const CONV2D_TILED: usize = 2;

/// The workgroup-tiled variant of shaders/conv2d.wgsl (64 pixels × 64 channels per workgroup of
/// 64 invocations), for GPUs: chosen by the tuner.
pub const CONV2D_GEMM: usize = 3;

/// Output pixels (rows) and vec4s of output channels per workgroup of the workgroup-tiled
/// variants, [`CONV2D_GEMM`] and [`POINTWISE_WORKGROUP_TILED`] (`GM` and `GN4` in
/// shaders/conv2d.wgsl and shaders/pointwise_conv.wgsl).
pub const GEMM_TILE: (u32, u32) = (64, 16);

/// The conv2d variant the engine runs for `kernel` × `stride` over `in_channels`: the one
/// specialized for it, or the register-tiled generic path.
pub fn conv2d_variant(kernel: u32, stride: u32, in_channels: u32) -> usize {
    CONV2D_VARIANTS
        .iter()
        .map(|v| v.constants)
        .position(|v| {
            v.len() == 3
                && v[0].0 == "KERNEL"
                && v[0].1 == f64::from(kernel)
                && v[1].1 == f64::from(stride)
                && v[2].1 == f64::from(in_channels)
        })
        .map_or(CONV2D_TILED, |i| i + 1)
}

/// Specializations of shaders/depthwise_conv.wgsl by kernel size and stride (variants 1..),
/// each invocation a block of output pixels ([`DEPTHWISE_BLOCKS`]).
pub const DEPTHWISE_VARIANTS: &[Variant] = &[
    Variant::new("k3_s1", &[("KERNEL", 3.0), ("STRIDE", 1.0)]),
    Variant::new("k3_s2", &[("KERNEL", 3.0), ("STRIDE", 2.0)]),
    Variant::new("k5_s1", &[("KERNEL", 5.0), ("STRIDE", 1.0)]),
    Variant::new("k5_s2", &[("KERNEL", 5.0), ("STRIDE", 2.0)]),
    Variant::new("k7_s1", &[("KERNEL", 7.0), ("STRIDE", 1.0)]),
    Variant::new("staged", &[("STAGED", 1.0)]),
];

/// The workgroup-staged variant of shaders/depthwise_conv.wgsl, for GPUs (a tuner candidate
/// where the builder chose a specialization, i.e. kernel 3 or 5 at stride 1 or 2): a workgroup
/// of 64 stages the input region of a 4 × 4 tile of output pixels × 8 vec4s of channels in
/// workgroup memory (read coalesced, channels fastest), then each invocation computes 2 pixels
/// of one channel vec4 from it.
pub const DEPTHWISE_STAGED: usize = 6;

/// Output pixels across and down per invocation of each specialized depthwise variant, in
/// [`DEPTHWISE_VARIANTS`] order: the `#generate depthwise_block` lines of
/// shaders/depthwise_conv.wgsl. A 4 × 4 block loads each input pixel once for up to 16 outputs
/// (3×3 at stride 1: 45 loads for 144 multiply-adds, against 27 for 36 with a row of 4), and on
/// lavapipe, where every storage load is one scalar load per invocation, loads set the time:
/// Lite0's depthwise convs at batch 16 took 129 ms instead of 201; 8 × 4, 8 × 2 and 8 × 8 blocks
/// measured the same within noise.
pub const DEPTHWISE_BLOCKS: [(u32, u32); 5] = [(4, 4), (4, 4), (4, 4), (4, 4), (4, 4)];

/// Output pixels across and down per invocation of depthwise pipeline `variant` (1 × 1 for the
/// generic variant 0).
pub fn depthwise_block(variant: usize) -> (u32, u32) {
    variant
        .checked_sub(1)
        .and_then(|i| DEPTHWISE_BLOCKS.get(i))
        .copied()
        .unwrap_or((1, 1))
}

/// The depthwise variant specialized for `kernel` × `stride`, or 0 (the generic kernel).
pub fn depthwise_variant(kernel: u32, stride: u32) -> usize {
    specialization(DEPTHWISE_VARIANTS, kernel, stride).unwrap_or(0)
}

/// The variant (1..) of `variants` whose constants are exactly `KERNEL` = `kernel` and `STRIDE` =
/// `stride`: a kernel's specialization for that window.
pub fn specialization(variants: &[Variant], kernel: u32, stride: u32) -> Option<usize> {
    let window = [("KERNEL", f64::from(kernel)), ("STRIDE", f64::from(stride))];
    variants
        .iter()
        .position(|v| *v.constants == window)
        .map(|i| i + 1)
}

/// Specializations of shaders/depthwise_conv_grad.wgsl by kernel size and stride (variants 1..),
/// each invocation a block of input pixels ([`DEPTHWISE_GRAD_BLOCKS`]).
pub const DEPTHWISE_GRAD_VARIANTS: &[Variant] = &[
    Variant::new("k3_s1", &[("KERNEL", 3.0), ("STRIDE", 1.0)]),
    Variant::new("k3_s2", &[("KERNEL", 3.0), ("STRIDE", 2.0)]),
    Variant::new("k5_s1", &[("KERNEL", 5.0), ("STRIDE", 1.0)]),
    Variant::new("k5_s2", &[("KERNEL", 5.0), ("STRIDE", 2.0)]),
];

/// Input pixels across and down per invocation of each specialized depthwise-gradient variant, in
/// [`DEPTHWISE_GRAD_VARIANTS`] order: the `#generate depthwise_grad_block` lines of
/// shaders/depthwise_conv_grad.wgsl (multiples of the stride). Blocks start at multiples of
/// these in padded coordinates (the input pixel plus the padding before it). A 4 × 4 block of a
/// 3×3 conv at stride 1 loads and masks 36 output gradients for 144 multiply-adds, where one
/// pixel per invocation loads and masks one per multiply-add.
pub const DEPTHWISE_GRAD_BLOCKS: [(u32, u32); 4] = [(4, 4), (4, 4), (4, 4), (4, 4)];

/// The depthwise-gradient variant specialized for `kernel` × `stride`, or 0 (the generic
/// kernel).
pub fn depthwise_grad_variant(kernel: u32, stride: u32) -> usize {
    specialization(DEPTHWISE_GRAD_VARIANTS, kernel, stride).unwrap_or(0)
}

/// Invocations of depthwise-gradient pipeline `variant` for `p`: one per input pixel and vec4
/// of channels for the generic variant 0, one per block (aligned in padded coordinates) for the
/// specialized ones.
fn depthwise_grad_invocations(variant: usize, p: &DepthwiseGradParams) -> u32 {
    let c4 = p.channels / 4;
    match variant
        .checked_sub(1)
        .and_then(|i| DEPTHWISE_GRAD_BLOCKS.get(i))
    {
        Some(&(bx, by)) => {
            p.batch * (p.in_h + p.pad_top).div_ceil(by) * (p.in_w + p.pad_left).div_ceil(bx) * c4
        }
        None => p.batch * p.in_h * p.in_w * c4,
    }
}

/// Specializations of shaders/conv2d_grad.wgsl (variants 1..) for a first conv's gradient at the
/// image (3 input channels) by kernel size and stride: EfficientNet's and MobileNet's 3×3 / 2,
/// ResNet's 7×7 / 2, VGG's 3×3 / 1. Each invocation computes a block of input pixels × 3
/// channels ([`CONV2D_GRAD_BLOCKS`]).
pub const CONV2D_GRAD_VARIANTS: &[Variant] = &[
    Variant::new("k3_s2", &[("KERNEL", 3.0), ("STRIDE", 2.0)]),
    Variant::new("k7_s2", &[("KERNEL", 7.0), ("STRIDE", 2.0)]),
    Variant::new("k3_s1", &[("KERNEL", 3.0), ("STRIDE", 1.0)]),
];

/// Input pixels across and down per invocation of each [`CONV2D_GRAD_VARIANTS`] entry: the
/// `#generate image_grad_block` lines of shaders/conv2d_grad.wgsl. Blocks start at multiples of
/// these in padded coordinates.
pub const CONV2D_GRAD_BLOCKS: [(u32, u32); 3] = [(4, 4), (4, 4), (4, 4)];

/// The conv2d-gradient variant for `kernel` × `stride` over `in_channels`: a block
/// specialization for 3 input channels where there is one, else 0 (the generic kernel).
pub fn conv2d_grad_variant(kernel: u32, stride: u32, in_channels: u32) -> usize {
    if in_channels != 3 {
        return 0;
    }
    specialization(CONV2D_GRAD_VARIANTS, kernel, stride).unwrap_or(0)
}

/// Invocations of conv2d-gradient pipeline `variant` for `p`: one per input value for the
/// generic variant 0, one per block of input pixels (aligned in padded coordinates) for the
/// specialized ones.
fn conv2d_grad_invocations(variant: usize, p: &ConvGradParams) -> u32 {
    match variant
        .checked_sub(1)
        .and_then(|i| CONV2D_GRAD_BLOCKS.get(i))
    {
        Some(&(bx, by)) => {
            p.batch * (p.in_h + p.pad_top).div_ceil(by) * (p.in_w + p.pad_left).div_ceil(bx)
        }
        None => p.batch * p.in_h * p.in_w * p.in_c,
    }
}

/// Invocations of depthwise pipeline `variant` for an output of `batch × height × width ×
/// channels`: one per block of output pixels and vec4 of channels.
fn depthwise_invocations(
    variant: usize,
    batch: u32,
    height: u32,
    width: u32,
    channels: u32,
) -> u32 {
    if variant == DEPTHWISE_STAGED {
        // One workgroup per 4 × 4 tile of pixels and 8 vec4s of channels.
        return batch
            * height.div_ceil(4)
            * width.div_ceil(4)
            * (channels / 4).div_ceil(8)
            * WORKGROUP_SIZE;
    }
    let (bx, by) = depthwise_block(variant);
    batch * height.div_ceil(by) * width.div_ceil(bx) * channels / 4
}

/// Output pixels per invocation of the specialized (non-zero) variants of shaders/conv2d.wgsl
/// (`OX`).
pub const BLOCK_OX: u32 = 4;

/// Invocations of a row-blocked conv2d for an output of
/// `batch × height × width × channels`: one per output pixel and vec4 of channels for the generic
/// variant 0, one per BLOCK_OX adjacent pixels for the specialized ones.
fn blocked_invocations(variant: usize, batch: u32, height: u32, width: u32, channels: u32) -> u32 {
    let columns = if variant == 0 {
        width
    } else {
        width.div_ceil(BLOCK_OX)
    };
    batch * height * columns * channels / 4
}

/// vec4s of output channels per invocation of the tiled conv2d path (`TCO` in
/// shaders/conv2d.wgsl).
pub const TILE_CO4: u32 = 2;

/// Invocations of shaders/conv2d.wgsl pipeline `variant` for an output of
/// `batch × height × width × channels`.
fn conv2d_invocations(variant: usize, batch: u32, height: u32, width: u32, channels: u32) -> u32 {
    if variant == CONV2D_GEMM {
        return WORKGROUP_SIZE
            * (batch * height * width).div_ceil(GEMM_TILE.0)
            * (channels / 4).div_ceil(GEMM_TILE.1);
    }
    if variant == CONV2D_SUBGROUP_TILE {
        return tile_invocations(CONV_SUBGROUP_TILE, batch * height * width, channels);
    }
    if variant == CONV2D_SUBGROUP_STEM || variant == CONV2D_SUBGROUP_STEM7 {
        let groups = (channels / 4).div_ceil(SUBGROUP_LANES);
        return batch * height * width.div_ceil(STEM_OX) * groups * SUBGROUP_LANES;
    }
    if variant == CONV2D_TILED {
        return batch * height * width.div_ceil(BLOCK_OX) * (channels / 4).div_ceil(TILE_CO4);
    }
    blocked_invocations(variant, batch, height, width, channels)
}

/// A dense convolution's (or a matrix product's) work: `batch` images of `in_pixels × in_c`
/// to `out_pixels × out_c` through a `kernel`² window, with `extra` more output-sized tensors
/// read (a residual, a mask).
fn conv_work(
    batch: u32,
    in_pixels: u32,
    in_c: u32,
    out_pixels: u32,
    out_c: u32,
    kernel: u32,
    extra: u32,
) -> Work {
    let (b, k2) = (u64::from(batch), u64::from(kernel * kernel));
    let out = b * u64::from(out_pixels) * u64::from(out_c);
    Work::new(
        2 * out * k2 * u64::from(in_c),
        b * u64::from(in_pixels) * u64::from(in_c)
            + k2 * u64::from(in_c) * u64::from(out_c)
            + out * u64::from(1 + extra),
    )
}

/// Invocations of a self-attention kernel: per image and head, its tokens in whole workgroups
/// (shaders/lib/attention.wgsl `attention_item`).
fn attention_invocations(p: &AttentionParams) -> u32 {
    p.batch * p.heads * p.tokens.div_ceil(WORKGROUP_SIZE) * WORKGROUP_SIZE
}

/// Self-attention's work: `products` multiply-adds over the head's channels per pair of tokens
/// (2 forward: q·k and P·v), and the QKV tensor and the output moved once.
fn attention_work(p: &AttentionParams, products: u64) -> Work {
    let pairs = u64::from(p.batch * p.heads) * u64::from(p.tokens) * u64::from(p.tokens);
    let channels = u64::from(p.heads * p.head_dim4 * 4);
    let values = u64::from(p.batch) * u64::from(p.tokens) * channels;
    Work::new(
        2 * products * pairs * u64::from(p.head_dim4 * 4),
        4 * 4 * values,
    )
}

/// A depthwise convolution's work from `in_pixels` to `out_pixels` per channel (the gradient
/// runs from the output side to the input side), with `extra` more output-sized tensors read.
fn depthwise_work(
    batch: u32,
    in_pixels: u32,
    out_pixels: u32,
    channels: u32,
    kernel: u32,
    extra: u32,
) -> Work {
    let (b, c, k2) = (
        u64::from(batch),
        u64::from(channels),
        u64::from(kernel * kernel),
    );
    let (inp, out) = (b * u64::from(in_pixels) * c, b * u64::from(out_pixels) * c);
    let taps = inp.max(out);
    Work::new(2 * taps * k2, inp + k2 * c + out * u64::from(1 + extra))
}

impl KernelId {
    /// The kernel's name, its file stem in `shaders/`.
    pub fn name(self) -> &'static str {
        ALL_KERNELS[self as usize].name
    }

    /// The kernel named `name` (its file stem in `shaders/`).
    pub fn from_name(name: &str) -> Option<Self> {
        ALL_KERNEL_IDS.iter().copied().find(|k| k.name() == name)
    }

    /// The name of pipeline `variant` of this kernel, if it has one.
    pub fn variant_name(self, variant: usize) -> Option<&'static str> {
        match variant {
            0 => Some(DEFAULT_VARIANT),
            v => ALL_KERNELS[self as usize]
                .variants
                .get(v - 1)
                .map(|v| v.name),
        }
    }

    /// The pipeline variant of this kernel called `name`.
    pub fn variant_named(self, name: &str) -> Option<usize> {
        if name == DEFAULT_VARIANT {
            return Some(0);
        }
        ALL_KERNELS[self as usize]
            .variants
            .iter()
            .position(|v| v.name == name)
            .map(|i| i + 1)
    }
}

/// The pipeline variants of `kernel` that compute what `variant` computes for every parameter set
/// the builder gives it that variant with: what the tuner (src/gpu/tune.rs) times. Fewer than two
/// for a kernel that is not tuned. Only forward kernels are tuned: timing a launch overwrites its
/// output, which the forward pass writes again anyway.
pub fn tuning_candidates(kernel: KernelId, variant: usize) -> Vec<usize> {
    let mut out = vec![variant];
    let mut add = |v: usize| {
        if !out.contains(&v) {
            out.push(v);
        }
    };
    match kernel {
        // The subgroup tile only where the builder chose it, i.e. where the device has it.
        KernelId::PointwiseConv | KernelId::PointwiseConvTexture => (1..=POINTWISE_VARIANTS.len())
            .filter(|&v| v != POINTWISE_SUBGROUP || variant == POINTWISE_SUBGROUP)
            .for_each(&mut add),
        // The generic kernel: one output pixel per invocation, 4× the invocations.
        KernelId::DepthwiseConv | KernelId::DepthwiseConvTexture => {
            add(0);
            // The staged variant only for the specialized sizes, whose region fits.
            if variant != 0 {
                add(DEPTHWISE_STAGED);
            }
        }
        KernelId::Conv2dTexture => {
            // The other tile where the builder chose one; the generic path against a stem.
            if variant == CONV2D_TEXTURE_WIDE || variant == CONV2D_TEXTURE_NARROW {
                add(CONV2D_TEXTURE_WIDE);
                add(CONV2D_TEXTURE_NARROW);
            } else {
                add(0);
            }
        }
        KernelId::Conv2d => {
            // Where the builder chose the subgroup stem, the stem's other specialization too.
            if variant == CONV2D_SUBGROUP_STEM {
                add(1);
            }
            add(CONV2D_TILED);
            add(CONV2D_GEMM);
            add(0);
        }
        // Self-attention: per query from memory, or the keys and values staged in tiles.
        KernelId::Attention => {
            add(0);
            add(ATTENTION_KEY_TILES);
        }
        KernelId::Linear => {
            add(LINEAR_SPLIT);
            // Where the builder chose the subgroup variant, one output per invocation too.
            if variant == LINEAR_SUBGROUP {
                add(0);
            }
        }
        _ => return Vec::new(),
    }
    out
}

/// The side of the Gram matrix of shaders/cam_gram.wgsl `mode` over a `pixels × channels` map.
pub fn gram_side(mode: u32, pixels: u32, channels: u32) -> u32 {
    if mode == 0 {
        pixels
    } else {
        channels
    }
}

/// The largest Gram matrix side shaders/cam_eigen.wgsl holds (`MAX_N`).
pub const EIGEN_MAX_SIDE: u32 = 1024;

/// The register tile the builder uses on a CPU adapter (24 × 6, see [`POINTWISE_TILE`]) for
/// shaders/pointwise_conv.wgsl and pointwise_conv_grad.wgsl where there is no subgroup tile
/// ([`Kernels::pointwise_variant`], [`Kernels::pointwise_grad_variant`]).
pub const POINTWISE_VARIANT: usize = 1;

/// The register tile the builder uses on a GPU (8 × 2): 24 × 6 would need 576 accumulator
/// registers per invocation. Where the GPU has timestamp queries the tuner times the others.
pub const POINTWISE_GPU_VARIANT: usize = 2;

/// Invocations of the pointwise kernels' pipeline `variant` for a `rows × channels` output
/// (shaders/pointwise_conv.wgsl: output channels; shaders/pointwise_conv_grad.wgsl: input
/// channels).
fn tiled_invocations(variant: usize, rows: u32, channels: u32) -> u32 {
    let (r, c) = pointwise_tile(variant);
    rows.div_ceil(r) * (channels / 4).div_ceil(c)
}

/// Adjacent pixels of a row per invocation of shaders/overlay.wgsl (`PIXELS`); a row's pitch is
/// a multiple of it. Lite0's overlays of a batch of 16 photos took 34.9 ms one pixel per
/// invocation on lavapipe.
pub const OVERLAY_PIXELS: u32 = 4;

/// Invocations per workgroup for kernels sized by the `WORKGROUP_SIZE` override.
pub const WORKGROUP_SIZE: u32 = 64;

/// One compiled kernel.
#[derive(Debug)]
pub struct Kernel {
    /// What it was built from.
    pub spec: &'static KernelSpec,
    /// The compute pipelines: the default, then one per [`KernelSpec::variants`] entry (`None`
    /// for a [`SUBGROUPS`] variant on a device without them).
    pub pipelines: Vec<Option<wgpu::ComputePipeline>>,
    /// The layout of its group 0.
    pub layout: wgpu::BindGroupLayout,
    /// Invocations per workgroup.
    pub workgroup_size: u32,
}

impl Kernel {
    fn new(
        device: &wgpu::Device,
        spec: &'static KernelSpec,
        loop_bounding: bool,
        subgroups: bool,
    ) -> Self {
        let entries: Vec<wgpu::BindGroupLayoutEntry> = spec
            .bindings
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match kind {
                    BindingKind::Texture => wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: false },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                    _ => wgpu::BindingType::Buffer {
                        ty: match kind {
                            BindingKind::Storage => {
                                wgpu::BufferBindingType::Storage { read_only: true }
                            }
                            BindingKind::StorageReadWrite => {
                                wgpu::BufferBindingType::Storage { read_only: false }
                            }
                            _ => wgpu::BufferBindingType::Uniform,
                        },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
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
        let module = |source: &'static str| {
            let descriptor = wgpu::ShaderModuleDescriptor {
                label: Some(spec.name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            };
            if loop_bounding {
                return device.create_shader_module(descriptor);
            }
            // SAFETY: wgpu's runtime loop bounding (a counter in every loop; on an H200 it cost
            // Lite0 29 % of its GPU time at batch 256) is the only check left out;
            // bounds and integer-division checks stay. Every loop in shaders/ terminates: `for`
            // loops run to a constant or to a parameter bounded by a buffer's length, stepping
            // by a positive constant or by a parameter the host clamps to at least 1
            // (`reduction_chunks`); the one `while` halves an interval of images.
            unsafe {
                device.create_shader_module_trusted(
                    descriptor,
                    wgpu::ShaderRuntimeChecks {
                        force_loop_bounding: false,
                        ..wgpu::ShaderRuntimeChecks::checked()
                    },
                )
            }
        };
        let plain = module(spec.source);
        let with_subgroups = subgroup_source(spec.name).filter(|_| subgroups).map(module);
        let workgroup: &[(&str, f64)] = if spec.fixed_workgroup.is_some() {
            &[]
        } else {
            &[("WORKGROUP_SIZE", WORKGROUP_SIZE as f64)]
        };
        let pipelines = std::iter::once(&[][..])
            .chain(spec.variants.iter().map(|v| v.constants))
            .map(|constants| {
                let marked = |marker: &str| constants.iter().any(|(name, _)| *name == marker);
                let (module, entry_point) = if marked(SUBGROUPS) {
                    (with_subgroups.as_ref()?, "main_subgroups")
                } else if marked(WORKGROUP_TILED) {
                    (&plain, "main_workgroup_tiled")
                } else {
                    (&plain, "main")
                };
                let all: Vec<(&str, f64)> = workgroup
                    .iter()
                    .chain(constants)
                    .filter(|(name, _)| *name != SUBGROUPS && *name != WORKGROUP_TILED)
                    .copied()
                    .collect();
                Some(
                    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(spec.name),
                        layout: Some(&pipeline_layout),
                        module,
                        entry_point: Some(entry_point),
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants: &all,
                            zero_initialize_workgroup_memory: false,
                        },
                        cache: None,
                    }),
                )
            })
            .collect();
        Self {
            spec,
            pipelines,
            layout,
            workgroup_size: spec.fixed_workgroup.unwrap_or(WORKGROUP_SIZE),
        }
    }

    /// A bind group over `params` and the resources of `launch`, in binding order.
    pub fn bind(
        &self,
        device: &wgpu::Device,
        params: &wgpu::Buffer,
        launch: &impl Launch,
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry> = std::iter::once(params.as_entire_binding())
            .chain(launch.resources())
            .enumerate()
            .map(|(i, resource)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource,
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
    /// Whether the [`SUBGROUPS`] variants are built: the device has subgroup operations in
    /// subgroups of exactly 8 lanes and is a CPU adapter (lavapipe, where they were measured and
    /// whose subgroups are consecutive invocations).
    subgroups: bool,
    /// Whether the device is a CPU adapter (the builder's register tiles differ).
    cpu: bool,
    /// Whether the convs, elementwise ops and squeeze-and-excitation blocks that can read their
    /// inputs and weights through textures do (the `*_texture` kernels): on CPU adapters with
    /// the subgroup tile.
    texel_inputs: std::sync::atomic::AtomicBool,
    /// Whether wgpu bounds every loop at run time (`GRADCAM_LOOP_BOUNDING=1`, for measuring
    /// what leaving it out gains; off by default).
    loop_bounding: bool,
    /// Where compile errors go: the context's list of errors reported outside a submission,
    /// which its next check returns (before the "pipeline is invalid" they cause).
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Kernels {
    /// The kernels of `device` (`cpu`: a CPU adapter; `subgroups`: build the [`SUBGROUPS`]
    /// variants); none is compiled yet. Compile errors are appended to `errors`.
    pub fn new(
        device: &wgpu::Device,
        errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
        subgroups: bool,
        cpu: bool,
    ) -> Self {
        let subgroups =
            subgroups && std::env::var("GRADCAM_SUBGROUPS").map_or(true, |v| v.trim() != "0");
        Self {
            device: device.clone(),
            cpu,
            subgroups,
            texel_inputs: std::sync::atomic::AtomicBool::new(
                cpu && subgroups
                    && std::env::var("GRADCAM_TEXELS").map_or(true, |v| v.trim() != "0"),
            ),
            kernels: ALL_KERNELS
                .iter()
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            loop_bounding: std::env::var("GRADCAM_LOOP_BOUNDING").is_ok_and(|v| v.trim() == "1"),
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
            let kernel = Kernel::new(&self.device, spec, self.loop_bounding, self.subgroups);
            // Natively the scope's result is known at once; it is polled once, never waited for.
            // Where it is not ready (a browser), the message is not recorded here, and the first
            // submission using the kernel fails with "pipeline is invalid" instead.
            let popped = std::pin::pin!(scope.pop())
                .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
            if let std::task::Poll::Ready(Some(e)) = popped {
                if let Ok(mut errors) = self.errors.lock() {
                    errors.push(format!("compiling kernel {}: {e}", spec.name));
                }
            }
            kernel
        })
    }

    /// Whether the [`SUBGROUPS`] variants are built on this device (`GRADCAM_SUBGROUPS=0` turns
    /// them off, for measuring what they gain).
    pub fn subgroups(&self) -> bool {
        self.subgroups
    }

    /// Whether the convs, elementwise ops and squeeze-and-excitation blocks that can read their
    /// inputs and weights through textures do (the `*_texture` kernels, src/pipeline/texel.rs):
    /// on CPU adapters with the subgroup tile; `GRADCAM_TEXELS=0` turns it off, for measuring
    /// what it gains. Read when a model is uploaded.
    pub fn texel_inputs(&self) -> bool {
        self.texel_inputs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the texture reads off (or back on where the device allows them) for the models
    /// uploaded from now on: the tests compare both paths on one device.
    pub fn set_texel_inputs(&self, on: bool) {
        let allowed = self.cpu && self.subgroups;
        self.texel_inputs
            .store(on && allowed, std::sync::atomic::Ordering::Relaxed);
    }

    /// The shaders/pointwise_conv.wgsl variant the builder uses on this device:
    /// [`POINTWISE_SUBGROUP`] where [`Kernels::subgroups`], else
    /// [`Kernels::pointwise_grad_variant`]'s register tile.
    pub fn pointwise_variant(&self) -> usize {
        if self.subgroups {
            POINTWISE_SUBGROUP
        } else {
            self.pointwise_grad_variant()
        }
    }

    /// The shaders/pointwise_conv_grad.wgsl variant the builder uses on this device:
    /// [`POINTWISE_GRAD_SUBGROUP`] where [`Kernels::subgroups`], else [`POINTWISE_VARIANT`] on a
    /// CPU adapter and [`POINTWISE_GPU_VARIANT`] on a GPU.
    pub fn pointwise_grad_variant(&self) -> usize {
        if self.subgroups {
            POINTWISE_GRAD_SUBGROUP
        } else if self.cpu {
            POINTWISE_VARIANT
        } else {
            POINTWISE_GPU_VARIANT
        }
    }

    /// The shaders/conv2d_texture.wgsl variant for a conv of `kernel` × `stride` over
    /// `in_channels` to `out_channels` whose [`Kernels::conv2d_variant`] is a subgroup stem or
    /// tile: the same stem, or the tile for its outputs.
    pub fn conv2d_texture_variant(
        &self,
        kernel: u32,
        stride: u32,
        in_channels: u32,
        out_channels: u32,
    ) -> usize {
        match self.conv2d_variant(kernel, stride, in_channels) {
            CONV2D_SUBGROUP_STEM => CONV2D_TEXTURE_STEM,
            CONV2D_SUBGROUP_STEM7 => CONV2D_TEXTURE_STEM7,
            _ if out_channels <= 32 => CONV2D_TEXTURE_NARROW,
            _ => CONV2D_TEXTURE_WIDE,
        }
    }

    /// The shaders/conv2d.wgsl variant the builder uses on this device for `kernel` × `stride`
    /// over `in_channels`: where [`Kernels::subgroups`], [`CONV2D_SUBGROUP_STEM`] and
    /// [`CONV2D_SUBGROUP_STEM7`] for the stems and [`CONV2D_SUBGROUP_TILE`] over a multiple of 4
    /// channels; else [`conv2d_variant`].
    pub fn conv2d_variant(&self, kernel: u32, stride: u32, in_channels: u32) -> usize {
        if self.subgroups && (kernel, stride, in_channels) == (3, 2, 3) {
            CONV2D_SUBGROUP_STEM
        } else if self.subgroups && (kernel, stride, in_channels) == (7, 2, 3) {
            CONV2D_SUBGROUP_STEM7
        } else if self.subgroups && in_channels.is_multiple_of(4) {
            CONV2D_SUBGROUP_TILE
        } else {
            conv2d_variant(kernel, stride, in_channels)
        }
    }

    /// The shaders/linear.wgsl variant the builder uses on this device: [`LINEAR_SUBGROUP`] where
    /// [`Kernels::subgroups`], else 0 (one output per invocation).
    pub fn linear_variant(&self) -> usize {
        if self.subgroups {
            LINEAR_SUBGROUP
        } else {
            0
        }
    }

    /// The shaders/linear_grad.wgsl variant the builder uses on this device:
    /// [`LINEAR_GRAD_SUBGROUP`] where [`Kernels::subgroups`], else 0 (one input feature per
    /// invocation).
    pub fn linear_grad_variant(&self) -> usize {
        if self.subgroups {
            LINEAR_GRAD_SUBGROUP
        } else {
            0
        }
    }

    /// Whether `variant` of kernel `id` has a pipeline on this device.
    pub fn available(&self, id: KernelId, variant: usize) -> bool {
        self.get(id)
            .pipelines
            .get(variant)
            .is_some_and(|p| p.is_some())
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
    /// Its work for the current batch size.
    pub work: Work,
}

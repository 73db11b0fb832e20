//! CAM methods. Each is a unit in its own file that records, for one target layer, the GPU work
//! turning the layer's activations A (and, when it needs it, the gradient G = ∂target/∂A) into
//! its map at the layer's resolution, after pytorch-grad-cam's `np.maximum(cam, 0)`. The
//! explainer runs what every method shares once: the forward pass, the backward pass when the
//! method needs it, the per-layer normalisation and resize, the multi-layer mean, the final
//! normalisation and the overlay (`src/pipeline/cam.rs`).
//!
//! Adding a method: a file here implementing [`LayerMethod`], a [`Method`] variant with its name,
//! and, when it is a new reduction, its shader.

mod ablation_cam;
mod class_activation_map;
mod eigen;
mod eigen_cam;
mod eigen_grad_cam;
mod fem;
mod full_grad;
mod grad_cam;
mod grad_cam_elementwise;
mod grad_cam_plusplus;
mod hires_cam;
mod layer_cam;
mod saliency;
mod score_cam;
mod smooth_grad_cam_plusplus;
mod xgrad_cam;

use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{
    CamChannelWeightsParams, CamCombineParams, CamElementwiseParams, CamMinMaxParams,
    CamNormalizeParams, ProbeWeightsParams,
};
use crate::gpu::GpuContext;

use super::backward::BiasTap;
use super::forward::Forward;
use super::probe::Probe;
use super::steps::Steps;

/// A CAM method, named as the CLI's `--method` takes it; each equals pytorch-grad-cam 1.5.7's
/// class of the same name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GradCAM`: w_c = mean over space of G_c; Σ_c w_c A_c.
    #[default]
    GradCam,
    /// `HiResCAM`: Σ_c G ⊙ A.
    HiResCam,
    /// `GradCAMElementWise`: Σ_c ReLU(G ⊙ A).
    GradCamElementWise,
    /// `GradCAMPlusPlus`: w_c = Σ_space ReLU(G)·α, α = G² / (2G² + S_c·G³ + 1e-6); Σ_c w_c A_c.
    GradCamPlusPlus,
    /// `XGradCAM`: w_c = Σ_space G·A / (S_c + 1e-7); Σ_c w_c A_c.
    XGradCam,
    /// `LayerCAM`: Σ_c ReLU(G) ⊙ A.
    LayerCam,
    /// `EigenCAM`: A projected on its first principal component (no gradient).
    EigenCam,
    /// `EigenGradCAM`: G ⊙ A projected on its first principal component.
    EigenGradCam,
    /// `FEM`: w_c = the fraction of positions where A_c > μ_c + 2σ_c; Σ_c w_c A_c (no gradient).
    Fem,
    /// `ScoreCAM`: w = softmax over channels of the target logit of the input masked by each
    /// upsampled, [0, 1]-scaled channel; Σ_c w_c A_c (one forward pass per channel).
    ScoreCam,
    /// `AblationCAM`: w_k = (s0 − s_k) / s0, s_k the target logit with channel k ablated;
    /// Σ_k w_k A_k (one pass of the network after the layer per channel).
    AblationCam,
    /// Saliency: the largest |∂logit/∂x| over the input's channels, at the input image (no
    /// pytorch-grad-cam class; Simonyan et al.'s gradient map).
    Saliency,
    /// `CAM` (Zhou et al.; torch-cam's `CAM`): Σ_c W[class, c] A_c with the classifier's
    /// weights, at the layer the global average pool before it reads; no gradient, no ReLU,
    /// min-max normalised at the layer.
    Cam,
    /// `SmoothGradCAMpp` (Omeiza et al.; torch-cam's): Grad-CAM++ with the gradient's second and
    /// third powers averaged over noisy copies of the input
    /// ([`ExplainOptions::samples`](crate::ExplainOptions::samples),
    /// [`ExplainOptions::noise_std`](crate::ExplainOptions::noise_std)), min-max normalised at
    /// the layer.
    SmoothGradCamPlusPlus,
    /// `FullGrad`: at the input image, the sum of |∂T/∂x ⊙ x| per input channel and of
    /// |b_c ∂T/∂z_c| for every channel of every bias layer z (BatchNorm, or a conv with a bias),
    /// each min-max scaled and resized; one final scaling, no ReLU (target layers do not apply).
    FullGrad,
}

impl Method {
    /// Every method, in the order `--method help` lists them.
    pub const ALL: &'static [Method] = &[
        Method::GradCam,
        Method::HiResCam,
        Method::GradCamElementWise,
        Method::GradCamPlusPlus,
        Method::XGradCam,
        Method::LayerCam,
        Method::EigenCam,
        Method::EigenGradCam,
        Method::Fem,
        Method::Cam,
        Method::SmoothGradCamPlusPlus,
        Method::ScoreCam,
        Method::AblationCam,
        Method::FullGrad,
        Method::Saliency,
    ];

    /// The name the CLI and the report use.
    pub fn name(self) -> &'static str {
        match self {
            Method::GradCam => "gradcam",
            Method::HiResCam => "hirescam",
            Method::GradCamElementWise => "gradcam-elementwise",
            Method::GradCamPlusPlus => "gradcam++",
            Method::XGradCam => "xgradcam",
            Method::LayerCam => "layercam",
            Method::EigenCam => "eigencam",
            Method::EigenGradCam => "eigengradcam",
            Method::Fem => "fem",
            Method::Cam => "cam",
            Method::SmoothGradCamPlusPlus => "smooth-gradcam++",
            Method::ScoreCam => "scorecam",
            Method::AblationCam => "ablationcam",
            Method::Saliency => "saliency",
            Method::FullGrad => "fullgrad",
        }
    }

    /// The reference's class computing the same map: pytorch-grad-cam's, torch-cam's for CAM and
    /// Smooth Grad-CAM++ ([`Method::reference_library`]).
    pub fn reference(self) -> &'static str {
        match self {
            Method::GradCam => "GradCAM",
            Method::HiResCam => "HiResCAM",
            Method::GradCamElementWise => "GradCAMElementWise",
            Method::GradCamPlusPlus => "GradCAMPlusPlus",
            Method::XGradCam => "XGradCAM",
            Method::LayerCam => "LayerCAM",
            Method::EigenCam => "EigenCAM",
            Method::EigenGradCam => "EigenGradCAM",
            Method::Fem => "FEM",
            Method::Cam => "CAM",
            Method::SmoothGradCamPlusPlus => "SmoothGradCAMpp",
            Method::ScoreCam => "ScoreCAM",
            Method::AblationCam => "AblationCAM",
            Method::Saliency => "Saliency",
            Method::FullGrad => "FullGrad",
        }
    }

    /// The Python package whose class [`Method::reference`] names (PyPI): `grad-cam`
    /// (pytorch-grad-cam), or `torchcam` for CAM and Smooth Grad-CAM++, which pytorch-grad-cam
    /// does not have.
    pub fn reference_library(self) -> &'static str {
        match self {
            Method::Cam | Method::SmoothGradCamPlusPlus => "torchcam",
            _ => "grad-cam",
        }
    }

    /// What the method needs besides the forward pass.
    pub fn needs(self) -> Needs {
        self.unit().needs()
    }

    /// The unit recording the method's GPU work.
    pub(crate) fn unit(self) -> &'static dyn LayerMethod {
        match self {
            Method::GradCam => &grad_cam::GradCam,
            Method::HiResCam => &hires_cam::HiResCam,
            Method::GradCamElementWise => &grad_cam_elementwise::GradCamElementWise,
            Method::GradCamPlusPlus => &grad_cam_plusplus::GradCamPlusPlus,
            Method::XGradCam => &xgrad_cam::XGradCam,
            Method::LayerCam => &layer_cam::LayerCam,
            Method::EigenCam => &eigen_cam::EigenCam,
            Method::EigenGradCam => &eigen_grad_cam::EigenGradCam,
            Method::Fem => &fem::Fem,
            Method::Cam => &class_activation_map::ClassActivationMap,
            Method::SmoothGradCamPlusPlus => &smooth_grad_cam_plusplus::SmoothGradCamPlusPlus,
            Method::ScoreCam => &score_cam::ScoreCam,
            Method::AblationCam => &ablation_cam::AblationCam,
            Method::Saliency => &saliency::Saliency,
            Method::FullGrad => &full_grad::FullGrad,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Method {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.to_ascii_lowercase();
        Method::ALL
            .iter()
            .copied()
            .find(|m| m.name() == wanted || m.reference().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| {
                let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
                Error::InvalidRequest(format!(
                    "unknown method `{s}`; the methods are {}",
                    names.join(", ")
                ))
            })
    }
}

/// What a method needs from the engine besides the forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// The gradient of the target logit at the target layer (a backward pass).
    pub layer_gradient: bool,
    /// The map is made at the input image from the gradient of the target logit with respect
    /// to it (a backward pass to the input); target layers do not apply.
    pub input: bool,
}

impl Needs {
    /// A map at the target layer from its activations and gradient.
    pub const LAYER_GRADIENT: Needs = Needs {
        layer_gradient: true,
        input: false,
    };
    /// A map at the target layer from its activations alone: no backward pass.
    pub const ACTIVATIONS: Needs = Needs {
        layer_gradient: false,
        input: false,
    };
    /// A map at the input image from the input gradient.
    pub const INPUT_GRADIENT: Needs = Needs {
        layer_gradient: false,
        input: true,
    };

    /// Whether a backward pass runs.
    pub fn backward(self) -> bool {
        self.layer_gradient || self.input
    }
}

/// What a method's map at one layer is computed from, and where it goes.
#[derive(Clone, Copy)]
pub(crate) struct LayerInputs<'a> {
    /// pytorch-grad-cam's `eigen_smooth`: the methods that sum weighted activations over the
    /// channels take their first principal component instead.
    pub eigen_smooth: bool,
    /// The forward workspace (the model, its activations and logits).
    pub forward: &'a Forward,
    /// The layer's tensor id.
    pub layer: usize,
    /// The class each image is explained for, u32 `[batch]`.
    pub targets: &'a wgpu::Buffer,
    /// Rows of a probe batch (Score-CAM, Ablation-CAM); `None`: from the device's limits.
    pub method_batch: Option<u32>,
    /// The layer's activations, f32 `[batch, pixels, channels]`.
    pub activations: &'a wgpu::Buffer,
    /// ∂target/∂activations, same layout, when [`Needs::layer_gradient`].
    pub gradient: Option<&'a wgpu::Buffer>,
    /// Positions (h·w) and channels of the layer.
    pub pixels: u32,
    pub channels: u32,
    /// Images the buffers hold.
    pub capacity: u64,
    /// Where the map goes, after ReLU: f32 `[batch, pixels]`.
    pub grid: &'a wgpu::Buffer,
    /// With noisy samples (Smooth Grad-CAM++), what they left at the layer.
    pub moments: Option<Moments<'a>>,
}

/// What the noisy samples of Smooth Grad-CAM++ leave at a layer, laid out as the layer's
/// activations (src/pipeline/smooth_grad.rs).
#[derive(Clone, Copy)]
pub(crate) struct Moments<'a> {
    /// The clean input's activations.
    pub clean: &'a wgpu::Buffer,
    /// Σ over the samples of G² and of G³.
    pub squares: &'a wgpu::Buffer,
    pub cubes: &'a wgpu::Buffer,
    /// How many samples the sums hold.
    pub samples: u32,
}

impl LayerInputs<'_> {
    /// The layer gradient, which the method declared it needs.
    pub fn gradient(&self) -> Result<&wgpu::Buffer> {
        self.gradient
            .ok_or_else(|| Error::InvalidRequest("the method needs the layer gradient".into()))
    }
}

/// A CAM method's GPU work at one target layer.
pub(crate) trait LayerMethod: Sync {
    /// What it needs besides the forward pass: by default the layer gradient.
    fn needs(&self) -> Needs {
        Needs::LAYER_GRADIENT
    }

    /// Appends the steps writing the layer's map, after ReLU, to `inputs.grid`; returns the
    /// bytes of the buffers only these steps hold.
    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64>;

    /// Work the method records inside the backward pass, on each conv's output gradient while
    /// it is live (FullGrad's bias gradients); the tap then completes the map in place of
    /// [`LayerMethod::record`]. `None` (the default): none.
    fn gradient_tap(
        &self,
        _ctx: &GpuContext,
        _forward: &Forward,
        _eigen_smooth: bool,
    ) -> Result<Option<Box<dyn GradientTap>>> {
        Ok(None)
    }

    /// Whether the map is min-max scaled at its layer before being resized (pytorch-grad-cam's
    /// `scale_cam_image` per layer); `false`: the map is made at the input size and scaled
    /// once, at the end (FullGrad).
    fn scaled_per_layer(&self) -> bool {
        true
    }
}

/// Work recorded inside the backward pass at each [`BiasTap`], in the order the plan lists them.
pub(crate) trait GradientTap {
    /// Appends the steps reading `gradient`, the value `tap.value` at the output of the bias
    /// layer `tap.layer`.
    fn record(
        &mut self,
        ctx: &GpuContext,
        steps: &mut Steps,
        forward: &Forward,
        tap: &BiasTap,
        gradient: &wgpu::Buffer,
    ) -> Result<()>;

    /// Appends, after the backward pass, the steps completing the map into `inputs.grid` (in
    /// place of [`LayerMethod::record`]); returns the bytes of the buffers only its steps hold.
    fn finish(&mut self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64>;
}

/// `ReLU(Σ_c w_c A_c)` into `inputs.grid`, for the methods that weight whole channels; with
/// eigen-smooth, the first principal component of the weighted activations w_c A_c instead of
/// their sum (pytorch-grad-cam base_cam.py `get_cam_image`). Returns its scratch bytes.
fn weighted_sum(
    steps: &mut Steps,
    ctx: &GpuContext,
    inputs: &LayerInputs,
    weights: &wgpu::Buffer,
) -> Result<u64> {
    if inputs.eigen_smooth {
        return eigen::projection(ctx, steps, inputs, eigen::Source::Weighted(weights));
    }
    combine(ctx, steps, inputs, weights, true);
    Ok(0)
}

/// `Σ_c w_c A_c` into `inputs.grid`, rectified with `relu`.
fn combine(
    ctx: &GpuContext,
    steps: &mut Steps,
    inputs: &LayerInputs,
    weights: &wgpu::Buffer,
    relu: bool,
) {
    let (pixels, channels, relu) = (inputs.pixels, inputs.channels, u32::from(relu));
    steps.push(
        ctx,
        launch::CamCombine {
            activations: inputs.activations,
            weights,
            grid: inputs.grid,
        },
        move |s| CamCombineParams {
            batch: s.images,
            pixels,
            channels,
            relu,
        },
    );
}

/// A buffer of one f32 weight per channel and image.
fn channel_weights(ctx: &GpuContext, inputs: &LayerInputs) -> Result<wgpu::Buffer> {
    ctx.storage(
        "cam_weights",
        u64::from(inputs.channels) * 4 * inputs.capacity,
    )
}

/// shaders/probe_weights.wgsl's modes: Score-CAM's softmax, Ablation-CAM's relative drop.
const SOFTMAX_MODE: u32 = 0;
const ABLATION_MODE: u32 = 1;

/// Completes a probe method (Score-CAM, Ablation-CAM): the probe loop writing each (image,
/// channel) score, the channel weights of shaders/probe_weights.wgsl `mode` from the scores, and
/// `ReLU(Σ_c w_c A_c)`. Returns the bytes of the buffers it holds.
fn probe_weighted_sum(
    ctx: &GpuContext,
    steps: &mut Steps,
    inputs: &LayerInputs,
    probe: Probe,
    mode: u32,
) -> Result<u64> {
    let main = inputs.forward;
    let model = main.model();
    let scores = channel_weights(ctx, inputs)?;
    let repeat = probe.finish(ctx, main, inputs.targets, &scores);
    let probe_bytes = repeat.gpu_bytes();
    steps.push_repeat(repeat);
    let weights = channel_weights(ctx, inputs)?;
    let (channels, classes) = (inputs.channels, model.classes);
    steps.push(
        ctx,
        launch::ProbeWeights {
            scores: &scores,
            logits: main.tensor(model.logits),
            targets: inputs.targets,
            weights: &weights,
        },
        move |s| ProbeWeightsParams {
            batch: s.images,
            channels,
            classes,
            mode,
        },
    );
    let smooth = weighted_sum(steps, ctx, inputs, &weights)?;
    Ok(scores.size() + weights.size() + probe_bytes + smooth)
}

/// shaders/cam_channel_weights.wgsl's mode for FEM, which reads no gradient.
const FEM_MODE: u32 = 3;

/// Channel weights by shaders/cam_channel_weights.wgsl `mode`, then `ReLU(Σ_c w_c A_c)`.
fn weights_by_mode(
    ctx: &GpuContext,
    steps: &mut Steps,
    inputs: &LayerInputs,
    mode: u32,
) -> Result<u64> {
    let weights = channel_weights(ctx, inputs)?;
    let (pixels, channels) = (inputs.pixels, inputs.channels);
    // FEM reads no gradient; the binding still needs a buffer.
    let gradient = match mode {
        FEM_MODE => inputs.activations,
        _ => inputs.gradient()?,
    };
    steps.push(
        ctx,
        launch::CamChannelWeights {
            activations: inputs.activations,
            gradient,
            weights: &weights,
        },
        move |s| CamChannelWeightsParams {
            batch: s.images,
            pixels,
            channels,
            mode,
        },
    );
    let smooth = weighted_sum(steps, ctx, inputs, &weights)?;
    Ok(weights.size() + smooth)
}

/// The map of shaders/cam_elementwise.wgsl `mode`, position by position.
fn elementwise(
    ctx: &GpuContext,
    steps: &mut Steps,
    inputs: &LayerInputs,
    mode: u32,
) -> Result<u64> {
    // Eigen-smooth: the principal component of the element-wise product instead of its sum.
    if inputs.eigen_smooth {
        let source = match mode {
            0 => eigen::Source::GradientTimesActivations,
            1 => eigen::Source::RectifiedProduct,
            _ => eigen::Source::RectifiedGradientTimesActivations,
        };
        return eigen::projection(ctx, steps, inputs, source);
    }
    let (pixels, channels) = (inputs.pixels, inputs.channels);
    steps.push(
        ctx,
        launch::CamElementwise {
            activations: inputs.activations,
            gradient: inputs.gradient()?,
            grid: inputs.grid,
        },
        move |s| CamElementwiseParams {
            batch: s.images,
            pixels,
            channels,
            mode,
        },
    );
    Ok(0)
}

/// torch-cam's epsilon in `_normalize`.
const TORCHCAM_EPS: f32 = 1e-8;

/// torch-cam's `_normalize` of the map in `inputs.grid`, in place: `(x − min) / (max − min +
/// 1e-8)` per image. Returns its scratch bytes.
fn torchcam_normalize(ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
    let pixels = inputs.pixels;
    let stats = ctx.storage("cam_normalise_stats", 8 * inputs.capacity)?;
    steps.push(
        ctx,
        launch::CamMinMax {
            map: inputs.grid,
            stats: &stats,
        },
        move |s| CamMinMaxParams {
            batch: s.images,
            len: pixels,
            relu: 0,
            chunks: 1,
        },
    );
    steps.push(
        ctx,
        launch::CamNormalize {
            stats: &stats,
            map: inputs.grid,
        },
        move |s| CamNormalizeParams {
            batch: s.images,
            len: pixels,
            relu: 0,
            eps: TORCHCAM_EPS,
        },
    );
    Ok(stats.size())
}

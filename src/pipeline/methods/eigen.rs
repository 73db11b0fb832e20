//! The principal-component projection shared by Eigen-CAM and EigenGradCAM (pytorch-grad-cam's
//! `get_2d_projection`, utils/svd_on_activations.py): the layer's matrix X (A, or G ⊙ A) as
//! pixels × channels, centred per channel, projected on its first right singular vector; also
//! eigen-smooth, the same projection of what a method would sum over channels. On the
//! GPU: the centring (shaders/cam_center.wgsl), the Gram matrix of X's smaller side
//! (shaders/cam_gram.wgsl), and power iteration to its top eigenvector with the projection
//! (shaders/cam_eigen.wgsl). The SVD's sign is arbitrary (LAPACK's, in the reference); ours is
//! the one whose projection is positively correlated with the per-position channel sum of X.

use super::LayerInputs;
use crate::error::{Error, Result};
use crate::gpu::kernels::{gram_side, launch, EIGEN_MAX_SIDE};
use crate::gpu::params::{CamCenterParams, CamEigenParams, CamGramParams};
use crate::gpu::GpuContext;
use crate::pipeline::steps::Steps;

/// Power iterations at most; they stop once the vector no longer moves at float32 resolution.
const MAX_ITERATIONS: u32 = 4000;

/// The matrix X projected (shaders/lib/eigen_matrix.wgsl `source`).
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    /// A (Eigen-CAM).
    Activations,
    /// G ⊙ A (EigenGradCAM; HiResCAM's eigen-smooth).
    GradientTimesActivations,
    /// w_c A_c with these per-channel weights `[batch, channels]` (eigen-smooth of the methods
    /// that weight channels).
    Weighted(&'a wgpu::Buffer),
    /// ReLU(G ⊙ A) (GradCAMElementWise's eigen-smooth).
    RectifiedProduct,
    /// ReLU(G) ⊙ A (LayerCAM's eigen-smooth).
    RectifiedGradientTimesActivations,
}

/// Appends the projection of X (`source`) on its first principal component, ReLU-ed, into
/// `inputs.grid`; returns the bytes of its scratch buffers.
pub(super) fn projection(
    ctx: &GpuContext,
    steps: &mut Steps,
    inputs: &LayerInputs,
    source: Source,
) -> Result<u64> {
    signed_projection(ctx, steps, inputs, source, true)
}

/// [`projection`], ReLU-ed with `relu` or left signed (FullGrad's eigen-smooth).
pub(super) fn signed_projection(
    ctx: &GpuContext,
    steps: &mut Steps,
    inputs: &LayerInputs,
    source: Source,
    relu: bool,
) -> Result<u64> {
    let (pixels, channels) = (inputs.pixels, inputs.channels);
    let mode = u32::from(channels < pixels);
    let side = gram_side(mode, pixels, channels);
    if side > EIGEN_MAX_SIDE {
        return Err(Error::InvalidRequest(format!(
            "the principal component of a {pixels}-position × {channels}-channel layer needs a \
             {side}×{side} Gram matrix; at most {EIGEN_MAX_SIDE} is supported: choose a later layer"
        )));
    }
    // Without the gradient the binding still needs a buffer; it is never read.
    let (gradient, source) = match source {
        Source::Activations => (inputs.activations, 0),
        Source::GradientTimesActivations => (inputs.gradient()?, 1),
        Source::Weighted(weights) => (weights, 2),
        Source::RectifiedProduct => (inputs.gradient()?, 3),
        Source::RectifiedGradientTimesActivations => (inputs.gradient()?, 4),
    };
    let centred = ctx.storage(
        "eigen_centred",
        u64::from(pixels * channels) * 4 * inputs.capacity,
    )?;
    let gram = ctx.storage("eigen_gram", u64::from(side * side) * 4 * inputs.capacity)?;
    steps.push(
        ctx,
        launch::CamCenter {
            activations: inputs.activations,
            gradient,
            centred: &centred,
        },
        move |s| CamCenterParams {
            batch: s.images,
            pixels,
            channels,
            source,
        },
    );
    steps.push(
        ctx,
        launch::CamGram {
            centred: &centred,
            gram: &gram,
        },
        move |s| CamGramParams {
            batch: s.images,
            pixels,
            channels,
            mode,
        },
    );
    steps.push(
        ctx,
        launch::CamEigen {
            gram: &gram,
            centred: &centred,
            activations: inputs.activations,
            gradient,
            grid: inputs.grid,
        },
        move |s| CamEigenParams {
            batch: s.images,
            pixels,
            channels,
            mode,
            source,
            max_iterations: MAX_ITERATIONS,
            relu: u32::from(relu),
            _pad: 0,
        },
    );
    Ok(centred.size() + gram.size())
}

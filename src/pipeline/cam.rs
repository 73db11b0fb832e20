//! The CAM on the GPU, shared by every method: per target layer the method's map at the layer's
//! resolution (after ReLU; `src/pipeline/methods/`), its normalisation and resize to the model's
//! input size; with several layers their mean; then ReLU and normalisation again, as
//! pytorch-grad-cam's `BaseCAM` with `aggregate_multi_layers`.

use super::backward::BackwardPlan;
use super::forward::{push_token_rows, Forward};
use super::methods::{GradientTap, LayerInputs, Method, Moments};
use super::smooth_grad::SmoothGrad;
use super::steps::Steps;
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{
    reduction_chunks, CamMinMaxParams, CamNormalizeParams, CamResizeParams, MINMAX_PAIRS,
};
use crate::gpu::GpuContext;

/// Appends the CAM steps of `method` for `layers` (their gradients, when the method needs them,
/// computed by `plan` into `grads`): the first layer's map at its resolution goes to `cam_grid`,
/// the final normalised map to `cam`. A method's gradient `tap`, which ran in the backward
/// pass, completes its map; `smooth`'s noisy samples feed Smooth Grad-CAM++. Returns the bytes of
/// the buffers only these steps hold.
#[allow(clippy::too_many_arguments)]
pub(super) fn push_cam(
    ctx: &GpuContext,
    method: Method,
    forward: &Forward,
    plan: &BackwardPlan,
    grads: &[wgpu::Buffer],
    layers: &[usize],
    targets: &wgpu::Buffer,
    method_batch: Option<u32>,
    eigen_smooth: bool,
    (cam_grid, cam): (&wgpu::Buffer, &wgpu::Buffer),
    steps: &mut Steps,
    mut tap: Option<&mut (dyn GradientTap + 'static)>,
    smooth: Option<&SmoothGrad>,
) -> Result<u64> {
    let model = forward.model();
    let cap = u64::from(forward.capacity());
    let cam_size = model.input_size;
    let cam_stats = ctx.storage("cam_stats", 8 * cap)?;
    let mut internal_bytes = 0;
    let count = layers.len() as u32;
    for (index, &layer) in layers.iter().enumerate() {
        let t = &model.tensors[layer];
        let (gh, gw) = model.cam_grid_of(layer);
        let (pixels, channels) = (gh * gw, t.channels);
        let own_grid;
        let grid = if index == 0 {
            cam_grid
        } else {
            own_grid = ctx.storage("cam_grid", u64::from(pixels) * 4 * cap)?;
            internal_bytes += own_grid.size();
            &own_grid
        };
        let activations = forward.tensor(model.activations_of(layer));
        let gradient = plan.slot_of_tensor(layer).and_then(|slot| grads.get(slot));
        // A token layer's CAM reads its patch tokens laid on their grid, the prefix tokens
        // dropped (pytorch-grad-cam's ViT `reshape_transform`).
        let moments = smooth.map(|s| s.moments(index));
        let on_grid;
        let moments_on_grid;
        let (activations, gradient, moments) = match model.token_grid_of(layer) {
            Some(g) => {
                let gather = |name: &str, from: &wgpu::Buffer, steps: &mut Steps| {
                    let to = ctx.storage(name, u64::from(pixels * channels) * 4 * cap)?;
                    push_token_rows(
                        ctx,
                        steps,
                        (from, &to, None),
                        channels,
                        (t.width, pixels),
                        (g.prefix, 0),
                        pixels,
                    );
                    Ok::<_, Error>(to)
                };
                let a = gather("token_grid_activations", activations, steps)?;
                let g = match gradient {
                    Some(from) => Some(gather("token_grid_gradient", from, steps)?),
                    None => None,
                };
                internal_bytes += a.size() + g.as_ref().map_or(0, wgpu::Buffer::size);
                on_grid = (a, g);
                let moments = match moments {
                    Some(m) => {
                        let clean = gather("token_grid_clean_activations", m.clean, steps)?;
                        let squares = gather("token_grid_gradient_squares", m.squares, steps)?;
                        let cubes = gather("token_grid_gradient_cubes", m.cubes, steps)?;
                        internal_bytes += clean.size() + squares.size() + cubes.size();
                        moments_on_grid = (clean, squares, cubes);
                        Some(Moments {
                            clean: &moments_on_grid.0,
                            squares: &moments_on_grid.1,
                            cubes: &moments_on_grid.2,
                            samples: m.samples,
                        })
                    }
                    None => None,
                };
                (&on_grid.0, on_grid.1.as_ref(), moments)
            }
            None => (activations, gradient, moments),
        };
        let inputs = LayerInputs {
            forward,
            layer,
            targets,
            method_batch,
            eigen_smooth,
            activations,
            gradient,
            pixels,
            channels,
            capacity: cap,
            grid,
            moments,
        };
        // A method with a gradient tap completes its map with it.
        internal_bytes += match tap.as_deref_mut() {
            Some(tap) => tap.finish(ctx, steps, &inputs)?,
            None => method.unit().record(ctx, steps, &inputs)?,
        };
        let grid_stats = ctx.storage("cam_grid_stats", 8 * cap)?;
        internal_bytes += grid_stats.size();
        let scaled = method.unit().scaled_per_layer();
        if scaled {
            steps.push(
                ctx,
                launch::CamMinMax {
                    map: grid,
                    stats: &grid_stats,
                },
                move |s| CamMinMaxParams {
                    batch: s.images,
                    len: pixels,
                    relu: 0,
                    chunks: 1,
                },
            );
        }
        let layer = index as u32;
        let normalise = u32::from(scaled);
        steps.push(
            ctx,
            launch::CamResize {
                src: grid,
                stats: &grid_stats,
                dst: cam,
            },
            move |s| CamResizeParams {
                batch: s.images,
                in_h: gh,
                in_w: gw,
                out_h: cam_size,
                out_w: cam_size,
                layer,
                layers: count,
                normalise,
                dst_channels: 1,
                dst_channel: 0,
                _pad: [0; 2],
            },
        );
    }
    // The map's minimum and maximum over several workgroups per image, then their pairs'.
    let len = cam_size * cam_size;
    let chunks = reduction_chunks(len);
    let partial = ctx.storage("cam_partial_stats", 8 * u64::from(chunks) * cap)?;
    internal_bytes += partial.size();
    steps.push(
        ctx,
        launch::CamMinMax {
            map: cam,
            stats: &partial,
        },
        move |s| CamMinMaxParams {
            batch: s.images,
            len,
            relu: 1,
            chunks,
        },
    );
    steps.push(
        ctx,
        launch::CamMinMax {
            map: &partial,
            stats: &cam_stats,
        },
        move |s| CamMinMaxParams {
            batch: s.images,
            len: chunks,
            relu: MINMAX_PAIRS,
            chunks: 1,
        },
    );
    steps.push(
        ctx,
        launch::CamNormalize {
            stats: &cam_stats,
            map: cam,
        },
        move |s| CamNormalizeParams {
            batch: s.images,
            len: cam_size * cam_size,
            relu: 1,
            eps: 1e-7,
        },
    );

    Ok(internal_bytes + cam_stats.size())
}

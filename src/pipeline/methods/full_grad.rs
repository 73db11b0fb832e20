//! FullGrad (Srinivas and Fleuret; pytorch-grad-cam's `FullGrad`): at the input image, the sum of
//! - |∂T/∂x ⊙ x| for each channel of the normalised input x, and
//! - for every bias layer (each module whose exact type is `nn.Conv2d` or `nn.BatchNorm2d` with a
//!   bias: [`Conv::full_grad_biases`](crate::model::Conv), and the BatchNorms that follow no
//!   conv, [`Elementwise::full_grad_bias`](crate::model::Elementwise)), Σ_c |b_c ∂T/∂z_c| over
//!   its channels, z the module's output,
//!
//! each channel's map min-max scaled (1e-7) and resized to the input size, then one final
//! min-max scaling of the sum, with no ReLU. Target layers do not apply.
//!
//! The backward pass runs to the input; each bias layer's output gradient is read while it is
//! live ([`GradientTap`] at each [`BiasTap`]): per bias, one kernel takes each channel's extremes
//! (shaders/full_grad_stats.wgsl), one sums the scaled channels at the layer's resolution
//! (shaders/full_grad_sum.wgsl), and the sum is resized into the map and added to it
//! (shaders/cam_resize.wgsl, unscaled): resizing is linear, so this equals the reference's sum of
//! resized channels. The input's channels are added last, at the input size.
//!
//! With eigen-smooth, as the reference: each of those maps (the three input channels, and each
//! bias layer's sum at the input size) is min-max scaled again and resized to 1/8 of the input
//! side, a column of a positions × maps matrix; the map is that matrix's projection on its
//! first principal component (the Eigen-CAM kernels, not ReLU-ed), min-max scaled and resized
//! back to the input size.

use super::eigen::{signed_projection, Source};
use super::{GradientTap, LayerInputs, LayerMethod, Needs};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{CamMinMaxParams, CamResizeParams, FullGradParams};
use crate::gpu::GpuContext;
use crate::model::Op;
use crate::pipeline::backward::{BiasLayer, BiasTap};
use crate::pipeline::forward::Forward;
use crate::pipeline::steps::Steps;

pub(super) struct FullGrad;

/// shaders/lib/full_grad.wgsl's modes.
const BIAS_MODE: u32 = 0;
const INPUT_MODE: u32 = 1;

impl LayerMethod for FullGrad {
    fn needs(&self) -> Needs {
        Needs::INPUT_GRADIENT
    }

    fn scaled_per_layer(&self) -> bool {
        false
    }

    fn gradient_tap(
        &self,
        ctx: &GpuContext,
        forward: &Forward,
        eigen_smooth: bool,
    ) -> Result<Option<Box<dyn GradientTap>>> {
        Ok(Some(Box::new(BiasGradients::new(
            ctx,
            forward,
            eigen_smooth,
        )?)))
    }

    /// Never called: the gradient tap completes the map.
    fn record(&self, _: &GpuContext, _: &mut Steps, _: &LayerInputs) -> Result<u64> {
        Err(Error::InvalidRequest(
            "FullGrad's map is made by its gradient tap".into(),
        ))
    }
}

/// Appends the steps of one map's parts of FullGrad: each channel's extremes of the value
/// `params(.., 0)` describes, then the scaled channels `first..first + count` summed into `map`
/// (added with `accumulate`).
#[allow(clippy::too_many_arguments)]
fn push_sum(
    ctx: &GpuContext,
    steps: &mut Steps,
    (gradient, forward, factors): (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
    stats: &wgpu::Buffer,
    map: &wgpu::Buffer,
    params: FullGradParams,
    with_stats: bool,
) {
    if with_stats {
        steps.push(
            ctx,
            launch::FullGradStats {
                gradient,
                forward,
                factors,
                stats,
            },
            move |s| FullGradParams {
                batch: s.images,
                ..params
            },
        );
    }
    steps.push(
        ctx,
        launch::FullGradSum {
            gradient,
            forward,
            factors,
            stats,
            map,
        },
        move |s| FullGradParams {
            batch: s.images,
            ..params
        },
    );
}

/// `dst` (channel `channel` of `channels`) = `src` (`from`² per image) resized to `to`², scaled
/// by `stats` first when given.
#[allow(clippy::too_many_arguments)]
fn push_resize(
    ctx: &GpuContext,
    steps: &mut Steps,
    src: &wgpu::Buffer,
    stats: Option<&wgpu::Buffer>,
    dst: &wgpu::Buffer,
    (from, to): ((u32, u32), u32),
    add: bool,
    (channels, channel): (u32, u32),
) {
    let normalise = u32::from(stats.is_some());
    steps.push(
        ctx,
        launch::CamResize {
            src,
            // Unread when not scaling; the binding still needs a buffer.
            stats: stats.unwrap_or(src),
            dst,
        },
        move |s| CamResizeParams {
            batch: s.images,
            in_h: from.0,
            in_w: from.1,
            out_h: to,
            out_w: to,
            // Layer 1 of 1 adds to the map, layer 0 of 1 writes it; neither divides.
            layer: u32::from(add),
            layers: 1,
            normalise,
            dst_channels: channels,
            dst_channel: channel,
            _pad: [0; 2],
        },
    );
}

/// Each image's (min, max) of `map` (`len` values per image) into `stats`.
fn push_minmax(
    ctx: &GpuContext,
    steps: &mut Steps,
    map: &wgpu::Buffer,
    stats: &wgpu::Buffer,
    len: u32,
) {
    steps.push(ctx, launch::CamMinMax { map, stats }, move |s| {
        CamMinMaxParams {
            batch: s.images,
            len,
            relu: 0,
            chunks: 1,
        }
    });
}

/// FullGrad's work: the bias layers' part recorded conv by conv inside the backward pass, then
/// the input's part and (with eigen-smooth) the projection.
struct BiasGradients {
    /// Each channel's (min, max), `[batch, channels]`, reused by every bias.
    stats: wgpu::Buffer,
    /// One bias layer's sum at its resolution, `[batch, h × w]`, reused by every bias (and with
    /// eigen-smooth by each input channel).
    layer_map: wgpu::Buffer,
    /// The biases' factors, uploaded once.
    factors: Vec<wgpu::Buffer>,
    /// The maps summed so far (without eigen-smooth, into the map; with it, the matrix's
    /// columns filled).
    maps: u32,
    /// Side of the map: the model's input size.
    size: u32,
    /// With eigen-smooth, its buffers.
    eigen: Option<Eigen>,
    /// Without eigen-smooth: the bias layers' maps summed at the input size, f32
    /// `[batch, size²]`.
    sum: wgpu::Buffer,
}

/// Eigen-smooth's buffers.
struct Eigen {
    /// One map at the input size, `[batch, size²]`, and its (min, max) `[batch]`.
    full: wgpu::Buffer,
    full_stats: wgpu::Buffer,
    /// The maps at 1/8 of the side, `[batch, side², columns]`.
    matrix: wgpu::Buffer,
    side: u32,
    columns: u32,
}

impl BiasGradients {
    fn new(ctx: &GpuContext, forward: &Forward, eigen_smooth: bool) -> Result<Self> {
        let model = forward.model();
        // A BatchNorm that follows no conv (DenseNet's pre-activation ones) is a bias layer too:
        // its gradient is read at the elementwise op's output, masked by its activation.
        let standalone = model
            .elementwise
            .iter()
            .filter(|e| e.full_grad_bias.is_some());
        if let Some(e) = standalone
            .clone()
            .find(|e| !e.activation.derivative_from_output())
        {
            return Err(Error::UnsupportedModel {
                path: model.source.clone(),
                reason: format!(
                    "FullGrad: the BatchNorm `{}` is followed by {:?}, whose derivative its \
                     output does not give; only ReLU and ReLU6 are supported there",
                    e.name, e.activation
                ),
            });
        }
        let biases: u32 = model
            .convs
            .iter()
            .map(|c| c.full_grad_biases.len() as u32)
            .sum::<u32>()
            + standalone.count() as u32;
        if biases == 0 {
            return Err(Error::UnsupportedModel {
                path: model.source.clone(),
                reason: "FullGrad needs a BatchNorm or a conv with a bias; the network has none"
                    .into(),
            });
        }
        let cap = u64::from(forward.capacity());
        let outputs = model.ops.iter().filter_map(|op| match *op {
            Op::Conv { output, .. } => Some(&model.tensors[output]),
            Op::Elementwise { op, output, .. }
                if model.elementwise[op].full_grad_bias.is_some() =>
            {
                Some(&model.tensors[output])
            }
            _ => None,
        });
        let (pixels, channels) = outputs.fold((1, 1), |(p, c), t| {
            (
                p.max(u64::from(t.height * t.width)),
                c.max(u64::from(t.channels)),
            )
        });
        let size = model.input_size;
        let full_len = u64::from(size * size) * 4 * cap;
        let eigen = if eigen_smooth {
            // The reference resizes to (width // 8, height // 8).
            let side = size / 8;
            let columns = biases + 3;
            Some(Eigen {
                full: ctx.storage("full_grad_map", full_len)?,
                full_stats: ctx.storage("full_grad_map_stats", 8 * cap)?,
                matrix: ctx.storage(
                    "full_grad_matrix",
                    u64::from(side * side * columns) * 4 * cap,
                )?,
                side,
                columns,
            })
        } else {
            None
        };
        Ok(Self {
            stats: ctx.storage("full_grad_stats", 8 * channels.max(3) * cap)?,
            // With eigen-smooth it also holds each input channel's map, at the input size.
            layer_map: ctx.storage(
                "full_grad_layer",
                4 * pixels.max(if eigen_smooth {
                    u64::from(size * size)
                } else {
                    0
                }) * cap,
            )?,
            factors: Vec::new(),
            maps: 0,
            size,
            sum: ctx.storage("full_grad_sum", if eigen_smooth { 16 } else { full_len })?,
            eigen,
        })
    }

    /// Adds the map in `src` (`from`² per image, unscaled) to the sum: without eigen-smooth
    /// resized into the sum; with it resized to the input size, scaled, and resized into the
    /// matrix's next column.
    fn add_map(
        &mut self,
        ctx: &GpuContext,
        steps: &mut Steps,
        src: &wgpu::Buffer,
        from: (u32, u32),
    ) {
        let size = self.size;
        match &self.eigen {
            None => push_resize(
                ctx,
                steps,
                src,
                None,
                &self.sum,
                (from, size),
                self.maps > 0,
                (1, 0),
            ),
            Some(e) => {
                // A map already at the input size is resized to itself: exactly a copy.
                push_resize(ctx, steps, src, None, &e.full, (from, size), false, (1, 0));
                push_minmax(ctx, steps, &e.full, &e.full_stats, size * size);
                push_resize(
                    ctx,
                    steps,
                    &e.full,
                    Some(&e.full_stats),
                    &e.matrix,
                    ((size, size), e.side),
                    false,
                    (e.columns, self.maps),
                );
            }
        }
        self.maps += 1;
    }
}

impl GradientTap for BiasGradients {
    fn record(
        &mut self,
        ctx: &GpuContext,
        steps: &mut Steps,
        forward: &Forward,
        tap: &BiasTap,
        gradient: &wgpu::Buffer,
    ) -> Result<()> {
        let model = forward.model();
        let (name, biases, activation) = match tap.layer {
            BiasLayer::Conv(i) => {
                let conv = &model.convs[i];
                (&conv.name, &conv.full_grad_biases[..], conv.activation)
            }
            BiasLayer::Elementwise(i) => {
                let e = &model.elementwise[i];
                let bias = e.full_grad_bias.as_ref().expect("a BatchNorm's tap");
                (&e.name, std::slice::from_ref(bias), e.activation)
            }
        };
        let t = &model.tensors[tap.output];
        let (h, w, channels) = (t.height, t.width, t.channels);
        let output = forward.tensor(tap.output);
        for bias in biases {
            let factors = ctx.storage_with(&format!("full_grad.{name}"), bias);
            let params = FullGradParams {
                batch: 0,
                pixels: h * w,
                channels,
                mode: BIAS_MODE,
                activation: activation as u32,
                accumulate: 0,
                first_channel: 0,
                channel_count: channels,
            };
            let layer_map = self.layer_map.clone();
            push_sum(
                ctx,
                steps,
                (gradient, output, &factors),
                &self.stats,
                &layer_map,
                params,
                true,
            );
            self.add_map(ctx, steps, &layer_map, (h, w));
            self.factors.push(factors);
        }
        Ok(())
    }

    /// The input's channels |∂T/∂x ⊙ x|: added to the bias layers' sum, which goes to
    /// `inputs.grid`; with eigen-smooth, three more columns, then the projection.
    fn finish(&mut self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        let gradient = inputs.gradient()?;
        let x = inputs.activations;
        let (pixels, channels, size) = (inputs.pixels, inputs.channels, self.size);
        let params = |first_channel, channel_count, accumulate| FullGradParams {
            batch: 0,
            pixels,
            channels,
            mode: INPUT_MODE,
            activation: 0,
            accumulate,
            first_channel,
            channel_count,
        };
        // The factors binding is unused for the input; it still needs a buffer.
        let sources = (gradient, x, x);
        let mut bytes = self.stats.size()
            + self.layer_map.size()
            + self.sum.size()
            + self.factors.iter().map(wgpu::Buffer::size).sum::<u64>();
        let Some(e) = &self.eigen else {
            // The sum so far, plus the input's channels, into the grid.
            push_resize(
                ctx,
                steps,
                &self.sum,
                None,
                inputs.grid,
                ((size, size), size),
                false,
                (1, 0),
            );
            push_sum(
                ctx,
                steps,
                sources,
                &self.stats,
                inputs.grid,
                params(0, channels, 1),
                true,
            );
            return Ok(bytes);
        };
        let (side, columns) = (e.side, e.columns);
        bytes += e.full.size() + e.full_stats.size() + e.matrix.size();
        // Each input channel on its own: a column each.
        let layer_map = self.layer_map.clone();
        for c in 0..channels {
            push_sum(
                ctx,
                steps,
                sources,
                &self.stats,
                &layer_map,
                params(c, 1, 0),
                c == 0,
            );
            self.add_map(ctx, steps, &layer_map, (size, size));
        }
        let e = self.eigen.as_ref().expect("eigen-smooth buffers");
        let projection = ctx.storage(
            "full_grad_projection",
            u64::from(side * side) * 4 * inputs.capacity,
        )?;
        let stats = ctx.storage("full_grad_projection_stats", 8 * inputs.capacity)?;
        bytes += projection.size() + stats.size();
        bytes += signed_projection(
            ctx,
            steps,
            &LayerInputs {
                activations: &e.matrix,
                gradient: None,
                pixels: side * side,
                channels: columns,
                grid: &projection,
                ..*inputs
            },
            Source::Activations,
            false,
        )?;
        // scale_accross_batch_and_channels back to the input size.
        push_minmax(ctx, steps, &projection, &stats, side * side);
        push_resize(
            ctx,
            steps,
            &projection,
            Some(&stats),
            inputs.grid,
            ((side, side), size),
            false,
            (1, 0),
        );
        Ok(bytes)
    }
}

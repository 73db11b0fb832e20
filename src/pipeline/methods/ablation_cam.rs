//! Ablation-CAM (pytorch-grad-cam `AblationCAM`, ablation_cam.py and ablation_layer.py): the
//! network after the layer runs once per channel with that channel ablated (set to 0, or to the
//! reference's large negative value when the layer's activations are not bounded below by 0);
//! w_k = (s0 − s_k) / s0 with s0 the unablated target logit. Only the ops after the layer run,
//! as probe batches on the GPU (`src/pipeline/probe.rs`), with copies of any skip connection
//! that crosses the layer; like the reference, each ablated score comes from a float32 forward
//! pass and the difference is taken in float32. No backward pass.

use super::{probe_weighted_sum, LayerInputs, LayerMethod, Needs, ABLATION_MODE};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{AblateParams, CamMinMaxParams};
use crate::gpu::GpuContext;
use crate::pipeline::probe::{default_rows, Probe};
use crate::pipeline::steps::Steps;

pub(super) struct AblationCam;

impl LayerMethod for AblationCam {
    fn needs(&self) -> Needs {
        Needs::ACTIVATIONS
    }

    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        let main = inputs.forward;
        let model = main.model();
        // The ablated tensor is the layer's own: at a transformer's token layer every token,
        // the prefix tokens too, as the reference's `AblationLayerVit` ablates a channel of the
        // untransformed activations (the map then weighs the patch tokens' grid).
        let layer = &model.tensors[inputs.layer];
        let (pixels, channels) = (layer.height * layer.width, inputs.channels);
        let activations = main.tensor(model.activations_of(inputs.layer));
        let first_op = model
            .ops
            .iter()
            .position(|op| op.output() == inputs.layer)
            .map(|i| i + 1)
            .filter(|&i| i < model.ops.len())
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                "Ablation-CAM needs a layer that the rest of the network reads; `{}` is not one",
                model.tensors[inputs.layer].name
            ))
            })?;
        // Each image's smallest activation decides its ablation value.
        let stats = ctx.storage("ablation_stats", 8 * inputs.capacity)?;
        steps.push(
            ctx,
            launch::CamMinMax {
                map: activations,
                stats: &stats,
            },
            move |s| CamMinMaxParams {
                batch: s.images,
                len: pixels * channels,
                relu: 0,
                chunks: 1,
            },
        );
        let rows = inputs
            .method_batch
            .unwrap_or_else(|| default_rows(ctx, main, first_op));
        let mut probe = Probe::new(ctx, main, first_op, rows, channels)?;
        let (cursor, ablated) = (probe.cursor().clone(), probe.tensor(inputs.layer).clone());
        probe.prepare().push(
            ctx,
            launch::Ablate {
                cursor: &cursor,
                activations,
                stats: &stats,
                ablated: &ablated,
            },
            move |s| AblateParams {
                rows,
                channels,
                images: s.images,
                pixels,
            },
        );
        probe.broadcast_live_ins(ctx, main, &[inputs.layer]);
        Ok(stats.size() + probe_weighted_sum(ctx, steps, inputs, probe, ABLATION_MODE)?)
    }
}

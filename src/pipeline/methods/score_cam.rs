//! Score-CAM (pytorch-grad-cam `ScoreCAM`, score_cam.py): each channel of the layer, upsampled to
//! the input with align_corners=True and scaled to [0, 1], masks the normalised input; the
//! target logit of each masked image is the channel's score, and the weights are the softmax of
//! the scores over the channels. One forward pass of the whole network per channel and image,
//! run as probe batches on the GPU (`src/pipeline/probe.rs`); no backward pass.

use super::{probe_weighted_sum, LayerInputs, LayerMethod, Needs, SOFTMAX_MODE};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{ScoreMaskParams, ScoreMinMaxParams};
use crate::gpu::GpuContext;
use crate::model::Op;
use crate::pipeline::probe::{default_rows, Probe};
use crate::pipeline::steps::Steps;

pub(super) struct ScoreCam;

impl LayerMethod for ScoreCam {
    fn needs(&self) -> Needs {
        Needs::ACTIVATIONS
    }

    fn record(&self, ctx: &GpuContext, steps: &mut Steps, inputs: &LayerInputs) -> Result<u64> {
        let main = inputs.forward;
        let model = main.model();
        // A token layer's map is its patch grid (inputs.activations holds the patch tokens).
        let (in_h, in_w) = model.cam_grid_of(inputs.layer);
        let channels = inputs.channels;
        let input = &model.tensors[model.input];
        let size = input.height;
        let stats = ctx.storage("score_stats", u64::from(channels) * 8 * inputs.capacity)?;
        steps.push(
            ctx,
            launch::ScoreMinMax {
                activations: inputs.activations,
                stats: &stats,
            },
            move |s| ScoreMinMaxParams {
                items: s.images * channels,
                channels,
                in_h,
                in_w,
                size,
                _pad: [0; 3],
            },
        );
        // The masked images enter right after preprocessing.
        let first_op = model
            .ops
            .iter()
            .position(|op| matches!(op, Op::Preprocess { .. }))
            .map(|i| i + 1)
            .ok_or_else(|| Error::UnsupportedModel {
                path: model.source.clone(),
                reason: "the graph has no preprocessing op".into(),
            })?;
        let rows = inputs
            .method_batch
            .unwrap_or_else(|| default_rows(ctx, main, first_op));
        let mut probe = Probe::new(ctx, main, first_op, rows, channels)?;
        let (cursor, masked) = (probe.cursor().clone(), probe.tensor(model.input).clone());
        probe.prepare().push(
            ctx,
            launch::ScoreMask {
                cursor: &cursor,
                activations: inputs.activations,
                stats: &stats,
                input: main.tensor(model.input),
                masked: &masked,
            },
            move |s| ScoreMaskParams {
                rows,
                channels,
                images: s.images,
                in_h,
                in_w,
                size,
                _pad: [0; 2],
            },
        );
        probe.broadcast_live_ins(ctx, main, &[model.input]);
        Ok(stats.size() + probe_weighted_sum(ctx, steps, inputs, probe, SOFTMAX_MODE)?)
    }
}

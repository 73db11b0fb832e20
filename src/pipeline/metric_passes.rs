//! The GPU work of the faithfulness metrics (src/metrics.rs), after the CAM: the target's score
//! on the clean input, then per perturbation the metrics need, the perturbed input written from
//! the preprocessed input kept aside and the final CAM (shaders/metric_perturb.wgsl), the forward
//! pass on it and the target's score (shaders/target_score.wgsl) into its column of a
//! `[batch, 1 + perturbations]` buffer, which is read back with the batch's results. The clean
//! input's logits are kept aside and restored, so that what is read back besides the scores
//! (logits, class, score) is the clean input's.

use super::forward::Forward;
use super::steps::{BatchShape, Steps};
use crate::error::Result;
use crate::gpu::kernels::launch;
use crate::gpu::params::{MetricPerturbParams, TargetScoreParams};
use crate::gpu::GpuContext;
use crate::metrics::{Metric, Perturbation, TargetScore};

/// The metrics' buffers and steps around the shared pipeline.
pub(super) struct MetricPasses {
    metrics: Vec<Metric>,
    perturbations: Vec<Perturbation>,
    pristine: wgpu::Buffer,
    clean_logits: wgpu::Buffer,
    /// `[batch, 1 + perturbations]`: the clean input's score, then each perturbation's.
    scores: wgpu::Buffer,
    /// The clean input's score.
    clean: Steps,
    /// Per perturbation: its input, then its score.
    perturb: Vec<Steps>,
    score: Vec<Steps>,
}

impl MetricPasses {
    /// For `forward`'s model, the final CAM `cam` (`[batch, S, S]`) and the explained classes
    /// `targets`.
    pub(super) fn new(
        ctx: &GpuContext,
        forward: &Forward,
        (cam, targets): (&wgpu::Buffer, &wgpu::Buffer),
        metrics: &[Metric],
        target_score: TargetScore,
    ) -> Result<Self> {
        let model = forward.model();
        let cap = u64::from(forward.capacity());
        let size = model.input_size;
        let mut perturbations: Vec<Perturbation> =
            metrics.iter().map(|m| m.perturbation()).collect();
        perturbations.sort();
        perturbations.dedup();
        let slots = 1 + perturbations.len() as u32;
        let input_len = model.tensors[model.input].len() as u64;
        let pristine = ctx.storage("metric_pristine", input_len * 4 * cap)?;
        let clean_logits = ctx.storage(
            "metric_clean_logits",
            model.tensors[model.logits].len() as u64 * 4 * cap,
        )?;
        let scores = ctx.storage("metric_scores", u64::from(slots) * 4 * cap)?;
        let (classes, softmax) = (
            model.classes,
            u32::from(target_score == TargetScore::Softmax),
        );
        let logits = forward.tensor(model.logits);
        let score_steps = |slot: u32| {
            let mut steps = Steps::new("metrics");
            steps.push(
                ctx,
                launch::TargetScore {
                    logits,
                    targets,
                    scores: &scores,
                },
                move |s| TargetScoreParams {
                    batch: s.images,
                    classes,
                    slots,
                    slot,
                    softmax,
                    _pad: [0; 3],
                },
            );
            steps
        };
        let clean = score_steps(0);
        let score = (1..slots).map(score_steps).collect();
        let input = forward.tensor(model.input);
        let perturb = perturbations
            .iter()
            .map(|p| {
                let mode = match p {
                    Perturbation::CamMult => 0,
                };
                let mut steps = Steps::new("metrics");
                steps.push(
                    ctx,
                    launch::MetricPerturb {
                        pristine: &pristine,
                        cam,
                        input,
                    },
                    move |s| MetricPerturbParams {
                        batch: s.images,
                        size,
                        mode,
                        _pad: 0,
                    },
                );
                steps
            })
            .collect();
        Ok(Self {
            metrics: metrics.to_vec(),
            perturbations,
            pristine,
            clean_logits,
            scores,
            clean,
            perturb,
            score,
        })
    }

    /// Sets the steps' parameters for the batch.
    pub(super) fn configure(&mut self, ctx: &GpuContext, shape: BatchShape) {
        self.clean.configure(ctx, shape);
        for steps in self.perturb.iter_mut().chain(&mut self.score) {
            steps.configure(ctx, shape);
        }
    }

    /// Bytes of its buffers.
    pub(super) fn gpu_bytes(&self) -> u64 {
        self.pristine.size() + self.clean_logits.size() + self.scores.size()
    }

    /// Kernel launches per batch besides the forward passes, and the forward passes.
    pub(super) fn launches(&self) -> (usize, usize) {
        (1 + 2 * self.perturbations.len(), self.perturbations.len())
    }

    /// The scores buffer and its bytes for a batch of `images`, for the readback.
    pub(super) fn scores(&self, images: u32) -> (&wgpu::Buffer, u64) {
        (&self.scores, u64::from(images) * self.slots() as u64 * 4)
    }

    /// Columns of the scores buffer.
    pub(super) fn slots(&self) -> usize {
        1 + self.perturbations.len()
    }

    /// Each metric's value for one image from its row of the scores buffer.
    pub(super) fn values(&self, row: &[f32]) -> Vec<(Metric, f32)> {
        self.metrics
            .iter()
            .map(|&m| {
                let slot = self
                    .perturbations
                    .iter()
                    .position(|&p| p == m.perturbation())
                    .expect("every metric's perturbation runs");
                (m, m.value(row[0], row[1 + slot]))
            })
            .collect()
    }

    /// Records the copy of the preprocessed input, before anything else runs on it.
    pub(super) fn keep_input(&self, encoder: &mut wgpu::CommandEncoder, forward: &Forward) {
        let model = forward.model();
        let bytes = model.tensors[model.input].len() as u64 * 4 * u64::from(forward.batch());
        encoder.copy_buffer_to_buffer(forward.tensor(model.input), 0, &self.pristine, 0, bytes);
    }

    /// Records, after the CAM: the clean score, the clean logits kept, per perturbation its input,
    /// `forward_pass` and its score; then the clean logits restored.
    pub(super) fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        forward: &Forward,
        mut forward_pass: impl FnMut(&mut wgpu::CommandEncoder),
    ) {
        let model = forward.model();
        let logits = forward.tensor(model.logits);
        let bytes = model.tensors[model.logits].len() as u64 * 4 * u64::from(forward.batch());
        self.clean.record(ctx, encoder);
        encoder.copy_buffer_to_buffer(logits, 0, &self.clean_logits, 0, bytes);
        for (perturb, score) in self.perturb.iter().zip(&self.score) {
            perturb.record(ctx, encoder);
            forward_pass(encoder);
            score.record(ctx, encoder);
        }
        encoder.copy_buffer_to_buffer(&self.clean_logits, 0, logits, 0, bytes);
    }
}

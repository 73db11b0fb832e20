//! The GPU work of the faithfulness metrics (src/metrics.rs), after the CAM: the target's score
//! on the clean input; for deletion and insertion, each position's rank by the CAM (a bitonic
//! sort of (value, position) pairs per image, shaders/rank_*.wgsl); then per perturbation the
//! metrics need, the perturbed input written from the preprocessed input kept aside, the final
//! CAM and the ranks (shaders/metric_perturb.wgsl), the forward pass on it and the target's score
//! (shaders/target_score.wgsl) into its column of a `[batch, 1 + perturbations]` buffer, which is
//! read back with the batch's results. The clean input's logits are kept aside and restored, so
//! that what is read back besides the scores (logits, class, score) is the clean input's.

use super::forward::Forward;
use super::steps::{BatchShape, Steps};
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{MetricPerturbParams, RankParams, TargetScoreParams};
use crate::gpu::GpuContext;
use crate::metrics::{Metric, Perturbation, Point, TargetScore};

/// The metrics' buffers and steps around the shared pipeline.
pub(super) struct MetricPasses {
    /// Each metric with the columns of the scores buffer its points read (0: the clean input).
    metrics: Vec<(Metric, Vec<usize>)>,
    perturbations: Vec<Perturbation>,
    /// Positions of the model's input, and the deletion and insertion steps.
    positions: u32,
    steps: u32,
    /// With deletion or insertion: the sort's pairs and the ranks, and the steps making them.
    ranking: Option<(wgpu::Buffer, wgpu::Buffer, Steps)>,
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
    /// `targets`; deletion and insertion in `steps` steps.
    pub(super) fn new(
        ctx: &GpuContext,
        forward: &Forward,
        (cam, targets): (&wgpu::Buffer, &wgpu::Buffer),
        metrics: &[Metric],
        (target_score, steps): (TargetScore, u32),
    ) -> Result<Self> {
        let curves = metrics
            .iter()
            .any(|m| matches!(m, Metric::DeletionAuc | Metric::InsertionAuc));
        if curves && steps == 0 {
            return Err(Error::InvalidRequest(
                "deletion and insertion need at least 1 step".into(),
            ));
        }
        let model = forward.model();
        let cap = u64::from(forward.capacity());
        let size = model.input_size;
        let positions = size * size;
        let mut perturbations: Vec<Perturbation> = metrics
            .iter()
            .flat_map(|m| m.points(positions, steps))
            .filter_map(|p| match p {
                Point::Clean => None,
                Point::Perturbed(p) => Some(p),
            })
            .collect();
        perturbations.sort();
        perturbations.dedup();
        let ranked = perturbations
            .iter()
            .any(|p| matches!(p, Perturbation::Ranked { .. }));
        let ranking = if ranked {
            Some(ranking(ctx, cam, positions, cap)?)
        } else {
            None
        };
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
        // Each metric's points as columns of the scores buffer, found once.
        let columns = metrics
            .iter()
            .map(|&m| {
                let points = m
                    .points(positions, steps)
                    .into_iter()
                    .map(|point| match point {
                        Point::Clean => 0,
                        Point::Perturbed(p) => {
                            1 + perturbations
                                .binary_search(&p)
                                .expect("every metric's perturbations run")
                        }
                    });
                (m, points.collect())
            })
            .collect();
        let input = forward.tensor(model.input);
        // Modes other than ranked read no ranks; the binding still needs a buffer.
        let ranks = ranking.as_ref().map_or(cam, |r| &r.1);
        let perturb = perturbations
            .iter()
            .map(|p| {
                let (mode, count, input_inside) = match *p {
                    Perturbation::CamMult => (0, 0, 0),
                    Perturbation::Baseline => (1, 0, 0),
                    Perturbation::Ranked {
                        count,
                        input_inside,
                    } => (2, count, u32::from(input_inside)),
                };
                let mut steps = Steps::new("metrics");
                steps.push(
                    ctx,
                    launch::MetricPerturb {
                        pristine: &pristine,
                        cam,
                        ranks,
                        input,
                    },
                    move |s| MetricPerturbParams {
                        batch: s.images,
                        size,
                        mode,
                        count,
                        input_inside,
                        _pad: [0; 3],
                    },
                );
                steps
            })
            .collect();
        Ok(Self {
            metrics: columns,
            perturbations,
            positions,
            steps,
            ranking,
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
        if let Some((_, _, steps)) = &mut self.ranking {
            steps.configure(ctx, shape);
        }
        for steps in self.perturb.iter_mut().chain(&mut self.score) {
            steps.configure(ctx, shape);
        }
    }

    /// Bytes of its buffers.
    pub(super) fn gpu_bytes(&self) -> u64 {
        let ranking = self
            .ranking
            .as_ref()
            .map_or(0, |(pairs, ranks, _)| pairs.size() + ranks.size());
        self.pristine.size() + self.clean_logits.size() + self.scores.size() + ranking
    }

    /// Kernel launches per batch besides the forward passes (the clean score, the ranking, each
    /// perturbation's input and score), and the forward passes.
    pub(super) fn launches(&self) -> (usize, usize) {
        let ranking = self.ranking.as_ref().map_or(0, |(_, _, s)| s.len());
        let (perturb, score): (usize, usize) = (
            self.perturb.iter().map(Steps::len).sum(),
            self.score.iter().map(Steps::len).sum(),
        );
        (
            self.clean.len() + ranking + perturb + score,
            self.perturbations.len(),
        )
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
            .map(|(m, columns)| {
                let scores: Vec<f32> = columns.iter().map(|&c| row[c]).collect();
                (*m, m.value(&scores, self.positions, self.steps))
            })
            .collect()
    }

    /// Records the copy of the preprocessed input, before anything else runs on it.
    pub(super) fn keep_input(&self, encoder: &mut wgpu::CommandEncoder, forward: &Forward) {
        let model = forward.model();
        let bytes = model.tensors[model.input].len() as u64 * 4 * u64::from(forward.batch());
        encoder.copy_buffer_to_buffer(forward.tensor(model.input), 0, &self.pristine, 0, bytes);
    }

    /// Records, after the CAM: the clean score, the clean logits kept, the ranks (for deletion and
    /// insertion), per perturbation its input, `forward_pass` and its score; then the clean logits
    /// and the input restored (the activations stay the last perturbation's).
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
        if let Some((_, _, steps)) = &self.ranking {
            steps.record(ctx, encoder);
        }
        for (perturb, score) in self.perturb.iter().zip(&self.score) {
            perturb.record(ctx, encoder);
            forward_pass(encoder);
            score.record(ctx, encoder);
        }
        encoder.copy_buffer_to_buffer(&self.clean_logits, 0, logits, 0, bytes);
        let input_bytes = model.tensors[model.input].len() as u64 * 4 * u64::from(forward.batch());
        encoder.copy_buffer_to_buffer(
            &self.pristine,
            0,
            forward.tensor(model.input),
            0,
            input_bytes,
        );
    }
}

/// The ranking's buffers (the sort's pairs, the ranks) and its steps: the pairs written from
/// `cam`, one bitonic stage per (k, j), the ranks scattered.
fn ranking(
    ctx: &GpuContext,
    cam: &wgpu::Buffer,
    positions: u32,
    cap: u64,
) -> Result<(wgpu::Buffer, wgpu::Buffer, Steps)> {
    let padded = positions.next_power_of_two();
    let pairs = ctx.storage("metric_rank_pairs", u64::from(padded) * 8 * cap)?;
    let ranks = ctx.storage("metric_ranks", u64::from(positions) * 4 * cap)?;
    let params = move |k, j| {
        move |s: &BatchShape| RankParams {
            batch: s.images,
            positions,
            padded,
            k,
            j,
            _pad: [0; 3],
        }
    };
    let mut steps = Steps::new("metrics");
    steps.push(ctx, launch::RankInit { cam, pairs: &pairs }, params(0, 0));
    let mut k = 2;
    while k <= padded {
        let mut j = k / 2;
        while j > 0 {
            steps.push(ctx, launch::RankSort { pairs: &pairs }, params(k, j));
            j /= 2;
        }
        k *= 2;
    }
    steps.push(
        ctx,
        launch::RankScatter {
            pairs: &pairs,
            ranks: &ranks,
        },
        params(0, 0),
    );
    Ok((pairs, ranks, steps))
}

//! Recording the network's work on the GPU. Each stage records commands; none reads back.

mod augment;
mod backward;
mod cam;
mod explain;
mod forward;
pub mod methods;
mod metric_passes;
mod probe;
mod smooth_grad;
pub mod steps;
mod texel;

pub use backward::{BackwardPlan, GradStep};
pub use explain::{
    ExplainOptions, Explainer, Explanation, OverlayRegion, Readback, Target, INPUT_LAYER,
};
pub use forward::{pack_images, share_by_liveness, Forward, GpuModel};
pub use methods::{Method, Needs};

/// Softmax of one image's logits, computed in f64 for stable probabilities.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// The `k` highest entries of `values` as (index, value), highest first; ties keep index order.
pub fn top_k(values: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|a, b| values[*b].total_cmp(&values[*a]).then(a.cmp(b)));
    idx.into_iter().take(k).map(|i| (i, values[i])).collect()
}

//! Faithfulness metrics: how the model's score for the explained class moves when the input is
//! perturbed by the explanation. Each metric names the points it is computed from: the clean
//! input and perturbations of it. The explainer runs each perturbation the metrics need once per
//! batch on the GPU, after the CAM (the perturbed input written from the preprocessed input and
//! the CAM, the network run on it, the target's score gathered; src/pipeline/metric_passes.rs),
//! and reads back one score per image and point. The metric's value is then a few float32
//! operations on them, the reference's formula (a sum of trapezoids may round in another order
//! than torch's, by an ulp).
//!
//! The scores are the target class's softmax probability (pytorch-grad-cam's
//! `ClassifierOutputSoftmaxTarget`, the default) or its logit (`ClassifierOutputTarget`).

use crate::error::{Error, Result};

/// A faithfulness metric, named as the CLI's `--metric` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// pytorch-grad-cam's `CamMultImageConfidenceChange`: s(x · cam) − s(x), x the normalised
    /// input and cam the final map at the input size.
    CamMultImageConfidenceChange,
    /// pytorch-grad-cam's `DropInConfidence`: max(s(x) − s(x · cam), 0).
    DropInConfidence,
    /// pytorch-grad-cam's `IncreaseInConfidence`: 1 where s(x · cam) − s(x) > 0, else 0.
    IncreaseInConfidence,
    /// The Grad-CAM++ paper's Average Drop, per image as torch-cam's `ClassificationMetric`:
    /// max(s(x) − s(x · cam), 0) / (s(x) + 1e-7); its mean over images is the paper's figure
    /// (as a fraction, not a percentage).
    AverageDrop,
    /// The Grad-CAM++ paper's Increase in Confidence, per image as torch-cam's: 1 where
    /// s(x) < s(x · cam), else 0.
    AverageIncrease,
    /// RISE's deletion AUC, as torch-cam's `DeletionInsertionMetric`: the positions ranked by
    /// the CAM (highest first, ties by position), the score as the first 0, k, 2k, ..., all of
    /// them (k = ⌈positions / steps⌉) are replaced by the baseline (0 in the normalised input),
    /// integrated over the fraction replaced (trapezoids). Lower is better.
    DeletionAuc,
    /// RISE's insertion AUC, as torch-cam's: from the baseline, the same positions restored from
    /// the input in the same order. Higher is better.
    InsertionAuc,
}

/// The score a metric reads from the model's output for the explained class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TargetScore {
    /// The softmax probability (pytorch-grad-cam's `ClassifierOutputSoftmaxTarget`).
    #[default]
    Softmax,
    /// The logit (pytorch-grad-cam's `ClassifierOutputTarget`).
    Logit,
}

/// An input perturbation made from the explanation; the network runs once on each one needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Perturbation {
    /// The normalised input times the final CAM at the input size (pytorch-grad-cam's
    /// `multiply_tensor_with_cam`).
    CamMult,
    /// The baseline alone (0 in the normalised input).
    Baseline,
    /// The `count` positions the CAM ranks highest (ties by position) from the input and the rest
    /// from the baseline (`input_inside`), or the other way round (deletion's points).
    Ranked { count: u32, input_inside: bool },
}

/// What a metric's value is computed from: the target's score on the clean input, or on a
/// perturbation of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Point {
    /// The input as it is.
    Clean,
    /// The input perturbed.
    Perturbed(Perturbation),
}

/// RISE's deletion and insertion steps by default (torch-cam's `steps`).
pub const DEFAULT_STEPS: u32 = 20;

impl Metric {
    /// Every metric, in the order `--metric help` lists them.
    pub const ALL: &'static [Metric] = &[
        Metric::CamMultImageConfidenceChange,
        Metric::DropInConfidence,
        Metric::IncreaseInConfidence,
        Metric::AverageDrop,
        Metric::AverageIncrease,
        Metric::DeletionAuc,
        Metric::InsertionAuc,
    ];

    /// The name the CLI and the reports use.
    pub fn name(self) -> &'static str {
        match self {
            Metric::CamMultImageConfidenceChange => "cam-mult-image-confidence-change",
            Metric::DropInConfidence => "drop-in-confidence",
            Metric::IncreaseInConfidence => "increase-in-confidence",
            Metric::AverageDrop => "average-drop",
            Metric::AverageIncrease => "average-increase",
            Metric::DeletionAuc => "deletion-auc",
            Metric::InsertionAuc => "insertion-auc",
        }
    }

    /// The points the metric is computed from, for a model input of `positions` pixels and
    /// `steps` deletion or insertion steps.
    pub fn points(self, positions: u32, steps: u32) -> Vec<Point> {
        use Perturbation::*;
        match self {
            Metric::DeletionAuc | Metric::InsertionAuc => {
                let insertion = self == Metric::InsertionAuc;
                step_counts(positions, steps)
                    .into_iter()
                    .map(|count| match (count == 0, count == positions, insertion) {
                        (true, _, false) | (_, true, true) => Point::Clean,
                        (true, _, true) | (_, true, false) => Point::Perturbed(Baseline),
                        _ => Point::Perturbed(Ranked {
                            count,
                            input_inside: insertion,
                        }),
                    })
                    .collect()
            }
            _ => vec![Point::Clean, Point::Perturbed(CamMult)],
        }
    }

    /// The metric's value for one image from the target's score at each of its
    /// [`Metric::points`] (same `positions` and `steps`), in float32 as the reference computes
    /// it.
    pub fn value(self, scores: &[f32], positions: u32, steps: u32) -> f32 {
        if matches!(self, Metric::DeletionAuc | Metric::InsertionAuc) {
            // torch.trapezoid over the fractions perturbed.
            let fractions: Vec<f32> = step_counts(positions, steps)
                .into_iter()
                .map(|c| c as f32 / positions as f32)
                .collect();
            return fractions
                .windows(2)
                .zip(scores.windows(2))
                .map(|(x, y)| (x[1] - x[0]) * (y[0] + y[1]) / 2.0)
                .sum();
        }
        let (clean, perturbed) = (scores[0], scores[1]);
        let change = perturbed - clean;
        match self {
            Metric::CamMultImageConfidenceChange => change,
            Metric::DropInConfidence => (-change).max(0.0),
            Metric::IncreaseInConfidence => f32::from(u8::from(change > 0.0)),
            Metric::AverageDrop => (clean - perturbed).max(0.0) / (clean + 1e-7),
            Metric::AverageIncrease => f32::from(u8::from(clean < perturbed)),
            Metric::DeletionAuc | Metric::InsertionAuc => unreachable!("integrated above"),
        }
    }

    /// The metrics computed from the clean input and the input times the CAM, which share one
    /// forward pass per batch (the CLI's `confidence`).
    pub const CONFIDENCE: &'static [Metric] = &[
        Metric::CamMultImageConfidenceChange,
        Metric::DropInConfidence,
        Metric::IncreaseInConfidence,
        Metric::AverageDrop,
        Metric::AverageIncrease,
    ];

    /// Metrics from a comma-separated list of names (`all`: every metric; `confidence`:
    /// [`Metric::CONFIDENCE`]), each once, in the order given.
    pub fn parse_list(s: &str) -> Result<Vec<Metric>> {
        let mut list = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let found: Vec<Metric> = if name.eq_ignore_ascii_case("all") {
                Metric::ALL.to_vec()
            } else if name.eq_ignore_ascii_case("confidence") {
                Metric::CONFIDENCE.to_vec()
            } else {
                vec![name.parse()?]
            };
            for m in found {
                if !list.contains(&m) {
                    list.push(m);
                }
            }
        }
        if list.is_empty() {
            return Err(Error::InvalidRequest("no metric named".into()));
        }
        Ok(list)
    }
}

/// The numbers of positions perturbed at each deletion or insertion step: 0, k, 2k, ... below
/// `positions`, then `positions`, with k = ⌈positions / steps⌉ (torch-cam's `_compute_curves`).
pub fn step_counts(positions: u32, steps: u32) -> Vec<u32> {
    let step = positions.div_ceil(steps.max(1)).max(1);
    (0..positions)
        .step_by(step as usize)
        .chain([positions])
        .collect()
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Metric {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.to_ascii_lowercase();
        Metric::ALL
            .iter()
            .copied()
            .find(|m| m.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                Error::InvalidRequest(format!(
                    "unknown metric `{s}`; the metrics are {}",
                    names.join(", ")
                ))
            })
    }
}

impl TargetScore {
    /// The name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            TargetScore::Softmax => "softmax",
            TargetScore::Logit => "logit",
        }
    }
}

impl std::fmt::Display for TargetScore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TargetScore {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "softmax" => Ok(TargetScore::Softmax),
            "logit" => Ok(TargetScore::Logit),
            _ => Err(Error::InvalidRequest(format!(
                "unknown target score `{s}`; expected softmax or logit"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_follow_the_reference_formulas() {
        let m = |metric: Metric| metric.value(&[0.8, 0.6], 0, 0);
        assert!((m(Metric::CamMultImageConfidenceChange) + 0.2).abs() < 1e-6);
        assert!((m(Metric::DropInConfidence) - 0.2).abs() < 1e-6);
        assert_eq!(m(Metric::IncreaseInConfidence), 0.0);
        assert!((m(Metric::AverageDrop) - 0.25).abs() < 1e-6);
        assert_eq!(m(Metric::AverageIncrease), 0.0);
        assert_eq!(Metric::IncreaseInConfidence.value(&[0.1, 0.3], 0, 0), 1.0);
        assert_eq!(Metric::AverageDrop.value(&[0.1, 0.3], 0, 0), 0.0);
    }

    #[test]
    fn deletion_and_insertion_points_follow_torch_cam() {
        assert_eq!(step_counts(10, 4), [0, 3, 6, 9, 10]);
        assert_eq!(step_counts(50176, 20).len(), 21);
        assert_eq!(step_counts(3, 20), [0, 1, 2, 3]);
        let ranked = |count, input_inside| {
            Point::Perturbed(Perturbation::Ranked {
                count,
                input_inside,
            })
        };
        let baseline = Point::Perturbed(Perturbation::Baseline);
        assert_eq!(
            Metric::DeletionAuc.points(10, 4),
            [
                Point::Clean,
                ranked(3, false),
                ranked(6, false),
                ranked(9, false),
                baseline
            ]
        );
        assert_eq!(
            Metric::InsertionAuc.points(10, 4),
            [
                baseline,
                ranked(3, true),
                ranked(6, true),
                ranked(9, true),
                Point::Clean
            ]
        );
        // Trapezoids over the fractions 0, 0.3, 0.6, 0.9, 1.
        let auc = Metric::DeletionAuc.value(&[1.0, 0.5, 0.5, 0.0, 0.0], 10, 4);
        assert!(
            (auc - (0.3 * 0.75 + 0.3 * 0.5 + 0.3 * 0.25)).abs() < 1e-6,
            "{auc}"
        );
    }

    #[test]
    fn lists_parse_once_each_and_name_the_unknown() {
        let list = Metric::parse_list("average-drop, drop-in-confidence,average-drop").unwrap();
        assert_eq!(list, [Metric::AverageDrop, Metric::DropInConfidence]);
        assert_eq!(Metric::parse_list("all").unwrap(), Metric::ALL);
        assert_eq!(
            Metric::parse_list("deletion-auc,confidence").unwrap()[1..],
            *Metric::CONFIDENCE
        );
        let e = Metric::parse_list("road").unwrap_err().to_string();
        assert!(
            e.contains("`road`") && e.contains("average-increase"),
            "{e}"
        );
        assert!(Metric::parse_list(" , ").is_err());
    }
}

//! Faithfulness metrics: how the model's score for the explained class moves when the input is
//! perturbed by the explanation. Each metric names the perturbation it needs; the explainer runs
//! each needed perturbation once per batch on the GPU, after the CAM (the perturbed input written
//! from the preprocessed input and the CAM, the network run on it, the target's score gathered;
//! src/pipeline/metric_passes.rs), and reads back two scores per image and perturbation. The
//! metric's value is then a few float32 operations on them, the reference's own.
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
}

impl Metric {
    /// Every metric, in the order `--metric help` lists them.
    pub const ALL: &'static [Metric] = &[
        Metric::CamMultImageConfidenceChange,
        Metric::DropInConfidence,
        Metric::IncreaseInConfidence,
        Metric::AverageDrop,
        Metric::AverageIncrease,
    ];

    /// The name the CLI and the reports use.
    pub fn name(self) -> &'static str {
        match self {
            Metric::CamMultImageConfidenceChange => "cam-mult-image-confidence-change",
            Metric::DropInConfidence => "drop-in-confidence",
            Metric::IncreaseInConfidence => "increase-in-confidence",
            Metric::AverageDrop => "average-drop",
            Metric::AverageIncrease => "average-increase",
        }
    }

    /// The perturbation whose score the metric compares with the clean input's.
    pub fn perturbation(self) -> Perturbation {
        Perturbation::CamMult
    }

    /// The metric's value for one image from the target's score on the clean input, `clean`,
    /// and on the metric's perturbation, `perturbed`, in float32 as the reference computes it.
    pub fn value(self, clean: f32, perturbed: f32) -> f32 {
        let change = perturbed - clean;
        match self {
            Metric::CamMultImageConfidenceChange => change,
            Metric::DropInConfidence => (-change).max(0.0),
            Metric::IncreaseInConfidence => f32::from(u8::from(change > 0.0)),
            Metric::AverageDrop => (clean - perturbed).max(0.0) / (clean + 1e-7),
            Metric::AverageIncrease => f32::from(u8::from(clean < perturbed)),
        }
    }

    /// Metrics from a comma-separated list of names (`all`: every metric), each once, in the
    /// order given.
    pub fn parse_list(s: &str) -> Result<Vec<Metric>> {
        let mut list = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let found: Vec<Metric> = if name.eq_ignore_ascii_case("all") {
                Metric::ALL.to_vec()
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
        let m = |metric: Metric| metric.value(0.8, 0.6);
        assert!((m(Metric::CamMultImageConfidenceChange) + 0.2).abs() < 1e-6);
        assert!((m(Metric::DropInConfidence) - 0.2).abs() < 1e-6);
        assert_eq!(m(Metric::IncreaseInConfidence), 0.0);
        assert!((m(Metric::AverageDrop) - 0.25).abs() < 1e-6);
        assert_eq!(m(Metric::AverageIncrease), 0.0);
        assert_eq!(Metric::IncreaseInConfidence.value(0.1, 0.3), 1.0);
        assert_eq!(Metric::AverageDrop.value(0.1, 0.3), 0.0);
    }

    #[test]
    fn lists_parse_once_each_and_name_the_unknown() {
        let list = Metric::parse_list("average-drop, drop-in-confidence,average-drop").unwrap();
        assert_eq!(list, [Metric::AverageDrop, Metric::DropInConfidence]);
        assert_eq!(Metric::parse_list("all").unwrap(), Metric::ALL);
        let e = Metric::parse_list("road").unwrap_err().to_string();
        assert!(
            e.contains("`road`") && e.contains("average-increase"),
            "{e}"
        );
        assert!(Metric::parse_list(" , ").is_err());
    }
}

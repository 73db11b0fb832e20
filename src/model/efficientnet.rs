//! torchvision's EfficientNet-B0 to B7 as a graph: `features.0` (3×3/2 conv, BatchNorm, SiLU),
//! seven stages `features.1` to `features.7` of MBConv blocks (`features.S.I.block`: a 1×1
//! expansion with SiLU except in stage 1, a k×k depthwise conv with SiLU, squeeze-and-excitation
//! with SiLU and a sigmoid gate, a linear 1×1 projection, a skip connection where the shape is
//! kept; stochastic depth is the identity in inference), `features.8` (1×1 conv, SiLU), global
//! average pool and `classifier.1`. Padding is PyTorch's symmetric `(k - 1) / 2`. Strides come
//! from torchvision's settings table; the widths, kernel sizes and blocks per stage are read from
//! the file, and which variant it is (for its input size and BatchNorm epsilon) from them.

use super::arch::{detected, Family};
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, ConvKind, Model, Padding};
use crate::error::{Error, Result};

/// A torchvision EfficientNet: its compound scaling and what it was trained with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Variant {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// Width multiplier of the channels.
    width: f64,
    /// Depth multiplier of the blocks per stage.
    depth: f64,
    /// Side of the input (torchvision's `crop_size`).
    pub size: u32,
    /// BatchNorm epsilon (B5 to B7 use 1e-3).
    eps: f32,
}

/// The torchvision EfficientNets.
pub const VARIANTS: [Variant; 8] = [
    variant("efficientnet_b0", 1.0, 1.0, 224, 1e-5),
    variant("efficientnet_b1", 1.0, 1.1, 240, 1e-5),
    variant("efficientnet_b2", 1.1, 1.2, 288, 1e-5),
    variant("efficientnet_b3", 1.2, 1.4, 300, 1e-5),
    variant("efficientnet_b4", 1.4, 1.8, 380, 1e-5),
    variant("efficientnet_b5", 1.6, 2.2, 456, 1e-3),
    variant("efficientnet_b6", 1.8, 2.6, 528, 1e-3),
    variant("efficientnet_b7", 2.0, 3.1, 600, 1e-3),
];

const fn variant(name: &'static str, width: f64, depth: f64, size: u32, eps: f32) -> Variant {
    Variant {
        name,
        width,
        depth,
        size,
        eps,
    }
}

/// torchvision's `_efficientnet_conf` for B0: per stage, (first block's stride, output
/// channels, blocks) before scaling.
const STAGES: [(u32, u32, u32); 7] = [
    (1, 16, 1),
    (2, 24, 2),
    (2, 40, 2),
    (2, 80, 3),
    (1, 112, 3),
    (2, 192, 4),
    (1, 320, 1),
];

/// The stem's channels before scaling.
const STEM: u32 = 32;

/// torchvision's `_make_divisible(v, 8)`: the multiple of 8 nearest `v`, at least 8 and not
/// below 90% of `v`.
fn make_divisible(v: f64) -> u32 {
    let mut rounded = (((v + 4.0) as u32) / 8 * 8).max(8);
    if f64::from(rounded) < 0.9 * v {
        rounded += 8;
    }
    rounded
}

impl Variant {
    /// Channels of `c` scaled by the width multiplier.
    fn channels(&self, c: u32) -> u32 {
        make_divisible(f64::from(c) * self.width)
    }

    /// Blocks of a stage of `n` scaled by the depth multiplier.
    fn blocks(&self, n: u32) -> u32 {
        (f64::from(n) * self.depth).ceil() as u32
    }

    /// The stem's width, then each stage's output width and blocks.
    fn structure(&self) -> (u32, Vec<(u32, u32)>) {
        let stages = STAGES
            .iter()
            .map(|&(_, out, n)| (self.channels(out), self.blocks(n)))
            .collect();
        (self.channels(STEM), stages)
    }
}

/// Whether `file` holds a torchvision EfficientNet: its stem and the first block's
/// squeeze-and-excitation are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("features.0.0.weight").is_some()
        && file.shape("features.1.0.block.1.fc1.weight").is_some()
}

/// The stem's width, then each stage's output width and blocks, as the file has them.
fn structure(file: &WeightFile) -> (u32, Vec<(u32, u32)>) {
    let stem = out_channels(file, "features.0.0");
    let stages = (1..=STAGES.len())
        .map(|s| {
            let mut blocks = 0u32;
            while file
                .shape(&format!("features.{s}.{blocks}.block.0.0.weight"))
                .is_some()
            {
                blocks += 1;
            }
            let last = blocks.saturating_sub(1);
            let project = (0..4)
                .rev()
                .find(|i| {
                    file.shape(&format!("features.{s}.{last}.block.{i}.0.weight"))
                        .is_some()
                })
                .unwrap_or(0);
            let width = out_channels(file, &format!("features.{s}.{last}.block.{project}.0"));
            (width, blocks)
        })
        .collect();
    (stem, stages)
}

/// The variant whose widths and depths the file has; `None` when no torchvision EfficientNet's
/// are.
pub fn detect(file: &WeightFile) -> Option<Variant> {
    let found = structure(file);
    VARIANTS.into_iter().find(|v| v.structure() == found)
}

/// Output channels of the conv `prefix` in the file (0 when it is missing: the load then names
/// it).
fn out_channels(file: &WeightFile, prefix: &str) -> u32 {
    file.shape(&format!("{prefix}.weight"))
        .and_then(|s| s.first().copied())
        .map_or(0, |c| c as u32)
}

/// The side of the square kernel of conv `prefix` in the file.
fn kernel(file: &WeightFile, prefix: &str) -> Result<u32> {
    let tensor = format!("{prefix}.weight");
    match file.shape(&tensor) {
        Some([_, _, k, k2]) if k == k2 && k % 2 == 1 => Ok(*k as u32),
        _ => Err(Error::MissingTensor {
            path: file.path().to_path_buf(),
            tensor,
            expected: vec![0, 1, 3, 3],
        }),
    }
}

/// A conv of torchvision's `Conv2dNormActivation` (BatchNorm epsilon `eps`, padding
/// `(k - 1) / 2`, SiLU).
fn conv_bn(prefix: &str, kernel: u32, out: u32, eps: f32) -> ConvSpec<'_> {
    ConvSpec {
        bn_eps: eps,
        padding: Padding::Symmetric((kernel - 1) / 2),
        activation: Activation::Silu,
        ..ConvSpec::new(prefix, None, kernel, out)
    }
}

/// Builds `variant` from `file`.
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let eps = variant.eps;
    let mut g = Builder::new(file, size);
    let input = g.input();
    let stem = ConvSpec {
        stride: 2,
        bn: Some("features.0.1"),
        ..conv_bn("features.0.0", 3, out_channels(file, "features.0.0"), eps)
    };
    let mut x = g.conv(&stem, input, "features.0")?;
    g.layer("features.0", x);
    let (_, stages) = structure(file);
    for (s, (&(stride, _, _), &(_, blocks))) in STAGES.iter().zip(&stages).enumerate() {
        let s = s + 1;
        if blocks == 0 {
            return Err(Error::MissingTensor {
                path: file.path().to_path_buf(),
                tensor: format!("features.{s}.0.block.0.0.weight"),
                expected: Vec::new(),
            });
        }
        for i in 0..blocks {
            let p = format!("features.{s}.{i}.block");
            let block_in = x;
            let in_channels = g.spec(x).channels;
            // Stage 1 has no expansion: depthwise, SE, projection.
            let expands = file.shape(&format!("{p}.3.0.weight")).is_some();
            let mut m = 0;
            if expands {
                let (conv, bn) = (format!("{p}.0.0"), format!("{p}.0.1"));
                let spec = ConvSpec {
                    bn: Some(&bn),
                    ..conv_bn(&conv, 1, out_channels(file, &conv), eps)
                };
                x = g.conv(&spec, x, &format!("{p}.0"))?;
                m = 1;
            }
            let (dw, dw_bn) = (format!("{p}.{m}.0"), format!("{p}.{m}.1"));
            let k = kernel(file, &dw)?;
            let spec = ConvSpec {
                kind: ConvKind::Depthwise,
                stride: if i == 0 { stride } else { 1 },
                bn: Some(&dw_bn),
                ..conv_bn(&dw, k, g.spec(x).channels, eps)
            };
            x = g.conv(&spec, x, &format!("{p}.{m}"))?;
            x = g.squeeze_excite(
                &format!("{p}.{}", m + 1),
                x,
                Activation::Silu,
                Activation::Sigmoid,
            )?;
            let (project, project_bn) = (format!("{p}.{}.0", m + 2), format!("{p}.{}.1", m + 2));
            let out = out_channels(file, &project);
            let skip = spec.stride == 1 && in_channels == out;
            let spec = ConvSpec {
                bn: Some(&project_bn),
                activation: Activation::None,
                residual: skip.then_some(block_in),
                ..conv_bn(&project, 1, out, eps)
            };
            x = g.conv(&spec, x, &format!("features.{s}.{i}"))?;
            g.layer(&format!("features.{s}.{i}"), x);
        }
        g.layer(&format!("features.{s}"), x);
    }
    let head = ConvSpec {
        bn: Some("features.8.1"),
        ..conv_bn("features.8.0", 1, out_channels(file, "features.8.0"), eps)
    };
    x = g.conv(&head, x, "features.8")?;
    g.layer("features.8", x);
    let pooled = g.global_avg_pool(x)?;
    let logits = g.linear("classifier.1", pooled, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer: "features.8".into(),
        },
        logits,
    )
}

/// The family's registration in src/model/arch.rs.
pub const FAMILY: Family = Family {
    variants: VARIANTS.len(),
    name: |i| VARIANTS[i].name,
    input_size: |i| VARIANTS[i].size,
    claims,
    candidates: |file| detected(&VARIANTS, detect(file)),
    build: |file, i, size| build(file, &VARIANTS[i], size),
};

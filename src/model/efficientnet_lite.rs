//! EfficientNet-Lite0 to Lite4 as a graph: stem, MBConv blocks (no squeeze-excite, ReLU6), head,
//! pool, fc; TensorFlow "SAME" padding.
//! Tensor names follow the `efficientnet_lite_pytorch` checkpoints (`_conv_stem.weight`,
//! `_blocks.N._expand_conv.weight`, `_blocks.N._bn0.running_var`, `_fc.bias`, ...).

use super::arch::Family;
use super::builder::{Builder, ConvSpec, Description};
use super::tensors::WeightFile;
use super::{Activation, ConvKind, Model, Padding};
use crate::error::Result;

/// One stage of MBConv blocks: the first block may change stride and width, the repeats keep them.
#[derive(Clone, Copy, Debug)]
pub struct Stage {
    /// Blocks in the stage.
    pub repeats: u32,
    /// Depthwise kernel size.
    pub kernel: u32,
    /// Stride of the first block.
    pub stride: u32,
    /// Expansion ratio of the inverted bottleneck.
    pub expand: u32,
    /// Output channels.
    pub out_channels: u32,
}

/// An EfficientNet-Lite variant: the Lite0 stages scaled by width and depth coefficients
/// (`efficientnet_lite_pytorch`'s `efficientnet_lite_params`); the stem (32), the first and last
/// stages' repeats and the head (1280) are never scaled (`fix_head_stem`).
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Name used in messages.
    pub name: &'static str,
    /// Width coefficient.
    pub width: f64,
    /// Depth coefficient.
    pub depth: f64,
    /// Input side.
    pub input_size: u32,
}

/// Lite0 to Lite4.
pub const VARIANTS: [Variant; 5] = [
    variant("efficientnet-lite0", 1.0, 1.0, 224),
    variant("efficientnet-lite1", 1.0, 1.1, 240),
    variant("efficientnet-lite2", 1.1, 1.2, 260),
    variant("efficientnet-lite3", 1.2, 1.4, 280),
    variant("efficientnet-lite4", 1.4, 1.8, 300),
];

const fn variant(name: &'static str, width: f64, depth: f64, input_size: u32) -> Variant {
    Variant {
        name,
        width,
        depth,
        input_size,
    }
}

const fn stage(repeats: u32, kernel: u32, stride: u32, expand: u32, out_channels: u32) -> Stage {
    Stage {
        repeats,
        kernel,
        stride,
        expand,
        out_channels,
    }
}

/// The Lite0 stages (efficientnet_lite_builder: `r1_k3_s11_e1_i32_o16`, ...).
const STAGES: [Stage; 7] = [
    stage(1, 3, 1, 1, 16),
    stage(2, 3, 2, 6, 24),
    stage(2, 5, 2, 6, 40),
    stage(3, 3, 2, 6, 80),
    stage(3, 5, 1, 6, 112),
    stage(4, 5, 2, 6, 192),
    stage(1, 3, 1, 6, 320),
];

/// Stem output channels (never scaled).
const STEM: u32 = 32;
/// Head output channels (never scaled).
const HEAD: u32 = 1280;

/// BatchNorm epsilon of every EfficientNet-Lite checkpoint.
const BN_EPS: f32 = 1e-3;

/// `round_filters`: channels scaled by `width`, rounded to a multiple of 8, never more than 10 %
/// below the scaled value.
fn round_filters(filters: u32, width: f64) -> u32 {
    if width == 1.0 {
        return filters;
    }
    let scaled = f64::from(filters) * width;
    let mut rounded = (((scaled + 4.0) as u32) / 8 * 8).max(8);
    if f64::from(rounded) < 0.9 * scaled {
        rounded += 8;
    }
    rounded
}

/// `round_repeats`: the blocks of stage `s` scaled by the depth coefficient (rounded up), except
/// in the first and last stages.
fn repeats(s: usize, variant: &Variant) -> u32 {
    let base = STAGES[s].repeats;
    if s == 0 || s == STAGES.len() - 1 {
        base
    } else {
        (variant.depth * f64::from(base)).ceil() as u32
    }
}

/// A Lite conv: TF "SAME" padding, BatchNorm with epsilon 1e-3, ReLU6.
fn conv<'a>(prefix: &'a str, bn: &'a str, kind: ConvKind, kernel: u32, out: u32) -> ConvSpec<'a> {
    ConvSpec {
        bn_eps: BN_EPS,
        kind,
        padding: Padding::Same,
        activation: Activation::Relu6,
        ..ConvSpec::new(prefix, Some(bn), kernel, out)
    }
}

/// Builds `variant` from `file`.
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let input = g.input();
    let mut x = g.conv(
        &ConvSpec {
            stride: 2,
            ..conv("_conv_stem", "_bn0", ConvKind::Dense, 3, STEM)
        },
        input,
        "stem",
    )?;

    let mut index = 0;
    for (s, stage) in STAGES.iter().enumerate() {
        let repeats = repeats(s, variant);
        let out_channels = round_filters(stage.out_channels, variant.width);
        for repeat in 0..repeats {
            let stride = if repeat == 0 { stage.stride } else { 1 };
            let block_in = x;
            let in_channels = g.spec(x).channels;
            let hidden = in_channels * stage.expand;
            let p = format!("_blocks.{index}");
            let (expand, bn0) = (format!("{p}._expand_conv"), format!("{p}._bn0"));
            if stage.expand != 1 {
                x = g.conv(
                    &conv(&expand, &bn0, ConvKind::Dense, 1, hidden),
                    x,
                    &format!("blocks.{index}.expand"),
                )?;
            }
            let (depthwise, bn1) = (format!("{p}._depthwise_conv"), format!("{p}._bn1"));
            x = g.conv(
                &ConvSpec {
                    stride,
                    ..conv(&depthwise, &bn1, ConvKind::Depthwise, stage.kernel, hidden)
                },
                x,
                &format!("blocks.{index}.depthwise"),
            )?;
            let skip = stride == 1 && in_channels == out_channels;
            let (project, bn2) = (format!("{p}._project_conv"), format!("{p}._bn2"));
            x = g.conv(
                &ConvSpec {
                    activation: Activation::None,
                    residual: skip.then_some(block_in),
                    ..conv(&project, &bn2, ConvKind::Dense, 1, out_channels)
                },
                x,
                &format!("blocks.{index}"),
            )?;
            g.layer(&format!("blocks.{index}"), x);
            index += 1;
        }
    }
    // A checkpoint with more blocks than the architecture is another architecture.
    if file
        .shape(&format!("_blocks.{index}._project_conv.weight"))
        .is_some()
    {
        return Err(g.unsupported(format!(
            "it has more than the {index} MBConv blocks of {}",
            variant.name
        )));
    }
    x = g.conv(
        &conv("_conv_head", "_bn1", ConvKind::Dense, 1, HEAD),
        x,
        "head",
    )?;
    g.layer("head", x);
    let pooled = g.global_avg_pool(x)?;
    let logits = g.linear("_fc", pooled, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            // The reference's transform: Normalize(mean=0.5, std=0.5) on [0, 1].
            mean: [0.5; 3],
            std: [0.5; 3],
            default_layer: "head".into(),
        },
        logits,
    )
}

/// Whether `file` holds an EfficientNet-Lite: its stem is there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("_conv_stem.weight").is_some()
}

/// The variants `file` may be: those with as many MBConv blocks as it has (all when none).
fn candidates(file: &WeightFile) -> Vec<usize> {
    let mut blocks = 0;
    while file
        .shape(&format!("_blocks.{blocks}._project_conv.weight"))
        .is_some()
    {
        blocks += 1;
    }
    let of = |v: &Variant| -> u32 { (0..STAGES.len()).map(|s| repeats(s, v)).sum() };
    let matching: Vec<usize> = (0..VARIANTS.len())
        .filter(|&i| of(&VARIANTS[i]) == blocks)
        .collect();
    if matching.is_empty() {
        (0..VARIANTS.len()).collect()
    } else {
        matching
    }
}

/// The family's registration in src/model/arch.rs.
pub const FAMILY: Family = Family {
    variants: VARIANTS.len(),
    name: |i| VARIANTS[i].name,
    input_size: |i| VARIANTS[i].input_size,
    claims,
    candidates,
    build: |file, i, size| build(file, &VARIANTS[i], size),
};

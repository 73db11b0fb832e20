//! torchvision's ConvNeXt as a graph: `features.0` (4×4/4 conv, LayerNorm over the channels), four
//! stages `features.1`, `.3`, `.5`, `.7` of blocks `features.S.I` (`block.0` 7×7 depthwise
//! conv, `block.2` LayerNorm, `block.3` linear to 4× the width with GELU, `block.5` linear back,
//! each on every pixel between channels-last permutes, which are layouts only here; times the
//! per-channel `layer_scale`, plus the block's input; stochastic depth is the identity in
//! inference), downsampling between them (`features.2`, `.4`, `.6`: LayerNorm, 2×2/2 conv), global
//! average pool and the classifier `classifier.0` (LayerNorm), `classifier.2` (linear). LayerNorm
//! epsilon 1e-6. Widths and blocks per stage are read from the file, the variant's name from
//! them.

use super::arch::{detected, Family};
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, ConvKind, Model, Padding};
use crate::error::{Error, Result};

/// A torchvision ConvNeXt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// The first stage's width.
    width: u32,
    /// Blocks per stage.
    depths: [u32; 4],
}

/// The torchvision ConvNeXts.
pub const VARIANTS: [Variant; 4] = [
    variant("convnext_tiny", 96, [3, 3, 9, 3]),
    variant("convnext_small", 96, [3, 3, 27, 3]),
    variant("convnext_base", 128, [3, 3, 27, 3]),
    variant("convnext_large", 192, [3, 3, 27, 3]),
];

const fn variant(name: &'static str, width: u32, depths: [u32; 4]) -> Variant {
    Variant {
        name,
        width,
        depths,
    }
}

/// LayerNorm epsilon of torchvision's ConvNeXts.
const EPS: f32 = 1e-6;

/// Whether `file` holds a torchvision ConvNeXt: its stem and first block's layer scale are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("features.0.0.weight").is_some() && file.shape("features.1.0.layer_scale").is_some()
}

/// The first stage's width and the blocks per stage, as the file has them.
fn structure(file: &WeightFile) -> (u32, [u32; 4]) {
    let width = file
        .shape("features.0.0.weight")
        .and_then(|s| s.first().copied())
        .map_or(0, |c| c as u32);
    let mut depths = [0u32; 4];
    for (s, d) in depths.iter_mut().enumerate() {
        while file
            .shape(&format!("features.{}.{d}.layer_scale", 2 * s + 1))
            .is_some()
        {
            *d += 1;
        }
    }
    (width, depths)
}

/// The variant with the file's width and depths.
pub fn detect(file: &WeightFile) -> Option<Variant> {
    let (width, depths) = structure(file);
    VARIANTS
        .into_iter()
        .find(|v| v.width == width && v.depths == depths)
}

/// Output channels of the conv `prefix` in the file (0 when it is missing: the load then names
/// it).
fn out_channels(file: &WeightFile, prefix: &str) -> u32 {
    file.shape(&format!("{prefix}.weight"))
        .and_then(|s| s.first().copied())
        .map_or(0, |c| c as u32)
}

/// A conv with its own bias, no BatchNorm and no activation.
fn conv(prefix: &str, kernel: u32, out: u32) -> ConvSpec<'_> {
    ConvSpec {
        conv_bias: true,
        ..ConvSpec::new(prefix, None, kernel, out)
    }
}

/// Builds `variant` from `file` (its structure read from the file).
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let input = g.input();
    let stem = ConvSpec {
        stride: 4,
        ..conv("features.0.0", 4, out_channels(file, "features.0.0"))
    };
    let x = g.conv(&stem, input, "features.0.0")?;
    let mut x = g.layer_norm("features.0.1", EPS, x, "features.0")?;
    g.layer("features.0", x);
    let (_, depths) = structure(file);
    for (s, &blocks) in depths.iter().enumerate() {
        let stage = 2 * s + 1;
        if s > 0 {
            let down = stage - 1;
            let norm = format!("features.{down}.0");
            x = g.layer_norm(&norm, EPS, x, &norm)?;
            let prefix = format!("features.{down}.1");
            let spec = ConvSpec {
                stride: 2,
                ..conv(&prefix, 2, out_channels(file, &prefix))
            };
            x = g.conv(&spec, x, &format!("features.{down}"))?;
            g.layer(&format!("features.{down}"), x);
        }
        if blocks == 0 {
            return Err(Error::MissingTensor {
                path: file.path().to_path_buf(),
                tensor: format!("features.{stage}.0.layer_scale"),
                expected: Vec::new(),
            });
        }
        for i in 0..blocks {
            let p = format!("features.{stage}.{i}");
            let block_in = x;
            let dw = format!("{p}.block.0");
            let spec = ConvSpec {
                kind: ConvKind::Depthwise,
                padding: Padding::Symmetric(3),
                ..conv(&dw, 7, g.spec(x).channels)
            };
            let y = g.conv(&spec, x, &dw)?;
            let norm = format!("{p}.block.2");
            let y = g.layer_norm(&norm, EPS, y, &norm)?;
            let y = g.pixel_linear(
                &format!("{p}.block.3"),
                y,
                Activation::Gelu,
                &format!("{p}.block.4"),
            )?;
            let y = g.pixel_linear(
                &format!("{p}.block.5"),
                y,
                Activation::None,
                &format!("{p}.block"),
            )?;
            x = g.scale_add(&format!("{p}.layer_scale"), y, block_in, &p)?;
            g.layer(&p, x);
        }
        g.layer(&format!("features.{stage}"), x);
    }
    let pooled = g.global_avg_pool(x)?;
    let normed = g.layer_norm("classifier.0", EPS, pooled, "classifier.0")?;
    let logits = g.linear("classifier.2", normed, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer: "features.7".into(),
        },
        logits,
    )
}

/// The family's registration in src/model/arch.rs.
pub const FAMILY: Family = Family {
    variants: VARIANTS.len(),
    name: |i| VARIANTS[i].name,
    input_size: |_| 224,
    claims,
    candidates: |file| detected(&VARIANTS, detect(file)),
    build: |file, i, size| build(file, &VARIANTS[i], size),
};

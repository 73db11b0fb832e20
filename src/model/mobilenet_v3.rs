//! torchvision's MobileNetV3-Large and -Small as a graph: `features.0` (3×3/2 conv, BatchNorm,
//! hardswish), inverted residual blocks `features.1` … (`features.N.block`: a 1×1 expansion where
//! the width grows, a k×k depthwise conv, squeeze-and-excitation with ReLU and a hardsigmoid gate
//! in some blocks, a linear 1×1 projection, a skip connection where the shape is kept; ReLU or
//! hardswish as torchvision's settings table says), a last 1×1 conv with hardswish, global
//! average pool, and the classifier `classifier.0` (linear, hardswish), `classifier.3`. BatchNorm
//! epsilon 1e-3, padding `(k - 1) / 2`. Strides and activations come from the settings table of
//! the variant (told apart by their number of blocks); widths, kernel sizes and which blocks
//! have squeeze-and-excitation are read from the file.

use super::arch::{detected, Family};
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, ConvKind, Model, Padding};
use crate::error::{Error, Result};

/// A torchvision MobileNetV3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// Per inverted residual block: (stride, hardswish rather than ReLU).
    blocks: &'static [(u32, bool)],
}

/// torchvision's `_mobilenet_v3_conf` for `mobilenet_v3_large`, stride and activation columns.
const LARGE: [(u32, bool); 15] = [
    (1, false),
    (2, false),
    (1, false),
    (2, false),
    (1, false),
    (1, false),
    (2, true),
    (1, true),
    (1, true),
    (1, true),
    (1, true),
    (1, true),
    (2, true),
    (1, true),
    (1, true),
];

/// The same for `mobilenet_v3_small`.
const SMALL: [(u32, bool); 11] = [
    (2, false),
    (2, false),
    (1, false),
    (2, true),
    (1, true),
    (1, true),
    (1, true),
    (1, true),
    (2, true),
    (1, true),
    (1, true),
];

/// The torchvision MobileNetV3s.
pub const VARIANTS: [Variant; 2] = [
    Variant {
        name: "mobilenet_v3_large",
        blocks: &LARGE,
    },
    Variant {
        name: "mobilenet_v3_small",
        blocks: &SMALL,
    },
];

/// BatchNorm epsilon of torchvision's MobileNetV3s.
const BN_EPS: f32 = 1e-3;

/// Whether `file` holds a torchvision MobileNetV3: its stem, a block and the classifier's hidden
/// layer are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("features.0.0.weight").is_some()
        && file.shape("features.1.block.0.0.weight").is_some()
        && file.shape("classifier.3.weight").is_some()
}

/// Inverted residual blocks in the file.
fn block_count(file: &WeightFile) -> usize {
    (1..)
        .take_while(|n| {
            file.shape(&format!("features.{n}.block.0.0.weight"))
                .is_some()
        })
        .count()
}

/// The variant with as many blocks as the file has.
pub fn detect(file: &WeightFile) -> Option<Variant> {
    let n = block_count(file);
    VARIANTS.into_iter().find(|v| v.blocks.len() == n)
}

/// The shape of tensor `name` (empty when it is missing: the load then names it).
fn shape<'f>(file: &'f WeightFile, name: &str) -> &'f [usize] {
    file.shape(name).unwrap_or(&[])
}

/// A conv of torchvision's `Conv2dNormActivation` `prefix` (`.0` the conv, `.1` the BatchNorm)
/// with `activation`, read from the file: its kernel, its output width, depthwise when each
/// filter reads one channel.
fn conv_bn<'a>(
    file: &WeightFile,
    conv: &'a str,
    bn: &'a str,
    stride: u32,
    activation: Activation,
) -> Result<ConvSpec<'a>> {
    let (out, per_group, k) = match shape(file, &format!("{conv}.weight")) {
        [o, i, k, k2] if k == k2 && k % 2 == 1 => (*o as u32, *i, *k as u32),
        _ => {
            return Err(Error::MissingTensor {
                path: file.path().to_path_buf(),
                tensor: format!("{conv}.weight"),
                expected: vec![0, 0, 1, 1],
            })
        }
    };
    Ok(ConvSpec {
        bn_eps: BN_EPS,
        kind: if per_group == 1 && k > 1 {
            ConvKind::Depthwise
        } else {
            ConvKind::Dense
        },
        stride,
        padding: Padding::Symmetric((k - 1) / 2),
        activation,
        ..ConvSpec::new(conv, Some(bn), k, out)
    })
}

/// Builds `variant` from `file`.
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let found = block_count(file);
    if found != variant.blocks.len() {
        return Err(Error::UnsupportedModel {
            path: file.path().to_path_buf(),
            reason: format!(
                "{} has {} inverted residual blocks, the file {found}",
                variant.name,
                variant.blocks.len()
            ),
        });
    }
    let mut g = Builder::new(file, size);
    let input = g.input();
    let stem = conv_bn(
        file,
        "features.0.0",
        "features.0.1",
        2,
        Activation::HardSwish,
    )?;
    let mut x = g.conv(&stem, input, "features.0")?;
    g.layer("features.0", x);
    for (i, &(stride, hardswish)) in variant.blocks.iter().enumerate() {
        let n = i + 1;
        let p = format!("features.{n}.block");
        let activation = if hardswish {
            Activation::HardSwish
        } else {
            Activation::Relu
        };
        let block_in = x;
        let in_channels = g.spec(x).channels;
        let modules = (0..)
            .take_while(|m| {
                file.shape(&format!("{p}.{m}.0.weight")).is_some()
                    || file.shape(&format!("{p}.{m}.fc1.weight")).is_some()
            })
            .count();
        for m in 0..modules {
            let module = format!("{p}.{m}");
            if file.shape(&format!("{module}.fc1.weight")).is_some() {
                x = g.squeeze_excite(&module, x, Activation::Relu, Activation::HardSigmoid)?;
                continue;
            }
            let (conv, bn) = (format!("{module}.0"), format!("{module}.1"));
            let last = m + 1 == modules;
            let mut spec = conv_bn(file, &conv, &bn, 1, activation)?;
            if spec.kind == ConvKind::Depthwise {
                spec.stride = stride;
            }
            let name = if last {
                let skip = stride == 1 && in_channels == spec.out_channels;
                spec.activation = Activation::None;
                spec.residual = skip.then_some(block_in);
                format!("features.{n}")
            } else {
                module.clone()
            };
            x = g.conv(&spec, x, &name)?;
        }
        g.layer(&format!("features.{n}"), x);
    }
    let n = variant.blocks.len() + 1;
    let (conv, bn) = (format!("features.{n}.0"), format!("features.{n}.1"));
    let head = conv_bn(file, &conv, &bn, 1, Activation::HardSwish)?;
    let last = format!("features.{n}");
    x = g.conv(&head, x, &last)?;
    g.layer(&last, x);
    let pooled = g.global_avg_pool(x)?;
    let hidden = g.linear(
        "classifier.0",
        pooled,
        Activation::HardSwish,
        "classifier.1",
    )?;
    let logits = g.linear("classifier.3", hidden, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer: last,
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

//! timm's `legacy_xception` (the Xception of the Keras Grad-CAM example, Chollet 2017) as a
//! graph, 299×299: the stem `conv1`/`bn1`/`act1`, `conv2`/`bn2`/`act2`; twelve blocks `block1` …
//! `block12` (`rep`: ReLU, separable conv — a 3×3 depthwise `conv1` and a 1×1 `pointwise` —,
//! BatchNorm, repeated, ending in a 3×3/2 max pool in the strided blocks; plus the block's input,
//! through `skip` and `skipbn`, a strided 1×1 conv and BatchNorm, where the shape changes); the
//! separable convs `conv3`/`bn3`/`act3` and `conv4`/`bn4`/`act4`; global average pool and `fc`.
//! The repetitions and widths are read from the file.

use super::arch::Family;
use super::builder::{Builder, ConvSpec, Description};
use super::tensors::WeightFile;
use super::{Activation, ConvKind, Model, Padding};
use crate::error::{Error, Result};

/// The name `--arch` takes.
pub const NAME: &str = "legacy_xception";

/// Whether `file` holds timm's Xception: a block's separable conv and the exit flow's are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("block1.rep.0.conv1.weight").is_some() && file.shape("conv3.conv1.weight").is_some()
}

/// Output channels of the conv `prefix` in the file (0 when it is missing: the load then names
/// it).
fn out_channels(file: &WeightFile, prefix: &str) -> u32 {
    file.shape(&format!("{prefix}.weight"))
        .and_then(|s| s.first().copied())
        .map_or(0, |c| c as u32)
}

/// The blocks that end in a 3×3/2 max pool (entry and exit flow).
const STRIDED: [u32; 4] = [1, 2, 3, 12];

/// Separable conv `prefix` (`conv1` depthwise 3×3, padding 1; `pointwise` 1×1) over `x`, then
/// BatchNorm `bn`, `residual` added and `activation`; returns the output, named `name`.
fn separable(
    g: &mut Builder,
    file: &WeightFile,
    (prefix, bn): (&str, &str),
    x: usize,
    residual: Option<usize>,
    activation: Activation,
    name: &str,
) -> Result<usize> {
    let dw = format!("{prefix}.conv1");
    let spec = ConvSpec {
        kind: ConvKind::Depthwise,
        padding: Padding::Symmetric(1),
        ..ConvSpec::new(&dw, None, 3, g.spec(x).channels)
    };
    let x = g.conv(&spec, x, &dw)?;
    let pw = format!("{prefix}.pointwise");
    let spec = ConvSpec {
        activation,
        residual,
        ..ConvSpec::new(&pw, Some(bn), 1, out_channels(file, &pw))
    };
    g.conv(&spec, x, name)
}

/// Builds Xception from `file`.
pub fn build(file: &WeightFile, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let input = g.input();
    let mut x = input;
    for (conv, bn, act) in [("conv1", "bn1", "act1"), ("conv2", "bn2", "act2")] {
        let spec = ConvSpec {
            stride: if conv == "conv1" { 2 } else { 1 },
            activation: Activation::Relu,
            ..ConvSpec::new(conv, Some(bn), 3, out_channels(file, conv))
        };
        x = g.conv(&spec, x, act)?;
        g.layer(act, x);
    }
    for b in 1..=12 {
        let p = format!("block{b}");
        let block_in = x;
        let skip = format!("{p}.skip");
        let has_skip = file.shape(&format!("{skip}.weight")).is_some();
        let strided = STRIDED.contains(&b);
        // rep: [ReLU], SeparableConv2d, BatchNorm, ReLU, ... (block1 starts without the ReLU).
        let mut i = 0;
        let mut seps = 0;
        loop {
            let sep = format!("{p}.rep.{i}");
            if file.shape(&format!("{sep}.conv1.weight")).is_some() {
                let bn = format!("{p}.rep.{}", i + 1);
                // A ReLU follows its BatchNorm when another separable conv follows.
                let more = file
                    .shape(&format!("{p}.rep.{}.conv1.weight", i + 3))
                    .is_some();
                let (activation, name) = if more {
                    (Activation::Relu, format!("{p}.rep.{}", i + 2))
                } else {
                    (Activation::None, bn.clone())
                };
                // The identity shortcut is added to the last BatchNorm.
                let residual = (!more && !has_skip && !strided).then_some(block_in);
                x = separable(&mut g, file, (&sep, &bn), x, residual, activation, &name)?;
                seps += 1;
                i += if more { 3 } else { 2 };
            } else if i == 0 && file.shape(&format!("{p}.rep.1.conv1.weight")).is_some() {
                // The block's first ReLU, not in place: the shortcut reads its input.
                x = g.activation(x, Activation::Relu, &format!("{p}.rep.0"))?;
                i = 1;
            } else {
                break;
            }
        }
        if seps == 0 {
            return Err(Error::MissingTensor {
                path: file.path().to_path_buf(),
                tensor: format!("{p}.rep.0.conv1.weight"),
                expected: Vec::new(),
            });
        }
        if strided {
            x = g.max_pool(x, 3, 2, 1, &format!("{p}.rep.{i}"))?;
        }
        if has_skip {
            // The shortcut conv and its BatchNorm, the block's result added.
            let skipbn = format!("{p}.skipbn");
            let spec = ConvSpec {
                stride: if strided { 2 } else { 1 },
                residual: Some(x),
                ..ConvSpec::new(&skip, Some(&skipbn), 1, out_channels(file, &skip))
            };
            x = g.conv(&spec, block_in, &p)?;
        } else if strided {
            return Err(Error::UnsupportedModel {
                path: file.path().to_path_buf(),
                reason: format!("{p}: a strided block without a shortcut conv"),
            });
        }
        g.layer(&p, x);
    }
    x = separable(
        &mut g,
        file,
        ("conv3", "bn3"),
        x,
        None,
        Activation::Relu,
        "act3",
    )?;
    g.layer("act3", x);
    x = separable(
        &mut g,
        file,
        ("conv4", "bn4"),
        x,
        None,
        Activation::Relu,
        "act4",
    )?;
    g.layer("act4", x);
    let pooled = g.global_avg_pool(x)?;
    let logits = g.linear("fc", pooled, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: NAME.to_string(),
            mean: [0.5; 3],
            std: [0.5; 3],
            default_layer: "act4".into(),
        },
        logits,
    )
}

/// The family's registration in src/model/arch.rs.
pub const FAMILY: Family = Family {
    variants: 1,
    name: |_| NAME,
    input_size: |_| 299,
    claims,
    candidates: |_| vec![0],
    build: |file, _, size| build(file, size),
};

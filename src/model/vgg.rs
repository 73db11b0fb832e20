//! torchvision's VGG-16 and VGG-16-BN as a graph: thirteen 3×3 convs (padding 1, own bias, then
//! BatchNorm in the BN variant, then ReLU) in five stages each ending in a 2×2/2 max pool, the
//! adaptive average pool to 7×7 (the identity at 224²), and the classifier `classifier.0`
//! (ReLU), `classifier.3` (ReLU), `classifier.6`. The first classifier layer reads the flattened
//! NCHW feature map; its columns are permuted to the engine's NHWC order at load.
//!
//! Layer names are the `features.N` modules whose output the engine keeps: each ReLU and each
//! max pool (a conv's own output, before its ReLU, is not kept). `features.30` (`features.43`
//! with BatchNorm), the last max pool, is pytorch-grad-cam's usual `features[-1]`.

use super::arch::{detected, Family};
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, Model, Padding};
use crate::error::Result;

/// A VGG: its name and whether each conv is followed by BatchNorm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// BatchNorm after each conv.
    pub batch_norm: bool,
}

/// VGG-16 and VGG-16-BN.
pub const VARIANTS: [Variant; 2] = [
    Variant {
        name: "vgg16",
        batch_norm: false,
    },
    Variant {
        name: "vgg16_bn",
        batch_norm: true,
    },
];

/// Configuration "D": output channels of each conv, 0 for a max pool.
const CONFIG: [u32; 18] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];

/// Whether `file` holds a VGG: its first conv and its last classifier layer are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("features.0.weight").is_some() && file.shape("classifier.6.weight").is_some()
}

/// The variant the file is: with BatchNorm when `features.1` has running statistics.
pub fn detect(file: &WeightFile) -> Variant {
    VARIANTS[usize::from(file.shape("features.1.running_mean").is_some())]
}

/// Builds `variant` from `file`.
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let mut x = g.input();
    // Module index in `features`: conv, [BatchNorm,] ReLU; or max pool.
    let mut index = 0;
    for &channels in &CONFIG {
        if channels == 0 {
            let name = format!("features.{index}");
            x = g.max_pool(x, 2, 2, 0, &name)?;
            g.layer(&name, x);
            index += 1;
            continue;
        }
        let conv = format!("features.{index}");
        let bn = format!("features.{}", index + 1);
        let relu = index + if variant.batch_norm { 2 } else { 1 };
        let name = format!("features.{relu}");
        let spec = ConvSpec {
            conv_bias: true,
            padding: Padding::Symmetric(1),
            activation: Activation::Relu,
            ..ConvSpec::new(
                &conv,
                variant.batch_norm.then_some(bn.as_str()),
                3,
                channels,
            )
        };
        x = g.conv(&spec, x, &name)?;
        g.layer(&name, x);
        index = relu + 1;
    }
    // torchvision's adaptive pool to 7×7 before the classifier is the identity at 224² (and up to
    // 255²), the only sizes built here.
    let grid = g.spec(x);
    if (grid.height, grid.width) != (7, 7) {
        return Err(g.unsupported(format!(
            "{}'s classifier reads a 7×7 grid, which inputs of 224 to 255 pixels give; {size}² \
             gives {}×{}",
            variant.name, grid.height, grid.width
        )));
    }
    let hidden = g.linear("classifier.0", x, Activation::Relu, "classifier.1")?;
    let hidden = g.linear("classifier.3", hidden, Activation::Relu, "classifier.4")?;
    let logits = g.linear("classifier.6", hidden, Activation::None, "logits")?;
    let default_layer = format!("features.{}", index - 1);
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer,
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
    candidates: |file| detected(&VARIANTS, Some(detect(file))),
    build: |file, i, size| build(file, &VARIANTS[i], size),
};

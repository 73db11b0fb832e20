//! torchvision's DenseNet as a graph: a 7×7/2 stem with BatchNorm and ReLU, a 3×3/2 max pool,
//! four dense blocks whose layers each read the concatenation of every earlier feature map
//! (BatchNorm-ReLU-1×1 conv to `bn_size · growth`, BatchNorm-ReLU-3×3 conv to `growth`),
//! transitions between them (BatchNorm-ReLU-1×1 conv halving the channels, 2×2/2 average pool),
//! a final BatchNorm (`features.norm5`, pytorch-grad-cam's `model.features[-1]`), ReLU, global
//! average pool and `classifier`. Tensor names are torchvision's `state_dict()` keys
//! (`features.conv0`, `features.denseblock1.denselayer1.norm1`, `features.transition1.conv`,
//! `classifier`, ...); the blocks' depth, the growth rate and the widths are read from the file,
//! so any DenseNet loads.

use super::arch::{detected, Family};
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, Model, Padding};
use crate::error::Result;

/// A torchvision DenseNet: layers per dense block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Name used in messages.
    pub name: &'static str,
    /// Layers in `denseblock1` to `denseblock4`.
    pub blocks: [u32; 4],
}

/// The torchvision DenseNets.
pub const VARIANTS: [Variant; 4] = [
    variant("densenet121", [6, 12, 24, 16]),
    variant("densenet161", [6, 12, 36, 24]),
    variant("densenet169", [6, 12, 32, 32]),
    variant("densenet201", [6, 12, 48, 32]),
];

const fn variant(name: &'static str, blocks: [u32; 4]) -> Variant {
    Variant { name, blocks }
}

/// BatchNorm epsilon of torchvision's DenseNets (PyTorch's default).
const BN_EPS: f32 = 1e-5;

/// Whether `file` holds a DenseNet: its stem and first dense layer are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("features.conv0.weight").is_some()
        && file
            .shape("features.denseblock1.denselayer1.conv1.weight")
            .is_some()
}

/// The variant the file's structure is: layers counted per block. `None` when the counts are no
/// torchvision DenseNet's.
pub fn detect(file: &WeightFile) -> Option<Variant> {
    let mut blocks = [0u32; 4];
    for (b, count) in blocks.iter_mut().enumerate() {
        while file
            .shape(&format!(
                "features.denseblock{}.denselayer{}.conv1.weight",
                b + 1,
                *count + 1
            ))
            .is_some()
        {
            *count += 1;
        }
    }
    VARIANTS.into_iter().find(|v| v.blocks == blocks)
}

/// The output channels of the conv `prefix` in the file (0 when it is missing: the load then
/// names it).
fn out_channels(file: &WeightFile, prefix: &str) -> u32 {
    file.shape(&format!("{prefix}.weight"))
        .and_then(|s| s.first().copied())
        .map_or(0, |c| c as u32)
}

/// Builds `variant` from `file`.
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let input = g.input();
    let init = out_channels(file, "features.conv0");
    let stem = ConvSpec {
        stride: 2,
        padding: Padding::Symmetric(3),
        activation: Activation::Relu,
        ..ConvSpec::new("features.conv0", Some("features.norm0"), 7, init)
    };
    let x = g.conv(&stem, input, "features.relu0")?;
    g.layer("features.relu0", x);
    let mut x = g.max_pool(x, 3, 2, 1, "features.pool0")?;
    g.layer("features.pool0", x);

    for (b, &layers) in variant.blocks.iter().enumerate() {
        let block = format!("features.denseblock{}", b + 1);
        let mut features = vec![x];
        for l in 1..=layers {
            let p = format!("{block}.denselayer{l}");
            let joined = g.concat(&features, &format!("{p}.input"))?;
            let relu1 = g.batch_norm(
                &format!("{p}.norm1"),
                BN_EPS,
                joined,
                Activation::Relu,
                &format!("{p}.relu1"),
            )?;
            let (conv1, norm2) = (format!("{p}.conv1"), format!("{p}.norm2"));
            let bottleneck = ConvSpec {
                activation: Activation::Relu,
                ..ConvSpec::new(&conv1, Some(&norm2), 1, out_channels(file, &conv1))
            };
            let y = g.conv(&bottleneck, relu1, &format!("{p}.relu2"))?;
            let conv2 = format!("{p}.conv2");
            let spec = ConvSpec {
                padding: Padding::Symmetric(1),
                ..ConvSpec::new(&conv2, None, 3, out_channels(file, &conv2))
            };
            let y = g.conv(&spec, y, &p)?;
            g.layer(&p, y);
            features.push(y);
        }
        if file
            .shape(&format!("{block}.denselayer{}.conv1.weight", layers + 1))
            .is_some()
        {
            return Err(g.unsupported(format!(
                "{block} has more than the {layers} layers of {}",
                variant.name
            )));
        }
        x = g.concat(&features, &block)?;
        g.layer(&block, x);
        if b + 1 < variant.blocks.len() {
            let t = format!("features.transition{}", b + 1);
            let relu = g.batch_norm(
                &format!("{t}.norm"),
                BN_EPS,
                x,
                Activation::Relu,
                &format!("{t}.relu"),
            )?;
            let conv = format!("{t}.conv");
            let spec = ConvSpec::new(&conv, None, 1, out_channels(file, &conv));
            let y = g.conv(&spec, relu, &conv)?;
            x = g.avg_pool(y, 2, 2, 0, &t)?;
            g.layer(&t, x);
        }
    }
    let norm5 = g.batch_norm(
        "features.norm5",
        BN_EPS,
        x,
        Activation::None,
        "features.norm5",
    )?;
    g.layer("features.norm5", norm5);
    g.layer("features", norm5);
    // `F.relu(features, inplace=True)`: pytorch-grad-cam's activations at `features.norm5` are
    // the ReLU's output (its hook's view is overwritten), its gradient the BatchNorm's.
    // A function, not an `nn.ReLU` module: guided backpropagation leaves it plain.
    let x = g.activation_in_place(norm5, Activation::FunctionalRelu, "relu")?;
    let pooled = g.global_avg_pool(x)?;
    let logits = g.linear("classifier", pooled, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer: "features.norm5".into(),
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

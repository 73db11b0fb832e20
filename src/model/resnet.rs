//! torchvision's ResNet as a graph: 7×7/2 stem, 3×3/2 max pool, four layers of basic (ResNet-18,
//! 34) or bottleneck (ResNet-50, 101, 152; ResNeXt's with a grouped 3×3 conv; Wide-ResNet's twice
//! as wide) blocks whose skip connection is added before the block's last ReLU (through `downsample`, a 1×1 conv and BatchNorm, where the shape changes),
//! global average pool and `fc`. Tensor names are torchvision's `state_dict()` keys (`conv1`,
//! `bn1`, `layer2.0.conv1`, `layer2.0.downsample.0`, `fc`, ...); the number of blocks per layer
//! is read from the file, so any depth loads.

use super::arch::{detected, Family};
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, Model, Padding};
use crate::error::Result;

/// A ResNet: blocks per layer and block type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// Name used in messages.
    pub name: &'static str,
    /// Blocks in `layer1` to `layer4`.
    pub blocks: [u32; 4],
    /// Bottleneck blocks (1×1, 3×3, 1×1, expansion 4) rather than basic ones (3×3, 3×3).
    pub bottleneck: bool,
    /// Groups of the bottleneck's 3×3 conv (ResNeXt's cardinality; 1 otherwise).
    pub groups: u32,
    /// Channels per group of `layer1`'s bottleneck 3×3 conv, × 64 / 64 (torchvision's
    /// `width_per_group`: 64, Wide-ResNet's 128, ResNeXt's 4 or 8).
    pub width_per_group: u32,
}

/// The torchvision ResNets, ResNeXts and Wide-ResNets.
pub const VARIANTS: [Variant; 10] = [
    variant("resnet18", [2, 2, 2, 2], false, 1, 64),
    variant("resnet34", [3, 4, 6, 3], false, 1, 64),
    variant("resnet50", [3, 4, 6, 3], true, 1, 64),
    variant("resnet101", [3, 4, 23, 3], true, 1, 64),
    variant("resnet152", [3, 8, 36, 3], true, 1, 64),
    variant("resnext50_32x4d", [3, 4, 6, 3], true, 32, 4),
    variant("resnext101_32x8d", [3, 4, 23, 3], true, 32, 8),
    variant("resnext101_64x4d", [3, 4, 23, 3], true, 64, 4),
    variant("wide_resnet50_2", [3, 4, 6, 3], true, 1, 128),
    variant("wide_resnet101_2", [3, 4, 23, 3], true, 1, 128),
];

const fn variant(
    name: &'static str,
    blocks: [u32; 4],
    bottleneck: bool,
    groups: u32,
    width_per_group: u32,
) -> Variant {
    Variant {
        name,
        blocks,
        bottleneck,
        groups,
        width_per_group,
    }
}

impl Variant {
    /// Width of layer `l`'s bottleneck (torchvision's `planes · width_per_group / 64 · groups`),
    /// or its basic blocks' width.
    fn width(&self, l: usize) -> u32 {
        let planes = 64 << l;
        planes * self.width_per_group / 64 * self.groups
    }
}

/// Whether `file` holds a ResNet: its stem and first block are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("conv1.weight").is_some() && file.shape("layer1.0.conv1.weight").is_some()
}

/// The variant the file's structure is: blocks counted per layer, bottleneck if `conv3` exists.
/// `None` when the counts are no torchvision ResNet's.
pub fn detect(file: &WeightFile) -> Option<Variant> {
    let mut blocks = [0u32; 4];
    for (l, count) in blocks.iter_mut().enumerate() {
        while file
            .shape(&format!("layer{}.{count}.conv1.weight", l + 1))
            .is_some()
        {
            *count += 1;
        }
    }
    let bottleneck = file.shape("layer1.0.conv3.weight").is_some();
    // The 3×3 conv's [width, width / groups, 3, 3].
    let conv = if bottleneck { "conv2" } else { "conv1" };
    let (width, groups) = match file.shape(&format!("layer1.0.{conv}.weight")) {
        Some([w, per, _, _]) if *per > 0 => (*w as u32, (*w / *per) as u32),
        _ => (0, 0),
    };
    VARIANTS.into_iter().find(|v| {
        v.blocks == blocks
            && v.bottleneck == bottleneck
            && v.groups == groups
            && v.width(0) == width
    })
}

/// Builds `variant` from `file`.
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let input = g.input();
    let stem = ConvSpec {
        stride: 2,
        padding: Padding::Symmetric(3),
        activation: Activation::Relu,
        ..ConvSpec::new("conv1", Some("bn1"), 7, 64)
    };
    let x = g.conv(&stem, input, "relu")?;
    g.layer("relu", x);
    let mut x = g.max_pool(x, 3, 2, 1, "maxpool")?;
    g.layer("maxpool", x);

    let expansion = if variant.bottleneck { 4 } else { 1 };
    for (l, &blocks) in variant.blocks.iter().enumerate() {
        let width = variant.width(l);
        for b in 0..blocks {
            let stride = if l > 0 && b == 0 { 2 } else { 1 };
            let p = format!("layer{}.{b}", l + 1);
            let block_in = x;
            let in_channels = g.spec(x).channels;
            let out_channels = (64 << l) * expansion;
            let shortcut = if stride != 1 || in_channels != out_channels {
                let (conv, bn) = (format!("{p}.downsample.0"), format!("{p}.downsample.1"));
                let spec = ConvSpec {
                    stride,
                    ..ConvSpec::new(&conv, Some(&bn), 1, out_channels)
                };
                g.conv(&spec, x, &format!("{p}.downsample"))?
            } else {
                block_in
            };
            let names: Vec<(String, String)> = (1..=3)
                .map(|i| (format!("{p}.conv{i}"), format!("{p}.bn{i}")))
                .collect();
            let conv = |i: usize, kernel, out| ConvSpec {
                activation: Activation::Relu,
                padding: Padding::Symmetric(kernel / 2),
                ..ConvSpec::new(&names[i].0, Some(&names[i].1), kernel, out)
            };
            // The last conv adds the shortcut, then applies the block's ReLU.
            let last = |i: usize, kernel, out| ConvSpec {
                residual: Some(shortcut),
                add_before_activation: true,
                ..conv(i, kernel, out)
            };
            if variant.bottleneck {
                x = g.conv(&conv(0, 1, width), x, &format!("{p}.conv1"))?;
                let spec = ConvSpec {
                    stride,
                    groups: variant.groups,
                    ..conv(1, 3, width)
                };
                x = g.conv(&spec, x, &format!("{p}.conv2"))?;
                x = g.conv(&last(2, 1, out_channels), x, &p)?;
            } else {
                let spec = ConvSpec {
                    stride,
                    ..conv(0, 3, width)
                };
                x = g.conv(&spec, x, &format!("{p}.conv1"))?;
                x = g.conv(&last(1, 3, out_channels), x, &p)?;
            }
            g.layer(&p, x);
        }
        // A checkpoint with more blocks than the variant is another variant.
        if file
            .shape(&format!("layer{}.{blocks}.conv1.weight", l + 1))
            .is_some()
        {
            return Err(g.unsupported(format!(
                "layer{} has more than the {blocks} blocks of {}",
                l + 1,
                variant.name
            )));
        }
        g.layer(&format!("layer{}", l + 1), x);
    }
    let pooled = g.global_avg_pool(x)?;
    let logits = g.linear("fc", pooled, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer: "layer4".into(),
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

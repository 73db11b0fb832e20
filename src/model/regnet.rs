//! torchvision's RegNetX and RegNetY as a graph: `stem` (3×3/2 conv, BatchNorm, ReLU), four stages
//! `trunk_output.block1` … `block4` of residual bottleneck blocks `trunk_output.blockS.blockS-I`
//! (`f.a` 1×1 conv with ReLU, `f.b` grouped 3×3 conv with ReLU, stride 2 in a stage's first
//! block, RegNetY's squeeze-and-excitation `f.se` with ReLU and a sigmoid gate, `f.c` linear 1×1
//! conv; the shortcut through `proj`, a strided 1×1 conv and BatchNorm, where the shape changes;
//! ReLU after the sum), global average pool and `fc`. Depths, widths and group widths are read
//! from the file; which variant it is (its name) from the depths and widths.

use super::arch::{detected, Family};
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, Model, Padding};
use crate::error::{Error, Result};

/// A torchvision RegNet: blocks and output width per stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The name `--arch` takes.
    pub name: &'static str,
    /// Blocks in each stage.
    depths: [u32; 4],
    /// Output channels of each stage.
    widths: [u32; 4],
}

/// The torchvision RegNets.
pub const VARIANTS: [Variant; 15] = [
    variant("regnet_y_400mf", [1, 3, 6, 6], [48, 104, 208, 440]),
    variant("regnet_y_800mf", [1, 3, 8, 2], [64, 144, 320, 784]),
    variant("regnet_y_1_6gf", [2, 6, 17, 2], [48, 120, 336, 888]),
    variant("regnet_y_3_2gf", [2, 5, 13, 1], [72, 216, 576, 1512]),
    variant("regnet_y_8gf", [2, 4, 10, 1], [224, 448, 896, 2016]),
    variant("regnet_y_16gf", [2, 4, 11, 1], [224, 448, 1232, 3024]),
    variant("regnet_y_32gf", [2, 5, 12, 1], [232, 696, 1392, 3712]),
    variant("regnet_y_128gf", [2, 7, 17, 1], [528, 1056, 2904, 7392]),
    variant("regnet_x_400mf", [1, 2, 7, 12], [32, 64, 160, 400]),
    variant("regnet_x_800mf", [1, 3, 7, 5], [64, 128, 288, 672]),
    variant("regnet_x_1_6gf", [2, 4, 10, 2], [72, 168, 408, 912]),
    variant("regnet_x_3_2gf", [2, 6, 15, 2], [96, 192, 432, 1008]),
    variant("regnet_x_8gf", [2, 5, 15, 1], [80, 240, 720, 1920]),
    variant("regnet_x_16gf", [2, 6, 13, 1], [256, 512, 896, 2048]),
    variant("regnet_x_32gf", [2, 7, 13, 1], [336, 672, 1344, 2520]),
];

const fn variant(name: &'static str, depths: [u32; 4], widths: [u32; 4]) -> Variant {
    Variant {
        name,
        depths,
        widths,
    }
}

/// BatchNorm epsilon of torchvision's RegNets (PyTorch's default).
const BN_EPS: f32 = 1e-5;

/// Whether `file` holds a torchvision RegNet: its stem and first block are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("stem.0.weight").is_some()
        && file
            .shape("trunk_output.block1.block1-0.f.a.0.weight")
            .is_some()
}

/// The prefix of block `i` of stage `s` (both from 1 and 0).
fn block(s: usize, i: u32) -> String {
    format!("trunk_output.block{s}.block{s}-{i}")
}

/// Output channels of the conv `prefix` in the file (0 when it is missing).
fn out_channels(file: &WeightFile, prefix: &str) -> u32 {
    file.shape(&format!("{prefix}.weight"))
        .and_then(|s| s.first().copied())
        .map_or(0, |c| c as u32)
}

/// Blocks per stage and each stage's width, as the file has them.
fn structure(file: &WeightFile) -> ([u32; 4], [u32; 4]) {
    let (mut depths, mut widths) = ([0; 4], [0; 4]);
    for s in 0..4 {
        while file
            .shape(&format!("{}.f.a.0.weight", block(s + 1, depths[s])))
            .is_some()
        {
            depths[s] += 1;
        }
        widths[s] = out_channels(file, &format!("{}.f.c.0", block(s + 1, 0)));
    }
    (depths, widths)
}

/// The variant with the file's depths and widths.
pub fn detect(file: &WeightFile) -> Option<Variant> {
    let (depths, widths) = structure(file);
    VARIANTS
        .into_iter()
        .find(|v| v.depths == depths && v.widths == widths)
}

/// A conv with its BatchNorm `bn` and ReLU, padding `k / 2`.
fn conv<'a>(prefix: &'a str, bn: &'a str, kernel: u32, out: u32) -> ConvSpec<'a> {
    ConvSpec {
        bn_eps: BN_EPS,
        padding: Padding::Symmetric(kernel / 2),
        activation: Activation::Relu,
        ..ConvSpec::new(prefix, Some(bn), kernel, out)
    }
}

/// Builds `variant` from `file` (its structure read from the file: any RegNet-shaped depths and
/// widths load under the variant's name).
pub fn build(file: &WeightFile, variant: &Variant, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let input = g.input();
    let stem = ConvSpec {
        stride: 2,
        ..conv("stem.0", "stem.1", 3, out_channels(file, "stem.0"))
    };
    let mut x = g.conv(&stem, input, "stem")?;
    g.layer("stem", x);
    let (depths, _) = structure(file);
    for (s, &blocks) in depths.iter().enumerate() {
        let s = s + 1;
        if blocks == 0 {
            return Err(Error::MissingTensor {
                path: file.path().to_path_buf(),
                tensor: format!("{}.f.a.0.weight", block(s, 0)),
                expected: Vec::new(),
            });
        }
        for i in 0..blocks {
            let p = block(s, i);
            let stride = if i == 0 { 2 } else { 1 };
            let names: Vec<String> = ["f.a.0", "f.a.1", "f.b.0", "f.b.1", "f.c.0", "f.c.1"]
                .iter()
                .map(|m| format!("{p}.{m}"))
                .collect();
            let (proj, proj_bn) = (format!("{p}.proj.0"), format!("{p}.proj.1"));
            let shortcut = if file.shape(&format!("{proj}.weight")).is_some() {
                let spec = ConvSpec {
                    bn_eps: BN_EPS,
                    stride,
                    ..ConvSpec::new(&proj, Some(&proj_bn), 1, out_channels(file, &proj))
                };
                g.conv(&spec, x, &format!("{p}.proj"))?
            } else {
                x
            };
            let a = conv(&names[0], &names[1], 1, out_channels(file, &names[0]));
            let y = g.conv(&a, x, &format!("{p}.f.a"))?;
            // [width, width / groups, 3, 3].
            let width = out_channels(file, &names[2]);
            let per_group = file
                .shape(&format!("{}.weight", names[2]))
                .and_then(|s| s.get(1).copied())
                .filter(|&c| c > 0)
                .map_or(1, |c| c as u32);
            let b = ConvSpec {
                stride,
                groups: (width / per_group).max(1),
                ..conv(&names[2], &names[3], 3, width)
            };
            let mut y = g.conv(&b, y, &format!("{p}.f.b"))?;
            let se = format!("{p}.f.se");
            if file.shape(&format!("{se}.fc1.weight")).is_some() {
                y = g.squeeze_excite(&se, y, Activation::Relu, Activation::Sigmoid)?;
            }
            // The shortcut is added, then the block's ReLU.
            let c = ConvSpec {
                residual: Some(shortcut),
                add_before_activation: true,
                ..conv(&names[4], &names[5], 1, out_channels(file, &names[4]))
            };
            x = g.conv(&c, y, &p)?;
            g.layer(&p, x);
        }
        g.layer(&format!("trunk_output.block{s}"), x);
    }
    g.layer("trunk_output", x);
    let pooled = g.global_avg_pool(x)?;
    let logits = g.linear("fc", pooled, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: variant.name.to_string(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer: "trunk_output".into(),
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

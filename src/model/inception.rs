//! torchvision's Inception-v3 as a graph, 299×299: the stem `Conv2d_1a_3x3` … `Conv2d_4a_3x3`
//! with two 3×3/2 max pools, the Inception modules `Mixed_5b` … `Mixed_7c` (parallel branches of
//! `BasicConv2d`s, 1×1, 3×3, 5×5 and factorised 1×7/7×1 and 1×3/3×1 convs, average or max pools,
//! concatenated along the channels), global average pool and `fc`. Every `BasicConv2d` is a conv
//! without bias, BatchNorm (epsilon 1e-3) and ReLU. The auxiliary classifier (`AuxLogits`) runs
//! only in training and is ignored.
//!
//! torchvision's pretrained Inception-v3 (`transform_input=True`) turns ImageNet-normalised
//! input into `(x − 0.5) / 0.5`, which is the normalisation the model takes here: `(x/255 − 0.5)
//! / 0.5` from the pixels, the same values.

use super::arch::Family;
use super::builder::{Builder, ConvSpec, Description};
use super::tensors::WeightFile;
use super::{Activation, Model, Padding};
use crate::error::Result;

/// The name `--arch` takes.
pub const NAME: &str = "inception_v3";

/// BatchNorm epsilon of torchvision's `BasicConv2d`.
const BN_EPS: f32 = 1e-3;

/// Whether `file` holds a torchvision Inception-v3: its stem and last module are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("Conv2d_1a_3x3.conv.weight").is_some()
        && file.shape("Mixed_7c.branch1x1.conv.weight").is_some()
}

/// A graph being built, with the conv helper every module uses.
struct Net<'a, 'f> {
    g: &'a mut Builder<'f>,
    file: &'f WeightFile,
}

impl Net<'_, '_> {
    /// `BasicConv2d` `prefix` over `x`: a `kh`×`kw` conv at `stride` with padding `(ph, pw)`,
    /// BatchNorm, ReLU; its output is named `prefix`.
    fn conv(
        &mut self,
        prefix: &str,
        x: usize,
        [kh, kw]: [u32; 2],
        stride: u32,
        [ph, pw]: [u32; 2],
    ) -> Result<usize> {
        let conv = format!("{prefix}.conv");
        let bn = format!("{prefix}.bn");
        let out = self
            .file
            .shape(&format!("{conv}.weight"))
            .and_then(|s| s.first().copied())
            .map_or(0, |c| c as u32);
        let spec = ConvSpec {
            bn_eps: BN_EPS,
            kernel_w: kw,
            stride,
            padding: Padding::Symmetric(ph),
            padding_w: Some(Padding::Symmetric(pw)),
            // BasicConv2d's `F.relu`: no `nn.ReLU` module for guided backpropagation to replace.
            activation: Activation::FunctionalRelu,
            ..ConvSpec::new(&conv, Some(&bn), kh, out)
        };
        self.g.conv(&spec, x, prefix)
    }

    /// `conv` with a square kernel of side `k`, padding `pad`.
    fn square(&mut self, prefix: &str, x: usize, k: u32, stride: u32, pad: u32) -> Result<usize> {
        self.conv(prefix, x, [k, k], stride, [pad, pad])
    }

    /// The 3×3/1 average pool (padding counted) then `BasicConv2d` `prefix` 1×1 of InceptionA,
    /// C and E's pool branch.
    fn pool_branch(&mut self, m: &str, x: usize) -> Result<usize> {
        let pooled = self.g.avg_pool(x, 3, 1, 1, &format!("{m}.avg_pool"))?;
        self.square(&format!("{m}.branch_pool"), pooled, 1, 1, 0)
    }

    /// InceptionA `m`.
    fn a(&mut self, m: &str, x: usize) -> Result<usize> {
        let b1 = self.square(&format!("{m}.branch1x1"), x, 1, 1, 0)?;
        let b5 = self.square(&format!("{m}.branch5x5_1"), x, 1, 1, 0)?;
        let b5 = self.square(&format!("{m}.branch5x5_2"), b5, 5, 1, 2)?;
        let b3 = self.square(&format!("{m}.branch3x3dbl_1"), x, 1, 1, 0)?;
        let b3 = self.square(&format!("{m}.branch3x3dbl_2"), b3, 3, 1, 1)?;
        let b3 = self.square(&format!("{m}.branch3x3dbl_3"), b3, 3, 1, 1)?;
        let bp = self.pool_branch(m, x)?;
        self.g.concat(&[b1, b5, b3, bp], m)
    }

    /// InceptionB `m` (to 17×17).
    fn b(&mut self, m: &str, x: usize) -> Result<usize> {
        let b3 = self.square(&format!("{m}.branch3x3"), x, 3, 2, 0)?;
        let bd = self.square(&format!("{m}.branch3x3dbl_1"), x, 1, 1, 0)?;
        let bd = self.square(&format!("{m}.branch3x3dbl_2"), bd, 3, 1, 1)?;
        let bd = self.square(&format!("{m}.branch3x3dbl_3"), bd, 3, 2, 0)?;
        let bp = self.g.max_pool(x, 3, 2, 0, &format!("{m}.max_pool"))?;
        self.g.concat(&[b3, bd, bp], m)
    }

    /// InceptionC `m`: factorised 7×7 convs.
    fn c(&mut self, m: &str, x: usize) -> Result<usize> {
        let (row, col) = ([1, 7], [7, 1]);
        let (pad_row, pad_col) = ([0, 3], [3, 0]);
        let b1 = self.square(&format!("{m}.branch1x1"), x, 1, 1, 0)?;
        let b7 = self.square(&format!("{m}.branch7x7_1"), x, 1, 1, 0)?;
        let b7 = self.conv(&format!("{m}.branch7x7_2"), b7, row, 1, pad_row)?;
        let b7 = self.conv(&format!("{m}.branch7x7_3"), b7, col, 1, pad_col)?;
        let bd = self.square(&format!("{m}.branch7x7dbl_1"), x, 1, 1, 0)?;
        let bd = self.conv(&format!("{m}.branch7x7dbl_2"), bd, col, 1, pad_col)?;
        let bd = self.conv(&format!("{m}.branch7x7dbl_3"), bd, row, 1, pad_row)?;
        let bd = self.conv(&format!("{m}.branch7x7dbl_4"), bd, col, 1, pad_col)?;
        let bd = self.conv(&format!("{m}.branch7x7dbl_5"), bd, row, 1, pad_row)?;
        let bp = self.pool_branch(m, x)?;
        self.g.concat(&[b1, b7, bd, bp], m)
    }

    /// InceptionD `m` (to 8×8).
    fn d(&mut self, m: &str, x: usize) -> Result<usize> {
        let b3 = self.square(&format!("{m}.branch3x3_1"), x, 1, 1, 0)?;
        let b3 = self.square(&format!("{m}.branch3x3_2"), b3, 3, 2, 0)?;
        let b7 = self.square(&format!("{m}.branch7x7x3_1"), x, 1, 1, 0)?;
        let b7 = self.conv(&format!("{m}.branch7x7x3_2"), b7, [1, 7], 1, [0, 3])?;
        let b7 = self.conv(&format!("{m}.branch7x7x3_3"), b7, [7, 1], 1, [3, 0])?;
        let b7 = self.square(&format!("{m}.branch7x7x3_4"), b7, 3, 2, 0)?;
        let bp = self.g.max_pool(x, 3, 2, 0, &format!("{m}.max_pool"))?;
        self.g.concat(&[b3, b7, bp], m)
    }

    /// InceptionE `m`: 1×3 and 3×1 convs side by side.
    fn e(&mut self, m: &str, x: usize) -> Result<usize> {
        let b1 = self.square(&format!("{m}.branch1x1"), x, 1, 1, 0)?;
        let b3 = self.square(&format!("{m}.branch3x3_1"), x, 1, 1, 0)?;
        let b3a = self.conv(&format!("{m}.branch3x3_2a"), b3, [1, 3], 1, [0, 1])?;
        let b3b = self.conv(&format!("{m}.branch3x3_2b"), b3, [3, 1], 1, [1, 0])?;
        let b3 = self.g.concat(&[b3a, b3b], &format!("{m}.branch3x3"))?;
        let bd = self.square(&format!("{m}.branch3x3dbl_1"), x, 1, 1, 0)?;
        let bd = self.square(&format!("{m}.branch3x3dbl_2"), bd, 3, 1, 1)?;
        let bda = self.conv(&format!("{m}.branch3x3dbl_3a"), bd, [1, 3], 1, [0, 1])?;
        let bdb = self.conv(&format!("{m}.branch3x3dbl_3b"), bd, [3, 1], 1, [1, 0])?;
        let bd = self.g.concat(&[bda, bdb], &format!("{m}.branch3x3dbl"))?;
        let bp = self.pool_branch(m, x)?;
        self.g.concat(&[b1, b3, bd, bp], m)
    }
}

/// Builds Inception-v3 from `file`.
pub fn build(file: &WeightFile, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let input = g.input();
    let mut net = Net { g: &mut g, file };
    let mut x = input;
    for (name, k, stride, pad) in [
        ("Conv2d_1a_3x3", 3, 2, 0),
        ("Conv2d_2a_3x3", 3, 1, 0),
        ("Conv2d_2b_3x3", 3, 1, 1),
        ("maxpool1", 3, 2, 0),
        ("Conv2d_3b_1x1", 1, 1, 0),
        ("Conv2d_4a_3x3", 3, 1, 0),
        ("maxpool2", 3, 2, 0),
    ] {
        x = if name.starts_with("maxpool") {
            net.g.max_pool(x, k, stride, pad, name)?
        } else {
            net.square(name, x, k, stride, pad)?
        };
        net.g.layer(name, x);
    }
    for (name, module) in [
        ("Mixed_5b", 'A'),
        ("Mixed_5c", 'A'),
        ("Mixed_5d", 'A'),
        ("Mixed_6a", 'B'),
        ("Mixed_6b", 'C'),
        ("Mixed_6c", 'C'),
        ("Mixed_6d", 'C'),
        ("Mixed_6e", 'C'),
        ("Mixed_7a", 'D'),
        ("Mixed_7b", 'E'),
        ("Mixed_7c", 'E'),
    ] {
        x = match module {
            'A' => net.a(name, x)?,
            'B' => net.b(name, x)?,
            'C' => net.c(name, x)?,
            'D' => net.d(name, x)?,
            _ => net.e(name, x)?,
        };
        net.g.layer(name, x);
    }
    let pooled = g.global_avg_pool(x)?;
    let logits = g.linear("fc", pooled, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: NAME.to_string(),
            mean: [0.5; 3],
            std: [0.5; 3],
            default_layer: "Mixed_7c".into(),
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

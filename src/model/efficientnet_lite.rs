//! EfficientNet-Lite as a plan: stem, MBConv blocks (no squeeze-excite, ReLU6), head, pool, fc.
//! Tensor names follow the `efficientnet_lite_pytorch` checkpoints (`_conv_stem.weight`,
//! `_blocks.N._expand_conv.weight`, `_blocks.N._bn0.running_var`, `_fc.bias`, ...).

use super::tensors::WeightFile;
use super::{same_padding, Activation, Conv, ConvKind, Model, Op, TensorSpec};
use crate::error::{Error, Result};

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

/// An EfficientNet-Lite variant.
#[derive(Clone, Copy, Debug)]
pub struct Architecture {
    /// Name used in messages.
    pub name: &'static str,
    /// Input side.
    pub input_size: u32,
    /// Stem output channels.
    pub stem_channels: u32,
    /// Stages in order.
    pub stages: &'static [Stage],
    /// Head conv output channels.
    pub head_channels: u32,
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

/// EfficientNet-Lite0 (from efficientnet_lite_builder: `r1_k3_s11_e1_i32_o16`, ...).
pub const LITE0: Architecture = Architecture {
    name: "efficientnet-lite0",
    input_size: 224,
    stem_channels: 32,
    stages: &[
        stage(1, 3, 1, 1, 16),
        stage(2, 3, 2, 6, 24),
        stage(2, 5, 2, 6, 40),
        stage(3, 3, 2, 6, 80),
        stage(3, 5, 1, 6, 112),
        stage(4, 5, 2, 6, 192),
        stage(1, 3, 1, 6, 320),
    ],
    head_channels: 1280,
};

/// BatchNorm epsilon of every EfficientNet-Lite checkpoint.
const BN_EPS: f32 = 1e-3;

struct Builder<'a> {
    file: &'a WeightFile,
    convs: Vec<Conv>,
    tensors: Vec<TensorSpec>,
    ops: Vec<Op>,
}

impl Builder<'_> {
    fn tensor(&mut self, name: String, height: u32, width: u32, channels: u32) -> usize {
        self.tensors.push(TensorSpec {
            name,
            height,
            width,
            channels,
        });
        self.tensors.len() - 1
    }

    /// Loads `<prefix>.weight` and the BatchNorm `<bn>.*`, folds them, and appends the conv and
    /// its op. Returns the output tensor.
    #[allow(clippy::too_many_arguments)] // reason: one call per layer kind reads best flat
    fn conv(
        &mut self,
        prefix: &str,
        bn: &str,
        kind: ConvKind,
        kernel: u32,
        stride: u32,
        out_channels: u32,
        activation: Activation,
        input: usize,
        residual: Option<usize>,
        output_name: String,
    ) -> Result<usize> {
        let src = self.tensors[input].clone();
        let in_channels = src.channels;
        let (k, ci, co) = (kernel as usize, in_channels as usize, out_channels as usize);
        let per_group = if kind == ConvKind::Depthwise { 1 } else { ci };
        if kind == ConvKind::Depthwise && ci != co {
            return Err(self.unsupported(format!(
                "{prefix}: depthwise conv with {ci} inputs and {co} outputs"
            )));
        }
        let raw = self
            .file
            .tensor(&format!("{prefix}.weight"), &[co, per_group, k, k])?;
        let gamma = self.file.tensor(&format!("{bn}.weight"), &[co])?;
        let beta = self.file.tensor(&format!("{bn}.bias"), &[co])?;
        let mean = self.file.tensor(&format!("{bn}.running_mean"), &[co])?;
        let var = self.file.tensor(&format!("{bn}.running_var"), &[co])?;
        if let Some(i) = var.iter().position(|v| *v < 0.0) {
            return Err(self.unsupported(format!("{bn}.running_var[{i}] is negative ({})", var[i])));
        }
        if !in_channels.is_multiple_of(4) && kind != ConvKind::Dense
            || !out_channels.is_multiple_of(4)
        {
            return Err(self.unsupported(format!(
                "{prefix}: channel counts must be multiples of 4 (found {ci} → {co})"
            )));
        }
        // Folding in f64 keeps the folded weights as close as f32 allows to conv-then-BN.
        let scale: Vec<f64> = (0..co)
            .map(|o| f64::from(gamma[o]) / (f64::from(var[o]) + f64::from(BN_EPS)).sqrt())
            .collect();
        let bias: Vec<f32> = (0..co)
            .map(|o| (f64::from(beta[o]) - f64::from(mean[o]) * scale[o]) as f32)
            .collect();
        let weight_torch: Vec<f32> = raw
            .iter()
            .enumerate()
            .map(|(i, w)| (f64::from(*w) * scale[i / (per_group * k * k)]) as f32)
            .collect();
        let mut weight = vec![0f32; weight_torch.len()];
        for o in 0..co {
            for i in 0..per_group {
                for y in 0..k {
                    for x in 0..k {
                        let t = ((o * per_group + i) * k + y) * k + x;
                        let g = match kind {
                            ConvKind::Dense => ((y * k + x) * ci + i) * co + o,
                            ConvKind::Pointwise => i * co + o,
                            ConvKind::Depthwise => (y * k + x) * co + o,
                        };
                        weight[g] = weight_torch[t];
                    }
                }
            }
        }
        let (out_h, pad_top) = same_padding(src.height, kernel, stride);
        let (out_w, pad_left) = same_padding(src.width, kernel, stride);
        let output = self.tensor(output_name, out_h, out_w, out_channels);
        self.convs.push(Conv {
            name: prefix.to_string(),
            kind,
            kernel,
            stride,
            in_channels,
            out_channels,
            activation,
            weight,
            weight_torch,
            bias,
        });
        self.ops.push(Op::Conv {
            conv: self.convs.len() - 1,
            input,
            output,
            residual,
            pad_top,
            pad_left,
        });
        Ok(output)
    }

    fn unsupported(&self, reason: String) -> Error {
        Error::UnsupportedModel {
            path: self.file.path().to_path_buf(),
            reason,
        }
    }
}

/// Builds the plan of `arch` from `file`.
pub fn build(file: &WeightFile, arch: &Architecture) -> Result<Model> {
    let mut b = Builder {
        file,
        convs: Vec::new(),
        tensors: Vec::new(),
        ops: Vec::new(),
    };
    let input = b.tensor("input".into(), arch.input_size, arch.input_size, 3);
    b.ops.push(Op::Preprocess { output: input });
    let mut x = b.conv(
        "_conv_stem",
        "_bn0",
        ConvKind::Dense,
        3,
        2,
        arch.stem_channels,
        Activation::Relu6,
        input,
        None,
        "stem".into(),
    )?;

    let mut target_layers = Vec::new();
    let mut index = 0;
    for stage in arch.stages {
        for repeat in 0..stage.repeats {
            let stride = if repeat == 0 { stage.stride } else { 1 };
            let block_in = x;
            let in_channels = b.tensors[x].channels;
            let hidden = in_channels * stage.expand;
            let p = format!("_blocks.{index}");
            if stage.expand != 1 {
                x = b.conv(
                    &format!("{p}._expand_conv"),
                    &format!("{p}._bn0"),
                    ConvKind::Pointwise,
                    1,
                    1,
                    hidden,
                    Activation::Relu6,
                    x,
                    None,
                    format!("blocks.{index}.expand"),
                )?;
            }
            x = b.conv(
                &format!("{p}._depthwise_conv"),
                &format!("{p}._bn1"),
                ConvKind::Depthwise,
                stage.kernel,
                stride,
                hidden,
                Activation::Relu6,
                x,
                None,
                format!("blocks.{index}.depthwise"),
            )?;
            let skip = stride == 1 && in_channels == stage.out_channels;
            x = b.conv(
                &format!("{p}._project_conv"),
                &format!("{p}._bn2"),
                ConvKind::Pointwise,
                1,
                1,
                stage.out_channels,
                Activation::None,
                x,
                skip.then_some(block_in),
                format!("blocks.{index}"),
            )?;
            target_layers.push((format!("blocks.{index}"), x));
            index += 1;
        }
    }
    // A checkpoint with more blocks than the architecture is another architecture.
    if file
        .shape(&format!("_blocks.{index}._project_conv.weight"))
        .is_some()
    {
        return Err(b.unsupported(format!(
            "it has more than the {index} MBConv blocks of {}",
            arch.name
        )));
    }
    x = b.conv(
        "_conv_head",
        "_bn1",
        ConvKind::Pointwise,
        1,
        1,
        arch.head_channels,
        Activation::Relu6,
        x,
        None,
        "head".into(),
    )?;
    target_layers.push(("head".into(), x));

    let features = arch.head_channels as usize;
    let classes = match file.shape("_fc.weight") {
        Some([c, f]) if *f == features && *c > 0 => *c,
        Some(s) => {
            return Err(Error::TensorShape {
                path: file.path().to_path_buf(),
                tensor: "_fc.weight".into(),
                expected: vec![1000, features],
                found: s.to_vec(),
            })
        }
        None => {
            return Err(Error::MissingTensor {
                path: file.path().to_path_buf(),
                tensor: "_fc.weight".into(),
                expected: vec![1000, features],
            })
        }
    };
    let fc_weight = file.tensor("_fc.weight", &[classes, features])?;
    let fc_bias = file.tensor("_fc.bias", &[classes])?;
    let pooled = b.tensor("pooled".into(), 1, 1, arch.head_channels);
    b.ops.push(Op::GlobalAvgPool {
        input: x,
        output: pooled,
    });
    let logits = b.tensor("logits".into(), 1, 1, classes as u32);
    b.ops.push(Op::Linear {
        input: pooled,
        output: logits,
    });

    Ok(Model {
        source: file.path().to_path_buf(),
        architecture: arch.name.to_string(),
        input_size: arch.input_size,
        // The reference's transform: Normalize(mean=0.5, std=0.5) on [0, 1].
        mean: [0.5; 3],
        std: [0.5; 3],
        convs: b.convs,
        fc_weight,
        fc_bias,
        classes: classes as u32,
        tensors: b.tensors,
        ops: b.ops,
        input,
        logits,
        target_layers,
        default_layer: "head".into(),
    })
}

//! torchvision's MobileNetV2 as a graph: `features.0` (3×3/2 conv, BatchNorm, ReLU6), seventeen
//! inverted residual blocks `features.1` to `features.17` (1×1 expansion with ReLU6 except in the
//! first, 3×3 depthwise with ReLU6, linear 1×1 projection, skip connection where the shape is
//! kept), `features.18` (1×1 conv to 1280, ReLU6), global average pool and `classifier.1`.
//! Padding is PyTorch's symmetric `(k - 1) / 2`. Strides come from torchvision's settings table;
//! channel counts are read from the file, so width multipliers other than 1 load too.

use super::arch::Family;
use super::builder::{Builder, ConvSpec, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::tensors::WeightFile;
use super::{Activation, ConvKind, Model, Padding};
use crate::error::{Error, Result};

/// The name `--arch` takes.
pub const NAME: &str = "mobilenet_v2";

/// Stride of inverted residual blocks 1 to 17 (torchvision's `inverted_residual_setting`:
/// t, c, n, s = 1,16,1,1; 6,24,2,2; 6,32,3,2; 6,64,4,2; 6,96,3,1; 6,160,3,2; 6,320,1,1).
const STRIDES: [u32; 17] = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1];

/// Whether `file` holds a MobileNetV2: its stem and its last inverted residual block are there.
pub fn claims(file: &WeightFile) -> bool {
    file.shape("features.0.0.weight").is_some()
        && file.shape("features.17.conv.0.0.weight").is_some()
}

/// Output channels of the conv `prefix` in the file, read from its weight's shape.
fn out_channels(file: &WeightFile, prefix: &str) -> Result<u32> {
    let tensor = format!("{prefix}.weight");
    match file.shape(&tensor) {
        Some([out, ..]) => Ok(*out as u32),
        _ => Err(Error::MissingTensor {
            path: file.path().to_path_buf(),
            tensor,
            expected: Vec::new(),
        }),
    }
}

/// A conv followed by BatchNorm (`<prefix>.0`, `<prefix>.1`) and ReLU6, padding `(k - 1) / 2`.
fn conv_bn_relu6<'a>(conv: &'a str, bn: &'a str, kernel: u32, out: u32) -> ConvSpec<'a> {
    ConvSpec {
        padding: Padding::Symmetric((kernel - 1) / 2),
        activation: Activation::Relu6,
        ..ConvSpec::new(conv, Some(bn), kernel, out)
    }
}

/// Builds MobileNetV2 from `file`.
pub fn build(file: &WeightFile, size: u32) -> Result<Model> {
    let mut g = Builder::new(file, size);
    let input = g.input();
    let stem = ConvSpec {
        stride: 2,
        ..conv_bn_relu6(
            "features.0.0",
            "features.0.1",
            3,
            out_channels(file, "features.0.0")?,
        )
    };
    let mut x = g.conv(&stem, input, "features.0")?;
    g.layer("features.0", x);
    for (i, &stride) in STRIDES.iter().enumerate() {
        let n = i + 1;
        let p = format!("features.{n}.conv");
        let block_in = x;
        let in_channels = g.spec(x).channels;
        // The first block has no expansion: depthwise, then projection (conv.1, BatchNorm conv.2).
        let expands = file.shape(&format!("{p}.3.weight")).is_some();
        let (dw, project, project_bn) = if expands {
            let (conv, bn) = (format!("{p}.0.0"), format!("{p}.0.1"));
            let hidden = out_channels(file, &conv)?;
            let spec = conv_bn_relu6(&conv, &bn, 1, hidden);
            x = g.conv(&spec, x, &format!("features.{n}.expand"))?;
            (format!("{p}.1"), format!("{p}.2"), format!("{p}.3"))
        } else {
            (format!("{p}.0"), format!("{p}.1"), format!("{p}.2"))
        };
        let (dw_conv, dw_bn) = (format!("{dw}.0"), format!("{dw}.1"));
        let spec = ConvSpec {
            kind: ConvKind::Depthwise,
            stride,
            ..conv_bn_relu6(&dw_conv, &dw_bn, 3, g.spec(x).channels)
        };
        x = g.conv(&spec, x, &format!("features.{n}.depthwise"))?;
        let out = out_channels(file, &project)?;
        let skip = stride == 1 && in_channels == out;
        let spec = ConvSpec {
            residual: skip.then_some(block_in),
            ..ConvSpec::new(&project, Some(&project_bn), 1, out)
        };
        x = g.conv(&spec, x, &format!("features.{n}"))?;
        g.layer(&format!("features.{n}"), x);
    }
    let head = conv_bn_relu6(
        "features.18.0",
        "features.18.1",
        1,
        out_channels(file, "features.18.0")?,
    );
    x = g.conv(&head, x, "features.18")?;
    g.layer("features.18", x);
    let pooled = g.global_avg_pool(x)?;
    let logits = g.linear("classifier.1", pooled, Activation::None, "logits")?;
    g.finish(
        Description {
            architecture: NAME.to_string(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer: "features.18".into(),
        },
        logits,
    )
}

/// The family's registration in src/model/arch.rs.
pub const FAMILY: Family = Family {
    variants: 1,
    name: |_| NAME,
    input_size: |_| 224,
    claims,
    candidates: |_| vec![0],
    build: |file, _, size| build(file, size),
};

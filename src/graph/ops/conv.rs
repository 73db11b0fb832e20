//! 2-D convolution (ONNX `Conv`, PyTorch `nn.Conv2d`): any kernel height and width, stride,
//! dilation, groups and four-sided zero padding, with an optional bias.
//!
//! Gradient: `∂x = convᵀ(∂y)`, the transposed convolution with the same weights (keeps
//! nothing). FullGrad reads its bias, when it has one.

use super::{single, Keeps, OpRule, Shape};

/// A convolution's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// `[out, in / groups, kernel height, kernel width]`, PyTorch's layout.
    pub weight: Vec<f32>,
    /// `[out]`, when the layer has a bias.
    pub bias: Option<Vec<f32>>,
    /// Output channels.
    pub out_channels: u32,
    /// Kernel height and width.
    pub kernel: [u32; 2],
    /// Stride down and across.
    pub stride: [u32; 2],
    /// Dilation down and across.
    pub dilation: [u32; 2],
    /// Channel groups: 1 (dense), the channel count (depthwise), or any divisor of both.
    pub groups: u32,
    /// Zero padding: top, left, bottom, right.
    pub pads: [u32; 4],
}

impl Conv {
    /// Output size along one axis: PyTorch's `floor((in + pads − dilation·(k − 1) − 1) / stride) + 1`.
    fn axis(input: u32, pads: u64, kernel: u32, stride: u32, dilation: u32) -> Option<u32> {
        let reach = u64::from(dilation) * u64::from(kernel.checked_sub(1)?) + 1;
        let padded = u64::from(input) + pads;
        let out = (padded >= reach && stride > 0).then(|| (padded - reach) / u64::from(stride) + 1);
        out.and_then(|o| u32::try_from(o).ok())
    }
}

impl OpRule for Conv {
    fn kind(&self) -> &'static str {
        "Conv"
    }

    fn output_shape(&self, inputs: &[Shape]) -> Result<Shape, String> {
        let (h, w, c) = single(inputs);
        let g = self.groups;
        if g == 0 || !c.is_multiple_of(g) || !self.out_channels.is_multiple_of(g) {
            return Err(format!(
                "{g} groups do not divide {c} input and {} output channels",
                self.out_channels
            ));
        }
        let [kh, kw] = self.kernel;
        if self.out_channels == 0 || kh == 0 || kw == 0 {
            return Err(format!(
                "{} outputs and a {kh}×{kw} kernel",
                self.out_channels
            ));
        }
        let expected = [c / g, kh, kw]
            .iter()
            .try_fold(u64::from(self.out_channels), |n, &d| {
                n.checked_mul(u64::from(d))
            });
        if expected != Some(self.weight.len() as u64) {
            return Err(format!(
                "a weight of {} values for {} outputs, {} inputs per group and a {kh}×{kw} kernel",
                self.weight.len(),
                self.out_channels,
                c / g
            ));
        }
        if let Some(b) = &self.bias {
            if b.len() != self.out_channels as usize {
                return Err(format!(
                    "a bias of {} values for {} outputs",
                    b.len(),
                    self.out_channels
                ));
            }
        }
        let [top, left, bottom, right] = self.pads;
        let sum = |a: u32, b: u32| u64::from(a) + u64::from(b);
        let out_h = Self::axis(h, sum(top, bottom), kh, self.stride[0], self.dilation[0]);
        let out_w = Self::axis(w, sum(left, right), kw, self.stride[1], self.dilation[1]);
        match (out_h, out_w) {
            (Some(oh), Some(ow)) => Ok((oh, ow, self.out_channels)),
            _ => Err(format!(
                "a {kh}×{kw} kernel does not fit the padded {h}×{w} input"
            )),
        }
    }

    fn keeps(&self) -> Keeps {
        Keeps::Nothing
    }

    fn full_grad_bias(&self) -> Option<Vec<f32>> {
        self.bias.clone()
    }
}

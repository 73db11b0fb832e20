//! The targeted backward pass as a plan: from the target logit back to one layer's output and no
//! further, with gradient buffers shared by liveness.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::model::{Activation, ConvKind, Model, Op};

/// One conv's input gradient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackwardStep {
    /// Index into [`Model::convs`].
    pub conv: usize,
    /// The conv's output tensor: its gradient is read, its forward value gives the ReLU6 mask.
    pub output: usize,
    /// The conv's input tensor, whose gradient this step writes.
    pub input: usize,
    /// A tensor whose gradient is added to the input's (the skip connection that also reads the
    /// input).
    pub extra: Option<usize>,
    /// Whether the conv ends in a ReLU6 (mask the output gradient by its derivative).
    pub relu6: bool,
    /// TF "SAME" padding before the first row and column.
    pub pad: (u32, u32),
}

/// Everything the backward pass runs for one target layer.
#[derive(Clone, Debug)]
pub struct BackwardPlan {
    /// The target layer's tensor: the gradient computed last.
    pub target: usize,
    /// The tensor the global average pool reads (its gradient comes straight from the logit).
    pub pooled_input: usize,
    /// Conv input gradients, in execution order.
    pub steps: Vec<BackwardStep>,
    /// For each tensor with a gradient, the gradient buffer it lives in.
    pub slot_of: HashMap<usize, usize>,
    /// Number of gradient buffers.
    pub slots: usize,
    /// Values per image of the largest gradient (each buffer's size).
    pub slot_len: usize,
}

impl BackwardPlan {
    /// Plans the backward pass from the logits to `target` (a tensor index).
    pub fn new(model: &Model, target: usize) -> Result<Self> {
        let unsupported = |reason: String| Error::UnsupportedModel {
            path: model.source.clone(),
            reason,
        };
        let pooled_input = model
            .ops
            .iter()
            .find_map(|op| match op {
                Op::GlobalAvgPool { input, .. } => Some(*input),
                _ => None,
            })
            .ok_or_else(|| unsupported("no global average pool before the classifier".into()))?;
        if target > pooled_input {
            return Err(unsupported(format!(
                "layer `{}` comes after the pooled feature map",
                model.tensors[target].name
            )));
        }

        let mut steps = Vec::new();
        let mut has_grad = vec![false; model.tensors.len()];
        has_grad[pooled_input] = true;
        // tensor → tensor whose gradient also flows into it through a skip connection
        let mut skip_into: HashMap<usize, usize> = HashMap::new();
        for op in model.ops.iter().rev() {
            let Op::Conv {
                conv,
                input,
                output,
                residual,
                pad_top,
                pad_left,
            } = *op
            else {
                continue;
            };
            if input < target || !has_grad[output] {
                continue;
            }
            let c = &model.convs[conv];
            if c.kind == ConvKind::Dense {
                return Err(unsupported(format!(
                    "no backward pass for the dense conv {}",
                    c.name
                )));
            }
            if residual.is_some() && c.activation != Activation::None {
                return Err(unsupported(format!(
                    "{}: an activation before a residual add has no backward kernel",
                    c.name
                )));
            }
            if let Some(r) = residual {
                if r >= target {
                    skip_into.insert(r, output);
                }
            }
            steps.push(BackwardStep {
                conv,
                output,
                input,
                extra: skip_into.remove(&input),
                relu6: c.activation == Activation::Relu6,
                pad: (pad_top, pad_left),
            });
            has_grad[input] = true;
        }
        if !has_grad[target] || !skip_into.is_empty() {
            return Err(unsupported(format!(
                "cannot route the gradient to layer `{}`",
                model.tensors[target].name
            )));
        }

        // Liveness: a gradient is born at the step writing it and dies after the last step
        // reading it; the target's lives to the end. Step -1 is the logit gradient.
        let mut last_use: HashMap<usize, i64> = HashMap::new();
        for (s, step) in steps.iter().enumerate() {
            last_use.insert(step.output, s as i64);
            if let Some(e) = step.extra {
                last_use.insert(e, s as i64);
            }
        }
        last_use.insert(target, i64::MAX);
        let mut slot_of = HashMap::new();
        let mut free_after: Vec<i64> = Vec::new();
        let mut assign = |tensor: usize, at: i64, slot_of: &mut HashMap<usize, usize>| {
            let dies = last_use.get(&tensor).copied().unwrap_or(at);
            let slot = match free_after.iter().position(|f| *f < at) {
                Some(s) => s,
                None => {
                    free_after.push(0);
                    free_after.len() - 1
                }
            };
            free_after[slot] = dies;
            slot_of.insert(tensor, slot);
        };
        assign(pooled_input, -1, &mut slot_of);
        for (s, step) in steps.iter().enumerate() {
            assign(step.input, s as i64, &mut slot_of);
        }
        let slots = free_after.len();
        let slot_len = slot_of
            .keys()
            .map(|t| model.tensors[*t].len())
            .max()
            .unwrap_or(0);
        Ok(Self {
            target,
            pooled_input,
            steps,
            slot_of,
            slots,
            slot_len,
        })
    }
}

//! The network as plain ops: a graph of [`ops::Op`]s over named tensors, in execution order,
//! as builders (and importers) write it, one PyTorch module per node. [`lower`] is the one
//! fusion pass that turns it into the engine's executable plan ([`crate::model::Model`]): each
//! conv with the BatchNorm, residual add and activation after it folded into one fused kernel,
//! wherever that is exact.

pub mod ops;

mod fuse;

use std::path::{Path, PathBuf};

pub use fuse::{lower, Lowered};
pub use ops::{Keeps, Op, OpRule, Shape};

use crate::error::{Error, Result};
use crate::model::TensorSpec;

/// The most values a tensor may hold per image (the kernels index a batch's values with 32 bits).
pub const MAX_TENSOR_VALUES: u64 = 1 << 28;

/// One op applied to tensors.
#[derive(Clone, Debug)]
pub struct Node {
    /// The module path (`layer1.0.bn1`, `features.3`, `_blocks.2._depthwise_conv`): in messages.
    pub name: String,
    /// The op and its parameters.
    pub op: Op,
    /// The tensors it reads, as many as the op's arity.
    pub inputs: Vec<usize>,
    /// The tensor it writes.
    pub output: usize,
}

/// A network of plain ops. Tensors are written once each, by the node that produces them; the
/// input is produced by preprocessing.
#[derive(Clone, Debug)]
pub struct Graph {
    /// The file the network came from (in messages).
    pub source: PathBuf,
    /// Every tensor of one image.
    pub tensors: Vec<TensorSpec>,
    /// The nodes, in execution order.
    pub nodes: Vec<Node>,
    /// The preprocessed input image.
    pub input: usize,
    /// Tensors a CAM can target, by the module path PyTorch users pass to pytorch-grad-cam;
    /// the fusion pass keeps each a tensor of the plan.
    pub layers: Vec<(String, usize)>,
    /// Further names of tensors (an imported graph's module paths and tensor names), offered as
    /// layers where the fusion pass leaves them a tensor of the plan.
    pub modules: Vec<(String, usize)>,
    /// (tensor, result) for each op a PyTorch module applies in place (`F.relu(x, inplace=True)`):
    /// a forward hook on the module that wrote `tensor` keeps a view that the op overwrites, so
    /// pytorch-grad-cam's activations at that layer are `result`'s values, while its gradient is
    /// still `tensor`'s.
    pub in_place: Vec<(usize, usize)>,
    /// A vision transformer's patch-token layout (its token layers' CAM grid); `None` for a CNN.
    pub token_grid: Option<crate::model::TokenGrid>,
}

impl Graph {
    /// A graph whose input is a `size`×`size` RGB image.
    pub fn new(source: &Path, size: u32) -> Self {
        let mut graph = Self {
            source: source.to_path_buf(),
            tensors: Vec::new(),
            nodes: Vec::new(),
            input: 0,
            layers: Vec::new(),
            modules: Vec::new(),
            in_place: Vec::new(),
            token_grid: None,
        };
        graph.input = graph.tensor("input", (size, size, 3));
        graph
    }

    fn tensor(&mut self, name: &str, (height, width, channels): Shape) -> usize {
        self.tensors.push(TensorSpec {
            name: name.to_string(),
            height,
            width,
            channels,
        });
        self.tensors.len() - 1
    }

    /// Tensor `id`'s shape.
    pub fn shape(&self, id: usize) -> Shape {
        let t = &self.tensors[id];
        (t.height, t.width, t.channels)
    }

    /// An error saying why the network cannot be built or run.
    pub fn unsupported(&self, reason: String) -> Error {
        Error::UnsupportedModel {
            path: self.source.clone(),
            reason,
        }
    }

    /// Appends node `name` applying `op` to `inputs`; its output tensor, shaped by the op's
    /// rule, is named `output`. Returns the output tensor.
    pub fn push(&mut self, name: &str, op: Op, inputs: &[usize], output: &str) -> Result<usize> {
        let rule = op.rule();
        if inputs.len() != rule.arity() {
            return Err(self.unsupported(format!(
                "{name}: {} reads {} tensors, given {}",
                rule.kind(),
                rule.arity(),
                inputs.len()
            )));
        }
        let shapes: Vec<Shape> = inputs.iter().map(|&t| self.shape(t)).collect();
        let shape = rule
            .output_shape(&shapes)
            .and_then(|s| {
                let values = u64::from(s.0) * u64::from(s.1) * u64::from(s.2);
                if values == 0 || values > MAX_TENSOR_VALUES {
                    Err(format!("an output of {}×{}×{} values", s.0, s.1, s.2))
                } else {
                    Ok(s)
                }
            })
            .map_err(|reason| self.unsupported(format!("{name} ({}): {reason}", rule.kind())))?;
        let out = self.tensor(output, shape);
        self.nodes.push(Node {
            name: name.to_string(),
            op,
            inputs: inputs.to_vec(),
            output: out,
        });
        Ok(out)
    }

    /// Registers `tensor` as the output of the layer PyTorch users call `name`.
    pub fn layer(&mut self, name: &str, tensor: usize) {
        self.layers.push((name.to_string(), tensor));
    }

    /// Names `tensor` `name` without keeping it from being fused away (see [`Graph::modules`]).
    pub fn module(&mut self, name: &str, tensor: usize) {
        self.modules.push((name.to_string(), tensor));
    }

    /// Per tensor, the nodes that read it.
    pub fn consumers(&self) -> Vec<Vec<usize>> {
        let mut readers = vec![Vec::new(); self.tensors.len()];
        for (i, node) in self.nodes.iter().enumerate() {
            for &t in &node.inputs {
                readers[t].push(i);
            }
        }
        readers
    }
}

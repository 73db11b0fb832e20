//! ONNX import: a `.onnx` file (opset 13 or later, from either of torch's exporters or any
//! other) becomes the same plain-op graph the builders write, and so the same fused plan. Layer
//! names are the PyTorch module paths the exporters record ([`scopes`]), plus every ONNX tensor
//! name. Initializers may live in external data files beside the model.
//!
//! What runs is what the fusion pass can lower: convolutions with their BatchNorm, residual
//! add and ReLU or ReLU6, max pools, global average pools (`GlobalAveragePool`, or `ReduceMean`
//! over the spatial axes), flattening (`Flatten`, `Reshape` to one row per image) and linear
//! layers (`Gemm`, `MatMul` with its bias `Add`). ConvNeXt's permutes to channels last and back
//! are layouts only ([`Layout`]); between them LayerNorm, linear layers on every pixel and
//! elementwise ops run. `Identity` and `Dropout` pass their input on;
//! a `Softmax` giving the output is dropped, as the targets are logits. Anything else is an error
//! naming the node and op.

mod proto;
mod scopes;

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use prost::Message;

use super::builder::{assemble, Description, IMAGENET_MEAN, IMAGENET_STD};
use super::Model;
use crate::error::{one_line, Error, Result};
use crate::graph::ops::{self, ActivationKind, Op};
use crate::graph::Graph;
use proto::{ModelProto, NodeProto, TensorProto};

/// The ops the importer reads, for messages.
const SUPPORTED: &str = "Conv, BatchNormalization, Relu, Clip (to [0, 6] or [0, ∞)), Sigmoid, \
                         HardSigmoid, HardSwish, LeakyRelu, Gelu (or x · (1 + Erf(x / √2)) · \
                         0.5), Mul (x · sigmoid(x), a \
                         squeeze-and-excitation gate, or a constant per channel), Add, \
                         Concat (channels), MaxPool, AveragePool (floor or ceil mode), Pad (zero, \
                         before a Conv), GlobalAveragePool, ReduceMean \
                         (spatial), Flatten, Reshape, Squeeze, Gemm, MatMul, Transpose (to \
                         channels last and back), LayerNormalization (channels), Identity, \
                         Dropout, Constant and a final Softmax";

/// The most values one initializer or constant may hold (a 4 GiB float32 tensor).
const MAX_CONSTANT_VALUES: u64 = 1 << 30;

/// The most values a `ConstantOfShape` or a `Concat` of constants may make when the file is
/// read (shape arithmetic is a few values; a tiny file must not ask for gigabytes).
const MAX_FOLDED_VALUES: usize = 1 << 20;

/// Whether `path` names an ONNX file (by its extension).
pub fn is_onnx(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Builds the model in the ONNX file `bytes`, named `path` in messages; external data is read
/// relative to `dir` (`None`: a model in memory, which may not have any). `input_size` sets the
/// size of an input whose height and width are dynamic (224 otherwise); a static one must equal
/// it.
pub fn build(
    path: &Path,
    bytes: &[u8],
    dir: Option<&Path>,
    input_size: Option<u32>,
) -> Result<Model> {
    let format = |reason: String| Error::WeightsFormat {
        path: path.to_path_buf(),
        reason: one_line(&reason),
    };
    let model = ModelProto::decode(bytes).map_err(|e| format(format!("not an ONNX model: {e}")))?;
    let Some(graph) = &model.graph else {
        return Err(format("not an ONNX model: it has no graph".into()));
    };
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    // How many nodes (and graph outputs) read each value.
    let mut readers: HashMap<String, usize> = HashMap::new();
    for name in graph
        .node
        .iter()
        .flat_map(|n| &n.input)
        .chain(graph.output.iter().map(|o| &o.name))
    {
        *readers.entry(name.clone()).or_default() += 1;
    }
    let mut import = Import {
        path,
        dir,
        constants: HashMap::new(),
        values: HashMap::new(),
        readers,
        layouts: HashMap::new(),
        padded: HashMap::new(),
        gelu: HashMap::new(),
        graph: Graph::new(path, 224),
        opset,
    };
    for t in &graph.initializer {
        let c = import.tensor(t)?;
        import.constants.insert(t.name.clone(), c);
    }
    // The image: the graph input that is not an initializer, NCHW with 3 channels.
    let input = graph
        .input
        .iter()
        .find(|i| !import.constants.contains_key(&i.name))
        .ok_or_else(|| import.unsupported("the graph has no input".into()))?;
    let dims: Vec<i64> = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .unwrap_or_default();
    let size = match dims.as_slice() {
        [_, c, h, w] if *c == 3 || *c == 0 => match (*h, *w) {
            (0, 0) => input_size.unwrap_or(224),
            (h, w) if h == w && h > 0 && h <= 4096 => match input_size {
                Some(n) if i64::from(n) != h => {
                    return Err(import.unsupported(format!(
                        "input `{}` is fixed at {h}×{w}, so it cannot take {n}×{n} images \
                         (export it with dynamic height and width)",
                        input.name
                    )))
                }
                _ => h as u32,
            },
            (h, w) => {
                return Err(import.unsupported(format!(
                    "input `{}` is {h}×{w}; only square inputs are supported",
                    input.name
                )))
            }
        },
        _ => {
            return Err(import.unsupported(format!(
                "input `{}` has shape {dims:?}, not [batch, 3, height, width]",
                input.name
            )))
        }
    };
    import.graph = Graph::new(path, size);
    import.values.insert(input.name.clone(), import.graph.input);

    let mut scopes = scopes::Scopes::default();
    // Per module path, the last tensor a node inside it wrote: the module's output.
    let mut modules: Vec<(String, usize)> = Vec::new();
    let mut pooled: Option<usize> = None;
    // Tensors written by nodes outside any module (functions of the root `forward`), where the
    // file records modules at all.
    let mut rootless: Vec<usize> = Vec::new();
    let mut scoped = false;
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    for (i, node) in graph.node.iter().enumerate() {
        let module = scopes.module(node);
        scoped |= module.is_some();
        let written = import.node(i, node, &outputs)?;
        if let Some((t, op)) = written {
            if module.is_none() {
                rootless.push(t);
            }
            if matches!(op, "GlobalAveragePool" | "ReduceMean") {
                pooled = import.graph.nodes.last().map(|n| n.inputs[0]);
            }
            if let Some(path) = module {
                let segments: Vec<&str> = path.split('.').collect();
                for k in 1..=segments.len() {
                    let name = segments[..k].join(".");
                    match modules.iter_mut().find(|(n, _)| *n == name) {
                        Some(entry) => entry.1 = t,
                        None => modules.push((name, t)),
                    }
                }
            }
        }
    }
    let output = graph
        .output
        .first()
        .ok_or_else(|| import.unsupported("the graph has no output".into()))?;
    let logits = import.value(&output.name, "the graph output")?;
    // The layer pytorch-grad-cam users explain: what the global average pool reads, by its
    // shortest module path.
    let Some(pooled) = pooled else {
        return Err(import.unsupported(
            "no global average pool before the classifier, so no default layer".into(),
        ));
    };
    // A module's output that only a ReLU outside any module (a function of the root
    // `forward`) reads before the pool, as torchvision's DenseNet ends (`F.relu(self.features(x),
    // inplace=True)`, and its README layer `features.norm5`): the module is a layer, kept apart
    // from the ReLU, and, the ReLU being in place in torchvision, pytorch-grad-cam's activations
    // there are the ReLU's output (see `Graph::in_place`). A function, not an `nn.ReLU`
    // module: guided backpropagation leaves it plain, as the reference does.
    let relu = import.graph.nodes.iter().rposition(|n| {
        n.output == pooled
            && scoped
            && rootless.contains(&pooled)
            && matches!(&n.op, Op::Activation(a) if a.kind == ActivationKind::Relu)
    });
    let layer = relu.map(|i| import.graph.nodes[i].inputs[0]).filter(|&t| {
        let readers = import.graph.nodes.iter().filter(|n| n.inputs.contains(&t));
        readers.count() == 1 && modules.iter().any(|(_, m)| *m == t)
    });
    if let (Some(t), Some(i)) = (layer, relu) {
        import.graph.in_place.push((t, pooled));
        if let Op::Activation(a) = &mut import.graph.nodes[i].op {
            a.kind = ActivationKind::FunctionalRelu;
        }
    }
    let layer = layer.unwrap_or(pooled);
    let default_layer = Some(layer).and_then(|t| {
        modules
            .iter()
            .filter(|(_, m)| *m == t)
            .min_by_key(|(n, _)| (n.split('.').count(), n.len()))
            .map(|(n, _)| n.clone())
            .or_else(|| {
                import
                    .values
                    .iter()
                    .filter(|(_, v)| **v == t)
                    .map(|(n, _)| n.clone())
                    .min()
            })
    });
    let Some(default_layer) = default_layer else {
        return Err(import.unsupported("the global average pool reads no named tensor".into()));
    };
    for (name, t) in modules {
        import.graph.module(&name, t);
    }
    let mut values: Vec<(String, usize)> =
        import.values.iter().map(|(n, t)| (n.clone(), *t)).collect();
    values.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    for (name, t) in values {
        import.graph.module(&name, t);
    }
    import.graph.layer(&default_layer, layer);
    let metadata = |key: &str| {
        model
            .metadata_props
            .iter()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    };
    assemble(
        import.graph,
        Description {
            architecture: "onnx".into(),
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
            default_layer,
        },
        logits,
        metadata,
    )
}

/// A constant: an initializer or a `Constant` node's value.
#[derive(Clone, Debug)]
enum Constant {
    Floats(Vec<usize>, Vec<f32>),
    Ints(Vec<usize>, Vec<i64>),
}

impl Constant {
    fn dims(&self) -> &[usize] {
        match self {
            Constant::Floats(d, _) | Constant::Ints(d, _) => d,
        }
    }
}

/// How an ONNX value's axes lie over its graph tensor, which is always one image's channels at
/// each pixel. Permutes between the first two are layouts only; ops that care about the axes
/// (convolutions, pools, concatenation, matrix products, LayerNorm) check them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `[N, C, H, W]`: what images and convolutions use.
    Nchw,
    /// `[N, H, W, C]`: channels last, between ConvNeXt's permutes.
    Nhwc,
    /// `[N, F]`: one row of features per image, after flattening.
    Rows,
}

/// The steps of GELU written as `x · (1 + erf(x / √2)) · 0.5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GeluPart {
    /// x / √2.
    Scaled,
    /// erf(x / √2).
    Erf,
    /// 1 + erf(x / √2).
    ErfPlusOne,
    /// x · (1 + erf(x / √2)).
    Product,
    /// The whole GELU.
    Gelu,
}

/// The state of an import.
struct Import<'a> {
    path: &'a Path,
    dir: Option<&'a Path>,
    constants: HashMap<String, Constant>,
    /// ONNX value name → graph tensor.
    values: HashMap<String, usize>,
    /// ONNX value name → how many nodes and graph outputs read it.
    readers: HashMap<String, usize>,
    /// ONNX value name → how its axes lie, where it is not NCHW.
    layouts: HashMap<String, Layout>,
    /// ONNX value name → the tensor a zero `Pad` read and its padding `[top, left, bottom,
    /// right]`, which the convs that read it take into their own.
    padded: HashMap<String, (usize, [u32; 4])>,
    /// ONNX value name → the part of a GELU written with `Erf` it is, of which tensor, laid out
    /// how (see [`Import::gelu_step`]).
    gelu: HashMap<String, (GeluPart, usize, Layout)>,
    graph: Graph,
    opset: i64,
}

impl Layout {
    fn describe(self) -> &'static str {
        match self {
            Layout::Nchw => "an NCHW tensor",
            Layout::Nhwc => "a channels-last (NHWC) tensor",
            Layout::Rows => "rows of features",
        }
    }
}

impl Import<'_> {
    /// How ONNX value `name` lies over its graph tensor.
    fn layout(&self, name: &str) -> Layout {
        self.layouts.get(name).copied().unwrap_or(Layout::Nchw)
    }

    /// Makes ONNX value `out` another name of `t`, laid out as `layout`.
    fn alias(&mut self, out: String, t: usize, layout: Layout) {
        self.layouts.insert(out.clone(), layout);
        self.values.insert(out, t);
    }

    fn unsupported(&self, reason: String) -> Error {
        self.graph.unsupported(reason)
    }

    fn format(&self, reason: String) -> Error {
        Error::WeightsFormat {
            path: self.path.to_path_buf(),
            reason: one_line(&reason),
        }
    }

    /// The graph tensor of ONNX value `name`, read by `by`.
    fn value(&self, name: &str, by: &str) -> Result<usize> {
        self.values.get(name).copied().ok_or_else(|| {
            if self.constants.contains_key(name) {
                self.unsupported(format!("{by} reads the constant `{name}` as a tensor"))
            } else if self.gelu.contains_key(name) {
                self.unsupported(format!(
                    "{by} reads `{name}`, part of a GELU written as x · (1 + erf(x / √2)) · 0.5, \
                     which only the next op of that formula can read"
                ))
            } else if self.padded.contains_key(name) {
                self.unsupported(format!(
                    "{by} reads `{name}`, a zero padding (Pad), which only a Conv can read"
                ))
            } else {
                self.format(format!("{by} reads `{name}`, which no node writes"))
            }
        })
    }

    /// A constant's values as floats.
    fn floats(&self, name: &str, by: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        match self.constants.get(name) {
            Some(Constant::Floats(d, v)) => Ok((d.clone(), v.clone())),
            Some(Constant::Ints(d, v)) => Ok((d.clone(), v.iter().map(|x| *x as f32).collect())),
            None => Err(self.unsupported(format!(
                "{by}: `{name}` must be a constant (an initializer)"
            ))),
        }
    }

    /// A constant's values as integers.
    fn ints(&self, name: &str, by: &str) -> Result<Vec<i64>> {
        match self.constants.get(name) {
            Some(Constant::Ints(_, v)) => Ok(v.clone()),
            _ => Err(self.unsupported(format!("{by}: `{name}` must be a constant integer tensor"))),
        }
    }

    /// Where `node` is a step of GELU written with `Erf`, as the TorchScript exporter writes it
    /// below opset 20 (`Div(x, √2)`, `Erf`, `Add` 1, `Mul` by x, `Mul` by 0.5): the part it
    /// makes, of which tensor; [`GeluPart::Gelu`] at the last step.
    fn gelu_step(&self, node: &NodeProto) -> Option<(GeluPart, usize, Layout)> {
        let scalar = |n: &str, want: f32| {
            matches!(self.constants.get(n), Some(Constant::Floats(_, v))
                if v.len() == 1 && (v[0] - want).abs() <= 1e-6 * want.abs())
        };
        let part = |n: &str| self.gelu.get(n).copied();
        let ins: Vec<&str> = node.input.iter().map(String::as_str).collect();
        let pair = |a: &str, b: &str| {
            [
                (a.to_string(), b.to_string()),
                (b.to_string(), a.to_string()),
            ]
        };
        match (node.op_type.as_str(), ins.as_slice()) {
            ("Div", [x, c]) if scalar(c, std::f32::consts::SQRT_2) => {
                let t = *self.values.get(*x)?;
                Some((GeluPart::Scaled, t, self.layout(x)))
            }
            ("Erf", [p]) => part(p)
                .filter(|q| q.0 == GeluPart::Scaled)
                .map(|(_, t, l)| (GeluPart::Erf, t, l)),
            ("Add", [a, b]) => pair(a, b).into_iter().find_map(|(p, c)| {
                let (kind, t, l) = part(&p)?;
                (kind == GeluPart::Erf && scalar(&c, 1.0)).then_some((GeluPart::ErfPlusOne, t, l))
            }),
            ("Mul", [a, b]) => pair(a, b).into_iter().find_map(|(p, other)| {
                let (kind, t, l) = part(&p)?;
                match kind {
                    GeluPart::ErfPlusOne if self.values.get(&other) == Some(&t) => {
                        Some((GeluPart::Product, t, l))
                    }
                    GeluPart::Product if scalar(&other, 0.5) => Some((GeluPart::Gelu, t, l)),
                    _ => None,
                }
            }),
            _ => None,
        }
    }

    /// The value of `node` where it is shape arithmetic on constants, evaluated here: the
    /// TorchScript exporter computes a `Pad`'s pads from PyTorch's with `ConstantOfShape`,
    /// `Concat`, `Reshape`, `Slice`, `Transpose` and `Cast`. `None` where the op is none of
    /// these or an input is no constant.
    fn fold(&self, node: &NodeProto, by: &str) -> Result<Option<Constant>> {
        let op = node.op_type.as_str();
        if !matches!(
            op,
            "ConstantOfShape" | "Concat" | "Reshape" | "Slice" | "Cast" | "Transpose"
        ) {
            return Ok(None);
        }
        let inputs: Option<Vec<&Constant>> = node
            .input
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| self.constants.get(n))
            .collect();
        let Some(inputs) = inputs.filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        let attr = |key: &str| node.attribute.iter().find(|a| a.name == key);
        let fail = |reason: String| self.unsupported(format!("{by}: {reason}"));
        let ints = |c: &Constant| match c {
            Constant::Ints(_, v) => Ok(v.clone()),
            Constant::Floats(..) => Err(fail("a float tensor where integers belong".into())),
        };
        let count = |dims: &[usize]| {
            dims.iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .filter(|&n| n as u64 <= MAX_CONSTANT_VALUES)
                .ok_or_else(|| fail(format!("a constant of shape {dims:?}")))
        };
        let folded = match op {
            "Transpose" => {
                permute(inputs[0], attr("perm").map(|a| a.ints.as_slice())).map_err(fail)?
            }
            "ConstantOfShape" => {
                let dims = ints(inputs[0])?
                    .iter()
                    .map(|&d| usize::try_from(d).map_err(|_| fail(format!("dimension {d}"))))
                    .collect::<Result<Vec<_>>>()?;
                let n = count(&dims)?;
                if n > MAX_FOLDED_VALUES {
                    return Err(fail(format!("a constant of shape {dims:?} to fill")));
                }
                let empty = || fail("an empty fill value".into());
                match attr("value").and_then(|a| a.t.as_ref()) {
                    Some(t) => match self.tensor(t)? {
                        Constant::Floats(_, v) => {
                            Constant::Floats(dims, vec![*v.first().ok_or_else(empty)?; n])
                        }
                        Constant::Ints(_, v) => {
                            Constant::Ints(dims, vec![*v.first().ok_or_else(empty)?; n])
                        }
                    },
                    None => Constant::Floats(dims, vec![0.0; n]),
                }
            }
            "Concat" => {
                if inputs.iter().any(|c| c.dims().len() != 1) {
                    return Err(fail(
                        "a concatenation of constants that are not vectors".into(),
                    ));
                }
                let n: usize = inputs.iter().map(|c| c.dims()[0]).sum();
                if n > MAX_FOLDED_VALUES {
                    return Err(fail(format!("a concatenation of {n} constant values")));
                }
                match inputs[0] {
                    Constant::Ints(..) => Constant::Ints(
                        vec![n],
                        inputs
                            .iter()
                            .map(|c| ints(c))
                            .collect::<Result<Vec<_>>>()?
                            .concat(),
                    ),
                    Constant::Floats(..) => {
                        let mut v = Vec::with_capacity(n);
                        for c in &inputs {
                            match c {
                                Constant::Floats(_, f) => v.extend(f),
                                Constant::Ints(..) => {
                                    return Err(fail("a concatenation of mixed types".into()))
                                }
                            }
                        }
                        Constant::Floats(vec![n], v)
                    }
                }
            }
            "Reshape" => {
                if attr("allowzero").is_some_and(|a| a.i != 0) {
                    return Err(fail("a reshape with allowzero".into()));
                }
                let shape = inputs.get(1).ok_or_else(|| fail("no shape".into()))?;
                let from = inputs[0].dims();
                let total = count(from)?;
                let mut dims: Vec<usize> = Vec::new();
                let mut inferred = None;
                for (i, &d) in ints(shape)?.iter().enumerate() {
                    match d {
                        -1 if inferred.is_none() => {
                            inferred = Some(i);
                            dims.push(1);
                        }
                        0 => dims.push(
                            *from
                                .get(i)
                                .ok_or_else(|| fail("shape 0 past the rank".into()))?,
                        ),
                        d if d > 0 => dims.push(d as usize),
                        d => return Err(fail(format!("shape entry {d}"))),
                    }
                }
                let known = count(&dims)?;
                if let Some(i) = inferred {
                    dims[i] = total.checked_div(known).unwrap_or(0);
                }
                if count(&dims)? != total {
                    return Err(fail(format!("reshapes {from:?} to {dims:?}")));
                }
                match inputs[0] {
                    Constant::Ints(_, v) => Constant::Ints(dims, v.clone()),
                    Constant::Floats(_, v) => Constant::Floats(dims, v.clone()),
                }
            }
            "Slice" => {
                let dims = inputs[0].dims().to_vec();
                // By position: an optional input left out is an empty name.
                let list = |i: usize| {
                    node.input
                        .get(i)
                        .filter(|n| !n.is_empty())
                        .and_then(|n| self.constants.get(n))
                        .map(ints)
                        .transpose()
                };
                let (starts, ends) = (list(1)?.unwrap_or_default(), list(2)?.unwrap_or_default());
                let axes = list(3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
                let steps = list(4)?.unwrap_or_else(|| vec![1; starts.len()]);
                if ends.len() != starts.len()
                    || axes.len() != starts.len()
                    || steps.len() != starts.len()
                {
                    return Err(fail(
                        "starts, ends, axes and steps of different lengths".into(),
                    ));
                }
                // Per axis, the indices kept (ONNX's clamping rules).
                let mut kept: Vec<Vec<usize>> = dims.iter().map(|&d| (0..d).collect()).collect();
                for i in 0..starts.len() {
                    let rank = dims.len() as i64;
                    let axis = if axes[i] < 0 { axes[i] + rank } else { axes[i] };
                    let Some(&d) = usize::try_from(axis).ok().and_then(|a| dims.get(a)) else {
                        return Err(fail(format!("axis {}", axes[i])));
                    };
                    if d == 0 {
                        continue;
                    }
                    let (d, step) = (d as i64, steps[i]);
                    let at = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
                    let (start, end) = if step > 0 {
                        (at(starts[i]).clamp(0, d), at(ends[i]).clamp(0, d))
                    } else if step < 0 {
                        (at(starts[i]).clamp(0, d - 1), at(ends[i]).clamp(-1, d - 1))
                    } else {
                        return Err(fail("a step of 0".into()));
                    };
                    let mut v = Vec::new();
                    let mut j = start;
                    while (step > 0 && j < end) || (step < 0 && j > end) {
                        v.push(j as usize);
                        match j.checked_add(step) {
                            Some(next) => j = next,
                            None => break,
                        }
                    }
                    kept[axis as usize] = v;
                }
                let out_dims: Vec<usize> = kept.iter().map(Vec::len).collect();
                let strides = strides(&dims);
                gather(inputs[0], out_dims, |a, i| kept[a][i] * strides[a])
            }
            _ => {
                // Cast: to float (1), or to an integer type.
                let dims = inputs[0].dims().to_vec();
                match (attr("to").map_or(0, |a| a.i), inputs[0]) {
                    (1, Constant::Ints(_, v)) => {
                        Constant::Floats(dims, v.iter().map(|x| *x as f32).collect())
                    }
                    (1, c) => c.clone(),
                    (2..=7 | 12 | 13, Constant::Floats(_, v)) => {
                        Constant::Ints(dims, v.iter().map(|x| *x as i64).collect())
                    }
                    (2..=7 | 12 | 13, c) => c.clone(),
                    (to, _) => return Err(fail(format!("a cast to data type {to}"))),
                }
            }
        };
        Ok(Some(folded))
    }

    /// Decodes a tensor's values (inline or in external data).
    fn tensor(&self, t: &TensorProto) -> Result<Constant> {
        let what = |reason: String| self.format(format!("tensor `{}`: {reason}", t.name));
        let dims: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| what(format!("dimension {d}"))))
            .collect::<Result<_>>()?;
        let count = dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n as u64 <= MAX_CONSTANT_VALUES)
            .ok_or_else(|| what(format!("shape {dims:?} holds too many values")))?;
        let width = match t.data_type {
            1 | 6 => 4,
            7 | 11 => 8,
            10 | 16 => 2,
            other => {
                return Err(what(format!(
                    "data type {other} (supported: float, float16, bfloat16, double, int32, int64)"
                )))
            }
        };
        let external;
        let raw: &[u8] = if t.data_location == 1 {
            external = self.external(t, (count * width) as u64)?;
            &external
        } else {
            &t.raw_data
        };
        let from_raw = !raw.is_empty();
        if from_raw && raw.len() != count * width {
            return Err(what(format!(
                "{} bytes of data for {count} values of {width} bytes",
                raw.len()
            )));
        }
        let chunks = raw.chunks_exact(width);
        let c = match t.data_type {
            1 if from_raw => Constant::Floats(
                dims,
                chunks
                    .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                    .collect(),
            ),
            1 => Constant::Floats(dims, t.float_data.clone()),
            11 if from_raw => Constant::Floats(
                dims,
                chunks
                    .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                    .collect(),
            ),
            11 => Constant::Floats(dims, t.double_data.iter().map(|v| *v as f32).collect()),
            10 | 16 => {
                let bits: Vec<u16> = if from_raw {
                    chunks
                        .map(|b| u16::from_le_bytes(b.try_into().expect("2 bytes")))
                        .collect()
                } else {
                    t.int32_data.iter().map(|v| *v as u16).collect()
                };
                let value = |b: u16| {
                    if t.data_type == 16 {
                        f32::from_bits(u32::from(b) << 16)
                    } else {
                        half_to_f32(b)
                    }
                };
                Constant::Floats(dims, bits.into_iter().map(value).collect())
            }
            6 if from_raw => Constant::Ints(
                dims,
                chunks
                    .map(|b| i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes"))))
                    .collect(),
            ),
            6 => Constant::Ints(dims, t.int32_data.iter().map(|v| i64::from(*v)).collect()),
            7 if from_raw => Constant::Ints(
                dims,
                chunks
                    .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                    .collect(),
            ),
            _ => Constant::Ints(dims, t.int64_data.clone()),
        };
        let len = match &c {
            Constant::Floats(_, v) => {
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(what(format!("a non-finite value at index {i}")));
                }
                v.len()
            }
            Constant::Ints(_, v) => v.len(),
        };
        if len != count {
            return Err(what(format!("{len} values for shape {:?}", c.dims())));
        }
        Ok(c)
    }

    /// The `expected` bytes of a tensor stored in an external data file beside the model.
    fn external(&self, t: &TensorProto, expected: u64) -> Result<Vec<u8>> {
        let what = |reason: String| self.format(format!("tensor `{}`: {reason}", t.name));
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.as_str())
        };
        let location =
            entry("location").ok_or_else(|| what("external data without a location".into()))?;
        let relative = Path::new(location);
        if !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(what(format!(
                "external data location `{location}` leaves the model's folder"
            )));
        }
        let Some(dir) = self.dir else {
            return Err(what(format!(
                "external data `{location}` cannot be read for a model given in memory"
            )));
        };
        let number = |key: &str| -> Result<Option<u64>> {
            entry(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| what(format!("external data {key} `{v}`")))
                })
                .transpose()
        };
        let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
        if length.is_some_and(|n| n != expected) {
            return Err(what(format!(
                "external data of {} bytes for {expected} bytes of values",
                length.unwrap_or(0)
            )));
        }
        let file = dir.join(relative);
        let shown = crate::output::escape_path(&file);
        let io = |e: std::io::Error| what(format!("external data {shown}: {e}"));
        // A symlink beside the model must not lead out of its folder either.
        let canonical = file.canonicalize().map_err(io)?;
        if !canonical.starts_with(dir.canonicalize().map_err(io)?) {
            return Err(what(format!(
                "external data {shown} leads out of the model's folder"
            )));
        }
        let mut reader = std::fs::File::open(&canonical).map_err(io)?;
        reader.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut bytes = Vec::new();
        reader.take(expected).read_to_end(&mut bytes).map_err(io)?;
        if bytes.len() as u64 != expected {
            return Err(what(format!(
                "external data {shown} ends before bytes {offset}..{}",
                offset.saturating_add(expected)
            )));
        }
        Ok(bytes)
    }

    /// Imports one node; returns the tensor it wrote and its op type, or `None` for a constant
    /// or an alias.
    fn node<'n>(
        &mut self,
        index: usize,
        node: &'n NodeProto,
        outputs: &[&str],
    ) -> Result<Option<(usize, &'n str)>> {
        let op = node.op_type.as_str();
        let name = if node.name.is_empty() {
            format!("{op}#{index}")
        } else {
            node.name.clone()
        };
        let by = format!("node `{name}` ({op})");
        if !node.domain.is_empty() && node.domain != "ai.onnx" {
            return Err(self.unsupported(format!(
                "{by}: domain `{}` is not supported; supported ops: {SUPPORTED}",
                node.domain
            )));
        }
        let out = node
            .output
            .first()
            .ok_or_else(|| self.format(format!("{by} has no output")))?
            .clone();
        let input = |i: usize| {
            node.input
                .get(i)
                .filter(|s| !s.is_empty())
                .map(String::as_str)
        };
        let attr = |key: &str| node.attribute.iter().find(|a| a.name == key);
        let int = |key: &str, default: i64| attr(key).map_or(default, |a| a.i);
        let ints = |key: &str| attr(key).map(|a| a.ints.clone());
        let first = || -> Result<usize> {
            let name = input(0).ok_or_else(|| self.format(format!("{by} has no input")))?;
            self.value(name, &by)
        };
        // The ops that read images' axes take NCHW tensors only (BatchNorm also rows).
        let spatial = matches!(
            op,
            "Conv" | "MaxPool" | "AveragePool" | "GlobalAveragePool" | "Concat" | "Pad"
        );
        for name in node.input.iter().filter(|n| self.values.contains_key(*n)) {
            let layout = self.layout(name);
            if (spatial && layout != Layout::Nchw)
                || (op == "BatchNormalization" && layout == Layout::Nhwc)
            {
                return Err(self.unsupported(format!(
                    "{by} reads `{name}` as {}; it takes NCHW tensors",
                    layout.describe()
                )));
            }
        }
        let in_layout = input(0).map_or(Layout::Nchw, |n| self.layout(n));
        if let Some(c) = self.fold(node, &by)? {
            self.constants.insert(out, c);
            return Ok(None);
        }
        let gelu_of = match self.gelu_step(node) {
            Some((GeluPart::Gelu, x, layout)) => Some((x, layout)),
            Some(part) => {
                self.gelu.insert(out, part);
                return Ok(None);
            }
            None => None,
        };
        // The output's layout where it is not the first input's.
        let mut out_layout = in_layout;
        let plain = match op {
            _ if gelu_of.is_some() => {
                let (x, layout) = gelu_of.expect("a GELU");
                out_layout = layout;
                (activation(ActivationKind::Gelu), vec![x])
            }
            "Constant" => {
                let c = match node.attribute.first().map(|a| (a.name.as_str(), a)) {
                    Some(("value", a)) if a.t.is_some() => {
                        self.tensor(a.t.as_ref().expect("a tensor"))?
                    }
                    Some(("value_float", a)) if a.f.is_finite() => {
                        Constant::Floats(Vec::new(), vec![a.f])
                    }
                    Some(("value_floats", a)) if a.floats.iter().all(|f| f.is_finite()) => {
                        Constant::Floats(vec![a.floats.len()], a.floats.clone())
                    }
                    Some(("value_int", a)) => Constant::Ints(Vec::new(), vec![a.i]),
                    Some(("value_ints", a)) => Constant::Ints(vec![a.ints.len()], a.ints.clone()),
                    _ => {
                        return Err(self.unsupported(format!(
                            "{by}: only `value`, `value_float(s)` and `value_int(s)` constants \
                             (finite) are supported"
                        )))
                    }
                };
                self.constants.insert(out, c);
                return Ok(None);
            }
            "Identity" | "Dropout" => {
                match input(0) {
                    Some(i) if self.constants.contains_key(i) => {
                        let c = self.constants[i].clone();
                        self.constants.insert(out, c);
                    }
                    _ => {
                        let x = first()?;
                        self.alias(out, x, in_layout);
                    }
                }
                return Ok(None);
            }
            "Softmax" | "LogSoftmax" if outputs.contains(&out.as_str()) => {
                // The targets are logits (pytorch-grad-cam's ClassifierOutputTarget).
                let x = first()?;
                self.alias(out, x, in_layout);
                return Ok(None);
            }
            "Transpose" => {
                let x = input(0).ok_or_else(|| self.format(format!("{by} has no input")))?;
                let perm = ints("perm");
                let t = self.value(x, &by)?;
                // PyTorch's `permute(0, 2, 3, 1)` and back, around channels-last ops.
                let layout = match (in_layout, perm.as_deref()) {
                    (Layout::Nchw, Some([0, 2, 3, 1])) => Layout::Nhwc,
                    (Layout::Nhwc, Some([0, 3, 1, 2])) => Layout::Nchw,
                    (layout, perm) => {
                        return Err(self.unsupported(format!(
                            "{by}: permutes {} by {perm:?}; only NCHW to channels last \
                             ([0, 2, 3, 1]) and back ([0, 3, 1, 2]) are supported",
                            layout.describe()
                        )))
                    }
                };
                self.alias(out, t, layout);
                return Ok(None);
            }
            "Pad" => {
                let x = first()?;
                let (pads, value) = if self.opset >= 11 {
                    let pads = match input(1) {
                        Some(n) => self.ints(n, &by)?,
                        None => Vec::new(),
                    };
                    let value = match input(2) {
                        Some(n) => self.floats(n, &by)?.1.first().copied().unwrap_or(0.0),
                        None => 0.0,
                    };
                    if input(3).is_some() {
                        return Err(self.unsupported(format!("{by}: padding chosen axes")));
                    }
                    (pads, value)
                } else {
                    (
                        ints("pads").unwrap_or_default(),
                        attr("value").map_or(0.0, |a| a.f),
                    )
                };
                let mode = attr("mode").map_or(&b"constant"[..], |a| a.s.as_slice());
                // [N, C, H, W] begins, then ends: only the height and width padded.
                let spatial = match pads[..] {
                    [0, 0, t, l, 0, 0, b, r] => [t, l, b, r],
                    _ => [-1; 4],
                };
                if mode != b"constant"
                    || value != 0.0
                    || spatial.iter().any(|p| !(0..=1 << 16).contains(p))
                {
                    return Err(self.unsupported(format!(
                        "{by}: mode `{}`, value {value}, pads {pads:?}; only zero padding of the \
                         height and width, before a conv, is supported",
                        String::from_utf8_lossy(mode)
                    )));
                }
                self.padded.insert(out, (x, spatial.map(|p| p as u32)));
                return Ok(None);
            }
            "LayerNormalization" => {
                let x = first()?;
                let (_, _, c) = self.graph.shape(x);
                let axis = int("axis", -1);
                // Over the channels: the last axis of a channels-last tensor or of rows.
                let last = match in_layout {
                    Layout::Nhwc => 3,
                    Layout::Rows => 1,
                    Layout::Nchw => -1,
                };
                if axis != -1 && axis != last {
                    return Err(self.unsupported(format!(
                        "{by}: normalises {} from axis {axis}; only over the channels (the last \
                         axis of a channels-last tensor or of rows) is supported",
                        in_layout.describe()
                    )));
                }
                if in_layout == Layout::Nchw {
                    return Err(self.unsupported(format!(
                        "{by}: normalises the last axis of an NCHW tensor (its width); only \
                         over the channels is supported"
                    )));
                }
                let scale = input(1).ok_or_else(|| self.format(format!("{by} has no scale")))?;
                let gamma = self.floats(scale, &by)?.1;
                let beta = match input(2) {
                    Some(b) => self.floats(b, &by)?.1,
                    None => vec![0.0; c as usize],
                };
                let eps = attr("epsilon").map_or(1e-5, |a| a.f);
                if node.output.iter().skip(1).any(|o| !o.is_empty()) {
                    return Err(self.unsupported(format!(
                        "{by}: the mean and inverse deviation outputs are not supported"
                    )));
                }
                (Op::LayerNorm(ops::LayerNorm { gamma, beta, eps }), vec![x])
            }
            "Gather" => {
                // Indices 0, 1, …, F − 1 into a flattened image's F values, shaped as
                // `[1, F, 1, 1]` or `[1, F]` (the dynamo exporter's `as_strided` after a
                // pool): the same values, reshaped.
                let x = first()?;
                let (h, w, c) = self.graph.shape(x);
                let indices =
                    input(1).ok_or_else(|| self.format(format!("{by} has no indices")))?;
                let dims = self.constants.get(indices).map(|c| c.dims().to_vec());
                let values = self.ints(indices, &by)?;
                let features = u64::from(h) * u64::from(w) * u64::from(c);
                let identity = int("axis", 0) == 0
                    && in_layout == Layout::Rows
                    && values.len() as u64 == features
                    && values.iter().enumerate().all(|(i, v)| *v == i as i64);
                let layout = match dims.as_deref() {
                    Some([1, f, 1, 1]) if identity && *f as u64 == features => Layout::Nchw,
                    Some([1, f]) if identity && *f as u64 == features => Layout::Rows,
                    _ => {
                        return Err(self.unsupported(format!(
                            "{by}: only gathering every value of a flattened image in order (a \
                             reshape) is supported"
                        )))
                    }
                };
                self.alias(out, x, layout);
                return Ok(None);
            }
            "Conv" => {
                // A zero `Pad` before the conv (`nn.ZeroPad2d`) joins the conv's own padding.
                let (x, extra) = match input(0).and_then(|n| self.padded.get(n)) {
                    Some(&(t, p)) => (t, p),
                    None => (first()?, [0; 4]),
                };
                let w_name = input(1).ok_or_else(|| self.format(format!("{by} has no weight")))?;
                let (wd, weight) = self.floats(w_name, &by)?;
                let [co, _, kh, kw] = wd[..] else {
                    return Err(self.unsupported(format!(
                        "{by}: weight of shape {wd:?}; only 2-D convolutions are supported"
                    )));
                };
                let size = |d: usize| u32::try_from(d).ok().filter(|d| (1..=1 << 16).contains(d));
                let (Some(co), Some(kh), Some(kw)) = (size(co), size(kh), size(kw)) else {
                    return Err(self.format(format!("{by}: weight of shape {wd:?}")));
                };
                let bias = match input(2) {
                    Some(b) => Some(self.floats(b, &by)?.1),
                    None => None,
                };
                let pair = |key: &str| -> Result<[u32; 2]> {
                    match ints(key).as_deref() {
                        None => Ok([1, 1]),
                        Some([a, b]) if [a, b].iter().all(|v| (1..=1 << 16).contains(*v)) => {
                            Ok([*a as u32, *b as u32])
                        }
                        Some(v) => Err(self.unsupported(format!("{by}: {key} {v:?}"))),
                    }
                };
                let (stride, dilation) = (pair("strides")?, pair("dilations")?);
                if let Some(k) = ints("kernel_shape") {
                    if k != [i64::from(kh), i64::from(kw)] {
                        return Err(
                            self.format(format!("{by}: kernel_shape {k:?} but a {kh}×{kw} weight"))
                        );
                    }
                }
                let (h, w, _) = self.graph.shape(x);
                let (h, w) = (h + extra[0] + extra[2], w + extra[1] + extra[3]);
                let pads = match attr("auto_pad").map(|a| a.s.as_slice()) {
                    Some(b"SAME_UPPER") | Some(b"SAME_LOWER") => {
                        let upper = attr("auto_pad").is_some_and(|a| a.s == b"SAME_UPPER");
                        let same = |n: u32, k: u32, s: u32, d: u32| {
                            let (n, k, s, d) =
                                (u64::from(n), u64::from(k), u64::from(s), u64::from(d));
                            let out = n.div_ceil(s);
                            let total = ((out - 1) * s + (k - 1) * d + 1).saturating_sub(n);
                            // At most (k − 1)·d ≤ 2³²: a pad the shape rule then refuses.
                            let total = u32::try_from(total).unwrap_or(u32::MAX);
                            let small = total / 2;
                            if upper {
                                (small, total - small)
                            } else {
                                (total - small, small)
                            }
                        };
                        let (t, b) = same(h, kh, stride[0], dilation[0]);
                        let (l, r) = same(w, kw, stride[1], dilation[1]);
                        [t, l, b, r]
                    }
                    _ => match ints("pads").as_deref() {
                        None => [0; 4],
                        Some(p @ [_, _, _, _]) if p.iter().all(|v| (0..=1 << 16).contains(v)) => {
                            [p[0] as u32, p[1] as u32, p[2] as u32, p[3] as u32]
                        }
                        Some(p) => return Err(self.unsupported(format!("{by}: pads {p:?}"))),
                    },
                };
                let pads = [0, 1, 2, 3].map(|i| pads[i].saturating_add(extra[i]));
                let groups = int("group", 1);
                let conv = ops::Conv {
                    weight,
                    bias,
                    out_channels: co,
                    kernel: [kh, kw],
                    stride,
                    dilation,
                    groups: u32::try_from(groups)
                        .map_err(|_| self.unsupported(format!("{by}: group {groups}")))?,
                    pads,
                };
                (Op::Conv(conv), vec![x])
            }
            "BatchNormalization" => {
                if int("training_mode", 0) != 0 {
                    return Err(self.unsupported(format!("{by}: training mode")));
                }
                let x = first()?;
                let mut p = Vec::new();
                for i in 1..5 {
                    let n =
                        input(i).ok_or_else(|| self.format(format!("{by}: input {i} missing")))?;
                    p.push(self.floats(n, &by)?.1);
                }
                let eps = attr("epsilon").map_or(1e-5, |a| a.f);
                let var = p.pop().expect("four");
                let mean = p.pop().expect("three");
                let beta = p.pop().expect("two");
                let gamma = p.pop().expect("one");
                if let Some(i) = var.iter().position(|v| *v < 0.0) {
                    return Err(self.format(format!("{by}: variance {i} is negative")));
                }
                let bn = ops::BatchNorm {
                    gamma,
                    beta,
                    mean,
                    var,
                    eps,
                };
                (Op::BatchNorm(bn), vec![x])
            }
            "Relu" => (activation(ActivationKind::Relu), vec![first()?]),
            "Sigmoid" => (activation(ActivationKind::Sigmoid), vec![first()?]),
            "HardSwish" => (activation(ActivationKind::HardSwish), vec![first()?]),
            "HardSigmoid" => {
                let alpha = attr("alpha").map_or(0.2, |a| a.f);
                let beta = attr("beta").map_or(0.5, |a| a.f);
                if (alpha - 1.0 / 6.0).abs() > 1e-6 || beta != 0.5 {
                    return Err(self.unsupported(format!(
                        "{by}: HardSigmoid with alpha {alpha} and beta {beta}; only PyTorch's \
                         (alpha 1/6, beta 1/2) is supported"
                    )));
                }
                (activation(ActivationKind::HardSigmoid), vec![first()?])
            }
            "LeakyRelu" => {
                let mut a = ops::Activation::new(ActivationKind::LeakyRelu);
                a.slope = attr("alpha").map_or(0.01, |a| a.f);
                (Op::Activation(a), vec![first()?])
            }
            "Gelu" => {
                let kind = match attr("approximate").map(|a| a.s.as_slice()) {
                    None | Some(b"none") => ActivationKind::Gelu,
                    Some(b"tanh") => ActivationKind::GeluTanh,
                    Some(other) => {
                        return Err(self.unsupported(format!(
                            "{by}: approximate `{}`",
                            String::from_utf8_lossy(other)
                        )))
                    }
                };
                (activation(kind), vec![first()?])
            }
            "Mul" => {
                // x · sigmoid(x): SiLU, as both exporters write it.
                let (a, b) = (input(0).unwrap_or(""), input(1).unwrap_or(""));
                let silu = [(a, b), (b, a)].into_iter().find_map(|(x, s)| {
                    let (x, s) = (self.values.get(x)?, self.values.get(s)?);
                    let sigmoid = self.graph.nodes.iter().rev().find(|n| n.output == *s)?;
                    let of_x = matches!(&sigmoid.op, Op::Activation(act) if act.kind == ActivationKind::Sigmoid)
                        && sigmoid.inputs == [*x];
                    of_x.then_some(*x)
                });
                let constant = |n: &str| self.constants.contains_key(n);
                match silu {
                    Some(x) => {
                        let of_x = if self.values.get(a) == Some(&x) { a } else { b };
                        out_layout = self.layout(of_x);
                        (activation(ActivationKind::Silu), vec![x])
                    }
                    None if constant(a) || constant(b) => {
                        // A constant factor per channel (ConvNeXt's layer scale) or in all.
                        let (t, c) = if constant(a) { (b, a) } else { (a, b) };
                        let x = self.value(t, &by)?;
                        out_layout = self.layout(t);
                        let (dims, factors) = self.floats(c, &by)?;
                        let channels = self.graph.shape(x).2 as usize;
                        let per_channel: &[usize] = match out_layout {
                            Layout::Nchw => &[channels, 1, 1],
                            Layout::Nhwc | Layout::Rows => &[channels],
                        };
                        let leading_ones = |d: &[usize]| {
                            d.len() >= per_channel.len()
                                && d[..d.len() - per_channel.len()].iter().all(|v| *v == 1)
                                && d[d.len() - per_channel.len()..] == *per_channel
                        };
                        let factors = if factors.len() == 1 {
                            vec![factors[0]; channels]
                        } else if leading_ones(&dims) {
                            factors
                        } else {
                            return Err(self.unsupported(format!(
                                "{by}: multiplies {} of {channels} channels by a constant of \
                                 shape {dims:?}; only one factor per channel or one in all is \
                                 supported",
                                out_layout.describe()
                            )));
                        };
                        (Op::Scale(ops::Scale { factors }), vec![x])
                    }
                    None => {
                        if let Some(n) = [a, b].into_iter().find(|n| self.layout(n) != Layout::Nchw)
                        {
                            return Err(self.unsupported(format!(
                                "{by}: a product of `{a}` and `{b}` where `{n}` is {}; only \
                                 NCHW tensors by one value per channel or of the same shape are \
                                 supported",
                                self.layout(n).describe()
                            )));
                        }
                        // A map times one value per channel (squeeze-and-excitation's
                        // `scale * input`): the map first.
                        let (x, s) = (self.value(a, &by)?, self.value(b, &by)?);
                        let pixels = |t: usize| {
                            let (h, w, _) = self.graph.shape(t);
                            u64::from(h) * u64::from(w)
                        };
                        let inputs = if pixels(x) < pixels(s) {
                            vec![s, x]
                        } else {
                            vec![x, s]
                        };
                        (Op::Mul(ops::Mul), inputs)
                    }
                }
            }
            "Clip" => {
                let bound = |i: usize, key: &str| -> Result<Option<f32>> {
                    if self.opset >= 11 {
                        match input(i) {
                            Some(n) => Ok(self.floats(n, &by)?.1.first().copied()),
                            None => Ok(None),
                        }
                    } else {
                        Ok(attr(key).map(|a| a.f))
                    }
                };
                let kind = match (bound(1, "min")?, bound(2, "max")?) {
                    (Some(lo), Some(hi)) if lo == 0.0 && hi == 6.0 => ActivationKind::Relu6,
                    (Some(0.0), None) => ActivationKind::Relu,
                    (lo, hi) => {
                        return Err(self.unsupported(format!(
                            "{by}: Clip to [{}, {}]; only [0, 6] (ReLU6) and [0, ∞) (ReLU) are \
                             supported",
                            lo.map_or("-∞".into(), |v| v.to_string()),
                            hi.map_or("∞".into(), |v| v.to_string())
                        )))
                    }
                };
                (activation(kind), vec![first()?])
            }
            "Add" => {
                let (a, b) = (input(0).unwrap_or(""), input(1).unwrap_or(""));
                let constant = |n: &str| self.constants.contains_key(n);
                match (constant(a), constant(b)) {
                    (false, false) => {
                        let (la, lb) = (self.layout(a), self.layout(b));
                        if la != lb {
                            return Err(self.unsupported(format!(
                                "{by}: adds {} `{a}` to {} `{b}`",
                                la.describe(),
                                lb.describe()
                            )));
                        }
                        out_layout = la;
                        (
                            Op::Add(ops::Add),
                            vec![self.value(a, &by)?, self.value(b, &by)?],
                        )
                    }
                    (true, false) | (false, true) => {
                        let (t, c) = if constant(a) { (b, a) } else { (a, b) };
                        if self.readers.get(t) != Some(&1) {
                            return Err(self.unsupported(format!(
                                "{by}: adds a constant to `{t}`, which other nodes read too"
                            )));
                        }
                        let layout = self.layout(t);
                        let t = self.value(t, &by)?;
                        let (_, bias) = self.floats(c, &by)?;
                        self.bias_into_linear(t, bias, &by)?;
                        self.alias(out, t, layout);
                        return Ok(None);
                    }
                    (true, true) => {
                        return Err(self.unsupported(format!("{by}: adds two constants")));
                    }
                }
            }
            "Concat" => {
                let axis = int("axis", 1);
                if axis != 1 && axis != -3 {
                    return Err(self.unsupported(format!(
                        "{by}: a concatenation along axis {axis}; only along the channels is \
                         supported"
                    )));
                }
                let mut inputs = Vec::with_capacity(node.input.len());
                for name in node.input.iter().filter(|n| !n.is_empty()) {
                    inputs.push(self.value(name, &by)?);
                }
                let op = Op::Concat(ops::Concat {
                    inputs: inputs.len(),
                });
                (op, inputs)
            }
            "MaxPool" | "AveragePool" => {
                let k = ints("kernel_shape").unwrap_or_default();
                let s = ints("strides").unwrap_or_else(|| vec![1, 1]);
                let p = ints("pads").unwrap_or_else(|| vec![0; 4]);
                let d = ints("dilations").unwrap_or_else(|| vec![1, 1]);
                let square = k.len() == 2 && k[0] == k[1] && s.len() == 2 && s[0] == s[1];
                let symmetric = p.len() == 4 && p.iter().all(|v| *v == p[0]);
                let in_range = square
                    && symmetric
                    && (1..=1 << 16).contains(&k[0])
                    && (1..=1 << 16).contains(&s[0])
                    && (0..=1 << 16).contains(&p[0]);
                if !in_range
                    || d != [1, 1]
                    || node.output.len() > 1
                    || attr("auto_pad").is_some_and(|a| !a.s.is_empty() && a.s != b"NOTSET")
                {
                    return Err(self.unsupported(format!(
                        "{by}: kernel {k:?}, strides {s:?}, pads {p:?}, dilations {d:?}; only \
                         square windows with equal strides and symmetric padding are supported"
                    )));
                }
                let (kernel, stride, pad) = (k[0] as u32, s[0] as u32, p[0] as u32);
                let ceil_mode = int("ceil_mode", 0) != 0;
                let op = if op == "MaxPool" {
                    Op::MaxPool(ops::MaxPool {
                        kernel,
                        stride,
                        pad,
                        ceil_mode,
                    })
                } else {
                    Op::AvgPool(ops::AvgPool {
                        kernel,
                        stride,
                        pad,
                        count_include_pad: int("count_include_pad", 0) == 1,
                        ceil_mode,
                    })
                };
                (op, vec![first()?])
            }
            "GlobalAveragePool" => (Op::GlobalAvgPool(ops::GlobalAvgPool), vec![first()?]),
            "ReduceMean" => {
                let axes = match (ints("axes"), input(1)) {
                    (Some(a), _) => a,
                    (None, Some(n)) => self.ints(n, &by)?,
                    (None, None) => Vec::new(),
                };
                let mut axes: Vec<i64> = axes
                    .iter()
                    .map(|a| if *a < 0 { a + 4 } else { *a })
                    .collect();
                axes.sort_unstable();
                let spatial: &[i64] = match in_layout {
                    Layout::Nchw => &[2, 3],
                    Layout::Nhwc => &[1, 2],
                    Layout::Rows => &[],
                };
                if axes != spatial || spatial.is_empty() {
                    return Err(self.unsupported(format!(
                        "{by}: a mean of {} over axes {axes:?}; only over the spatial axes (a \
                         global average pool) is supported",
                        in_layout.describe()
                    )));
                }
                if int("keepdims", 1) == 0 {
                    out_layout = Layout::Rows;
                }
                (Op::GlobalAvgPool(ops::GlobalAvgPool), vec![first()?])
            }
            "Flatten" => {
                out_layout = Layout::Rows;
                self.flattens(input(0).unwrap_or(""), &by)?;
                if int("axis", 1) != 1 {
                    return Err(self.unsupported(format!("{by}: axis {}", int("axis", 1))));
                }
                (Op::Flatten(ops::Flatten), vec![first()?])
            }
            "Reshape" | "Squeeze" => {
                let x = first()?;
                out_layout = Layout::Rows;
                self.flattens(input(0).unwrap_or(""), &by)?;
                let (h, w, c) = self.graph.shape(x);
                let features = i64::from(h) * i64::from(w) * i64::from(c);
                let rows = if op == "Reshape" {
                    let n = input(1).ok_or_else(|| self.format(format!("{by} has no shape")))?;
                    let shape = self.ints(n, &by)?;
                    // `[-1]` also flattens the batch: what a model exported for one image
                    // writes (the dynamo exporter's `as_strided` after a pool).
                    matches!(shape[..], [b, f] if (b == -1 || b == 0 || b == 1) && (f == -1 || f == features))
                        || matches!(shape[..], [f] if f == -1 || f == features)
                } else {
                    h * w == 1
                };
                if !rows {
                    return Err(self.unsupported(format!(
                        "{by}: only flattening to one row per image is supported"
                    )));
                }
                (Op::Flatten(ops::Flatten), vec![x])
            }
            "Gemm" | "MatMul" => {
                let x = first()?;
                let gemm = op == "Gemm";
                // Rows of features, or (MatMul) each pixel's channels of a channels-last
                // tensor (ConvNeXt's linear layers between its permutes).
                if !(in_layout == Layout::Rows || !gemm && in_layout == Layout::Nhwc) {
                    return Err(self.unsupported(format!(
                        "{by}: multiplies {} by a matrix; only rows of features (after a \
                         flatten) or channels-last tensors are supported",
                        in_layout.describe()
                    )));
                }
                let alpha = attr("alpha").map_or(1.0, |a| a.f);
                let beta = attr("beta").map_or(1.0, |a| a.f);
                if gemm && (alpha != 1.0 || beta != 1.0 || int("transA", 0) != 0) {
                    return Err(self.unsupported(format!(
                        "{by}: alpha {alpha}, beta {beta}, transA {}; only alpha = beta = 1 \
                         without transA is supported",
                        int("transA", 0)
                    )));
                }
                let b = input(1).ok_or_else(|| self.format(format!("{by} has no weight")))?;
                let (dims, values) = self.floats(b, &by)?;
                let [rows, cols] = dims[..] else {
                    return Err(self.unsupported(format!("{by}: a weight of shape {dims:?}")));
                };
                if rows == 0 || cols == 0 || rows > 1 << 24 || cols > 1 << 24 {
                    return Err(self.format(format!("{by}: a weight of shape {dims:?}")));
                }
                // PyTorch's [out, in] is Gemm's B with transB = 1; otherwise B is [in, out].
                let transposed = gemm && int("transB", 0) == 1;
                let (out_features, weight) = if transposed {
                    (rows, values)
                } else {
                    let mut t = vec![0f32; values.len()];
                    for i in 0..rows {
                        for o in 0..cols {
                            t[o * rows + i] = values[i * cols + o];
                        }
                    }
                    (cols, t)
                };
                let bias = match input(2).filter(|_| gemm) {
                    Some(c) => {
                        let (_, v) = self.floats(c, &by)?;
                        match v.len() {
                            1 => vec![v[0]; out_features],
                            n if n == out_features => v,
                            n => {
                                return Err(self.unsupported(format!(
                                    "{by}: a bias of {n} values for {out_features} outputs"
                                )))
                            }
                        }
                    }
                    None => vec![0.0; out_features],
                };
                let linear = ops::Linear {
                    weight,
                    bias,
                    out_features: u32::try_from(out_features)
                        .map_err(|_| self.format(format!("{by}: {out_features} outputs")))?,
                };
                (Op::Linear(linear), vec![x])
            }
            other => {
                return Err(self.unsupported(format!(
                    "{by}: op {other} is not supported; supported ops: {SUPPORTED}"
                )))
            }
        };
        let (op_value, inputs) = plain;
        let t = self.graph.push(&name, op_value, &inputs, &out)?;
        self.alias(out, t, out_layout);
        Ok(Some((t, op)))
    }

    /// Checks that flattening ONNX value `name` lays its values out as the graph's flatten does
    /// (NCHW order): a channels-last tensor may be flattened only where it has one pixel.
    fn flattens(&self, name: &str, by: &str) -> Result<()> {
        let Some(&t) = self.values.get(name) else {
            return Ok(());
        };
        let (h, w, _) = self.graph.shape(t);
        if self.layout(name) == Layout::Nhwc && h * w > 1 {
            return Err(self.unsupported(format!(
                "{by}: flattens a channels-last tensor of {h}×{w} pixels; only NCHW ones are \
                 supported"
            )));
        }
        Ok(())
    }

    /// Adds `bias` to the linear layer that wrote `t` (a `MatMul` followed by its bias `Add`).
    fn bias_into_linear(&mut self, t: usize, bias: Vec<f32>, by: &str) -> Result<()> {
        let node = self.graph.nodes.iter_mut().rev().find(|n| n.output == t);
        match node.map(|n| &mut n.op) {
            Some(Op::Linear(l)) if bias.len() == l.bias.len() || bias.len() == 1 => {
                for (i, b) in l.bias.iter_mut().enumerate() {
                    *b += bias[i.min(bias.len() - 1)];
                }
                Ok(())
            }
            _ => Err(self.unsupported(format!(
                "{by}: adds a constant to a tensor that no linear layer wrote"
            ))),
        }
    }
}

fn activation(kind: ActivationKind) -> Op {
    Op::Activation(ops::Activation::new(kind))
}

/// IEEE 754 half precision to single.
fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | (e << 23) | ((f & 0x3ff) << 13)
        }
        (31, f) => sign | (0xff << 23) | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Constant `c` with its axes permuted by `perm` (reversed where it is `None`, as ONNX's
/// `Transpose`).
fn permute(c: &Constant, perm: Option<&[i64]>) -> std::result::Result<Constant, String> {
    let dims = c.dims();
    let rank = dims.len();
    let perm: Vec<usize> = match perm {
        None => (0..rank).rev().collect(),
        Some(p) => p
            .iter()
            .map(|&a| usize::try_from(a).unwrap_or(usize::MAX))
            .collect(),
    };
    let mut seen = vec![false; rank];
    if perm.len() != rank
        || perm
            .iter()
            .any(|&a| a >= rank || std::mem::replace(&mut seen[a], true))
    {
        return Err(format!("perm {perm:?} for a tensor of shape {dims:?}"));
    }
    let out_dims: Vec<usize> = perm.iter().map(|&a| dims[a]).collect();
    let strides = strides(dims);
    Ok(gather(c, out_dims, |a, i| i * strides[perm[a]]))
}

/// Row-major strides of a tensor of shape `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; dims.len()];
    for a in (0..dims.len().saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * dims[a + 1];
    }
    strides
}

/// The constant of shape `out_dims` whose value at each index `[i₀, i₁, …]` is `c`'s value at
/// flat position `Σ offset(a, i_a)` (a permutation's or a slice's gather).
fn gather(c: &Constant, out_dims: Vec<usize>, offset: impl Fn(usize, usize) -> usize) -> Constant {
    let count: usize = out_dims.iter().product();
    let mut source = Vec::with_capacity(count);
    let mut index = vec![0usize; out_dims.len()];
    for _ in 0..count {
        source.push(
            index
                .iter()
                .enumerate()
                .map(|(a, &i)| offset(a, i))
                .sum::<usize>(),
        );
        for a in (0..out_dims.len()).rev() {
            index[a] += 1;
            if index[a] < out_dims[a] {
                break;
            }
            index[a] = 0;
        }
    }
    match c {
        Constant::Floats(_, v) => {
            Constant::Floats(out_dims, source.iter().map(|&i| v[i]).collect())
        }
        Constant::Ints(_, v) => Constant::Ints(out_dims, source.iter().map(|&i| v[i]).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::proto::*;
    use super::*;

    #[test]
    fn permute_moves_every_value() {
        // A 2 × 3 × 4 tensor of its own flat indices, permuted to 4 × 2 × 3.
        let c = Constant::Ints(vec![2, 3, 4], (0..24).collect());
        let Constant::Ints(dims, v) = permute(&c, Some(&[2, 0, 1])).expect("perm") else {
            panic!("ints");
        };
        assert_eq!(dims, [4, 2, 3]);
        for (k, i, j) in
            (0..4).flat_map(|k| (0..2).flat_map(move |i| (0..3).map(move |j| (k, i, j))))
        {
            assert_eq!(v[k * 6 + i * 3 + j], (i * 12 + j * 4 + k) as i64);
        }
        let Constant::Ints(dims, _) = permute(&c, None).expect("reversed") else {
            panic!("ints");
        };
        assert_eq!(dims, [4, 3, 2]);
        assert!(permute(&c, Some(&[0, 0, 1])).is_err());
        assert!(permute(&c, Some(&[0, 1])).is_err());
    }

    fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: output.to_string(),
            op_type: op.to_string(),
            attribute,
            ..Default::default()
        }
    }

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn floats(name: &str, dims: &[i64], v: Vec<f32>) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: 1,
            float_data: v,
            name: name.into(),
            ..Default::default()
        }
    }

    /// Imports input [1, 3, 8, 8] → `nodes` → pool → flatten → Gemm to 2 classes.
    fn import(
        nodes: Vec<NodeProto>,
        last: &str,
        channels: i64,
        init: Vec<TensorProto>,
    ) -> Result<Model> {
        let dims = [1, 3, 8, 8].map(|d| Dimension {
            dim_value: d,
            ..Default::default()
        });
        let value = |name: &str, dim: Vec<Dimension>| ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TensorTypeProto {
                    elem_type: 1,
                    shape: Some(TensorShapeProto { dim }),
                }),
            }),
        };
        let mut nodes = nodes;
        nodes.push(node("GlobalAveragePool", &[last], "pool", vec![]));
        nodes.push(node("Flatten", &["pool"], "flat", vec![]));
        nodes.push(node("Gemm", &["flat", "fc.weight"], "logits", vec![]));
        let mut initializer = init;
        initializer.push(floats(
            "fc.weight",
            &[channels, 2],
            vec![0.5; channels as usize * 2],
        ));
        let model = ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(GraphProto {
                node: nodes,
                initializer,
                input: vec![value("input", dims.to_vec())],
                output: vec![value("logits", Vec::new())],
                ..Default::default()
            }),
            ..Default::default()
        };
        build(Path::new("m.onnx"), &model.encode_to_vec(), None, None)
    }

    #[test]
    fn shape_arithmetic_on_odd_constants_is_an_error_or_empty_never_a_panic() {
        let ints = |name: &str, v: &[i64]| AttributeProto {
            name: name.into(),
            ints: v.to_vec(),
            ..Default::default()
        };
        let constant =
            |out: &str, v: &[i64]| node("Constant", &[], out, vec![ints("value_ints", v)]);
        // A fill value with no values.
        let empty = AttributeProto {
            name: "value".into(),
            t: Some(floats("v", &[0], Vec::new())),
            ..Default::default()
        };
        let nodes = vec![
            constant("shape", &[2]),
            node("ConstantOfShape", &["shape"], "filled", vec![empty]),
        ];
        let e = import(nodes, "input", 3, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty fill value"), "{e}");
        // An empty axis sliced backwards, and a step that overflows: empty or short results.
        let nodes = vec![
            constant("none", &[]),
            constant("starts", &[-1]),
            constant("ends", &[i64::MIN + 1]),
            constant("axes", &[0]),
            constant("back", &[-1]),
            node(
                "Slice",
                &["none", "starts", "ends", "axes", "back"],
                "a",
                vec![],
            ),
            constant("four", &[1, 2, 3, 4]),
            constant("one", &[1]),
            constant("far", &[i64::MAX]),
            constant("huge", &[i64::MAX - 1]),
            node("Slice", &["four", "one", "far", "", "huge"], "b", vec![]),
            constant("big", &[1 << 22]),
            node("ConstantOfShape", &["big"], "c", vec![]),
        ];
        let e = import(nodes, "input", 3, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("to fill") && e.lines().count() == 1, "{e}");
    }

    #[test]
    fn channels_last_tensors_reach_only_the_ops_that_take_them() {
        let to_last = || {
            node(
                "Transpose",
                &["input"],
                "last",
                vec![ints("perm", &[0, 2, 3, 1])],
            )
        };
        let back = |x: &str| node("Transpose", &[x], "back", vec![ints("perm", &[0, 3, 1, 2])]);
        let norm = || node("LayerNormalization", &["last", "g", "b"], "norm", vec![]);
        let gb = || {
            vec![
                floats("g", &[3], vec![1.0; 3]),
                floats("b", &[3], vec![0.0; 3]),
            ]
        };
        // LayerNorm over the channels, a linear layer on every pixel (by a transposed
        // constant), a layer scale, and back: ConvNeXt's pattern.
        let mut init = vec![
            floats("g", &[4], vec![1.0; 4]),
            floats("b", &[4], vec![0.0; 4]),
            floats("c", &[4, 3, 3, 3], vec![0.5; 108]),
            floats("w", &[4, 4], vec![0.25; 16]),
            floats("s", &[4, 1, 1], vec![2.0; 4]),
        ];
        let nodes = vec![
            node("Conv", &["input", "c"], "conv", vec![ints("pads", &[1; 4])]),
            node(
                "Transpose",
                &["conv"],
                "last",
                vec![ints("perm", &[0, 2, 3, 1])],
            ),
            norm(),
            node("Transpose", &["w"], "wt", vec![ints("perm", &[1, 0])]),
            node("MatMul", &["norm", "wt"], "lin", vec![]),
            back("lin"),
            node("Mul", &["s", "back"], "scaled", vec![]),
        ];
        let model =
            import(nodes, "scaled", 4, std::mem::take(&mut init)).expect("ConvNeXt's pattern");
        assert_eq!(model.classes, 2);

        // A channels-last tensor into a pool, a matrix product over an NCHW tensor's width,
        // LayerNorm over an NCHW tensor's width, and a permute the importer does not follow.
        let e = import(vec![to_last()], "last", 3, Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("m.onnx") && e.contains("channels-last") && e.contains("NCHW"),
            "{e}"
        );
        let mut init = gb();
        init.push(floats("w", &[8, 4], vec![0.25; 32]));
        let e = import(
            vec![node("MatMul", &["input", "w"], "mm", vec![])],
            "mm",
            4,
            init,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("an NCHW tensor by a matrix"), "{e}");
        let nodes = vec![node(
            "LayerNormalization",
            &["input", "g", "b"],
            "norm",
            vec![],
        )];
        let e = import(nodes, "norm", 3, gb()).unwrap_err().to_string();
        assert!(e.contains("its width"), "{e}");
        let nodes = vec![node(
            "Transpose",
            &["input"],
            "t",
            vec![ints("perm", &[0, 1, 3, 2])],
        )];
        let e = import(nodes, "t", 3, Vec::new()).unwrap_err().to_string();
        assert!(e.contains("[0, 1, 3, 2]"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}

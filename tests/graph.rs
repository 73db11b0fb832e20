//! The plain-op graph and its fusion pass, on the CPU: shape rules, and the fused plan computing
//! what the plain ops compute (BatchNorm folded, residual and activation absorbed, a flattened
//! tensor read in NHWC order), checked against loop nests over the plain ops.

use std::path::Path;

use gradcam::graph::ops::{
    Activation, ActivationKind, Add, BatchNorm, Conv, Flatten, GlobalAvgPool, Linear, Op, OpRule,
};
use gradcam::graph::{lower, Graph};
use gradcam::model::{self, ConvKind};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn random(rng: &mut SmallRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// A conv with `groups`, `kernel`, `stride`, `dilation` and `pads` over `ci` channels.
fn conv(rng: &mut SmallRng, ci: u32, co: u32, kernel: [u32; 2], groups: u32) -> Conv {
    let n = (co * (ci / groups) * kernel[0] * kernel[1]) as usize;
    Conv {
        weight: random(rng, n),
        bias: Some(random(rng, co as usize)),
        out_channels: co,
        kernel,
        stride: [1, 1],
        dilation: [1, 1],
        groups,
        pads: [kernel[0] / 2, kernel[1] / 2, kernel[0] / 2, kernel[1] / 2],
    }
}

fn batch_norm(rng: &mut SmallRng, c: usize) -> BatchNorm {
    BatchNorm {
        gamma: random(rng, c),
        beta: random(rng, c),
        mean: random(rng, c),
        var: random(rng, c).iter().map(|v| v.abs() + 0.1).collect(),
        eps: 1e-5,
    }
}

/// PyTorch's conv2d on one NHWC image, in f64: weights `[out, in/groups, kh, kw]`.
fn conv_ref(c: &Conv, x: &[f32], (h, w, ci): (u32, u32, u32)) -> (Vec<f64>, (u32, u32, u32)) {
    let (oh, ow, co) = c.output_shape(&[(h, w, ci)]).expect("shape");
    let (g, [kh, kw]) = (c.groups, c.kernel);
    let (cig, cog) = (ci / g, co / g);
    let mut y = vec![0f64; (oh * ow * co) as usize];
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..co {
                let group = o / cog;
                let mut acc = c.bias.as_ref().map_or(0.0, |b| f64::from(b[o as usize]));
                for i in 0..cig {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy =
                                (oy * c.stride[0] + ky * c.dilation[0]) as i64 - c.pads[0] as i64;
                            let ix =
                                (ox * c.stride[1] + kx * c.dilation[1]) as i64 - c.pads[1] as i64;
                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                continue;
                            }
                            let ch = group * cig + i;
                            let xv = x[((iy as u32 * w + ix as u32) * ci + ch) as usize];
                            let wv = c.weight[(((o * cig + i) * kh + ky) * kw + kx) as usize];
                            acc += f64::from(xv) * f64::from(wv);
                        }
                    }
                }
                y[((oy * ow + ox) * co + o) as usize] = acc;
            }
        }
    }
    (y, (oh, ow, co))
}

#[test]
fn conv_shape_rule_covers_dilation_groups_and_four_sided_padding() {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut c = conv(&mut rng, 8, 12, [1, 7], 4);
    c.stride = [2, 1];
    c.dilation = [1, 2];
    c.pads = [0, 6, 1, 5];
    // rows: (10 + 1 - 1) / 2 + 1 = 6; columns: (9 + 11 - 13) / 1 + 1 = 8.
    assert_eq!(c.output_shape(&[(10, 9, 8)]), Ok((6, 8, 12)));
    let err = c.output_shape(&[(10, 9, 6)]).unwrap_err();
    assert!(err.contains("4 groups do not divide 6"), "{err}");
    c.weight.pop();
    let err = c.output_shape(&[(10, 9, 8)]).unwrap_err();
    assert!(err.contains("weight of 167 values"), "{err}");
}

#[test]
fn fused_conv_batch_norm_add_relu_equals_the_plain_ops() {
    let mut rng = SmallRng::seed_from_u64(2);
    let (h, w, c) = (6, 6, 8);
    let mut g = Graph::new(Path::new("test.safetensors"), 6);
    // A stem to 6×6×8, then the residual block under test.
    let stem = conv(&mut rng, 3, c, [3, 3], 1);
    let x = g
        .push("stem", Op::Conv(stem.clone()), &[g.input], "stem")
        .expect("stem");
    assert_eq!(g.shape(x), (h, w, c));
    let body = conv(&mut rng, c, c, [3, 3], 1);
    let bn = batch_norm(&mut rng, c as usize);
    let y = g
        .push("conv", Op::Conv(body.clone()), &[x], "conv")
        .unwrap();
    let y = g.push("bn", Op::BatchNorm(bn.clone()), &[y], "bn").unwrap();
    let y = g.push("add", Op::Add(Add), &[y, x], "add").unwrap();
    let relu = Activation::new(ActivationKind::Relu);
    let y = g.push("relu", Op::Activation(relu), &[y], "block").unwrap();
    g.layer("block", y);
    let pooled = g
        .push("pool", Op::GlobalAvgPool(GlobalAvgPool), &[y], "pooled")
        .unwrap();
    let fc = Linear {
        weight: random(&mut rng, 3 * c as usize),
        bias: random(&mut rng, 3),
        out_features: 3,
    };
    let logits = g.push("fc", Op::Linear(fc), &[pooled], "logits").unwrap();
    let plan = lower(&g, logits).expect("lowered");

    // input, stem, block, pooled, logits: the BatchNorm, add and ReLU live in the block's conv.
    let names: Vec<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["input", "stem", "block", "pooled", "logits"]);
    assert_eq!(plan.target_layers, [("block".to_string(), 2)]);
    let fused = &plan.convs[1];
    assert_eq!(fused.kind, ConvKind::Dense);
    assert_eq!(fused.activation, model::Activation::Relu);
    assert!(fused.add_before_activation);
    assert!(matches!(
        plan.ops[2],
        model::Op::Conv {
            input: 1,
            output: 2,
            residual: Some(1),
            pad_top: 1,
            pad_left: 1,
            ..
        }
    ));
    // FullGrad reads the conv's bias (times the BatchNorm's scale) and the BatchNorm's.
    assert_eq!(fused.full_grad_biases.len(), 2);

    // The fused conv on the stem's output equals conv → BatchNorm → add → ReLU.
    let input = random(&mut rng, (h * w * c) as usize);
    let (plain, _) = conv_ref(&body, &input, (h, w, c));
    let folded = Conv {
        weight: fused.weight_torch.clone(),
        bias: Some(fused.bias.clone()),
        ..body.clone()
    };
    let (fast, _) = conv_ref(&folded, &input, (h, w, c));
    for (i, (p, f)) in plain.iter().zip(&fast).enumerate() {
        let ch = i % c as usize;
        let normed = (p - f64::from(bn.mean[ch])) * f64::from(bn.gamma[ch])
            / (f64::from(bn.var[ch]) + f64::from(bn.eps)).sqrt()
            + f64::from(bn.beta[ch]);
        let want = (normed + f64::from(input[i])).max(0.0);
        let got = (f + f64::from(input[i])).max(0.0);
        assert!(
            (want - got).abs() <= 1e-5 * (1.0 + want.abs()),
            "{i}: {want} vs {got}"
        );
    }
    // The stem has no BatchNorm: its weights are the plain ones, in the dense GPU layout too.
    assert_eq!(plan.convs[0].weight_torch, stem.weight);
    assert_eq!(plan.convs[0].full_grad_biases, [stem.bias.clone().unwrap()]);
}

#[test]
fn a_linear_layer_reads_a_flattened_tensor_in_place() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut g = Graph::new(Path::new("test.safetensors"), 4);
    let mut c = conv(&mut rng, 3, 4, [3, 3], 1);
    c.stride = [2, 2];
    let x = g
        .push("features", Op::Conv(c), &[g.input], "features")
        .unwrap();
    g.layer("features", x);
    let (h, w, ch) = g.shape(x);
    assert_eq!((h, w, ch), (2, 2, 4));
    let flat = g
        .push("flatten", Op::Flatten(Flatten), &[x], "flatten")
        .unwrap();
    let fc = Linear {
        weight: random(&mut rng, 5 * 16),
        bias: random(&mut rng, 5),
        out_features: 5,
    };
    let relu = Activation::new(ActivationKind::Relu6);
    let y = g.push("fc", Op::Linear(fc.clone()), &[flat], "fc").unwrap();
    let logits = g.push("act", Op::Activation(relu), &[y], "logits").unwrap();
    let plan = lower(&g, logits).expect("lowered");
    let lin = &plan.linears[0];
    assert_eq!(
        (lin.in_features, lin.activation),
        (16, model::Activation::Relu6)
    );
    assert!(matches!(
        plan.ops[2],
        model::Op::Linear {
            input: 1,
            output: 2,
            ..
        }
    ));
    // Row o of the plan's weight, applied to NHWC values, equals PyTorch's over NCHW ones.
    let nhwc = random(&mut rng, 16);
    for o in 0..5 {
        let mut torch = 0f64;
        let mut ours = 0f64;
        for y in 0..2 {
            for x in 0..2 {
                for c in 0..4 {
                    let v = f64::from(nhwc[(y * 2 + x) * 4 + c]);
                    torch += v * f64::from(fc.weight[o * 16 + c * 4 + y * 2 + x]);
                    ours += v * f64::from(lin.weight[o * 16 + (y * 2 + x) * 4 + c]);
                }
            }
        }
        assert!((torch - ours).abs() < 1e-9, "output {o}: {torch} vs {ours}");
    }
}

#[test]
fn ops_no_kernel_runs_are_errors_naming_the_node() {
    let mut rng = SmallRng::seed_from_u64(4);
    let file = Path::new("net.safetensors");
    // An add that follows no conv.
    let mut g = Graph::new(file, 4);
    let x = g
        .push("features.add", Op::Add(Add), &[g.input, g.input], "n")
        .unwrap();
    let x = g
        .push("pool", Op::GlobalAvgPool(GlobalAvgPool), &[x], "p")
        .unwrap();
    let fc = Linear {
        weight: random(&mut rng, 6),
        bias: random(&mut rng, 2),
        out_features: 2,
    };
    let logits = g
        .push("fc", Op::Linear(fc.clone()), &[x], "logits")
        .unwrap();
    let err = lower(&g, logits).unwrap_err().to_string();
    assert!(
        err.starts_with("net.safetensors: unsupported model: features.add (Add)"),
        "{err}"
    );

    // A dilated conv over three channels (the conv of any geometry reads four per group).
    let mut g = Graph::new(file, 8);
    let mut c = conv(&mut rng, 3, 4, [3, 3], 1);
    c.dilation = [2, 2];
    c.pads = [2, 2, 2, 2];
    let x = g.push("layer.conv", Op::Conv(c), &[g.input], "c").unwrap();
    let x = g
        .push("pool", Op::GlobalAvgPool(GlobalAvgPool), &[x], "p")
        .unwrap();
    let fc = Linear {
        weight: random(&mut rng, 8),
        ..fc
    };
    let logits = g.push("fc", Op::Linear(fc), &[x], "logits").unwrap();
    let err = lower(&g, logits).unwrap_err().to_string();
    assert!(
        err.contains("layer.conv (Conv): 1 groups over 3 → 4 channels: the channels per group"),
        "{err}"
    );

    // A shape that does not fit is refused when the node is added.
    let mut g = Graph::new(file, 4);
    let err = g
        .push(
            "fc",
            Op::Linear(Linear {
                weight: vec![0.0; 48],
                bias: vec![0.0],
                out_features: 1,
            }),
            &[g.input],
            "y",
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("fc (Gemm): a weight of 48 values and a bias of 1 for 3 inputs"),
        "{err}"
    );
}

#[test]
fn standalone_batch_norms_and_activations_become_elementwise_ops() {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut g = Graph::new(Path::new("net.safetensors"), 8);
    // conv → SiLU (its derivative needs its input: not absorbed), BatchNorm → ReLU (one op),
    // and a sigmoid nothing reads (left out).
    let x = g
        .push(
            "conv",
            Op::Conv(conv(&mut rng, 3, 8, [3, 3], 1)),
            &[g.input],
            "conv",
        )
        .unwrap();
    let silu = Activation::new(ActivationKind::Silu);
    let x = g.push("act", Op::Activation(silu), &[x], "act").unwrap();
    let sigmoid = Activation::new(ActivationKind::Sigmoid);
    g.push("unused", Op::Activation(sigmoid), &[x], "unused")
        .unwrap();
    let bn = batch_norm(&mut rng, 8);
    let y = g
        .push("norm", Op::BatchNorm(bn.clone()), &[x], "norm")
        .unwrap();
    let relu = Activation::new(ActivationKind::Relu);
    let y = g
        .push("relu", Op::Activation(relu), &[y], "features")
        .unwrap();
    g.layer("features", y);
    let pooled = g
        .push("pool", Op::GlobalAvgPool(GlobalAvgPool), &[y], "pooled")
        .unwrap();
    let fc = Linear {
        weight: random(&mut rng, 16),
        bias: random(&mut rng, 2),
        out_features: 2,
    };
    let logits = g.push("fc", Op::Linear(fc), &[pooled], "logits").unwrap();
    let plan = lower(&g, logits).expect("lowered");
    let names: Vec<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["input", "conv", "act", "features", "pooled", "logits"]
    );
    assert_eq!(plan.convs[0].activation, model::Activation::None);
    assert_eq!(plan.elementwise.len(), 2);
    assert_eq!(plan.elementwise[0].activation, model::Activation::Silu);
    assert!(plan.elementwise[0].affine.is_none());
    let norm = &plan.elementwise[1];
    assert_eq!(
        (norm.name.as_str(), norm.activation),
        ("norm", model::Activation::Relu)
    );
    let (scale, shift) = norm
        .affine
        .as_ref()
        .expect("the BatchNorm's scale and shift");
    for c in 0..8 {
        let x = 0.37f64;
        let want = (x - f64::from(bn.mean[c])) * f64::from(bn.gamma[c])
            / (f64::from(bn.var[c]) + f64::from(bn.eps)).sqrt()
            + f64::from(bn.beta[c]);
        let got = x * f64::from(scale[c]) + f64::from(shift[c]);
        assert!(
            (want - got).abs() < 1e-6 * (1.0 + want.abs()),
            "{c}: {want} vs {got}"
        );
    }
    assert!(matches!(
        plan.ops[3],
        model::Op::Elementwise {
            op: 1,
            input: 2,
            output: 3
        }
    ));
}

//! Each kernel against a straightforward loop-nest reference on random data: odd sizes, stride 2
//! with TF "SAME" (asymmetric) and symmetric padding, batches larger than one.

mod common;

use common::{assert_close, ctx};
use gradcam::gpu::kernels::{
    conv2d_grad_variant, conv2d_variant, depthwise_grad_variant, depthwise_variant, KernelId,
    CONV2D_GEMM, CONV2D_SUBGROUP_STEM, CONV2D_SUBGROUP_STEM7, CONV2D_SUBGROUP_TILE, CONV2D_TILED,
    DEPTHWISE_STAGED, LINEAR_GRAD_SUBGROUP, LINEAR_SPLIT, LINEAR_SUBGROUP, POINTWISE_GRAD_SUBGROUP,
    POINTWISE_GRAD_VARIANTS, POINTWISE_SUBGROUP, POINTWISE_VARIANTS,
};
use gradcam::gpu::launch;
use gradcam::gpu::params::{
    reduction_chunks, CamCenterParams, CamChannelWeightsParams, CamEigenParams,
    CamElementwiseParams, CamGramParams, CamMinMaxParams, CamSaliencyParams, ConvGradParams,
    ConvParams, DepthwiseGradParams, DepthwiseParams, ElementwiseGradParams, ElementwiseParams,
    ImageMeta, LinearGradParams, LinearParams, MaxPoolGradParams, MaxPoolParams,
    PointwiseGradParams, PointwiseParams, PoolParams, PreprocessParams, RankParams, MINMAX_PAIRS,
};
use gradcam::model::same_padding;
use gradcam::{AdapterOptions, Engine, GpuContext, Model};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Arc;

fn random(rng: &mut SmallRng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(lo..hi)).collect()
}

/// Runs pipeline `variant` of a kernel once with `params` over buffers made from the named
/// slices and a fresh output binding of `out_len` floats, over the invocations the kernel
/// declares, and reads the output back.
macro_rules! run {
    ($variant:expr, $params:expr, $out_len:expr, $kernel:ident { $($field:ident: $data:expr),* $(,)? } => $output:ident) => {{
        let ctx = ctx();
        let inputs = [$(ctx.storage_with(stringify!($field), $data)),*];
        let mut inputs = inputs.iter();
        let out = ctx
            .storage("output", ($out_len * 4) as u64)
            .expect("output buffer");
        ctx.run_kernel_variant(
            $variant,
            launch::$kernel {
                $($field: inputs.next().expect("one buffer per field"),)*
                $output: &out,
            },
            $params,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        ctx.read_f32(&out, $out_len).expect("readback")
    }};
}

/// Lavapipe (CI's adapter) has 8-lane subgroups: there the subgroup variants are built, the
/// builder's choices, and checked by the tests below with every other variant.
#[test]
fn lavapipe_builds_the_subgroup_tile() {
    let ctx = ctx();
    if ctx.adapter_name().contains("llvmpipe") {
        assert!(ctx.kernels.subgroups(), "{}", ctx.adapter_name());
        assert!(ctx
            .kernels
            .available(KernelId::PointwiseConv, POINTWISE_SUBGROUP));
        assert_eq!(ctx.kernels.pointwise_variant(), POINTWISE_SUBGROUP);
        assert_eq!(
            ctx.kernels.pointwise_grad_variant(),
            POINTWISE_GRAD_SUBGROUP
        );
        assert!(ctx
            .kernels
            .available(KernelId::PointwiseConvGrad, POINTWISE_GRAD_SUBGROUP));
        assert_eq!(ctx.kernels.conv2d_variant(3, 2, 3), CONV2D_SUBGROUP_STEM);
        assert_eq!(ctx.kernels.conv2d_variant(3, 1, 64), CONV2D_SUBGROUP_TILE);
        assert_eq!(ctx.kernels.conv2d_variant(7, 2, 3), CONV2D_SUBGROUP_STEM7);
        assert!(ctx
            .kernels
            .available(KernelId::Conv2d, CONV2D_SUBGROUP_STEM7));
        assert!(ctx
            .kernels
            .available(KernelId::Conv2d, CONV2D_SUBGROUP_TILE));
        assert!(ctx
            .kernels
            .available(KernelId::Conv2d, CONV2D_SUBGROUP_STEM));
        assert_eq!(ctx.kernels.linear_variant(), LINEAR_SUBGROUP);
    } else {
        eprintln!(
            "{}: subgroup tile {}",
            ctx.adapter_name(),
            ctx.kernels.subgroups()
        );
    }
}

#[test]
fn pointwise_conv_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(1);
    // (rows, in, out, relu6, residual): odd row counts, out/4 odd, tiny and model-sized.
    let cases = [
        (1, 4, 4, false, false),
        (37, 12, 20, true, false),
        (203, 24, 12, false, true),
        (2 * 49 + 5, 96, 24, true, true),
        (3 * 196, 480, 112, false, false),
        (17, 320, 1280, true, false),
    ];
    for (rows, ci, co, act, res) in cases {
        let input = random(&mut rng, rows * ci, -2.0, 2.0);
        let weight = random(&mut rng, ci * co, -0.5, 0.5);
        let bias = random(&mut rng, co, -1.0, 1.0);
        let residual = random(&mut rng, rows * co, -1.0, 1.0);
        let expected = pointwise_reference(
            (&input, &weight, &bias, &residual),
            (rows, ci, co),
            u32::from(act),
            u32::from(res),
        );
        let p = PointwiseParams {
            rows: rows as u32,
            in_channels: ci as u32,
            out_channels: co as u32,
            activation: u32::from(act),
            has_residual: u32::from(res),
            _pad: [0; 3],
        };
        for variant in 0..=POINTWISE_VARIANTS.len() {
            if !ctx().kernels.available(KernelId::PointwiseConv, variant) {
                continue;
            }
            let got = run!(variant, &p, rows * co, PointwiseConv { input: &input, weight: &weight, bias: &bias, residual: &residual } => output);
            assert_close(
                &format!("pointwise {rows}x{ci}->{co} variant {variant}"),
                &got,
                &expected,
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn pointwise_conv_grad_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(11);
    // (rows, conv in, conv out, relu6 mask, extra)
    let cases = [
        (1, 4, 4, false, false),
        (37, 20, 12, true, false),
        (203, 12, 24, false, true),
        (2 * 49 + 5, 24, 144, true, true),
        (49, 1152, 192, true, false),
    ];
    for (case, (rows, ci, co, mask, extra)) in cases.into_iter().enumerate() {
        // Masked cases alternate between ReLU6 (1) and ReLU (2).
        let code = if mask { 1 + (case as u32 % 2) } else { 0 };
        let grad_out = random(&mut rng, rows * co, -1.0, 1.0);
        // Forward outputs around the ReLU6 edges, exact 0 and 6 included.
        let forward_out: Vec<f32> = (0..rows * co)
            .map(|i| match i % 5 {
                0 => 0.0,
                1 => 6.0,
                _ => rng.random_range(-1.0..7.0f32).clamp(0.0, 6.0),
            })
            .collect();
        let weight = random(&mut rng, co * ci, -0.5, 0.5); // PyTorch layout [out, in]
        let extra_grad = random(&mut rng, rows * ci, -1.0, 1.0);
        let mut expected = vec![0f32; rows * ci];
        for r in 0..rows {
            for i in 0..ci {
                let mut acc = 0f64;
                for o in 0..co {
                    let y = forward_out[r * co + o];
                    let g = if passes(y, code) {
                        grad_out[r * co + o]
                    } else {
                        0.0
                    };
                    acc += f64::from(g) * f64::from(weight[o * ci + i]);
                }
                expected[r * ci + i] =
                    acc as f32 + if extra { extra_grad[r * ci + i] } else { 0.0 };
            }
        }
        let p = PointwiseGradParams {
            rows: rows as u32,
            in_channels: ci as u32,
            out_channels: co as u32,
            mask: code,
            add_extra: u32::from(extra),
            _pad: [0; 3],
        };
        for variant in 0..=POINTWISE_GRAD_VARIANTS.len() {
            if !ctx()
                .kernels
                .available(KernelId::PointwiseConvGrad, variant)
            {
                continue;
            }
            let got = run!(variant, &p, rows * ci, PointwiseConvGrad { grad_out: &grad_out, forward_out: &forward_out, weight: &weight, extra: &extra_grad } => grad_in);
            assert_close(
                &format!("pointwise grad {rows}x{co}->{ci} mask {code} variant {variant}"),
                &got,
                &expected,
                1e-4,
                1e-5,
            );
        }
    }
}

#[test]
fn depthwise_conv_grad_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(12);
    // (batch, in h, in w, channels, kernel, stride, symmetric padding or TF "SAME"), every size
    // the specialized blocks cover, odd sizes, blocks straddling the padding.
    let cases = [
        (2, 7, 9, 12, 3, 1, None),
        (1, 8, 8, 8, 3, 2, None),
        (3, 11, 6, 16, 5, 2, None),
        (1, 14, 14, 4, 5, 1, None),
        (2, 28, 28, 24, 5, 2, None),
        (2, 9, 13, 8, 3, 2, Some(1)),
        (1, 10, 7, 12, 3, 1, Some(1)),
        (2, 13, 9, 4, 5, 1, Some(2)),
        (1, 15, 12, 8, 5, 2, Some(2)),
        (1, 6, 5, 4, 3, 2, Some(0)),
    ];
    for (case, (n, h, w, c, k, s, pad)) in cases.into_iter().enumerate() {
        // The conv's activation as the mask: ReLU6 (the built-in model's), ReLU and none, in
        // turn; every other case without the extra gradient.
        let mask = (1 + case as u32) % 3;
        let add_extra = u32::from(case % 2 == 0);
        let (oh, pt) = window(h, k, s, pad);
        let (ow, pl) = window(w, k, s, pad);
        let grad_out = random(&mut rng, n * oh * ow * c, -1.0, 1.0);
        let forward_out: Vec<f32> = (0..n * oh * ow * c)
            .map(|i| {
                if i % 4 == 0 {
                    0.0
                } else {
                    rng.random_range(-1.0..7.0f32).clamp(0.0, 6.0)
                }
            })
            .collect();
        let weight = random(&mut rng, k * k * c, -1.0, 1.0);
        let extra = random(&mut rng, n * h * w * c, -1.0, 1.0);
        // Scatter form: each output's gradient flows to the inputs its window covered.
        let mut expected: Vec<f64> = extra
            .iter()
            .map(|v| f64::from(*v) * f64::from(add_extra))
            .collect();
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let o = ((b * oh + oy) * ow + ox) * c + ch;
                        if !passes(forward_out[o], mask) {
                            continue;
                        }
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as i64 - pt;
                                let ix = (ox * s + kx) as i64 - pl;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                    continue;
                                }
                                let i = ((b * h + iy as usize) * w + ix as usize) * c + ch;
                                expected[i] += f64::from(grad_out[o])
                                    * f64::from(weight[(ky * k + kx) * c + ch]);
                            }
                        }
                    }
                }
            }
        }
        let expected: Vec<f32> = expected.iter().map(|v| *v as f32).collect();
        let p = DepthwiseGradParams {
            batch: n as u32,
            in_h: h as u32,
            in_w: w as u32,
            channels: c as u32,
            out_h: oh as u32,
            out_w: ow as u32,
            kernel: k as u32,
            stride: s as u32,
            pad_top: pt as u32,
            pad_left: pl as u32,
            mask,
            add_extra,
        };
        let len = n * h * w * c;
        // The generic kernel and the block specialized for this size.
        let specialized = depthwise_grad_variant(k as u32, s as u32);
        assert_ne!(specialized, 0, "k{k} s{s} has a specialization");
        for variant in [0, specialized] {
            let got = run!(variant, &p, len, DepthwiseConvGrad { grad_out: &grad_out, forward_out: &forward_out, weight: &weight, extra: &extra } => grad_in);
            assert_close(
                &format!("depthwise grad {n}x{h}x{w}x{c} k{k} s{s} pad {pad:?} mask {mask} extra {add_extra} v{variant}"),
                &got,
                &expected,
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn depthwise_conv_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(2);
    // (batch, h, w, channels, kernel, stride)
    let cases = [
        (2, 7, 9, 12, 3, 1),
        (1, 8, 8, 8, 3, 2), // even input, stride 2: the extra pad row/column is bottom/right
        (3, 11, 6, 16, 5, 2), // odd and even axes at once
        (1, 14, 14, 4, 5, 1),
        (2, 56, 56, 24, 3, 2),
        (1, 7, 7, 20, 5, 1), // 7 columns: the last block of four is partial
        (2, 9, 13, 8, 5, 2),
        (1, 3, 2, 4, 3, 1),
        // ConvNeXt's 7×7: partial blocks, its last stage's 7×7 maps, an input smaller than the
        // window.
        (2, 9, 11, 12, 7, 1),
        (1, 7, 7, 8, 7, 1),
        (1, 3, 5, 4, 7, 1),
    ];
    for (case, (n, h, w, c, k, s)) in cases.into_iter().enumerate() {
        // ReLU6 (the built-in model's) and ReLU, alternately.
        let act = 1 + (case as u32 % 2);
        let (oh, pt) = same_padding(h as u32, k as u32, s as u32);
        let (ow, pl) = same_padding(w as u32, k as u32, s as u32);
        let (oh, ow, pt, pl) = (oh as usize, ow as usize, pt as i64, pl as i64);
        let input = random(&mut rng, n * h * w * c, -2.0, 2.0);
        let weight = random(&mut rng, k * k * c, -1.0, 1.0);
        let bias = random(&mut rng, c, -1.0, 1.0);
        let mut expected = vec![0f32; n * oh * ow * c];
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let mut acc = 0f64;
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as i64 - pt;
                                let ix = (ox * s + kx) as i64 - pl;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                    continue;
                                }
                                let v = input[((b * h + iy as usize) * w + ix as usize) * c + ch];
                                acc += f64::from(v) * f64::from(weight[(ky * k + kx) * c + ch]);
                            }
                        }
                        expected[((b * oh + oy) * ow + ox) * c + ch] =
                            activate(acc as f32 + bias[ch], act);
                    }
                }
            }
        }
        let p = DepthwiseParams {
            batch: n as u32,
            in_h: h as u32,
            in_w: w as u32,
            channels: c as u32,
            out_h: oh as u32,
            out_w: ow as u32,
            kernel: k as u32,
            stride: s as u32,
            pad_top: pt as u32,
            pad_left: pl as u32,
            activation: act,
            _pad: 0,
        };
        let len = n * oh * ow * c;
        // The generic pipeline and, where one exists, the one specialized for this size/stride.
        let specialized = depthwise_variant(k as u32, s as u32);
        for variant in [0, specialized, DEPTHWISE_STAGED] {
            let got = run!(variant, &p, len, DepthwiseConv { input: &input, weight: &weight, bias: &bias } => output);
            assert_close(
                &format!("depthwise {n}x{h}x{w}x{c} k{k} s{s} variant {variant}"),
                &got,
                &expected,
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn conv2d_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(3);
    // (batch, h, w, in, out, kernel, stride)
    let cases = [
        (2, 9, 11, 3, 8, 3, 2),
        (1, 8, 8, 3, 32, 3, 2), // even input, stride 2: asymmetric SAME padding
        (1, 5, 7, 4, 12, 3, 1),
        (1, 224, 224, 3, 32, 3, 2),
        (2, 7, 13, 3, 8, 3, 2), // 7 output columns: a partial block of four
    ];
    for (case, (n, h, w, ci, co, k, s)) in cases.into_iter().enumerate() {
        // ReLU6 (the built-in model's) and ReLU, alternately, on both pipelines.
        let act = 1 + (case as u32 % 2);
        let (oh, pt) = same_padding(h as u32, k as u32, s as u32);
        let (ow, pl) = same_padding(w as u32, k as u32, s as u32);
        let (oh, ow, pt, pl) = (oh as usize, ow as usize, pt as i64, pl as i64);
        let input = random(&mut rng, n * h * w * ci, -1.0, 1.0);
        let weight = random(&mut rng, k * k * ci * co, -1.0, 1.0);
        let bias = random(&mut rng, co, -1.0, 1.0);
        let expected = conv2d_reference(
            (&input, &weight, &bias),
            (n, h, w, ci, co, k, s),
            (oh, ow, pt, pl),
            act,
        );
        let p = ConvParams {
            batch: n as u32,
            in_h: h as u32,
            in_w: w as u32,
            in_c: ci as u32,
            out_h: oh as u32,
            out_w: ow as u32,
            out_c: co as u32,
            kernel: k as u32,
            stride: s as u32,
            pad_top: pt as u32,
            pad_left: pl as u32,
            activation: act,
            has_residual: 0,
            _pad: [0; 3],
        };
        let len = n * oh * ow * co;
        for variant in [
            0,
            conv2d_variant(k as u32, s as u32, ci as u32),
            // The device's choice: the subgroup stem on lavapipe.
            ctx().kernels.conv2d_variant(k as u32, s as u32, ci as u32),
            CONV2D_TILED,
            CONV2D_GEMM,
        ] {
            if !ctx().kernels.available(KernelId::Conv2d, variant) {
                continue;
            }
            // No residual: the binding gets any buffer.
            let got = run!(variant, &p, len, Conv2d { input: &input, input4: &input, weight: &weight, bias: &bias, residual: &bias } => output);
            assert_close(
                &format!("conv2d {n}x{h}x{w}x{ci}->{co} s{s} variant {variant}"),
                &got,
                &expected,
                1e-5,
                1e-5,
            );
        }
    }
}

#[test]
fn global_avg_pool_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(4);
    for (n, p, c) in [(1, 1, 4), (3, 35, 20), (2, 49, 1280)] {
        let input = random(&mut rng, n * p * c, -3.0, 3.0);
        let mut expected = vec![0f32; n * c];
        for b in 0..n {
            for ch in 0..c {
                let s: f64 = (0..p).map(|i| f64::from(input[(b * p + i) * c + ch])).sum();
                expected[b * c + ch] = (s / p as f64) as f32;
            }
        }
        let params = PoolParams {
            batch: n as u32,
            pixels: p as u32,
            channels: c as u32,
            _pad: 0,
        };
        let got = run!(0, &params, n * c, GlobalAvgPool { input: &input } => output);
        assert_close(&format!("pool {n}x{p}x{c}"), &got, &expected, 1e-5, 1e-5);
    }
}

#[test]
fn cam_channel_weights_match_reference() {
    let mut rng = SmallRng::seed_from_u64(21);
    // (batch, pixels, channels): odd sizes, and Lite0's head.
    for (n, p, c) in [(1, 1, 4), (3, 35, 20), (2, 49, 1280)] {
        // Signed activations, as an MBConv block's output.
        let a = random(&mut rng, n * p * c, -1.0, 3.0);
        let mut g = random(&mut rng, n * p * c, -0.01, 0.01);
        g[1] = 0.0;
        for mode in [1u32, 2, 3] {
            // The formulas of shaders/cam_channel_weights.wgsl in f32, in its order.
            let mut expected = vec![0f32; n * c];
            for b in 0..n {
                for k in 0..c {
                    let at = |i: usize| (b * p + i) * c + k;
                    let s: f32 = (0..p).fold(0.0, |s, i| s + a[at(i)]);
                    if mode == 3 {
                        // FEM: the fraction above mean + 2 standard deviations.
                        let mean = s / p as f32;
                        let v = (0..p).fold(0.0, |v, i| v + (a[at(i)] - mean).powi(2));
                        let threshold = mean + 2.0 * (v / p as f32).sqrt();
                        let above = (0..p).filter(|&i| a[at(i)] > threshold).count();
                        expected[b * c + k] = above as f32 / p as f32;
                        continue;
                    }
                    expected[b * c + k] = (0..p).fold(0.0, |w, i| {
                        let gi = g[at(i)];
                        w + if mode == 1 {
                            let (g2, g3) = (gi * gi, gi * gi * gi);
                            let alpha = if gi != 0.0 {
                                g2 / (2.0 * g2 + s * g3 + 1e-6)
                            } else {
                                0.0
                            };
                            gi.max(0.0) * alpha
                        } else {
                            gi * a[at(i)] / (s + 1e-7)
                        }
                    });
                }
            }
            let params = CamChannelWeightsParams {
                batch: n as u32,
                pixels: p as u32,
                channels: c as u32,
                mode,
            };
            let got = run!(0, &params, n * c, CamChannelWeights { activations: &a, gradient: &g } => weights);
            assert_close(
                &format!("cam weights mode {mode} {n}x{p}x{c}"),
                &got,
                &expected,
                1e-6,
                1e-4,
            );
        }
    }
}

#[test]
fn cam_elementwise_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(22);
    for (n, p, c) in [(1, 1, 4), (3, 35, 20), (2, 49, 1280)] {
        let a = random(&mut rng, n * p * c, -1.0, 3.0);
        let g = random(&mut rng, n * p * c, -0.01, 0.01);
        for mode in [0u32, 1, 2] {
            let mut expected = vec![0f32; n * p];
            for (i, e) in expected.iter_mut().enumerate() {
                let s: f64 = (0..c)
                    .map(|k| {
                        let (gi, ai) = (f64::from(g[i * c + k]), f64::from(a[i * c + k]));
                        match mode {
                            0 => gi * ai,
                            1 => (gi * ai).max(0.0),
                            _ => gi.max(0.0) * ai,
                        }
                    })
                    .sum();
                *e = s.max(0.0) as f32;
            }
            let params = CamElementwiseParams {
                batch: n as u32,
                pixels: p as u32,
                channels: c as u32,
                mode,
            };
            let got =
                run!(0, &params, n * p, CamElementwise { activations: &a, gradient: &g } => grid);
            assert_close(
                &format!("cam elementwise mode {mode} {n}x{p}x{c}"),
                &got,
                &expected,
                1e-6,
                1e-4,
            );
        }
    }
}

/// The principal-component projection of shaders/cam_center.wgsl, cam_gram.wgsl and
/// cam_eigen.wgsl, in f64: X = A (or G ⊙ A) centred per channel, projected on its top right
/// singular vector, signed to correlate positively with X's per-position channel sums, ReLU-ed.
fn eigen_reference(a: &[f32], g: Option<&[f32]>, p: usize, c: usize) -> Vec<f32> {
    let x: Vec<f64> = (0..p * c)
        .map(|i| f64::from(a[i]) * g.map_or(1.0, |g| f64::from(g[i])))
        .collect();
    let mean: Vec<f64> = (0..c)
        .map(|k| (0..p).map(|q| x[q * c + k]).sum::<f64>() / p as f64)
        .collect();
    let xc: Vec<f64> = (0..p * c).map(|i| x[i] - mean[i % c]).collect();
    // Power iteration on XᵀX (C × C), in f64 to convergence.
    let gram: Vec<f64> = (0..c * c)
        .map(|ij| {
            (0..p)
                .map(|q| xc[q * c + ij / c] * xc[q * c + ij % c])
                .sum()
        })
        .collect();
    let mut v: Vec<f64> = (0..c).map(|i| 1.0 + 0.125 * (i % 7) as f64).collect();
    for _ in 0..20_000 {
        let w: Vec<f64> = (0..c)
            .map(|i| (0..c).map(|j| gram[i * c + j] * v[j]).sum())
            .collect();
        let norm = w.iter().map(|e| e * e).sum::<f64>().sqrt();
        v = w.iter().map(|e| e / norm).collect();
    }
    let proj: Vec<f64> = (0..p)
        .map(|q| (0..c).map(|k| xc[q * c + k] * v[k]).sum())
        .collect();
    let corr: f64 = (0..p)
        .map(|q| proj[q] * (0..c).map(|k| x[q * c + k]).sum::<f64>())
        .sum();
    let sign = if corr >= 0.0 { 1.0 } else { -1.0 };
    proj.iter().map(|e| (sign * e).max(0.0) as f32).collect()
}

#[test]
fn eigen_projection_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(23);
    // (batch, pixels, channels): fewer pixels than channels (Gram over pixels, Lite0's head) and
    // fewer channels than pixels (Gram over channels), with and without the gradient.
    for (n, p, c, with_gradient) in [(2, 49, 64, false), (1, 35, 12, true), (2, 9, 20, true)] {
        // A dominant direction on top of noise, so that the top eigenvalue stands apart.
        let mut a = random(&mut rng, n * p * c, -0.5, 0.5);
        for b in 0..n {
            let u = random(&mut rng, p, -1.0, 1.0);
            let w = random(&mut rng, c, -1.0, 1.0);
            for q in 0..p {
                for k in 0..c {
                    a[(b * p + q) * c + k] += 3.0 * u[q] * w[k];
                }
            }
        }
        let g = random(&mut rng, n * p * c, 0.5, 1.5);
        let mut expected = Vec::new();
        for b in 0..n {
            let (ab, gb) = (
                &a[b * p * c..(b + 1) * p * c],
                &g[b * p * c..(b + 1) * p * c],
            );
            expected.extend(eigen_reference(ab, with_gradient.then_some(gb), p, c));
        }
        let source = u32::from(with_gradient);
        let mode = u32::from(c < p);
        let side = if mode == 0 { p } else { c };
        let ctx = ctx();
        let (a_buf, g_buf) = (ctx.storage_with("a", &a), ctx.storage_with("g", &g));
        let centred = ctx.storage("centred", (n * p * c * 4) as u64).unwrap();
        let gram = ctx.storage("gram", (n * side * side * 4) as u64).unwrap();
        let grid = ctx.storage("grid", (n * p * 4) as u64).unwrap();
        let (batch, pixels, channels) = (n as u32, p as u32, c as u32);
        ctx.run_kernel(
            launch::CamCenter {
                activations: &a_buf,
                gradient: &g_buf,
                centred: &centred,
            },
            &CamCenterParams {
                batch,
                pixels,
                channels,
                source,
            },
        )
        .unwrap();
        ctx.run_kernel(
            launch::CamGram {
                centred: &centred,
                gram: &gram,
            },
            &CamGramParams {
                batch,
                pixels,
                channels,
                mode,
            },
        )
        .unwrap();
        ctx.run_kernel(
            launch::CamEigen {
                gram: &gram,
                centred: &centred,
                activations: &a_buf,
                gradient: &g_buf,
                grid: &grid,
            },
            &CamEigenParams {
                batch,
                pixels,
                channels,
                mode,
                source,
                max_iterations: 4000,
                relu: 1,
                _pad: 0,
            },
        )
        .unwrap();
        let got = ctx.read_f32(&grid, n * p).unwrap();
        let scale = expected.iter().copied().fold(0.0, f32::max);
        assert_close(
            &format!("eigen projection {n}x{p}x{c} gradient {with_gradient}"),
            &got,
            &expected,
            1e-4 * scale,
            0.0,
        );
    }
}

#[test]
fn cam_saliency_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(24);
    // (batch, pixels, channels): RGB input gradients, and an odd channel count.
    for (n, p, c) in [(1, 1, 3), (3, 35, 3), (2, 49, 5)] {
        let g = random(&mut rng, n * p * c, -1.0, 1.0);
        let expected: Vec<f32> = (0..n * p)
            .map(|i| (0..c).fold(0f32, |m, k| m.max(g[i * c + k].abs())))
            .collect();
        let params = CamSaliencyParams {
            batch: n as u32,
            pixels: p as u32,
            channels: c as u32,
            _pad: 0,
        };
        let got = run!(0, &params, n * p, CamSaliency { gradient: &g } => grid);
        assert_eq!(got, expected, "saliency {n}x{p}x{c}");
    }
}

#[test]
fn linear_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(5);
    // (batch, in, out, activation): the classifier, and VGG's hidden layers with ReLU.
    for (n, k, o, act) in [
        (1, 4, 1, 0),
        (3, 36, 17, 2),
        (2, 1280, 1000, 0),
        (2, 96, 40, 1),
        // More images than a subgroup's 8, and a partial group of outputs.
        (19, 64, 13, 2),
    ] {
        let input = random(&mut rng, n * k, -2.0, 2.0);
        let weight = random(&mut rng, o * k, -0.2, 0.2);
        let bias = random(&mut rng, o, -1.0, 1.0);
        let mut expected = vec![0f32; n * o];
        for b in 0..n {
            for j in 0..o {
                let s: f64 = (0..k)
                    .map(|i| f64::from(input[b * k + i]) * f64::from(weight[j * k + i]))
                    .sum();
                expected[b * o + j] = activate(s as f32 + bias[j], act);
            }
        }
        let params = LinearParams {
            batch: n as u32,
            in_features: k as u32,
            out_features: o as u32,
            activation: act,
            out_offset: 0,
            out_total: o as u32,
            _pad: [0; 2],
        };
        for variant in [0, LINEAR_SPLIT, LINEAR_SUBGROUP] {
            if !ctx().kernels.available(KernelId::Linear, variant) {
                continue;
            }
            let got = run!(variant, &params, n * o, Linear { input: &input, weight: &weight, bias: &bias } => output);
            assert_close(
                &format!("linear {n}x{k}->{o} act {act} variant {variant}"),
                &got,
                &expected,
                1e-4,
                1e-5,
            );
        }
    }
}

/// A linear layer split in row ranges (as one exceeding a binding runs) and its input gradient
/// over the same ranges, against loop nests: masks of every activation, batch > 1.
#[test]
fn linear_in_row_ranges_and_its_gradient_match_reference() {
    let mut rng = SmallRng::seed_from_u64(23);
    let ctx = ctx();
    for (n, k, o, act, ranges) in [
        (2, 36, 17, 2, vec![0..7, 7..17]),
        (3, 100, 40, 1, vec![0..13, 13..26, 26..40]),
        (1, 8, 5, 0, vec![0..3, 3..5]),
        // More images than a subgroup's 8, features not a multiple of its 32 (the forward
        // pass reads them as vec4s).
        (11, 72, 9, 2, vec![0..4, 4..9]),
    ] {
        let input = random(&mut rng, n * k, -2.0, 2.0);
        let weight = random(&mut rng, o * k, -0.5, 0.5);
        let bias = random(&mut rng, o, -1.0, 1.0);
        let grad_out = random(&mut rng, n * o, -1.0, 1.0);
        let mut y = vec![0f32; n * o];
        for b in 0..n {
            for j in 0..o {
                let s: f64 = (0..k)
                    .map(|i| f64::from(input[b * k + i]) * f64::from(weight[j * k + i]))
                    .sum();
                y[b * o + j] = activate(s as f32 + bias[j], act);
            }
        }
        let mut expected_grad = vec![0f32; n * k];
        for b in 0..n {
            for i in 0..k {
                let s: f64 = (0..o)
                    .filter(|j| passes(y[b * o + j], act))
                    .map(|j| f64::from(grad_out[b * o + j]) * f64::from(weight[j * k + i]))
                    .sum();
                expected_grad[b * k + i] = s as f32;
            }
        }
        let input_buf = ctx.storage_with("input", &input);
        let out_buf = ctx.storage("output", (n * o * 4) as u64).unwrap();
        let grad_out_buf = ctx.storage_with("grad_out", &grad_out);
        let grad_in_buf = ctx.storage("grad_in", (n * k * 4) as u64).unwrap();
        // The gradient by one input feature per invocation, and by the subgroup variant.
        for grad_variant in [0, LINEAR_GRAD_SUBGROUP] {
            if !ctx.kernels.available(KernelId::LinearGrad, grad_variant) {
                continue;
            }
            for (i, r) in ranges.iter().enumerate() {
                let w = ctx.storage_with("weight", &weight[r.start * k..r.end * k]);
                let b = ctx.storage_with("bias", &bias[r.clone()]);
                let rows = r.len() as u32;
                let p = LinearParams {
                    batch: n as u32,
                    in_features: k as u32,
                    out_features: rows,
                    activation: act,
                    out_offset: r.start as u32,
                    out_total: o as u32,
                    _pad: [0; 2],
                };
                ctx.run_kernel(
                    launch::Linear {
                        input: &input_buf,
                        weight: &w,
                        bias: &b,
                        output: &out_buf,
                    },
                    &p,
                )
                .unwrap();
                let p = LinearGradParams {
                    batch: n as u32,
                    in_features: k as u32,
                    out_features: rows,
                    out_offset: r.start as u32,
                    out_total: o as u32,
                    mask: act,
                    accumulate: u32::from(i > 0),
                    _pad: 0,
                };
                // The forward output of the reference: the mask does not depend on this run.
                let y_buf = ctx.storage_with("forward_out", &y);
                ctx.run_kernel_variant(
                    grad_variant,
                    launch::LinearGrad {
                        grad_out: &grad_out_buf,
                        forward_out: &y_buf,
                        weight: &w,
                        grad_in: &grad_in_buf,
                    },
                    &p,
                )
                .unwrap();
            }
            let got = ctx.read_f32(&out_buf, n * o).unwrap();
            let what = format!("linear {n}x{k}->{o} act {act} in {} ranges", ranges.len());
            assert_close(&what, &got, &y, 1e-4, 1e-5);
            let got = ctx.read_f32(&grad_in_buf, n * k).unwrap();
            assert_close(
                &format!("{what}: gradient, variant {grad_variant}"),
                &got,
                &expected_grad,
                1e-4,
                1e-5,
            );
        }
    }
}

/// torch's antialiased bilinear weights for one axis (upsample_bilinear2d_aa, align_corners=False),
/// in f64: (first tap, normalized weights).
fn aa_taps(i: usize, in_size: usize, out_size: usize) -> (usize, Vec<f64>) {
    let scale = in_size as f64 / out_size as f64;
    let support = if scale >= 1.0 { scale } else { 1.0 };
    let inv = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    let center = scale * (i as f64 + 0.5);
    let lo = ((center - support + 0.5) as i64).max(0) as usize;
    let hi = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
    let w: Vec<f64> = (lo..hi)
        .map(|j| (1.0 - ((j as f64 - center + 0.5) * inv).abs()).max(0.0))
        .collect();
    let total: f64 = w.iter().sum();
    (lo, w.iter().map(|x| x / total).collect())
}

#[test]
fn preprocess_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(6);
    let size = 224usize;
    // Upscale, downscale on both axes by different factors, identity, and a 1-pixel image.
    let dims = [
        (97usize, 61usize),
        (501, 303),
        (224, 224),
        (1, 1),
        (3000, 20),
    ];
    let images: Vec<(usize, usize, Vec<u8>)> = dims
        .iter()
        .map(|&(w, h)| (w, h, (0..w * h * 3).map(|_| rng.random::<u8>()).collect()))
        .collect();
    let mut packed = Vec::new();
    let mut metas = Vec::new();
    for (w, h, px) in &images {
        metas.push(ImageMeta {
            offset: packed.len() as u32,
            width: *w as u32,
            height: *h as u32,
            out_offset: 0,
        });
        packed.extend_from_slice(px);
    }
    while packed.len() % 4 != 0 {
        packed.push(0);
    }
    let ctx = ctx();
    let pixels = ctx.storage_with::<u8>("pixels", &packed);
    let meta_buf = ctx.storage_with("metas", &metas);
    let n = images.len();
    let out = ctx
        .storage("out", (n * size * size * 3 * 4) as u64)
        .expect("buffer");
    // A model's own statistics (torchvision's), not the built-in model's 0.5 / 0.5.
    let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
    let p = PreprocessParams {
        batch: n as u32,
        out_h: size as u32,
        out_w: size as u32,
        _pad: 0,
        mean: [mean[0], mean[1], mean[2], 0.0],
        deviation: [std[0], std[1], std[2], 1.0],
    };
    ctx.run_kernel(
        launch::Preprocess {
            pixels: &pixels,
            metas: &meta_buf,
            output: &out,
        },
        &p,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let got = ctx.read_f32(&out, n * size * size * 3).expect("readback");
    for (b, (w, h, px)) in images.iter().enumerate() {
        let mut expected = vec![0f32; size * size * 3];
        for y in 0..size {
            let (y0, wy) = aa_taps(y, *h, size);
            for x in 0..size {
                let (x0, wx) = aa_taps(x, *w, size);
                for c in 0..3 {
                    let mut acc = 0f64;
                    for (j, a) in wy.iter().enumerate() {
                        for (i, bw) in wx.iter().enumerate() {
                            acc += a * bw * f64::from(px[((y0 + j) * w + x0 + i) * 3 + c]);
                        }
                    }
                    expected[(y * size + x) * 3 + c] =
                        ((acc / 255.0 - f64::from(mean[c])) / f64::from(std[c])) as f32;
                }
            }
        }
        let slice = &got[b * size * size * 3..(b + 1) * size * size * 3];
        assert_close(&format!("preprocess {w}x{h}"), slice, &expected, 5e-5, 0.0);
    }
}

#[test]
fn pipelines_are_compiled_when_first_needed() {
    // A fresh device: the shared one has compiled whatever earlier tests used.
    let ctx = Arc::new(GpuContext::new(&AdapterOptions::default()).expect("GPU context"));
    assert_eq!(ctx.kernels.compiled(), 0, "nothing compiled at start-up");
    let model = Model::load(common::weights_path()).expect("weights");
    let engine = Engine::new(ctx.clone(), model);
    let mut forward = engine.forward(1).expect("workspace");
    let image = common::decode(&common::root().join("examples/images/chelsea.png"));
    engine.classify(&mut forward, &[&image]).expect("classify");
    let forward_only = ctx.kernels.compiled();
    assert!(
        forward_only > 0 && forward_only < gradcam::gpu::kernels::ALL_KERNELS.len(),
        "a forward pass compiles its own kernels only ({forward_only})"
    );
    let mut explainer = engine
        .explainer(1, gradcam::ExplainOptions::default())
        .expect("explainer");
    let what = gradcam::Readback {
        cam: false,
        cam_grid: false,
        overlay: true,
        guided: false,
    };
    explainer
        .explain(&[&image], &[gradcam::Target::Predicted], what)
        .expect("explain");
    assert!(ctx.kernels.compiled() > forward_only);
}

/// `x` through activation `code` (0 none, 1 ReLU6, 2 ReLU).
fn activate(x: f32, code: u32) -> f32 {
    match code {
        1 => x.clamp(0.0, 6.0),
        2 => x.max(0.0),
        _ => x,
    }
}

/// Whether activation `code`'s derivative passes the gradient at forward output `y`.
fn passes(y: f32, code: u32) -> bool {
    match code {
        1 => y > 0.0 && y < 6.0,
        2 => y > 0.0,
        _ => true,
    }
}

/// Output side and top/left padding of a window: symmetric `pad`, or TF "SAME" when `None`.
fn window(size: usize, k: usize, s: usize, pad: Option<usize>) -> (usize, i64) {
    match pad {
        Some(p) => ((size + 2 * p - k) / s + 1, p as i64),
        None => {
            let (o, p) = same_padding(size as u32, k as u32, s as u32);
            (o as usize, p as i64)
        }
    }
}

/// `act(bias + input · weight)` over `rows` rows, with `residual` added after the activation
/// (`res_mode` 1) or before it (2).
fn pointwise_reference(
    (input, weight, bias, residual): (&[f32], &[f32], &[f32], &[f32]),
    (rows, ci, co): (usize, usize, usize),
    act: u32,
    res_mode: u32,
) -> Vec<f32> {
    let mut expected = vec![0f32; rows * co];
    for r in 0..rows {
        for o in 0..co {
            let mut acc = 0f64;
            for k in 0..ci {
                acc += f64::from(input[r * ci + k]) * f64::from(weight[k * co + o]);
            }
            let mut v = acc as f32 + bias[o];
            if res_mode == 2 {
                v += residual[r * co + o];
            }
            v = activate(v, act);
            if res_mode == 1 {
                v += residual[r * co + o];
            }
            expected[r * co + o] = v;
        }
    }
    expected
}

/// A dense NHWC convolution with top/left padding `pt`, `pl` (the rest implied by the output
/// size), bias and activation `act`.
fn conv2d_reference(
    (input, weight, bias): (&[f32], &[f32], &[f32]),
    (n, h, w, ci, co, k, s): (usize, usize, usize, usize, usize, usize, usize),
    (oh, ow, pt, pl): (usize, usize, i64, i64),
    act: u32,
) -> Vec<f32> {
    let mut expected = vec![0f32; n * oh * ow * co];
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for o in 0..co {
                    let mut acc = 0f64;
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * s + ky) as i64 - pt;
                            let ix = (ox * s + kx) as i64 - pl;
                            if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                continue;
                            }
                            for i in 0..ci {
                                let v = input[((b * h + iy as usize) * w + ix as usize) * ci + i];
                                acc += f64::from(v)
                                    * f64::from(weight[((ky * k + kx) * ci + i) * co + o]);
                            }
                        }
                    }
                    expected[((b * oh + oy) * ow + ox) * co + o] =
                        activate(acc as f32 + bias[o], act);
                }
            }
        }
    }
    expected
}

#[test]
fn conv_epilogues_relu_and_residual_before_activation() {
    let mut rng = SmallRng::seed_from_u64(21);
    // Pointwise: (rows, in, out, activation, residual mode: 1 after, 2 before the activation).
    for (rows, ci, co, act, res) in [
        (37, 12, 20, 2, 0),
        (50, 64, 256, 2, 2), // ResNet bottleneck conv3: add, then ReLU
        (29, 16, 8, 1, 2),
        (33, 8, 12, 2, 1),
    ] {
        let input = random(&mut rng, rows * ci, -2.0, 2.0);
        let weight = random(&mut rng, ci * co, -0.5, 0.5);
        let bias = random(&mut rng, co, -1.0, 1.0);
        let residual = random(&mut rng, rows * co, -1.0, 1.0);
        let expected = pointwise_reference(
            (&input, &weight, &bias, &residual),
            (rows, ci, co),
            act,
            res,
        );
        let p = PointwiseParams {
            rows: rows as u32,
            in_channels: ci as u32,
            out_channels: co as u32,
            activation: act,
            has_residual: res,
            _pad: [0; 3],
        };
        for variant in 0..=POINTWISE_VARIANTS.len() {
            if !ctx().kernels.available(KernelId::PointwiseConv, variant) {
                continue;
            }
            let got = run!(variant, &p, rows * co, PointwiseConv { input: &input, weight: &weight, bias: &bias, residual: &residual } => output);
            let what = format!("pointwise {rows}x{ci}->{co} act {act} res {res} v{variant}");
            assert_close(&what, &got, &expected, 1e-4, 1e-5);
        }
    }
    // Dense conv with symmetric padding: ResNet's 7×7/2 stem (ReLU), a 3×3/1 conv with the basic
    // block's add-then-ReLU, and one adding after the activation; batch > 1 and odd sizes.
    for (n, h, w, ci, co, k, s, pad, act, res) in [
        (2, 19, 15, 3, 8, 7, 2, 3, 2, 0),
        (1, 9, 9, 16, 8, 3, 1, 1, 2, 2),
        (3, 7, 5, 12, 4, 3, 2, 1, 1, 1),
        // ResNet-sized channels (partial tiles of pixels and channels), stride 2, and the
        // bottleneck's 1×1 / 2 projection shortcut.
        (2, 14, 13, 64, 72, 3, 1, 1, 2, 2),
        (1, 9, 11, 32, 40, 3, 2, 1, 1, 1),
        (2, 10, 9, 16, 24, 1, 2, 0, 0, 0),
        // ResNet's stem with a partial block of output pixels (13 columns).
        (1, 11, 25, 3, 12, 7, 2, 3, 2, 0),
    ] {
        let (oh, pt) = window(h, k, s, Some(pad));
        let (ow, pl) = window(w, k, s, Some(pad));
        let input = random(&mut rng, n * h * w * ci, -1.0, 1.0);
        let weight = random(&mut rng, k * k * ci * co, -1.0, 1.0);
        let bias = random(&mut rng, co, -1.0, 1.0);
        let len = n * oh * ow * co;
        let residual = random(&mut rng, len, -2.0, 2.0);
        let linear = conv2d_reference(
            (&input, &weight, &bias),
            (n, h, w, ci, co, k, s),
            (oh, ow, pt, pl),
            0,
        );
        let expected: Vec<f32> = linear
            .iter()
            .zip(&residual)
            .map(|(v, r)| match res {
                1 => activate(*v, act) + r,
                2 => activate(v + r, act),
                _ => activate(*v, act),
            })
            .collect();
        let p = ConvParams {
            batch: n as u32,
            in_h: h as u32,
            in_w: w as u32,
            in_c: ci as u32,
            out_h: oh as u32,
            out_w: ow as u32,
            out_c: co as u32,
            kernel: k as u32,
            stride: s as u32,
            pad_top: pt as u32,
            pad_left: pl as u32,
            activation: act,
            has_residual: res,
            _pad: [0; 3],
        };
        // The generic, register- and workgroup-tiled paths and the device's choice: on
        // lavapipe the subgroup tile, or the 7×7 subgroup stem.
        let variants = [
            0,
            CONV2D_TILED,
            CONV2D_GEMM,
            ctx().kernels.conv2d_variant(k as u32, s as u32, ci as u32),
        ];
        for variant in variants {
            let got = run!(variant, &p, len, Conv2d { input: &input, input4: &input, weight: &weight, bias: &bias, residual: &residual } => output);
            let what = format!(
                "conv2d v{variant} act {act} res {res} {n}x{h}x{w}x{ci}->{co} k{k} s{s} p{pad}"
            );
            assert_close(&what, &got, &expected, 1e-5, 1e-5);
        }
    }
}

#[test]
fn conv2d_grad_matches_reference() {
    let mut rng = SmallRng::seed_from_u64(22);
    // (batch, h, w, in, out, kernel, stride, symmetric padding or SAME, mask, extra)
    let cases = [
        (2, 19, 15, 3, 8, 7, 2, Some(3), 2, false), // ResNet stem: the gradient at the image
        (1, 9, 9, 16, 8, 3, 1, Some(1), 2, true),   // ResNet / VGG 3×3
        (3, 11, 6, 8, 12, 3, 2, None, 1, false),    // SAME, asymmetric
        (2, 10, 9, 12, 4, 1, 2, Some(0), 0, true),  // ResNet projection shortcut
        (1, 8, 8, 3, 32, 3, 2, None, 1, false),     // EfficientNet stem
        (1, 7, 5, 5, 16, 5, 1, Some(2), 0, false),
        // The gradient at the image through each block specialization: MobileNetV2's stem
        // (symmetric), SAME with the extra gradient, VGG's first conv, odd sizes.
        (2, 13, 10, 3, 16, 3, 2, Some(1), 1, true),
        (1, 9, 14, 3, 8, 3, 2, None, 0, false),
        (1, 11, 9, 3, 12, 3, 1, Some(1), 2, true),
        (1, 9, 9, 3, 8, 7, 2, Some(3), 0, true),
    ];
    for (n, h, w, ci, co, k, s, pad, mask, with_extra) in cases {
        let (oh, pt) = window(h, k, s, pad);
        let (ow, pl) = window(w, k, s, pad);
        let grad_out = random(&mut rng, n * oh * ow * co, -1.0, 1.0);
        // Forward outputs at and around the activations' edges.
        let forward_out: Vec<f32> = (0..n * oh * ow * co)
            .map(|i| match i % 5 {
                0 => 0.0,
                1 => 6.0,
                _ => rng.random_range(-1.0..7.0f32),
            })
            .map(|y| activate(y, mask))
            .collect();
        let weight = random(&mut rng, k * k * ci * co, -1.0, 1.0);
        let extra = random(&mut rng, n * h * w * ci, -1.0, 1.0);
        // Scatter form: each output's gradient flows to the inputs its window covered.
        let mut expected: Vec<f64> = if with_extra {
            extra.iter().map(|v| f64::from(*v)).collect()
        } else {
            vec![0.0; n * h * w * ci]
        };
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for o in 0..co {
                        let at = ((b * oh + oy) * ow + ox) * co + o;
                        if !passes(forward_out[at], mask) {
                            continue;
                        }
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as i64 - pt;
                                let ix = (ox * s + kx) as i64 - pl;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                    continue;
                                }
                                for i in 0..ci {
                                    let to = ((b * h + iy as usize) * w + ix as usize) * ci + i;
                                    expected[to] += f64::from(grad_out[at])
                                        * f64::from(weight[((ky * k + kx) * ci + i) * co + o]);
                                }
                            }
                        }
                    }
                }
            }
        }
        let expected: Vec<f32> = expected.iter().map(|v| *v as f32).collect();
        let p = ConvGradParams {
            batch: n as u32,
            in_h: h as u32,
            in_w: w as u32,
            in_c: ci as u32,
            out_h: oh as u32,
            out_w: ow as u32,
            out_c: co as u32,
            kernel: k as u32,
            stride: s as u32,
            pad_top: pt as u32,
            pad_left: pl as u32,
            mask,
            add_extra: u32::from(with_extra),
            _pad: [0; 3],
        };
        let len = n * h * w * ci;
        // The generic kernel and, at the image, the block specialized for this size.
        let specialized = conv2d_grad_variant(k as u32, s as u32, ci as u32);
        assert_eq!(
            specialized != 0,
            ci == 3,
            "k{k} s{s}: specialized at the image only"
        );
        for variant in [0, specialized] {
            let got = run!(variant, &p, len, Conv2dGrad { grad_out: &grad_out, forward_out: &forward_out, weight: &weight, extra: &extra } => grad_in);
            let what = format!(
                "conv2d grad {n}x{h}x{w}x{ci}<-{co} k{k} s{s} pad {pad:?} mask {mask} v{variant}"
            );
            assert_close(&what, &got, &expected, 1e-5, 1e-5);
        }
    }
}

#[test]
fn max_pool_and_its_gradient_match_reference() {
    let mut rng = SmallRng::seed_from_u64(23);
    // (batch, h, w, channels, kernel, stride, padding, few distinct values: ties)
    let cases = [
        (2, 9, 9, 8, 3, 2, 1, false), // ResNet's stem pool
        (1, 12, 10, 4, 3, 2, 1, true),
        (1, 7, 7, 12, 2, 2, 0, false), // VGG's pools (odd size: the last row is dropped)
        (3, 8, 8, 4, 2, 2, 0, true),
    ];
    for (n, h, w, c, k, s, pad, ties) in cases {
        let (oh, _) = window(h, k, s, Some(pad));
        let (ow, _) = window(w, k, s, Some(pad));
        let input: Vec<f32> = (0..n * h * w * c)
            .map(|_| {
                if ties {
                    rng.random_range(0..3) as f32
                } else {
                    rng.random_range(-2.0..2.0f32)
                }
            })
            .collect();
        let grad_out = random(&mut rng, n * oh * ow * c, -1.0, 1.0);
        let extra = random(&mut rng, n * h * w * c, -1.0, 1.0);
        // As PyTorch: the first largest value of the window in row-major order wins.
        let mut pooled = vec![0f32; n * oh * ow * c];
        let mut grad_in: Vec<f32> = extra.clone();
        for b in 0..n {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let mut best = (f32::NEG_INFINITY, usize::MAX);
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as i64 - pad as i64;
                                let ix = (ox * s + kx) as i64 - pad as i64;
                                if iy < 0 || ix < 0 || iy >= h as i64 || ix >= w as i64 {
                                    continue;
                                }
                                let i = ((b * h + iy as usize) * w + ix as usize) * c + ch;
                                if best.1 == usize::MAX || input[i] > best.0 {
                                    best = (input[i], i);
                                }
                            }
                        }
                        let o = ((b * oh + oy) * ow + ox) * c + ch;
                        pooled[o] = best.0;
                        grad_in[best.1] += grad_out[o];
                    }
                }
            }
        }
        let p = MaxPoolParams {
            batch: n as u32,
            in_h: h as u32,
            in_w: w as u32,
            channels: c as u32,
            out_h: oh as u32,
            out_w: ow as u32,
            kernel: k as u32,
            stride: s as u32,
            pad: pad as u32,
            _pad: [0; 3],
        };
        let len = n * oh * ow * c;
        let got = run!(0, &p, len, MaxPool { input: &input } => output);
        let what = format!("max pool {n}x{h}x{w}x{c} k{k} s{s} p{pad} ties {ties}");
        assert_close(&what, &got, &pooled, 0.0, 0.0);
        let p = MaxPoolGradParams {
            batch: n as u32,
            in_h: h as u32,
            in_w: w as u32,
            channels: c as u32,
            out_h: oh as u32,
            out_w: ow as u32,
            kernel: k as u32,
            stride: s as u32,
            pad: pad as u32,
            add_extra: 1,
            _pad: [0; 2],
        };
        let len = n * h * w * c;
        let got = run!(0, &p, len, MaxPoolGrad { grad_out: &grad_out, input: &input, extra: &extra } => grad_in);
        assert_close(&format!("{what} gradient"), &got, &grad_in, 1e-6, 1e-6);
    }
}

#[test]
fn cam_minmax_over_several_workgroups_per_image() {
    // A 224² map over 13 workgroups per image, then the pairs' pass; a 7×7 map in one. With and
    // without the ReLU, batch 3, the extremes anywhere in the map.
    let mut rng = SmallRng::seed_from_u64(31);
    for (len, relu) in [(224 * 224, 1), (224 * 224, 0), (49, 0), (4097, 1)] {
        let batch = 3;
        let map = random(&mut rng, batch * len, -3.0, 2.0);
        let chunks = reduction_chunks(len as u32);
        let first = CamMinMaxParams {
            batch: batch as u32,
            len: len as u32,
            relu,
            chunks,
        };
        let pairs = run!(0, &first, batch * chunks as usize * 2, CamMinMax { map: &map } => stats);
        let second = CamMinMaxParams {
            batch: batch as u32,
            len: chunks,
            relu: MINMAX_PAIRS,
            chunks: 1,
        };
        let got = run!(0, &second, batch * 2, CamMinMax { map: &pairs } => stats);
        for n in 0..batch {
            let values =
                map[n * len..(n + 1) * len]
                    .iter()
                    .map(|&v| if relu == 1 { v.max(0.0) } else { v });
            let lo = values.clone().fold(f32::INFINITY, f32::min);
            let hi = values.fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(
                (got[2 * n], got[2 * n + 1]),
                (lo, hi),
                "len {len} relu {relu} image {n}"
            );
        }
    }
}

/// erf in f64 (Abramowitz and Stegun 7.1.26 is too coarse for a reference): its Taylor series
/// near 0, its continued fraction beyond.
fn erf64(x: f64) -> f64 {
    let a = x.abs();
    let v = if a < 2.5 {
        let mut term = a;
        let mut sum = a;
        for n in 1..60 {
            term *= -a * a / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        // erfc(a) = exp(-a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...))))
        let mut f = a;
        for n in (1..60).rev() {
            f = a + (n as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f
    };
    v.copysign(x)
}

/// Each activation of src/gpu/params.rs `Activation` and its derivative at `z`, in f64, as
/// PyTorch defines them (ReLU6's and hardsigmoid's zero at their bounds, hardswish's
/// `z/3 + 1/2` on [−3, 3]).
fn unary_reference(z: f64, code: u32, slope: f64) -> (f64, f64) {
    let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
    let kappa = 0.044715;
    let beta = (2.0 / std::f64::consts::PI).sqrt();
    match code {
        0 => (z, 1.0),
        1 => (z.clamp(0.0, 6.0), f64::from(u8::from(z > 0.0 && z < 6.0))),
        2 => (z.max(0.0), f64::from(u8::from(z > 0.0))),
        4 => (sigmoid(z), sigmoid(z) * (1.0 - sigmoid(z))),
        5 => (z * sigmoid(z), sigmoid(z) * (1.0 + z * (1.0 - sigmoid(z)))),
        6 => (
            (z + 3.0).clamp(0.0, 6.0) / 6.0,
            if z > -3.0 && z < 3.0 { 1.0 / 6.0 } else { 0.0 },
        ),
        7 => (
            z * (z + 3.0).clamp(0.0, 6.0) / 6.0,
            if z < -3.0 {
                0.0
            } else if z <= 3.0 {
                z / 3.0 + 0.5
            } else {
                1.0
            },
        ),
        8 => {
            let cdf = 0.5 * (1.0 + erf64(z / 2f64.sqrt()));
            let pdf = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            (z * cdf, cdf + z * pdf)
        }
        9 => {
            let th = (beta * (z + kappa * z * z * z)).tanh();
            let d =
                0.5 * (1.0 + th) + 0.5 * z * (1.0 - th * th) * beta * (1.0 + 3.0 * kappa * z * z);
            (0.5 * z * (1.0 + th), d)
        }
        10 => (
            if z > 0.0 { z } else { slope * z },
            if z > 0.0 { 1.0 } else { slope },
        ),
        _ => unreachable!("code {code}"),
    }
}

#[test]
fn elementwise_and_its_gradient_match_reference() {
    let mut rng = SmallRng::seed_from_u64(29);
    let (n, pixels, c) = (2, 7, 12);
    let len = n * pixels * c;
    // Values across every activation's pieces, with the bounds themselves among them.
    let mut x = random(&mut rng, len, -8.0, 8.0);
    for (i, v) in [-3.0, 3.0, 0.0, 6.0, -2.9999, 2.9999, 1e-3, -1e-3]
        .iter()
        .enumerate()
    {
        x[i * 5] = *v;
    }
    let scale = random(&mut rng, c, 0.5, 1.5);
    let shift = random(&mut rng, c, -0.5, 0.5);
    let grad_out = random(&mut rng, len, -1.0, 1.0);
    let extra = random(&mut rng, len, -1.0, 1.0);
    for code in [0u32, 1, 2, 4, 5, 6, 7, 8, 9, 10] {
        for affine in [false, true] {
            let slope = 0.02f32;
            let mut want = vec![0f32; len];
            let mut want_grad = vec![0f32; len];
            for i in 0..len {
                let ch = i % c;
                let (s, b) = if affine {
                    (scale[ch], shift[ch])
                } else {
                    (1.0, 0.0)
                };
                // z as the kernel rounds it: one float32 multiply-add.
                let z = x[i] * s + b;
                let (y, d) = unary_reference(f64::from(z), code, f64::from(slope));
                want[i] = y as f32;
                want_grad[i] =
                    (d * f64::from(grad_out[i]) * f64::from(s) + f64::from(extra[i])) as f32;
            }
            let what = format!("elementwise code {code} affine {affine}");
            let p = ElementwiseParams {
                len4: (len / 4) as u32,
                channels4: (c / 4) as u32,
                activation: code,
                has_affine: u32::from(affine),
                slope,
                _pad: [0; 3],
            };
            let y =
                run!(0, &p, len, Elementwise { input: &x, scale: &scale, bias: &shift } => output);
            assert_close(&what, &y, &want, 2e-6, 2e-6);
            // From the input (z recomputed), and for ReLU and ReLU6 also from the output.
            let from_output = [false]
                .into_iter()
                .chain((code == 1 || code == 2).then_some(true));
            for from_output in from_output {
                let p = ElementwiseGradParams {
                    len4: (len / 4) as u32,
                    channels4: (c / 4) as u32,
                    activation: code,
                    has_affine: u32::from(affine),
                    slope,
                    add_extra: 1,
                    from_output: u32::from(from_output),
                    _pad: 0,
                };
                let forward = if from_output { &y } else { &x };
                let got = run!(0, &p, len, ElementwiseGrad {
                    grad_out: &grad_out, forward: forward, scale: &scale, bias: &shift, extra: &extra
                } => grad_in);
                let what = format!("{what} gradient from the output {from_output}");
                assert_close(&what, &got, &want_grad, 2e-6, 2e-6);
            }
        }
    }
}

/// The deletion and insertion metrics' ranking (shaders/rank_init.wgsl, rank_sort.wgsl,
/// rank_scatter.wgsl, as src/pipeline/metric_passes.rs launches them) against a stable
/// descending sort on the CPU: higher value first, equal values by position, with many ties (the
/// values quantised) and a size that is not a power of two.
#[test]
fn rank_equals_a_stable_descending_sort() {
    let mut rng = SmallRng::seed_from_u64(11);
    for (batch, positions) in [(2u32, 1000u32), (1, 4096), (3, 7)] {
        let values: Vec<f32> = random(&mut rng, (batch * positions) as usize, 0.0, 1.0)
            .into_iter()
            .map(|v| (v * 16.0).floor() / 16.0)
            .collect();
        let padded = positions.next_power_of_two();
        let ctx = ctx();
        let cam = ctx.storage_with("cam", &values);
        let pairs = ctx.storage("pairs", u64::from(batch * padded) * 8).unwrap();
        let ranks = ctx
            .storage("ranks", u64::from(batch * positions) * 4)
            .unwrap();
        let params = |k, j| RankParams {
            batch,
            positions,
            padded,
            k,
            j,
            _pad: [0; 3],
        };
        ctx.run_kernel(
            launch::RankInit {
                cam: &cam,
                pairs: &pairs,
            },
            &params(0, 0),
        )
        .unwrap();
        let mut k = 2;
        while k <= padded {
            let mut j = k / 2;
            while j > 0 {
                ctx.run_kernel(launch::RankSort { pairs: &pairs }, &params(k, j))
                    .unwrap();
                j /= 2;
            }
            k *= 2;
        }
        ctx.run_kernel(
            launch::RankScatter {
                pairs: &pairs,
                ranks: &ranks,
            },
            &params(0, 0),
        )
        .unwrap();
        let bytes = ctx
            .read_buffer(&ranks, u64::from(batch * positions) * 4)
            .unwrap();
        let got: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes);
        for n in 0..batch as usize {
            let image = &values[n * positions as usize..(n + 1) * positions as usize];
            let mut order: Vec<usize> = (0..image.len()).collect();
            order.sort_by(|&a, &b| image[b].total_cmp(&image[a]).then(a.cmp(&b)));
            let mut want = vec![0u32; image.len()];
            for (rank, &p) in order.iter().enumerate() {
                want[p] = rank as u32;
            }
            assert_eq!(
                &got[n * positions as usize..(n + 1) * positions as usize],
                &want[..],
                "batch {batch}, {positions} positions, image {n}"
            );
        }
    }
}

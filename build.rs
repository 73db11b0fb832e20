//! Prepares the WGSL kernels: each `shaders/<kernel>.wgsl` is written to
//! `$OUT_DIR/shaders/<kernel>.wgsl` with
//! - every `#import NAME` replaced by `shaders/lib/NAME.wgsl`, inlined once (the first time it is
//!   imported, imports of imports included), so shared helpers are written once;
//! - every `#generate register_tile OUT NCOLS KCH BIAS` replaced by `fn register_tile(id)`, one
//!   invocation of a register-tiled matrix product (see [`register_tile`]), so the two pointwise
//!   kernels share one generated body instead of two committed copies; likewise
//!   `#generate subgroup_tile ...` ([`subgroup_tile`]), `#generate depthwise_block K S OX OY`
//!   ([`depthwise_block`]), `#generate depthwise_grad_block K S BX BY`
//!   ([`depthwise_grad_block`]) and `#generate image_grad_block K S BX BY`
//!   ([`image_grad_block`]);
//! - the lines between `#subgroups` and `#end subgroups` (code using subgroup operations, which
//!   a device without them rejects) left out, and written with the rest to a second file,
//!   `<kernel>.subgroups.wgsl`, compiled only on devices with subgroups.
//!
//! The kernel registry (`src/gpu/kernels.rs`) compiles the prepared files into the binary.

use std::collections::HashSet;
use std::path::Path;

fn resolve(
    name: &str,
    text: &str,
    lib: &Path,
    seen: &mut HashSet<String>,
    subgroups: bool,
    out: &mut String,
) {
    let mut in_block = false;
    for line in text.lines() {
        match line.trim() {
            "#subgroups" => {
                in_block = true;
                continue;
            }
            "#end subgroups" => {
                in_block = false;
                continue;
            }
            _ if in_block && !subgroups => continue,
            _ => {}
        }
        match line.trim().strip_prefix("#import ") {
            Some(module) => {
                let module = module.trim();
                if seen.insert(module.to_string()) {
                    let path = lib.join(format!("{module}.wgsl"));
                    let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                        panic!("{name}: #import {module}: {}: {e}", path.display())
                    });
                    out.push_str(&format!(
                        "// ---- #import {module} (shaders/lib/{module}.wgsl)\n"
                    ));
                    resolve(module, &source, lib, seen, subgroups, out);
                    out.push_str(&format!("// ---- end of {module}\n"));
                }
            }
            None => {
                if let Some(args) = line.trim().strip_prefix("#generate register_tile ") {
                    let args: Vec<&str> = args.split_whitespace().collect();
                    let [output, ncols, kch, bias] = args[..] else {
                        panic!("{name}: #generate register_tile OUT NCOLS KCH BIAS, got {args:?}");
                    };
                    out.push_str(&register_tile(output, ncols, kch, bias == "bias"));
                } else if let Some(args) = line.trim().strip_prefix("#generate subgroup_tile ") {
                    let args: Vec<&str> = args.split_whitespace().collect();
                    let (&[output, ncols, kch, bias, rows, cols], mode) =
                        (&args[..args.len().min(6)], args.get(6))
                    else {
                        panic!(
                            "{name}: #generate subgroup_tile OUT NCOLS KCH BIAS R C [conv], got {args:?}"
                        );
                    };
                    assert!(
                        args.len() <= 7 && mode.is_none_or(|m| *m == "conv"),
                        "{name}: #generate subgroup_tile OUT NCOLS KCH BIAS R C [conv], got {args:?}"
                    );
                    let number = |a: &str| a.parse::<u32>().expect("R and C are numbers");
                    out.push_str(&subgroup_tile(
                        output,
                        ncols,
                        kch,
                        bias == "bias",
                        number(rows),
                        number(cols),
                        mode == Some(&"conv"),
                    ));
                } else if let Some(args) = line.trim().strip_prefix("#generate subgroup_stem ") {
                    let [kernel, ox] = numbers(name, "subgroup_stem K OX", args);
                    out.push_str(&subgroup_stem(kernel, ox));
                } else if let Some(args) = line.trim().strip_prefix("#generate depthwise_block ") {
                    let [kernel, stride, ox, oy] = numbers(name, "depthwise_block K S OX OY", args);
                    out.push_str(&depthwise_block(kernel, stride, ox, oy));
                } else if let Some(args) =
                    line.trim().strip_prefix("#generate depthwise_grad_block ")
                {
                    let [kernel, stride, bx, by] =
                        numbers(name, "depthwise_grad_block K S BX BY", args);
                    out.push_str(&depthwise_grad_block(kernel, stride, bx, by));
                } else if let Some(args) = line.trim().strip_prefix("#generate image_grad_block ") {
                    let [kernel, stride, bx, by] =
                        numbers(name, "image_grad_block K S BX BY", args);
                    out.push_str(&image_grad_block(kernel, stride, bx, by));
                } else {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
}

/// The N numbers of a `#generate` line's arguments `args` in shader `name`, whose form is `usage`.
fn numbers<const N: usize>(name: &str, usage: &str, args: &str) -> [u32; N] {
    let parsed: Option<Vec<u32>> = args.split_whitespace().map(|a| a.parse().ok()).collect();
    parsed
        .and_then(|v| v.try_into().ok())
        .unwrap_or_else(|| panic!("{name}: #generate {usage}, got {args:?}"))
}

/// Rows and vec4 columns of the largest register tile; the ROWS / COLS override constants pick a
/// smaller one per pipeline (src/gpu/kernels.rs `POINTWISE_TILE`).
const MAX_ROWS: usize = 24;
const MAX_COLS: usize = 6;

/// Invocation `id` of a register-tiled product `OUT[r, c] = finish(sum_k load_a(r, k) ·
/// load_w(k, c) (+ bias[c]), index)` over `params.rows` rows, NCOLS output channels and KCH
/// reduction channels, with the importer's `load_a`, `load_w` and `finish`. Each invocation keeps up to
/// MAX_ROWS × MAX_COLS vec4 accumulators, written out statement by statement (lavapipe keeps
/// written-out accumulators in registers; loops over private arrays go to memory), every row and
/// column past ROWS / COLS guarded so specialization removes it.
fn register_tile(output: &str, ncols: &str, kch: &str, bias: bool) -> String {
    let mut b = String::new();
    b.push_str(&format!(
        "fn register_tile(id: u32) {{
    let c4 = {ncols} / 4u;
    let k4 = {kch} / 4u;
    let col_tiles = (c4 + COLS - 1u) / COLS;
    let row_tiles = (params.rows + ROWS - 1u) / ROWS;
    if id >= row_tiles * col_tiles {{
        return;
    }}
    let col = (id % col_tiles) * COLS;
    let row0 = (id / col_tiles) * ROWS;
    let last_row = params.rows - 1u;
    let last_col = c4 - 1u;
    // Columns past the end compute a copy of the last one and are not stored.
"
    ));
    for j in 0..MAX_COLS {
        b.push_str(&format!("    let n{j} = min(col + {j}u, last_col);\n"));
    }
    for i in 0..MAX_ROWS {
        b.push_str(&format!(
            "    let s{i} = min(row0 + {i}u, last_row) * k4;\n"
        ));
    }
    for i in 0..MAX_ROWS {
        for j in 0..MAX_COLS {
            b.push_str(&format!("    var a{i}_{j} = vec4<f32>(0.0);\n"));
        }
    }
    b.push_str("    for (var k = 0u; k < k4; k++) {\n        let w = k * 4u * c4;\n");
    for j in 0..MAX_COLS {
        for q in 0..4 {
            let off = match q {
                0 => String::new(),
                1 => "c4 + ".to_string(),
                _ => format!("{q}u * c4 + "),
            };
            b.push_str(&format!("        let w{q}_{j} = load_w(w + {off}n{j});\n"));
        }
    }
    for i in 0..MAX_ROWS {
        let ind = if i > 0 {
            b.push_str(&format!("        if ROWS > {i}u {{\n"));
            "            "
        } else {
            "        "
        };
        b.push_str(&format!("{ind}let x{i} = load_a(s{i} + k);\n"));
        for j in 0..MAX_COLS {
            let line = format!(
                "a{i}_{j} += x{i}.x * w0_{j} + x{i}.y * w1_{j} + x{i}.z * w2_{j} + x{i}.w * w3_{j};"
            );
            if j > 0 {
                b.push_str(&format!(
                    "{ind}if COLS > {j}u {{\n{ind}    {line}\n{ind}}}\n"
                ));
            } else {
                b.push_str(&format!("{ind}{line}\n"));
            }
        }
        if i > 0 {
            b.push_str("        }\n");
        }
    }
    b.push_str("    }\n\n");
    if bias {
        for j in 0..MAX_COLS {
            b.push_str(&format!("    let b{j} = bias[n{j}];\n"));
        }
    }
    for i in 0..MAX_ROWS {
        b.push_str(&format!(
            "    if ROWS > {i}u && row0 + {i}u < params.rows {{\n        let o = (row0 + {i}u) * c4;\n"
        ));
        for j in 0..MAX_COLS {
            let val = if bias {
                format!("a{i}_{j} + b{j}")
            } else {
                format!("a{i}_{j}")
            };
            if j == 0 {
                b.push_str(&format!(
                    "        {output}[o + n0] = finish({val}, o + n0);\n"
                ));
            } else {
                b.push_str(&format!(
                    "        if COLS > {j}u && col + {j}u < c4 {{\n            {output}[o + n{j}] = finish({val}, o + n{j});\n        }}\n"
                ));
            }
        }
        b.push_str("    }\n");
    }
    b.push_str("}\n");
    b
}

/// `fn subgroup_tile(sg, lane)`: lane `lane` of subgroup `sg` (of 8 lanes) in a register-tiled
/// product like [`register_tile`], where the subgroup's 8 lanes take 8 × R consecutive rows (R
/// each) of the same C vec4 columns. Each step of 4 input channels needs 4·C weight vec4s, the
/// same for every lane: each lane loads 4·C / 8 of them and they reach the others by
/// `subgroupBroadcast` (on lavapipe a register shuffle, where every load is eight scalar loads).
/// R and C are literals: a broadcast's lane must be a constant.
///
/// With `conv`, the product is a dense convolution's (`fn conv_subgroup_tile_{R}x{C}`;
/// shaders/conv2d.wgsl and conv2d_texture.wgsl, NHWC, input channels
/// a multiple of 4): the rows are output pixels, and the reduction runs over the filter taps,
/// each tap a product like the pointwise one over the input pixels it reads (zero in the
/// padding), its weights the tap's `in_c` rows of the [k, k, in_c, out_c] weight.
fn subgroup_tile(
    output: &str,
    ncols: &str,
    kch: &str,
    bias: bool,
    r: u32,
    c: u32,
    conv: bool,
) -> String {
    let items = 4 * c;
    let per_lane = items.div_ceil(8);
    let (name, rows) = if conv {
        (
            format!("conv_subgroup_tile_{r}x{c}"),
            "params.batch * params.out_h * params.out_w",
        )
    } else {
        ("subgroup_tile".to_string(), "params.rows")
    };
    let mut b = format!(
        "fn {name}(sg: u32, lane: u32) {{
    let rows = {rows};
    let c4 = {ncols} / 4u;
    let k4 = {kch} / 4u;
    let col_tiles = (c4 + {c}u - 1u) / {c}u;
    let block = 8u * {r}u;
    let row_blocks = (rows + block - 1u) / block;
    // The same for the subgroup's lanes, so they all return or none.
    if sg >= row_blocks * col_tiles {{
        return;
    }}
    let col = (sg % col_tiles) * {c}u;
    let row0 = (sg / col_tiles) * block + lane * {r}u;
    let last_row = rows - 1u;
    let last_col = c4 - 1u;
"
    );
    // This lane's weight items m = lane + 8p: row m / C of the 4, column m % C.
    for p in 0..per_lane {
        b.push_str(&format!(
            "    let m{p} = min(lane + {}u, {}u);\n    let off{p} = (m{p} / {c}u) * c4 + min(col + m{p} % {c}u, last_col);\n",
            8 * p,
            items - 1
        ));
    }
    if conv {
        // Each row's output pixel: the top-left input tap and the image's first row.
        b.push_str(
            "    let last_x = i32(params.in_w) - 1;\n    let last_y = i32(params.in_h) - 1;\n",
        );
        for i in 0..r {
            b.push_str(&format!(
                "    let p{i} = min(row0 + {i}u, last_row);
    let px{i} = i32((p{i} % params.out_w) * params.stride) - i32(params.pad_left);
    let py{i} = i32(((p{i} / params.out_w) % params.out_h) * params.stride) - i32(params.pad_top);
    let pn{i} = (p{i} / (params.out_w * params.out_h)) * params.in_h;
"
            ));
        }
    } else {
        for i in 0..r {
            b.push_str(&format!(
                "    let s{i} = min(row0 + {i}u, last_row) * k4;\n"
            ));
        }
    }
    // The biases: a conv's accumulators start from them, a product's add them at the end.
    let biases = |b: &mut String| {
        for j in 0..c {
            let load = if bias {
                format!("bias[min(col + {j}u, last_col)]")
            } else {
                "vec4<f32>(0.0)".to_string()
            };
            b.push_str(&format!("    let b{j} = {load};\n"));
        }
    };
    if conv {
        biases(&mut b);
    }
    let start = |j: u32| {
        if conv {
            format!("b{j}")
        } else {
            "vec4<f32>(0.0)".to_string()
        }
    };
    for i in 0..r {
        for j in 0..c {
            b.push_str(&format!("    var a{i}_{j} = {};\n", start(j)));
        }
    }
    if conv {
        b.push_str(
            "    for (var ky = 0u; ky < params.kernel; ky++) {
    for (var kx = 0u; kx < params.kernel; kx++) {
    let tap = (ky * params.kernel + kx) * params.in_c;
",
        );
        for i in 0..r {
            b.push_str(&format!(
                "    let iy{i} = py{i} + i32(ky);
    let ix{i} = px{i} + i32(kx);
    let ok{i} = iy{i} >= 0 && iy{i} <= last_y && ix{i} >= 0 && ix{i} <= last_x;
    let s{i} = ((pn{i} + u32(clamp(iy{i}, 0, last_y))) * params.in_w + u32(clamp(ix{i}, 0, last_x))) * k4;
"
            ));
        }
        b.push_str("    for (var k = 0u; k < k4; k++) {\n        let w = (tap + k * 4u) * c4;\n");
    } else {
        b.push_str("    for (var k = 0u; k < k4; k++) {\n        let w = k * 4u * c4;\n");
    }
    for p in 0..per_lane {
        b.push_str(&format!("        let mine{p} = load_w(w + off{p});\n"));
    }
    for q in 0..4 {
        for j in 0..c {
            let m = q * c + j;
            b.push_str(&format!(
                "        let w{q}_{j} = subgroupBroadcast(mine{}, {}u);\n",
                m / 8,
                m % 8
            ));
        }
    }
    for i in 0..r {
        if conv {
            b.push_str(&format!(
                "        let x{i} = select(vec4<f32>(0.0), load_a(s{i} + k), ok{i});\n"
            ));
        } else {
            b.push_str(&format!("        let x{i} = load_a(s{i} + k);\n"));
        }
        for j in 0..c {
            if conv {
                // One product at a time, from the bias: the order of conv2d.wgsl's other paths.
                b.push_str(&format!(
                    "        a{i}_{j} += x{i}.x * w0_{j};\n        a{i}_{j} += x{i}.y * w1_{j};\n        a{i}_{j} += x{i}.z * w2_{j};\n        a{i}_{j} += x{i}.w * w3_{j};\n"
                ));
            } else {
                b.push_str(&format!(
                    "        a{i}_{j} += x{i}.x * w0_{j} + x{i}.y * w1_{j} + x{i}.z * w2_{j} + x{i}.w * w3_{j};\n"
                ));
            }
        }
    }
    // The k loop, and in a conv the two tap loops.
    b.push_str(if conv {
        "    }\n    }\n    }\n"
    } else {
        "    }\n"
    });
    if !conv {
        biases(&mut b);
    }
    let end = |j: u32| {
        if conv {
            String::new()
        } else {
            format!(" + b{j}")
        }
    };
    for i in 0..r {
        b.push_str(&format!(
            "    if row0 + {i}u < rows {{\n        let o = (row0 + {i}u) * c4 + col;\n"
        ));
        for j in 0..c {
            b.push_str(&format!(
                "        if col + {j}u < c4 {{\n            {output}[o + {j}u] = finish(a{i}_{j}{}, o + {j}u);\n        }}\n",
                end(j)
            ));
        }
        b.push_str("    }\n");
    }
    b.push_str("}\n");
    b
}

/// `fn subgroup_stem_k{K}(sg, lane)`: lane `lane` of subgroup `sg` (of 8 lanes) in a K×K conv at
/// stride 2 over 3 input channels (the stems of EfficientNet and MobileNet, 3×3, and ResNet,
/// 7×7): the 8 lanes take 8 consecutive vec4s of output channels at the same OX adjacent output
/// pixels, so they need the same input values, (OX − 1)·2 + K columns × 3 channels per filter
/// row: each lane loads an eighth of them and `subgroupBroadcast` shares them. Every weight vec4
/// is loaded once for OX pixels (the importer's `load_x1(index)` reads one input value,
/// `load_w(index)` one weight vec4). Padding reads as zero. Sums from the bias over rows, columns and
/// channels in turn, as the other conv2d paths do.
fn subgroup_stem(kernel: u32, ox: u32) -> String {
    let in_cols = (ox - 1) * 2 + kernel;
    let items = in_cols * 3;
    let per_lane = items.div_ceil(8);
    let mut b = format!(
        "fn subgroup_stem_k{kernel}(sg: u32, lane: u32) {{
    let c4 = params.out_c / 4u;
    let groups = (c4 + 7u) / 8u;
    let blocks = (params.out_w + {ox}u - 1u) / {ox}u;
    // The same for the subgroup's lanes, so they all return or none.
    if sg >= params.batch * params.out_h * blocks * groups {{
        return;
    }}
    let g = sg % groups;
    let t = sg / groups;
    let ox0 = (t % blocks) * {ox}u;
    let oy = (t / blocks) % params.out_h;
    let n = t / (blocks * params.out_h);
    let co = min(g * 8u + lane, c4 - 1u);
    let ix0 = i32(ox0 * 2u) - i32(params.pad_left);
    let last_x = i32(params.in_w) - 1;
    let last_y = i32(params.in_h) - 1;
    let b = bias[co];
"
    );
    // This lane's input items m = lane + 8p: column m / 3, channel m % 3.
    for p in 0..per_lane {
        b.push_str(&format!(
            "    let m{p} = min(lane + {}u, {}u);\n    let x{p} = ix0 + i32(m{p} / 3u);\n    let in{p} = x{p} >= 0 && x{p} <= last_x;\n    let at{p} = u32(clamp(x{p}, 0, last_x)) * 3u + m{p} % 3u;\n",
            8 * p,
            items - 1
        ));
    }
    for t in 0..ox {
        b.push_str(&format!("    var a{t} = b;\n"));
    }
    for ky in 0..kernel {
        b.push_str(&format!(
            "    {{
        let iy = i32(oy * 2u + {ky}u) - i32(params.pad_top);
        let row_in = iy >= 0 && iy <= last_y;
        let row = (n * params.in_h + u32(clamp(iy, 0, last_y))) * params.in_w * 3u;
"
        ));
        for p in 0..per_lane {
            b.push_str(&format!(
                "        let mine{p} = select(0.0, load_x1(row + at{p}), row_in && in{p});\n"
            ));
        }
        for m in 0..items {
            b.push_str(&format!(
                "        let v{m} = subgroupBroadcast(mine{}, {}u);\n",
                m / 8,
                m % 8
            ));
        }
        for kx in 0..kernel {
            for ci in 0..3 {
                b.push_str(&format!(
                    "        let w{kx}_{ci} = load_w((({ky}u * {kernel}u + {kx}u) * 3u + {ci}u) * c4 + co);\n"
                ));
                for t in 0..ox {
                    b.push_str(&format!(
                        "        a{t} += v{} * w{kx}_{ci};\n",
                        (t * 2 + kx) * 3 + ci
                    ));
                }
            }
        }
        b.push_str("    }\n");
    }
    b.push_str(
        "    if g * 8u + lane >= c4 {
        return;
    }
    let out_row = (n * params.out_h + oy) * params.out_w;
",
    );
    for t in 0..ox {
        b.push_str(&format!(
            "    if ox0 + {t}u < params.out_w {{\n        let at = (out_row + ox0 + {t}u) * c4 + co;\n        output[at] = finish(a{t}, at);\n    }}\n"
        ));
    }
    b.push_str("}\n");
    b
}

/// `fn block_k{K}s{S}(id)`: invocation `id` of a depthwise K×K conv at stride S computing an
/// OX × OY block of output pixels for one vec4 of channels, written out statement by statement
/// (no loops, no private arrays: lavapipe keeps every value in registers or spill slots, where a
/// loop it did not unroll would index arrays in memory). Each filter tap and each input pixel the
/// block needs ((OX - 1)·S + K columns by (OY - 1)·S + K rows) is loaded once; padding reads as
/// zero (the index clamped into the image, the value selected away).
fn depthwise_block(kernel: u32, stride: u32, ox: u32, oy: u32) -> String {
    let in_cols = (ox - 1) * stride + kernel;
    let in_rows = (oy - 1) * stride + kernel;
    let mut b = format!(
        "fn block_k{kernel}s{stride}(id: u32) {{
    let c4 = params.channels / 4u;
    let blocks_x = (params.out_w + {ox}u - 1u) / {ox}u;
    let blocks_y = (params.out_h + {oy}u - 1u) / {oy}u;
    if id >= params.batch * blocks_y * blocks_x * c4 {{
        return;
    }}
    let c = id % c4;
    let t = id / c4;
    let ox0 = (t % blocks_x) * {ox}u;
    let oy0 = ((t / blocks_x) % blocks_y) * {oy}u;
    let n = t / (blocks_x * blocks_y);
    let ix0 = i32(ox0 * {stride}u) - i32(params.pad_left);
    let iy0 = i32(oy0 * {stride}u) - i32(params.pad_top);
    let last_x = i32(params.in_w) - 1;
    let last_y = i32(params.in_h) - 1;
    let b = bias[c];
"
    );
    for k in 0..kernel * kernel {
        b.push_str(&format!(
            "    let w{k} = load_dw({k}u * c4 + c);
"
        ));
    }
    for j in 0..in_cols {
        b.push_str(&format!(
            "    let cx{j} = u32(clamp(ix0 + {j}, 0, last_x));
    let in{j} = ix0 + {j} >= 0 && ix0 + {j} <= last_x;
"
        ));
    }
    for a in 0..ox * oy {
        b.push_str(&format!(
            "    var a{a} = b;
"
        ));
    }
    for r in 0..in_rows {
        b.push_str(&format!(
            "    {{
        let iy = iy0 + {r};
        let row = (n * params.in_h + u32(clamp(iy, 0, last_y))) * params.in_w;
        let row_in = iy >= 0 && iy <= last_y;
"
        ));
        for j in 0..in_cols {
            b.push_str(&format!(
                "        let x{j} = select(vec4<f32>(0.0), load_in((row + cx{j}) * c4 + c), row_in && in{j});
"
            ));
        }
        // Input row r feeds output row y through filter row r - y·S.
        for y in 0..oy {
            let Some(ky) = r.checked_sub(y * stride).filter(|&ky| ky < kernel) else {
                continue;
            };
            for kx in 0..kernel {
                for x in 0..ox {
                    b.push_str(&format!(
                        "        a{} += x{} * w{};\n",
                        y * ox + x,
                        x * stride + kx,
                        ky * kernel + kx
                    ));
                }
            }
        }
        b.push_str("    }\n");
    }
    for y in 0..oy {
        b.push_str(&format!(
            "    if oy0 + {y}u < params.out_h {{\n        let o = (n * params.out_h + oy0 + {y}u) * params.out_w + ox0;\n"
        ));
        for x in 0..ox {
            b.push_str(&format!(
                "        if ox0 + {x}u < params.out_w {{\n            output[(o + {x}u) * c4 + c] = activate(a{}, params.activation);\n        }}\n",
                y * ox + x
            ));
        }
        b.push_str("    }\n");
    }
    b.push_str("}\n");
    b
}

/// What the gradient blocks ([`depthwise_grad_block`], [`image_grad_block`]) share: a BX × BY
/// block of input pixels aligned in padded coordinates at multiples of BX and BY (multiples of
/// the stride S) needs `cols` × `rows` output pixels, starting `reach` = ⌊(K − 1) / S⌋ before
/// the block's own.
#[derive(Clone, Copy)]
struct GradBlock {
    cols: u32,
    rows: u32,
    reach: u32,
    stride: u32,
    bx: u32,
    by: u32,
}

impl GradBlock {
    fn new(kernel: u32, stride: u32, bx: u32, by: u32) -> Self {
        assert!(
            bx.is_multiple_of(stride) && by.is_multiple_of(stride),
            "grad block sides are multiples of the stride"
        );
        let reach = (kernel - 1) / stride;
        Self {
            cols: (bx - 1) / stride + reach + 1,
            rows: (by - 1) / stride + reach + 1,
            reach,
            stride,
            bx,
            by,
        }
    }

    /// Locates invocation `id`'s block (`groups`: the channel groups per block, whose index
    /// becomes `c`): image `n`, padded origin `u0`, `v0`, first output `ox0`, `oy0`, and each
    /// output column's clamped index `cx{j}` and whether it exists, `in{j}`.
    fn locate(&self, groups: Option<&str>) -> String {
        let Self {
            bx,
            by,
            stride,
            reach,
            ..
        } = *self;
        let (bound, t) = match groups {
            Some(g) => (
                format!(" * {g}"),
                format!("let c = id % {g};\n    let t = id / {g};"),
            ),
            None => (String::new(), "let t = id;".to_string()),
        };
        let mut b = format!(
            "    let blocks_x = (params.in_w + params.pad_left + {bx}u - 1u) / {bx}u;
    let blocks_y = (params.in_h + params.pad_top + {by}u - 1u) / {by}u;
    if id >= params.batch * blocks_y * blocks_x{bound} {{
        return;
    }}
    {t}
    let u0 = (t % blocks_x) * {bx}u;
    let v0 = ((t / blocks_x) % blocks_y) * {by}u;
    let n = t / (blocks_x * blocks_y);
    let ox0 = i32(u0 / {stride}u) - {reach};
    let oy0 = i32(v0 / {stride}u) - {reach};
    let last_x = i32(params.out_w) - 1;
    let last_y = i32(params.out_h) - 1;
"
        );
        for j in 0..self.cols {
            b.push_str(&format!(
                "    let cx{j} = u32(clamp(ox0 + {j}, 0, last_x));
    let in{j} = ox0 + {j} >= 0 && ox0 + {j} <= last_x;
"
            ));
        }
        b
    }

    /// Stores the block's pixels that lie in the image: `body(p)` for pixel p = y·BX + x, with
    /// `px` its index in the batch's pixels.
    fn store(&self, body: impl Fn(u32) -> String) -> String {
        let mut b = String::new();
        for y in 0..self.by {
            b.push_str(&format!(
                "    let iy{y} = i32(v0 + {y}u) - i32(params.pad_top);
    if iy{y} >= 0 && iy{y} < i32(params.in_h) {{
        let i = (n * params.in_h + u32(iy{y})) * params.in_w;
"
            ));
            for x in 0..self.bx {
                b.push_str(&format!(
                    "        let ix{x} = i32(u0 + {x}u) - i32(params.pad_left);
        if ix{x} >= 0 && ix{x} < i32(params.in_w) {{
            let px = i + u32(ix{x});
{}        }}
",
                    body(y * self.bx + x)
                ));
            }
            b.push_str("    }\n");
        }
        b
    }
}

/// `fn grad_block_k{K}s{S}(id)`: invocation `id` of the input gradient of a depthwise K×K conv
/// at stride S, computing a BX × BY block of input pixels for one vec4 of channels, written out
/// like [`depthwise_block`]. Blocks are aligned in padded coordinates (u = ix + pad_left,
/// v = iy + pad_top) at multiples of BX and BY, themselves multiples of S, so which filter tap
/// joins each input pixel of the block to each output pixel is known here: pixel u0 + x gets
/// output column u0 / S - ⌊(K - 1) / S⌋ + j through tap kx = x + ⌊(K - 1) / S⌋·S - j·S where
/// that lies in 0..K. Each output gradient the block needs is loaded (and masked) once, each
/// filter tap once; the gather form of the same sum as `generic` in the shader.
fn depthwise_grad_block(kernel: u32, stride: u32, bx: u32, by: u32) -> String {
    let block = GradBlock::new(kernel, stride, bx, by);
    let GradBlock {
        cols, rows, reach, ..
    } = block;
    let mut b = format!(
        "fn grad_block_k{kernel}s{stride}(id: u32) {{\n    let c4 = params.channels / 4u;\n"
    );
    b.push_str(&block.locate(Some("c4")));
    for k in 0..kernel * kernel {
        b.push_str(&format!(
            "    let w{k} = weight[{k}u * c4 + c];
"
        ));
    }
    for a in 0..bx * by {
        b.push_str(&format!(
            "    var a{a} = vec4<f32>(0.0);
"
        ));
    }
    for r in 0..rows {
        b.push_str(&format!(
            "    {{
        let oy = oy0 + {r};
        let row = (n * params.out_h + u32(clamp(oy, 0, last_y))) * params.out_w;
        let row_in = oy >= 0 && oy <= last_y;
"
        ));
        for j in 0..cols {
            b.push_str(&format!(
                "        let g{j} = select(vec4<f32>(0.0), masked_grad((row + cx{j}) * c4 + c), row_in && in{j});\n"
            ));
        }
        // Output row r reaches input row y through filter row y + reach·S - r·S.
        for y in 0..by {
            let Some(ky) = (y + reach * stride)
                .checked_sub(r * stride)
                .filter(|&ky| ky < kernel)
            else {
                continue;
            };
            for x in 0..bx {
                for j in 0..cols {
                    let Some(kx) = (x + reach * stride)
                        .checked_sub(j * stride)
                        .filter(|&kx| kx < kernel)
                    else {
                        continue;
                    };
                    b.push_str(&format!(
                        "        a{} += g{j} * w{};\n",
                        y * bx + x,
                        ky * kernel + kx
                    ));
                }
            }
        }
        b.push_str("    }\n");
    }
    b.push_str(&block.store(|p| {
        format!(
            "            let at = px * c4 + c;
            grad_in[at] = finish(a{p}, at);
"
        )
    }));
    b.push_str("}\n");
    b
}

/// `fn image_grad_block_k{K}s{S}(id)`: invocation `id` of the input gradient of a dense K×K conv
/// at stride S over 3 input channels (a network's first conv: the gradient at the image),
/// computing a BX × BY block of input pixels × their 3 channels. Blocks are aligned in padded
/// coordinates as in [`depthwise_grad_block`]. For each vec4 of output channels (a loop over the
/// parameters' channels) it loads and masks each output gradient the block needs once, then per
/// filter tap its 3 weight vec4s once, adding `dot(gradient, weight)` to every pixel and channel
/// the tap joins to an output.
fn image_grad_block(kernel: u32, stride: u32, bx: u32, by: u32) -> String {
    let block = GradBlock::new(kernel, stride, bx, by);
    let GradBlock {
        cols, rows, reach, ..
    } = block;
    let mut b = format!(
        "fn image_grad_block_k{kernel}s{stride}(id: u32) {{\n    let co4 = params.out_c / 4u;\n"
    );
    b.push_str(&block.locate(None));
    for r in 0..rows {
        b.push_str(&format!(
            "    let row{r} = ((n * params.out_h + u32(clamp(oy0 + {r}, 0, last_y))) * params.out_w) * co4;
    let rin{r} = oy0 + {r} >= 0 && oy0 + {r} <= last_y;
"
        ));
    }
    for p in 0..bx * by {
        for ci in 0..3 {
            b.push_str(&format!("    var a{p}_{ci} = 0.0;\n"));
        }
    }
    b.push_str("    for (var c = 0u; c < co4; c++) {\n");
    for r in 0..rows {
        for j in 0..cols {
            b.push_str(&format!(
                "        let g{r}_{j} = select(vec4<f32>(0.0), masked_grad(row{r} + cx{j} * co4 + c), rin{r} && in{j});\n"
            ));
        }
    }
    for ky in 0..kernel {
        for kx in 0..kernel {
            let t = ky * kernel + kx;
            for ci in 0..3 {
                b.push_str(&format!(
                    "        let w{t}_{ci} = weight[({}u + {ci}u) * co4 + c];\n",
                    3 * t
                ));
            }
            // Input pixel (y, x) meets output (r, j) through this tap where
            // y + reach·S - r·S = ky and likewise for x.
            for y in 0..by {
                let Some(r) = (y + reach * stride)
                    .checked_sub(ky)
                    .filter(|d| d % stride == 0)
                    .map(|d| d / stride)
                else {
                    continue;
                };
                for x in 0..bx {
                    let Some(j) = (x + reach * stride)
                        .checked_sub(kx)
                        .filter(|d| d % stride == 0)
                        .map(|d| d / stride)
                    else {
                        continue;
                    };
                    let p = y * bx + x;
                    for ci in 0..3 {
                        b.push_str(&format!("        a{p}_{ci} += dot(g{r}_{j}, w{t}_{ci});\n"));
                    }
                }
            }
        }
    }
    b.push_str("    }\n");
    b.push_str(&block.store(|p| {
        (0..3)
            .map(|ci| {
                format!(
                    "            grad_in[px * 3u + {ci}u] = finish(a{p}_{ci}, px * 3u + {ci}u);\n"
                )
            })
            .collect()
    }));
    b.push_str("}\n");
    b
}

fn main() {
    let shaders = Path::new("shaders");
    let lib = shaders.join("lib");
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo");
    let out = Path::new(&out_dir).join("shaders");
    std::fs::create_dir_all(&out).expect("create $OUT_DIR/shaders");
    let mut entries: Vec<_> = std::fs::read_dir(shaders)
        .expect("read shaders/")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wgsl"))
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 name");
        let text = std::fs::read_to_string(&path).expect("readable shader");
        let mut resolved = String::with_capacity(text.len() * 2);
        resolve(name, &text, &lib, &mut HashSet::new(), false, &mut resolved);
        // A second copy where the kernel or one of its imports has a `#subgroups` block.
        let mut with_subgroups = String::with_capacity(text.len() * 2);
        resolve(
            name,
            &text,
            &lib,
            &mut HashSet::new(),
            true,
            &mut with_subgroups,
        );
        if with_subgroups != resolved {
            let copy = out.join(name.replace(".wgsl", ".subgroups.wgsl"));
            std::fs::write(copy, with_subgroups).expect("write resolved shader");
        }
        std::fs::write(out.join(name), resolved).expect("write resolved shader");
    }
    for entry in std::fs::read_dir(&lib).expect("read shaders/lib/") {
        println!(
            "cargo:rerun-if-changed={}",
            entry.expect("entry").path().display()
        );
    }
}

//! One command that measures an adapter completely: what it is, whether the engine is exact on
//! it, how fast its memory and arithmetic are, where every kernel launch's time goes, and what
//! throughput and latency the whole pipeline reaches.
//!
//! cargo run --release --example gpu_report -- [--batches 1,16,64,256] [--json FILE]
//!     [--weights FILE] [--layer L] [--method NAME] [--runs N] [--latency-runs N]
//!
//! Sections (printed, and written to `--json` as one object with the same keys):
//! - `adapter`: name, vendor and device ids, driver, backend, device type, the limits granted,
//!   the adapter's features, and the largest batch the model fits (`max_batch`).
//! - `parity`: logits (chelsea, coffee) and Grad-CAM maps (every case of `tests/fixtures`) on this
//!   adapter against the PyTorch / pytorch-grad-cam fixtures: max |diff| each, with the tests'
//!   tolerances; `null` when run outside the repository.
//! - `calibration`: a copy kernel's GB/s (bytes read + written) and an FMA kernel's GFLOP/s.
//! - `batches`: per batch size, the GPU time per stage (timestamp queries; min of `--runs`),
//!   images/s with everything GPU-resident (images uploaded once, the pipeline run again and
//!   again) and with each batch uploaded and its overlays read back, the CPU time split of the
//!   latter (`upload`: pack + write; `record`; `submit`; `wait`; `read`: map + copy out), the
//!   same with two explainers alternating, one batch read back while the other runs
//!   (`images_per_s_two_in_flight`, as the CLI runs on a GPU), GPU
//!   memory per image, `first_batch_ms` (compile, allocate, tune), `transfers` (the host copy
//!   into staging, the copy to the GPU, the download, the map and the host copy out, GB/s each),
//!   and `launches`: every kernel launch in order with its variant, workgroups, time (min of
//!   `--runs`), FLOPs, bytes, achieved GFLOP/s and GB/s and the % of the calibrated peaks.
//! - `latency`: batch 1, one image after another at mixed sizes (upload → overlay on the host),
//!   p50 / p99 / mean over `--latency-runs` (at least 200).
//! - `tuning`: every launch shape the tuner timed (kernel / builder's variant / parameters) with
//!   each candidate variant's milliseconds.
//! - `settings`: weights, layer, method, runs, engine version.
//!
//! Without TIMESTAMP_QUERY the GPU-time fields are `null` and the rest is measured by wall clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gradcam::gpu::kernels::KernelId;
use gradcam::gpu::profile::Timed;
use gradcam::gpu::Profiler;
use gradcam::{ExplainOptions, Explainer, GpuContext, Method, Model, Readback, Target};
use serde_json::{json, Value};

struct Options {
    batches: Vec<u32>,
    json: Option<PathBuf>,
    weights: PathBuf,
    layer: String,
    method: Method,
    runs: usize,
    latency_runs: usize,
}

fn parse_args() -> Result<Options, Box<dyn std::error::Error>> {
    let mut o = Options {
        batches: vec![1, 16, 64, 256],
        json: None,
        weights: "weights/efficientnet_lite0.safetensors".into(),
        layer: String::new(),
        method: Method::GradCam,
        runs: 5,
        latency_runs: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{a} needs {name}"));
        match a.as_str() {
            "--batches" => {
                o.batches = value("a list like 1,16,64")?
                    .split(',')
                    .map(|s| s.trim().parse::<u32>())
                    .collect::<Result<_, _>>()?;
                if o.batches.contains(&0) {
                    return Err("--batches: a batch of 0 images".into());
                }
            }
            "--json" => o.json = Some(value("FILE")?.into()),
            "--weights" => o.weights = value("FILE")?.into(),
            "--layer" => o.layer = value("L")?,
            "--method" => o.method = value("NAME")?.parse()?,
            "--runs" => o.runs = value("N")?.parse::<usize>()?.max(1),
            "--latency-runs" => o.latency_runs = value("N")?.parse::<usize>()?.max(200),
            "-h" | "--help" => {
                println!(
                    "gpu_report [--batches 1,16,64,256] [--json FILE] [--weights FILE] \
                     [--layer L] [--method NAME] [--runs N] [--latency-runs N]"
                );
                std::process::exit(0);
            }
            _ => return Err(format!("unknown argument `{a}`").into()),
        }
    }
    Ok(o)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let o = parse_args()?;
    let ctx = Arc::new(GpuContext::new(&Default::default())?);
    let engine = gradcam::Engine::new(ctx.clone(), Model::load(&o.weights)?);
    let mut report = BTreeMap::<&str, Value>::new();

    let adapter = adapter_section(&ctx, engine.max_batch());
    print_adapter(&adapter);
    report.insert("adapter", adapter);

    let parity = parity_section(&engine, &o.weights);
    print_parity(&parity);
    report.insert("parity", parity);

    let calibration = calibration_section(&ctx)?;
    println!(
        "\ncalibration: copy {:.1} GB/s, FMA {:.1} GFLOP/s ({} timing)",
        calibration["copy_gb_per_s"].as_f64().unwrap_or(0.0),
        calibration["fma_gflop_per_s"].as_f64().unwrap_or(0.0),
        calibration["timing"].as_str().unwrap_or("?"),
    );
    let peaks = (
        calibration["copy_gb_per_s"].as_f64().unwrap_or(0.0),
        calibration["fma_gflop_per_s"].as_f64().unwrap_or(0.0),
    );
    report.insert("calibration", calibration);

    let photos = sample_images()?;
    let max_batch = engine.max_batch();
    let mut batches = Vec::new();
    let largest = o.batches.iter().copied().max().unwrap_or(1);
    for &requested in &o.batches {
        let batch = requested.min(max_batch);
        let section = batch_section(&engine, &o, batch, &photos, peaks)?;
        print_batch(&section, batch == largest.min(max_batch));
        batches.push(section);
    }
    report.insert("batches", Value::Array(batches));

    let latency = latency_section(&engine, &o, &photos)?;
    println!(
        "\nlatency, batch 1, {} runs at mixed sizes (upload → overlay on the host): \
         p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms",
        latency["runs"],
        latency["p50_ms"].as_f64().unwrap_or(0.0),
        latency["p99_ms"].as_f64().unwrap_or(0.0),
        latency["mean_ms"].as_f64().unwrap_or(0.0),
    );
    report.insert("latency", latency);
    // Every tuning timing made above: launch key (kernel/builder's variant/parameters) and each
    // candidate's milliseconds, by variant name.
    let timings: Vec<Value> = ctx
        .tuner
        .timings()
        .into_iter()
        .map(|(key, times)| {
            let kernel = key.split('/').next().and_then(KernelId::from_name);
            let ms: serde_json::Map<String, Value> = times
                .into_iter()
                .map(|(v, t)| {
                    let name = kernel.and_then(|k| k.variant_name(v));
                    (
                        name.map_or_else(|| v.to_string(), str::to_string),
                        json!(t * 1e3),
                    )
                })
                .collect();
            json!({"launch": key, "ms": ms})
        })
        .collect();
    println!("\ntuning: {} launch shapes timed", timings.len());
    report.insert("tuning", Value::Array(timings));
    report.insert(
        "settings",
        json!({
            "weights": o.weights.display().to_string(),
            "layer": if o.layer.is_empty() { "(model default)" } else { &o.layer },
            "method": o.method.to_string(),
            "runs": o.runs,
            "engine_version": env!("CARGO_PKG_VERSION"),
        }),
    );

    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Adapter

fn adapter_section(ctx: &GpuContext, max_batch: u32) -> Value {
    let info = &ctx.adapter_info;
    let l = &ctx.limits;
    // The adapter's own features (the device is opened with only those the engine uses).
    let features = pollster::block_on(async {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        adapters
            .into_iter()
            .find(|a| {
                let i = a.get_info();
                i.name == info.name && i.backend == info.backend && i.device == info.device
            })
            .map(|a| a.features())
    });
    let feature_names: Vec<String> = features
        .map(|f| f.iter_names().map(|(n, _)| n.to_string()).collect())
        .unwrap_or_default();
    json!({
        "name": info.name,
        "vendor": format!("{:#06x}", info.vendor),
        "device": format!("{:#06x}", info.device),
        "device_type": format!("{:?}", info.device_type),
        "driver": info.driver,
        "driver_info": info.driver_info,
        "backend": format!("{:?}", info.backend),
        "limits": {
            "max_buffer_size": l.max_buffer_size,
            "max_storage_buffer_binding_size": l.max_storage_buffer_binding_size,
            "max_storage_buffers_per_shader_stage": l.max_storage_buffers_per_shader_stage,
            "max_compute_workgroup_size_x": l.max_compute_workgroup_size_x,
            "max_compute_invocations_per_workgroup": l.max_compute_invocations_per_workgroup,
            "max_compute_workgroup_storage_size": l.max_compute_workgroup_storage_size,
            "max_compute_workgroups_per_dimension": l.max_compute_workgroups_per_dimension,
            "subgroup_min_size": info.subgroup_min_size,
            "subgroup_max_size": info.subgroup_max_size,
        },
        "features": feature_names,
        "timestamps": ctx.device.features().contains(wgpu::Features::TIMESTAMP_QUERY),
        "tuning": format!("{:?}", ctx.tuner.mode()),
        "tuning_cache": ctx.tuner.cache_path().map(|p| p.display().to_string()),
        "max_batch": max_batch,
    })
}

fn print_adapter(a: &Value) {
    println!(
        "adapter: {} ({}, {}), driver {} {}",
        a["name"].as_str().unwrap_or("?"),
        a["backend"].as_str().unwrap_or("?"),
        a["device_type"].as_str().unwrap_or("?"),
        a["driver"].as_str().unwrap_or("?"),
        a["driver_info"].as_str().unwrap_or(""),
    );
    println!("limits: {}", a["limits"]);
    let features: Vec<&str> = a["features"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    println!("features: {}", features.join(" "));
    println!(
        "max batch (largest activation within the binding limit): {}",
        a["max_batch"]
    );
    println!(
        "tuning: {} (cache {})",
        a["tuning"].as_str().unwrap_or("?"),
        a["tuning_cache"].as_str().unwrap_or("none")
    );
}

// ---------------------------------------------------------------------------------------------
// Parity against the committed fixtures

struct Fixture {
    shape: Vec<usize>,
    data: Vec<f32>,
}

fn load_fixtures(path: &Path) -> Option<BTreeMap<String, Fixture>> {
    let bytes = std::fs::read(path).ok()?;
    let st = safetensors::SafeTensors::deserialize(&bytes).ok()?;
    Some(
        st.tensors()
            .into_iter()
            .filter_map(|(k, v)| {
                let raw = v.data();
                let data: Vec<f32> = match v.dtype() {
                    safetensors::Dtype::F32 => raw
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    safetensors::Dtype::I64 => raw
                        .chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32)
                        .collect(),
                    safetensors::Dtype::U8 => raw.iter().map(|&b| f32::from(b)).collect(),
                    _ => return None,
                };
                Some((
                    k,
                    Fixture {
                        shape: v.shape().to_vec(),
                        data,
                    },
                ))
            })
            .collect(),
    )
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from((x - y).abs()))
        .fold(0.0, f64::max)
}

/// The repository: the current directory when it holds the fixtures (a copy of the repository
/// elsewhere than where the binary was built), else where it was built.
fn repo_root() -> PathBuf {
    if Path::new("tests/fixtures").is_dir() {
        PathBuf::from(".")
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }
}

fn fixture_image(root: &Path, name: &str) -> Option<image::RgbImage> {
    let path = match name {
        "chelsea" | "coffee" => root.join("examples/images").join(format!("{name}.png")),
        _ => root.join("tests/fixtures").join(format!("{name}.png")),
    };
    gradcam::decode_image(path).ok()
}

/// Logits and CAMs on this adapter against the reference's fixtures (shipped Lite0 weights only).
fn parity_section(engine: &gradcam::Engine, weights: &Path) -> Value {
    let root = repo_root();
    let shipped = root.join("weights/efficientnet_lite0.safetensors");
    let same = std::fs::canonicalize(weights).ok() == std::fs::canonicalize(&shipped).ok();
    if !same {
        return json!({"skipped": "the fixtures are for the shipped EfficientNet-Lite0 weights"});
    }
    let (Some(forward), Some(cam)) = (
        load_fixtures(&root.join("tests/fixtures/forward.safetensors")),
        load_fixtures(&root.join("tests/fixtures/cam.safetensors")),
    ) else {
        return json!({"skipped": "tests/fixtures not found"});
    };
    let run = || -> Result<Value, Box<dyn std::error::Error>> {
        let mut logits = serde_json::Map::new();
        let mut fwd = engine.forward(1)?;
        for name in ["chelsea", "coffee"] {
            let img = fixture_image(&root, name).ok_or("sample image missing")?;
            let got = engine.classify(&mut fwd, &[&img])?;
            let expected = &forward[&format!("{name}_logits")].data;
            logits.insert(name.into(), json!(max_abs_diff(&got[0], expected)));
        }
        // Every CAM case: <image>.<layer>.<target>.cam, one batch per (image, layer).
        let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for key in cam
            .keys()
            .filter(|k| k.ends_with(".cam") && !k.starts_with("overlay"))
        {
            let parts: Vec<&str> = key.split('.').collect();
            let layer = parts[1..parts.len() - 2].join(".");
            groups
                .entry((parts[0].to_string(), layer))
                .or_default()
                .push(parts[parts.len() - 2].to_string());
        }
        let mut cams = Vec::new();
        let mut worst: f64 = 0.0;
        for ((img_name, layer), tags) in &groups {
            let img = fixture_image(&root, img_name).ok_or("fixture image missing")?;
            let images: Vec<&image::RgbImage> = tags.iter().map(|_| &img).collect();
            let targets: Vec<Target> = tags
                .iter()
                .map(|t| match t.as_str() {
                    "argmax" => Target::Predicted,
                    c => Target::Class(c.trim_start_matches('c').parse().unwrap_or(0)),
                })
                .collect();
            let mut ex = engine.explainer(
                tags.len() as u32,
                ExplainOptions {
                    layer: layer.clone(),
                    ..Default::default()
                },
            )?;
            let out = ex.explain(&images, &targets, Readback::ALL)?;
            for (tag, r) in tags.iter().zip(&out) {
                let key = format!("{img_name}.{layer}.{tag}");
                let expected = &cam[&format!("{key}.cam")];
                let d = max_abs_diff(r.cam.as_deref().unwrap_or(&[]), &expected.data);
                let class_ok = cam
                    .get(&format!("{key}.class"))
                    .is_none_or(|c| c.data[0] as u32 == r.class);
                worst = worst.max(if class_ok { d } else { f64::INFINITY });
                let _ = &expected.shape;
                cams.push(json!({"case": key, "max_abs_diff": d, "class_matches": class_ok}));
            }
        }
        let logits_worst = logits
            .values()
            .filter_map(Value::as_f64)
            .fold(0.0, f64::max);
        Ok(json!({
            "logits_max_abs_diff": logits,
            "logits_tolerance": 1e-3,
            "cam_max_abs_diff": worst,
            "cam_tolerance": 1e-4,
            "cams": cams,
            "pass": logits_worst <= 1e-3 && worst <= 1e-3,
        }))
    };
    run().unwrap_or_else(|e| json!({"error": gradcam::one_line(&e.to_string())}))
}

fn print_parity(p: &Value) {
    if let Some(s) = p.get("skipped").or_else(|| p.get("error")) {
        println!("\nparity: {}", s.as_str().unwrap_or("?"));
        return;
    }
    println!(
        "\nparity on this adapter: logits max |diff| {} (tolerance 1e-3); CAM max |diff| {:.2e} \
         over {} cases (tolerance 1e-4 at 224², 1e-3 full size): {}",
        p["logits_max_abs_diff"],
        p["cam_max_abs_diff"].as_f64().unwrap_or(f64::NAN),
        p["cams"].as_array().map_or(0, Vec::len),
        if p["pass"].as_bool() == Some(true) {
            "pass"
        } else {
            "FAIL"
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Calibration: the adapter's memory bandwidth and FMA rate, by two tiny kernels

const COPY_WGSL: &str = r"
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    if (i < arrayLength(&dst)) {
        dst[i] = src[i];
    }
}
";

/// Each invocation runs 4 independent vec4 FMA chains for `STEPS` steps: 32 × STEPS FLOPs.
const FMA_WGSL: &str = r"
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

const STEPS: u32 = 1024u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = gid.x + gid.y * groups.x * 256u;
    let m = src[0];
    let c = src[1];
    var a0 = vec4<f32>(f32(i)) * 1e-9;
    var a1 = a0 + 1.0;
    var a2 = a0 + 2.0;
    var a3 = a0 + 3.0;
    for (var s = 0u; s < STEPS; s++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
    }
    if (i < arrayLength(&dst)) {
        dst[i] = a0 + a1 + a2 + a3;
    }
}
";
const FMA_STEPS: u64 = 1024;

fn calibration_section(ctx: &GpuContext) -> Result<Value, Box<dyn std::error::Error>> {
    let cpu = ctx.adapter_info.device_type == wgpu::DeviceType::Cpu;
    let limit = ctx
        .limits
        .max_storage_buffer_binding_size
        .min(ctx.limits.max_buffer_size);
    let copy_bytes = (if cpu { 32u64 << 20 } else { 512u64 << 20 }).min(limit / 16 * 16);
    let fma_invocations: u64 = if cpu { 1 << 13 } else { 1 << 22 };
    let device = &ctx.device;
    let src = ctx.storage("calibration_src", copy_bytes)?;
    let dst = ctx.storage("calibration_dst", copy_bytes.max(fma_invocations * 16))?;
    // src[0] = 0.999..., src[1] = 1e-3: the chains neither overflow nor settle to a constant.
    ctx.queue.write_buffer(
        &src,
        0,
        bytemuck::cast_slice(&[0.9999f32, 0.9999, 0.9999, 0.9999, 1e-3, 1e-3, 1e-3, 1e-3]),
    );
    let pipeline = |source: &str| {
        let descriptor = wgpu::ShaderModuleDescriptor {
            label: Some("calibration"),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        // SAFETY: both kernels' only loop runs to a constant; without wgpu's loop counter the
        // FMA chain is what the driver compiles (as the engine's kernels, src/gpu/kernels.rs).
        let module = unsafe {
            device.create_shader_module_trusted(
                descriptor,
                wgpu::ShaderRuntimeChecks {
                    force_loop_bounding: false,
                    ..wgpu::ShaderRuntimeChecks::checked()
                },
            )
        };
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("calibration"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    };
    let copy = pipeline(COPY_WGSL);
    let fma = pipeline(FMA_WGSL);
    let bind = |p: &wgpu::ComputePipeline, dst_size: u64| {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("calibration"),
            layout: &p.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: src.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &dst,
                        offset: 0,
                        size: wgpu::BufferSize::new(dst_size),
                    }),
                },
            ],
        })
    };
    let copy_group = bind(&copy, copy_bytes);
    let fma_group = bind(&fma, fma_invocations * 16);
    let max = ctx.limits.max_compute_workgroups_per_dimension;
    let grid = |invocations: u64| {
        let groups = invocations.div_ceil(256) as u32;
        if groups <= max {
            (groups, 1)
        } else {
            let y = groups.div_ceil(max);
            (groups.div_ceil(y), y)
        }
    };
    let runs = if cpu { 3 } else { 10 };
    let time = |p: &wgpu::ComputePipeline, g: &wgpu::BindGroup, invocations: u64| {
        let mut best = f64::INFINITY;
        let mut timing = "wall clock";
        for _ in 0..=runs {
            let mut profiler = Profiler::new(ctx, 1);
            let mut encoder = device.create_command_encoder(&Default::default());
            {
                let writes = profiler.pass("calibration");
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("calibration"),
                    timestamp_writes: writes,
                });
                pass.set_pipeline(p);
                pass.set_bind_group(0, g, &[]);
                let (x, y) = grid(invocations);
                pass.dispatch_workgroups(x, y, 1);
            }
            profiler.resolve(&mut encoder);
            let start = Instant::now();
            ctx.submit("calibration", encoder)?;
            ctx.wait()?;
            let wall = start.elapsed().as_secs_f64();
            let gpu = profiler.read(ctx)?;
            let t = match gpu.first() {
                Some((_, t)) if *t > 0.0 => {
                    timing = "timestamps";
                    *t
                }
                _ => wall,
            };
            best = best.min(t);
        }
        Ok::<_, gradcam::Error>((best, timing))
    };
    // The first run of each is a warm-up inside `time` (the best of runs + 1 is kept).
    let (copy_s, timing) = time(&copy, &copy_group, copy_bytes / 16)?;
    let (fma_s, _) = time(&fma, &fma_group, fma_invocations)?;
    let fma_flops = fma_invocations * FMA_STEPS * 32;
    Ok(json!({
        "copy_bytes": copy_bytes,
        "copy_ms": copy_s * 1e3,
        "copy_gb_per_s": 2.0 * copy_bytes as f64 / copy_s / 1e9,
        "fma_flops": fma_flops,
        "fma_ms": fma_s * 1e3,
        "fma_gflop_per_s": fma_flops as f64 / fma_s / 1e9,
        "timing": timing,
    }))
}

// ---------------------------------------------------------------------------------------------
// Throughput per batch size

/// The sample photos at their own sizes, and the same at other sizes for the latency runs.
fn sample_images() -> Result<Vec<image::RgbImage>, Box<dyn std::error::Error>> {
    let root = repo_root();
    let chelsea = gradcam::decode_image(root.join("examples/images/chelsea.png"))?;
    let coffee = gradcam::decode_image(root.join("examples/images/coffee.png"))?;
    Ok(vec![chelsea, coffee])
}

fn explainer(
    engine: &gradcam::Engine,
    o: &Options,
    batch: u32,
) -> Result<Explainer, Box<dyn std::error::Error>> {
    Ok(engine.explainer(
        batch,
        ExplainOptions {
            layer: o.layer.clone(),
            method: o.method,
            ..Default::default()
        },
    )?)
}

const OVERLAY: Readback = Readback {
    cam: false,
    cam_grid: false,
    overlay: true,
    guided: false,
};

fn batch_section(
    engine: &gradcam::Engine,
    o: &Options,
    batch: u32,
    photos: &[image::RgbImage],
    (peak_gbs, peak_gflops): (f64, f64),
) -> Result<Value, Box<dyn std::error::Error>> {
    let ctx = engine.context();
    let start = Instant::now();
    let mut ex = explainer(engine, o, batch)?;
    let images: Vec<&image::RgbImage> = (0..batch as usize)
        .map(|i| &photos[i % photos.len()])
        .collect();
    // Warm-up: every pipeline compiled, every buffer sized, every launch shape tuned.
    ex.explain(&images, &[], OVERLAY)?;
    let first_batch_ms = start.elapsed().as_secs_f64() * 1e3;

    // GPU time per stage, min over runs.
    let mut profiler = Profiler::new(ctx, ex.launches() as u32 + 16);
    let timed = profiler.enabled();
    let mut stages: Vec<(String, f64)> = Vec::new();
    let mut launches: Vec<Timed> = Vec::new();
    if timed {
        for _ in 0..o.runs {
            let run = gradcam::gpu::profile::totals(&ex.run_profiled(&mut profiler)?);
            merge_min(
                &mut stages,
                run.into_iter().map(|(l, t, _)| (l, t)).collect(),
                |s| &mut s.1,
            );
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            ex.record_profiled(&mut encoder, &mut profiler, true);
            profiler.resolve(&mut encoder);
            ctx.submit("profile", encoder)?;
            merge_min(&mut launches, profiler.read_timed(ctx)?, |t| &mut t.seconds);
        }
    }
    let gpu_ms: Option<f64> = timed.then(|| stages.iter().map(|s| s.1).sum::<f64>() * 1e3);

    // Enough repetitions for about a second of work (at least 3).
    let probe = Instant::now();
    ex.run()?;
    ctx.wait()?;
    let once = probe.elapsed().as_secs_f64().max(1e-5);
    let reps = ((1.0 / once) as usize).clamp(3, 200);

    // GPU-resident: the batch stays on the GPU; the pipeline is submitted again and again.
    let start = Instant::now();
    for _ in 0..reps {
        ex.run()?;
    }
    ctx.wait()?;
    let resident = f64::from(batch) * reps as f64 / start.elapsed().as_secs_f64();

    // With upload and overlay readback, one batch after another, timed part by part.
    let mut split = [Duration::ZERO; 5];
    let start = Instant::now();
    for _ in 0..reps {
        let t0 = Instant::now();
        ex.upload(&images, &[])?;
        let t1 = Instant::now();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        ex.record(&mut encoder);
        let t2 = Instant::now();
        ctx.submit("Grad-CAM", encoder)?;
        let t3 = Instant::now();
        ctx.wait()?;
        let t4 = Instant::now();
        let out = ex.read(OVERLAY)?;
        let t5 = Instant::now();
        debug_assert_eq!(out.len(), batch as usize);
        for (s, d) in split
            .iter_mut()
            .zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4])
        {
            *s += d;
        }
    }
    let with_readback = f64::from(batch) * reps as f64 / start.elapsed().as_secs_f64();

    // Two batches in flight, as the CLI runs on a GPU: a second explainer's batch is submitted
    // before the first one's overlays are read back, so the host's copies overlap the GPU.
    let mut pair = [ex, explainer(engine, o, batch)?];
    pair[1].explain(&images, &[], OVERLAY)?;
    let start = Instant::now();
    pair[0].upload(&images, &[])?;
    pair[0].run_with_readback(OVERLAY)?;
    for k in 1..=reps {
        let (now, then) = (k % 2, (k + 1) % 2);
        if k < reps {
            pair[now].upload(&images, &[])?;
            pair[now].run_with_readback(OVERLAY)?;
        }
        let out = pair[then].read(OVERLAY)?;
        debug_assert_eq!(out.len(), batch as usize);
    }
    let two_in_flight = f64::from(batch) * reps as f64 / start.elapsed().as_secs_f64();
    let [ex, _] = pair;
    let per_batch_ms = |d: Duration| d.as_secs_f64() * 1e3 / reps as f64;

    let transfers = transfer_split(ctx, &ex, &images)?;

    let launch_rows: Vec<Value> = launches
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut row = json!({"index": i, "label": t.label, "ms": t.seconds * 1e3});
            if let Some(l) = &t.launch {
                let gflops = l.work.flops as f64 / t.seconds.max(1e-12) / 1e9;
                let gbs = l.work.bytes as f64 / t.seconds.max(1e-12) / 1e9;
                row["variant"] = json!(l.variant);
                row["invocations"] = json!(l.invocations);
                row["workgroups"] = json!([l.workgroups.0, l.workgroups.1]);
                row["workgroup_size"] = json!(l.workgroup_size);
                row["flops"] = json!(l.work.flops);
                row["bytes"] = json!(l.work.bytes);
                if l.work.flops > 0 {
                    row["gflop_per_s"] = json!(gflops);
                    row["pct_fma_peak"] = json!(100.0 * gflops / peak_gflops.max(1e-9));
                }
                if l.work.bytes > 0 {
                    row["gb_per_s"] = json!(gbs);
                    row["pct_copy_peak"] = json!(100.0 * gbs / peak_gbs.max(1e-9));
                }
            }
            row
        })
        .collect();
    Ok(json!({
        "batch": batch,
        "gpu_ms": gpu_ms,
        "gpu_ms_per_image": gpu_ms.map(|m| m / f64::from(batch)),
        "stages_ms": stages.iter().map(|(l, t)| (l.clone(), json!(t * 1e3))).collect::<serde_json::Map<_, _>>(),
        "images_per_s_gpu_resident": resident,
        "images_per_s_with_readback": with_readback,
        "images_per_s_two_in_flight": two_in_flight,
        "repetitions": reps,
        "first_batch_ms": first_batch_ms,
        "cpu_ms_per_batch": {
            "upload": per_batch_ms(split[0]),
            "record": per_batch_ms(split[1]),
            "submit": per_batch_ms(split[2]),
            "wait": per_batch_ms(split[3]),
            "read": per_batch_ms(split[4]),
        },
        "transfers": transfers,
        "gpu_bytes_per_image": ex.gpu_bytes() / u64::from(batch),
        "launches": launch_rows,
    }))
}

/// Where the host side's time goes, for this batch's sizes: the RGB8 upload as a host copy into
/// wgpu's staging (`write_buffer`) and the copy to the GPU; the overlays' download as the GPU's
/// copy into a mapped buffer, the mapping, and the host copy out of it (into memory already
/// touched, and into fresh allocations as the results are). GB/s each, best of 3.
fn transfer_split(
    ctx: &GpuContext,
    ex: &Explainer,
    images: &[&image::RgbImage],
) -> Result<Value, Box<dyn std::error::Error>> {
    let rgb: u64 = images.iter().map(|i| i.as_raw().len() as u64).sum();
    let regions = ex.overlay_regions();
    let overlay: u64 = regions.last().map_or(0, |r| r.offset + r.len());
    let upload_bytes = rgb.next_multiple_of(4);
    let host = vec![7u8; upload_bytes as usize];
    let target = ctx.storage("transfer_upload", upload_bytes)?;
    let staging = ctx.staging("transfer_download", overlay);
    let mut out = vec![0u8; overlay as usize];
    let mut best = [f64::INFINITY; 6];
    for _ in 0..3 {
        let t0 = Instant::now();
        ctx.queue.write_buffer(&target, 0, &host);
        let t1 = Instant::now();
        ctx.queue.submit([]);
        ctx.wait()?;
        let t2 = Instant::now();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(ex.overlay_buffer(), 0, &staging, 0, overlay);
        ctx.submit("download", encoder)?;
        ctx.wait()?;
        let t3 = Instant::now();
        let slice = staging.slice(..overlay);
        slice.map_async(wgpu::MapMode::Read, |_| ());
        ctx.wait()?;
        let t4 = Instant::now();
        {
            let view = slice.get_mapped_range().map_err(|e| e.to_string())?;
            let t = Instant::now();
            out.copy_from_slice(&view);
            best[4] = best[4].min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            // As the results are made: one fresh allocation per image.
            let fresh: Vec<Vec<u8>> = regions
                .iter()
                .map(|r| view[r.offset as usize..(r.offset + r.len()) as usize].to_vec())
                .collect();
            best[5] = best[5].min(t.elapsed().as_secs_f64());
            std::hint::black_box(&fresh);
        }
        staging.unmap();
        for (b, d) in best.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2, t4 - t3]) {
            *b = b.min(d.as_secs_f64());
        }
    }
    let gbs = |bytes: u64, s: f64| bytes as f64 / s.max(1e-12) / 1e9;
    Ok(json!({
        "upload_bytes": upload_bytes,
        "upload_host_copy_gb_per_s": gbs(upload_bytes, best[0]),
        "upload_to_gpu_gb_per_s": gbs(upload_bytes, best[1]),
        "overlay_bytes": overlay,
        "download_to_host_gb_per_s": gbs(overlay, best[2]),
        "map_ms": best[3] * 1e3,
        "host_copy_out_gb_per_s": gbs(overlay, best[4]),
        "host_copy_out_fresh_gb_per_s": gbs(overlay, best[5]),
    }))
}

/// Keeps the least seconds (`seconds` picks them out) of each pass over the runs so far.
fn merge_min<T>(best: &mut Vec<T>, mut run: Vec<T>, seconds: impl Fn(&mut T) -> &mut f64) {
    if best.len() != run.len() {
        *best = run;
        return;
    }
    for (b, r) in best.iter_mut().zip(&mut run) {
        let least = seconds(b).min(*seconds(r));
        *seconds(b) = least;
    }
}

fn print_batch(b: &Value, with_launches: bool) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    println!(
        "\nbatch {}: GPU {} ms ({} ms per image); {:.1} images/s GPU-resident, {:.1} images/s \
         with overlays read back ({:.1} with two batches in flight); {:.1} MB GPU memory per \
         image",
        b["batch"],
        b["gpu_ms"]
            .as_f64()
            .map_or("n/a".into(), |m| format!("{m:.3}")),
        b["gpu_ms_per_image"]
            .as_f64()
            .map_or("n/a".into(), |m| format!("{m:.4}")),
        f(&b["images_per_s_gpu_resident"]),
        f(&b["images_per_s_with_readback"]),
        f(&b["images_per_s_two_in_flight"]),
        f(&b["gpu_bytes_per_image"]) / 1e6,
    );
    println!(
        "  first batch (compile, allocate, tune): {:.1} ms",
        f(&b["first_batch_ms"])
    );
    if let Some(stages) = b["stages_ms"].as_object() {
        let s: Vec<String> = stages
            .iter()
            .map(|(k, v)| format!("{k} {:.3}", f(v)))
            .collect();
        println!("  GPU stages (ms): {}", s.join(", "));
    }
    let c = &b["cpu_ms_per_batch"];
    println!(
        "  CPU per batch (ms): upload {:.3}, record {:.3}, submit {:.3}, wait {:.3}, read {:.3}",
        f(&c["upload"]),
        f(&c["record"]),
        f(&c["submit"]),
        f(&c["wait"]),
        f(&c["read"]),
    );
    let t = &b["transfers"];
    println!(
        "  transfers (GB/s): upload host copy {:.1}, to GPU {:.1}; overlays to host {:.1}, map \
         {:.3} ms, host copy out {:.1} (into fresh allocations {:.1}); {:.1} MB up, {:.1} MB down",
        f(&t["upload_host_copy_gb_per_s"]),
        f(&t["upload_to_gpu_gb_per_s"]),
        f(&t["download_to_host_gb_per_s"]),
        f(&t["map_ms"]),
        f(&t["host_copy_out_gb_per_s"]),
        f(&t["host_copy_out_fresh_gb_per_s"]),
        f(&t["upload_bytes"]) / 1e6,
        f(&t["overlay_bytes"]) / 1e6,
    );
    if !with_launches {
        return;
    }
    println!(
        "  {:>4} {:22} {:>3} {:>11} {:>9} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6}",
        "#", "kernel", "var", "workgroups", "ms", "MFLOP", "MB", "GFLOP/s", "GB/s", "%FMA", "%copy"
    );
    for row in b["launches"].as_array().into_iter().flatten() {
        let wg = row["workgroups"]
            .as_array()
            .map(|w| format!("{}x{}", w[0], w[1]))
            .unwrap_or_default();
        let opt = |k: &str, scale: f64| {
            row[k]
                .as_f64()
                .map_or("-".to_string(), |v| format!("{:.1}", v * scale))
        };
        println!(
            "  {:>4} {:22} {:>3} {:>11} {:>9.4} {:>9} {:>9} {:>8} {:>8} {:>6} {:>6}",
            row["index"],
            row["label"].as_str().unwrap_or("?"),
            row["variant"]
                .as_u64()
                .map_or("-".into(), |v| v.to_string()),
            wg,
            f(&row["ms"]),
            opt("flops", 1e-6),
            opt("bytes", 1e-6),
            opt("gflop_per_s", 1.0),
            opt("gb_per_s", 1.0),
            opt("pct_fma_peak", 1.0),
            opt("pct_copy_peak", 1.0),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Latency at batch 1

fn latency_section(
    engine: &gradcam::Engine,
    o: &Options,
    photos: &[image::RgbImage],
) -> Result<Value, Box<dyn std::error::Error>> {
    let mut ex = explainer(engine, o, 1)?;
    // Mixed sizes: the photos as they are, and resized to common camera and thumbnail sizes.
    let mut images: Vec<image::RgbImage> = photos.to_vec();
    for (w, h) in [(224, 224), (640, 480), (1280, 720), (97, 61)] {
        images.push(image::imageops::resize(
            &photos[0],
            w,
            h,
            image::imageops::FilterType::Triangle,
        ));
    }
    for img in &images {
        ex.explain(&[img], &[], OVERLAY)?; // warm-up at every size
    }
    let mut ms: Vec<f64> = Vec::with_capacity(o.latency_runs);
    for i in 0..o.latency_runs {
        let img = &images[i % images.len()];
        let start = Instant::now();
        let out = ex.explain(&[img], &[], OVERLAY)?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
        debug_assert!(out[0].overlay.is_some());
    }
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((p * (ms.len() - 1) as f64).round() as usize).min(ms.len() - 1)];
    Ok(json!({
        "runs": ms.len(),
        "sizes": images.iter().map(|i| format!("{}x{}", i.width(), i.height())).collect::<Vec<_>>(),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "mean_ms": mean,
        "min_ms": ms[0],
        "max_ms": ms[ms.len() - 1],
    }))
}

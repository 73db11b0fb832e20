//! `gradcam`: Grad-CAM heatmaps and classification on the GPU.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use gradcam::gpu::Profiler;
use gradcam::output::{write_atomic, OutputNames};
use gradcam::{
    AdapterOptions, Colormap, Engine, ExplainOptions, Explainer, Explanation, GpuContext, Labels,
    Model, Readback, Target,
};
use serde_json::json;

/// The default model, compiled in so the binary works from any directory.
const DEFAULT_WEIGHTS: &[u8] = include_bytes!("../../weights/efficientnet_lite0.safetensors");
const DEFAULT_WEIGHTS_NAME: &str = "<built-in efficientnet_lite0.safetensors>";
const DEFAULT_LABELS: &str = include_str!("../../weights/imagenet_classes.txt");

/// Exit status when every input was processed.
const EXIT_OK: u8 = 0;
/// Exit status when some inputs failed; the others were processed.
const EXIT_SOME_FAILED: u8 = 1;
/// Exit status after Ctrl-C: the images finished so far are written, whole, and in the report.
const EXIT_INTERRUPTED: u8 = 130;
/// Exit status when the command could not run at all (bad arguments, unreadable weights or
/// labels, no GPU adapter, unwritable output directory).
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "gradcam",
    version,
    about = "Grad-CAM heatmaps and classification on the GPU (EfficientNet-Lite0, WGSL on wgpu)",
    after_help = "Exit status: 0 every input processed; 1 some inputs failed (each named on stderr; \
                  the others were processed); 2 usage error, unreadable weights or labels, no GPU \
                  adapter, or an output directory that cannot be written; 130 interrupted by Ctrl-C \
                  (the images finished so far are written whole and listed in the report).\n\n\
                  Environment: WGPU_BACKEND (vulkan, metal, dx12, gl; comma-separated) limits the \
                  backends tried; WGPU_ADAPTER_NAME picks an adapter by name substring, like --adapter."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Explain images with Grad-CAM: DIR/<stem>.png is the heatmap over the image at its own
    /// size, DIR/report.json lists each image's class, label, score and top-5.
    ///
    /// Outputs are written atomically and never replace an input; inputs with the same stem get
    /// <stem>-2, <stem>-3, ... in input order.
    Explain {
        /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF, ...) or directories of them.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Target layer: `head` (the head conv's output after its ReLU6, 7×7) or `blocks.N` for
        /// N = 0..15 (the output of MBConv block N).
        #[arg(long, default_value = "head", value_name = "LAYER")]
        layer: String,
        /// Explain this class for every image instead of each image's predicted class.
        #[arg(long, value_name = "N")]
        class: Option<u32>,
        /// Heatmap colours: jet (OpenCV's, as pytorch-grad-cam), turbo, viridis, inferno, magma.
        #[arg(long, default_value = "jet", value_parser = parse_colormap, value_name = "NAME")]
        colormap: Colormap,
        /// Weight of the image in the overlay, in [0, 1]; the heatmap gets 1 - W.
        #[arg(long, default_value_t = 0.5, value_parser = parse_weight, value_name = "W")]
        image_weight: f32,
        /// Also write DIR/<stem>.safetensors with `cam` (f32 [224, 224], comparable with
        /// pytorch-grad-cam's output), `cam_grid` (f32 [h, w], before upsampling, after ReLU) and
        /// `logits` (f32 [classes]).
        #[arg(long)]
        raw: bool,
        /// Images per GPU batch (default: as many as the adapter's largest storage binding holds,
        /// at most 32). Larger batches are split into GPU batches that fit.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        batch: Option<u32>,
        /// Print GPU time per stage (preprocess, forward, backward, cam, overlay; from timestamp
        /// queries where the adapter has them), CPU decode and encode time, and GPU buffer bytes.
        #[arg(long)]
        profile: bool,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Classify images: one JSON line per image on stdout,
    /// {"image": PATH, "top": [{"class": I, "label": "...", "score": P}, ...]},
    /// with softmax probabilities. A failing image gets an error line on stderr.
    Classify {
        /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF, ...) or directories of them.
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
        /// How many classes to list per image.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
        top: u32,
        /// Images per GPU batch.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
        batch: u32,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args, Debug)]
struct Common {
    /// EfficientNet-Lite0 weights (safetensors, tensor names as in the PyTorch checkpoint).
    /// Default: the built-in ImageNet model.
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Class labels, one per line in class order. Default: ImageNet's for 1000 classes,
    /// `class N` otherwise.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Use the adapter whose name contains this (case-insensitive), e.g. "llvmpipe" or "nvidia".
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
    /// Refuse images larger than this many pixels (checked before decoding; such an image is an
    /// error naming it, the others go on).
    #[arg(long, value_name = "N", default_value_t = gradcam::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
}

fn parse_colormap(s: &str) -> Result<Colormap, String> {
    s.parse().map_err(|e: gradcam::Error| e.to_string())
}

fn parse_weight(s: &str) -> Result<f32, String> {
    let w: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&w) {
        Ok(w)
    } else {
        Err(format!("{w} is outside [0, 1]"))
    }
}

/// File extensions taken from a directory given as an input.
const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "tga", "pnm", "ppm", "pgm", "qoi",
    "ico",
];

/// Inputs as given, with each directory replaced by the image files in it (by extension,
/// sorted by name, not recursive).
fn expand_inputs(inputs: Vec<PathBuf>) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        if !input.is_dir() {
            out.push(input);
            continue;
        }
        let entries = std::fs::read_dir(&input).map_err(|e| format!("{}: {e}", input.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                        IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())
                    })
            })
            .collect();
        files.sort();
        out.extend(files);
    }
    if out.is_empty() {
        return Err("no images among the inputs".into());
    }
    Ok(out)
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    let inputs = match &mut cli.command {
        Command::Classify { images, .. } | Command::Explain { images, .. } => images,
    };
    match expand_inputs(std::mem::take(inputs)) {
        Ok(expanded) => *inputs = expanded,
        Err(e) => return fail_setup(e),
    }
    match cli.command {
        Command::Classify {
            images,
            top,
            batch,
            common,
        } => classify(&images, top as usize, batch, &common),
        Command::Explain {
            images,
            out,
            layer,
            class,
            colormap,
            image_weight,
            raw,
            batch,
            profile,
            quiet,
            common,
        } => {
            let options = ExplainOptions {
                layer,
                colormap,
                image_weight,
            };
            let run = RunOptions {
                class,
                raw,
                batch,
                profile,
                quiet,
            };
            explain(&images, &out, options, &run, &common)
        }
    }
}

fn fail_setup(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("gradcam: error: {e}");
    ExitCode::from(EXIT_USAGE)
}

/// A failure's message, starting with the file's name (errors from decoding already do).
fn failure_message(path: &Path, e: impl std::fmt::Display) -> String {
    let msg = e.to_string();
    if msg.starts_with(&path.display().to_string()) {
        msg
    } else {
        format!("{}: {msg}", path.display())
    }
}

fn report_failure(path: &Path, e: impl std::fmt::Display) {
    eprintln!("gradcam: error: {}", failure_message(path, e));
}

struct Setup {
    engine: Engine,
    labels: Labels,
    weights: String,
}

fn setup(common: &Common) -> Result<Setup, gradcam::Error> {
    let model = match &common.weights {
        Some(path) => Model::load(path)?,
        None => Model::from_bytes(Path::new(DEFAULT_WEIGHTS_NAME), DEFAULT_WEIGHTS.to_vec())?,
    };
    let classes = model.classes as usize;
    let builtin = Path::new("<built-in imagenet_classes.txt>");
    let labels = match (&common.labels, &common.weights) {
        (Some(path), _) => Labels::load(path, classes)?,
        (None, _) if classes == 1000 => Labels::parse(builtin, DEFAULT_LABELS, classes)?,
        (None, _) => Labels::numbered(classes),
    };
    let ctx = GpuContext::new(&AdapterOptions {
        name: common.adapter.clone(),
    })?;
    let weights = common
        .weights
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| DEFAULT_WEIGHTS_NAME.to_string());
    Ok(Setup {
        engine: Engine::new(Arc::new(ctx), model),
        labels,
        weights,
    })
}

fn top_json(labels: &Labels, logits: &[f32], k: usize) -> Vec<serde_json::Value> {
    gradcam::top_k(&gradcam::softmax(logits), k)
        .into_iter()
        .map(|(class, score)| json!({"class": class, "label": labels.get(class), "score": score}))
        .collect()
}

fn classify(paths: &[PathBuf], top: usize, batch: u32, common: &Common) -> ExitCode {
    let Setup { engine, labels, .. } = match setup(common) {
        Ok(s) => s,
        Err(e) => return fail_setup(e),
    };
    let capacity = batch.min(engine.max_batch()).min(paths.len() as u32).max(1);
    let max_pixels = common.max_pixels;
    let mut forward = match engine.forward(capacity) {
        Ok(f) => f,
        Err(e) => return fail_setup(e),
    };
    let mut failed = false;
    let stdout = std::io::stdout();
    for chunk in paths.chunks(capacity as usize) {
        let decoded = decode_all(chunk, max_pixels, &mut failed);
        if decoded.is_empty() {
            continue;
        }
        let refs: Vec<&image::RgbImage> = decoded.iter().map(|(_, i)| i).collect();
        let logits = match engine.classify(&mut forward, &refs) {
            Ok(l) => l,
            Err(e) => {
                for (path, _) in &decoded {
                    report_failure(path, &e);
                }
                failed = true;
                continue;
            }
        };
        let mut out = stdout.lock();
        for ((path, _), logits) in decoded.iter().zip(&logits) {
            let line =
                json!({"image": path.display().to_string(), "top": top_json(&labels, logits, top)});
            if writeln!(out, "{line}").is_err() {
                return ExitCode::from(EXIT_SOME_FAILED);
            }
        }
    }
    ExitCode::from(if failed { EXIT_SOME_FAILED } else { EXIT_OK })
}

/// Decodes `paths`; each failure is reported on stderr.
fn decode_all<'a>(
    paths: &'a [PathBuf],
    max_pixels: u64,
    failed: &mut bool,
) -> Vec<(&'a PathBuf, image::RgbImage)> {
    let mut decoded = Vec::with_capacity(paths.len());
    for path in paths {
        match gradcam::decode_image_limited(path, max_pixels) {
            Ok(img) => decoded.push((path, img)),
            Err(e) => {
                report_failure(path, &e);
                *failed = true;
            }
        }
    }
    decoded
}

/// Makes `dir` and checks a file can be created in it.
fn prepare_output_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("{}: cannot create output directory: {e}", dir.display()))?;
    let probe = dir.join(format!(".gradcam-write-test.{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("{}: output directory is not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The explain flags that shape the run rather than the explanation.
struct RunOptions {
    class: Option<u32>,
    raw: bool,
    batch: Option<u32>,
    profile: bool,
    quiet: bool,
}

/// One batch on its way from the decoder thread to the GPU.
struct Decoded<'a> {
    paths: &'a [PathBuf],
    images: Vec<(usize, image::RgbImage)>,
    errors: Vec<(usize, String)>,
}

/// One batch on its way from the GPU to the writer thread.
struct Explained<'a> {
    paths: &'a [PathBuf],
    results: Vec<(usize, Result<Explanation, String>)>,
    errors: Vec<(usize, String)>,
}

fn explain(
    paths: &[PathBuf],
    out_dir: &Path,
    options: ExplainOptions,
    run: &RunOptions,
    common: &Common,
) -> ExitCode {
    let started = Instant::now();
    let Setup {
        engine,
        labels,
        weights,
    } = match setup(common) {
        Ok(s) => s,
        Err(e) => return fail_setup(e),
    };
    if let Err(e) = engine.model().target_layer(&options.layer) {
        return fail_setup(e);
    }
    let classes = engine.model().classes;
    if let Some(c) = run.class {
        if c >= classes {
            return fail_setup(format!(
                "class {c} is out of range: this model has classes 0..={}",
                classes - 1
            ));
        }
    }
    if let Err(e) = prepare_output_dir(out_dir) {
        return fail_setup(e);
    }
    // The GPU batch: what was asked, or what fits the adapter's storage bindings (at most 32).
    let requested = run.batch.unwrap_or(32);
    let capacity = requested
        .min(engine.max_batch())
        .min(paths.len() as u32)
        .max(1);
    let mut explainer = match engine.explainer(capacity, options.clone()) {
        Ok(x) => x,
        Err(e) => return fail_setup(e),
    };
    let extensions: &[&'static str] = if run.raw {
        &["png", "safetensors"]
    } else {
        &["png"]
    };
    let mut names = OutputNames::new(out_dir, paths, extensions);
    let target = run.class.map(Target::Class).unwrap_or(Target::Predicted);
    let grid = explainer.grid_size();

    let progress = if run.quiet || paths.len() < 2 {
        indicatif::ProgressBar::hidden()
    } else {
        // Draws only when stderr is a terminal.
        let bar = indicatif::ProgressBar::new(paths.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    let say = |msg: String| progress.suspend(|| eprintln!("gradcam: error: {msg}"));

    let mut profiler = run.profile.then(|| Profiler::new(engine.context(), 8));
    let mut stage_times: Vec<(String, f64)> = Vec::new();
    let mut gpu_seconds = 0.0;
    let (mut decode_seconds, mut encode_seconds) = (0.0, 0.0);
    let mut entries: Vec<serde_json::Value> = Vec::with_capacity(paths.len());
    let mut failed = 0usize;

    // Ctrl-C stops taking new batches; what is in flight is finished and written whole, then the
    // report lists what was done. A second Ctrl-C ends the process at once (outputs are written
    // to temporary names and renamed, so even then no output file is ever half-written).
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
        });
    }
    let stop = || interrupted.load(std::sync::atomic::Ordering::SeqCst);

    // Three stages overlap: the next batch decodes and the previous one's PNGs are encoded and
    // written on CPU threads while the GPU explains the current one.
    std::thread::scope(|scope| {
        let (to_gpu, from_decoder) = std::sync::mpsc::sync_channel::<Decoded>(1);
        let (to_writer, from_gpu) = std::sync::mpsc::sync_channel::<Explained>(1);
        let max_pixels = common.max_pixels;
        let decoder = scope.spawn(move || {
            let mut seconds = 0.0;
            for chunk in paths.chunks(capacity as usize) {
                if stop() {
                    break;
                }
                let t = Instant::now();
                let mut batch = Decoded {
                    paths: chunk,
                    images: Vec::with_capacity(chunk.len()),
                    errors: Vec::new(),
                };
                for (i, path) in chunk.iter().enumerate() {
                    match gradcam::decode_image_limited(path, max_pixels) {
                        Ok(img) => batch.images.push((i, img)),
                        Err(e) => batch.errors.push((i, e.to_string())),
                    }
                }
                seconds += t.elapsed().as_secs_f64();
                if to_gpu.send(batch).is_err() {
                    break;
                }
            }
            seconds
        });
        let labels = &labels;
        let names = &mut names;
        let say = &say;
        let progress = &progress;
        let writer = scope.spawn(move || {
            let mut seconds = 0.0;
            let mut entries = Vec::new();
            let mut failed = 0usize;
            for batch in from_gpu {
                let t = Instant::now();
                let mut chunk_entries: Vec<Option<serde_json::Value>> =
                    vec![None; batch.paths.len()];
                for (i, error) in batch.errors {
                    say(error.clone());
                    chunk_entries[i] = Some(
                        json!({"image": batch.paths[i].display().to_string(), "error": error}),
                    );
                    failed += 1;
                }
                for (i, result) in batch.results {
                    let path = &batch.paths[i];
                    let entry = result.and_then(|r| {
                        write_outputs(path, &r, names, run.raw, labels, grid)
                            .map_err(|e| e.to_string())
                    });
                    chunk_entries[i] = Some(match entry {
                        Ok(v) => v,
                        Err(e) => {
                            say(failure_message(path, &e));
                            failed += 1;
                            json!({"image": path.display().to_string(), "error": e})
                        }
                    });
                }
                progress.inc(batch.paths.len() as u64);
                entries.extend(chunk_entries.into_iter().flatten());
                seconds += t.elapsed().as_secs_f64();
            }
            (entries, failed, seconds)
        });

        for batch in from_decoder {
            if stop() {
                break;
            }
            let t = Instant::now();
            let results = if batch.images.is_empty() {
                Vec::new()
            } else {
                let index: Vec<usize> = batch.images.iter().map(|(i, _)| *i).collect();
                let images: Vec<&image::RgbImage> =
                    batch.images.iter().map(|(_, img)| img).collect();
                let out = run_batch(
                    &mut explainer,
                    &images,
                    target,
                    run.raw,
                    profiler.as_mut(),
                    &mut stage_times,
                );
                index.into_iter().zip(out).collect()
            };
            gpu_seconds += t.elapsed().as_secs_f64();
            let explained = Explained {
                paths: batch.paths,
                results,
                errors: batch.errors,
            };
            if to_writer.send(explained).is_err() {
                break;
            }
        }
        drop(to_writer);
        decode_seconds = decoder.join().unwrap_or(0.0);
        let (e, f, s) = writer.join().unwrap_or_default();
        entries = e;
        failed = f;
        encode_seconds = s;
    });
    progress.finish_and_clear();

    let seconds = started.elapsed().as_secs_f64();
    let was_interrupted = stop();
    let done = entries.len() - failed;
    let gpu_bytes = explainer.gpu_bytes();
    let report = json!({
        "weights": weights,
        "architecture": engine.model().architecture,
        "layer": options.layer,
        "colormap": options.colormap.name(),
        "image_weight": options.image_weight,
        "adapter": engine.context().adapter_info.name,
        "backend": format!("{:?}", engine.context().adapter_info.backend).to_lowercase(),
        "batch": capacity,
        "images": entries,
        "totals": {
            "images": paths.len(),
            "explained": done,
            "failed": failed,
            "not_started": paths.len() - entries.len(),
            "interrupted": was_interrupted,
            "seconds": seconds,
            "images_per_second": done as f64 / seconds.max(1e-9),
        },
    });
    if run.profile {
        print_profile(
            &stage_times,
            profiler.as_ref().is_some_and(Profiler::enabled),
            gpu_seconds,
            decode_seconds,
            encode_seconds,
            gpu_bytes,
            capacity,
            paths.len(),
        );
    }
    let text = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
    if let Err(e) = write_atomic(&out_dir.join("report.json"), text.as_bytes()) {
        eprintln!("gradcam: error: {e}");
        return ExitCode::from(EXIT_SOME_FAILED);
    }
    if was_interrupted {
        eprintln!(
            "gradcam: interrupted: {done} of {} images explained, listed in {}",
            paths.len(),
            out_dir.join("report.json").display()
        );
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    ExitCode::from(if failed > 0 {
        EXIT_SOME_FAILED
    } else {
        EXIT_OK
    })
}

#[allow(clippy::too_many_arguments)] // reason: one table from the run's counters
fn print_profile(
    stages: &[(String, f64)],
    timestamps: bool,
    gpu_wall: f64,
    decode: f64,
    encode: f64,
    gpu_bytes: u64,
    batch: u32,
    images: usize,
) {
    let per = |s: f64| s * 1e3 / images.max(1) as f64;
    eprintln!("profile ({images} images, batch {batch}):");
    if timestamps {
        for (stage, t, _) in gradcam::gpu::profile::totals(stages) {
            eprintln!(
                "  GPU {stage:<12} {:10.1} ms {:8.2} ms/image",
                t * 1e3,
                per(t)
            );
        }
    } else {
        eprintln!("  (no GPU timestamps on this adapter: wall-clock only)");
    }
    eprintln!(
        "  GPU wall (upload..readback) {:10.1} ms {:8.2} ms/image",
        gpu_wall * 1e3,
        per(gpu_wall)
    );
    eprintln!(
        "  CPU decode       {:10.1} ms {:8.2} ms/image",
        decode * 1e3,
        per(decode)
    );
    eprintln!(
        "  CPU encode+write {:10.1} ms {:8.2} ms/image",
        encode * 1e3,
        per(encode)
    );
    eprintln!(
        "  GPU buffers: {:.1} MB ({:.1} MB per image of the batch)",
        gpu_bytes as f64 / 1e6,
        gpu_bytes as f64 / 1e6 / f64::from(batch)
    );
}

/// Explains one decoded batch; if the batch as a whole fails on the GPU, each image is retried
/// alone so one bad image does not take the others with it.
fn run_batch(
    explainer: &mut Explainer,
    images: &[&image::RgbImage],
    target: Target,
    raw: bool,
    profiler: Option<&mut Profiler>,
    stage_times: &mut Vec<(String, f64)>,
) -> Vec<Result<Explanation, String>> {
    let what = Readback {
        cam: raw,
        cam_grid: raw,
        overlay: true,
    };
    let targets = vec![target; images.len()];
    let whole = match profiler {
        Some(p) => explainer.upload(images, &targets).and_then(|()| {
            stage_times.extend(explainer.run_profiled(p)?);
            explainer.read(what)
        }),
        None => explainer.explain(images, &targets, what),
    };
    match whole {
        Ok(r) => r.into_iter().map(Ok).collect(),
        Err(e) if images.len() == 1 => vec![Err(e.to_string())],
        Err(_) => images
            .iter()
            .map(|img| {
                explainer
                    .explain(&[img], &[target], what)
                    .map_err(|e| e.to_string())
                    .and_then(|mut r| r.pop().ok_or_else(|| "no result".to_string()))
            })
            .collect(),
    }
}

fn write_outputs(
    path: &Path,
    r: &Explanation,
    names: &mut OutputNames,
    raw: bool,
    labels: &Labels,
    grid: (u32, u32),
) -> Result<serde_json::Value, gradcam::Error> {
    let stem = names.next(path);
    let png_path = names.path(&stem, "png");
    let overlay = r
        .overlay
        .as_ref()
        .ok_or_else(|| gradcam::Error::InvalidRequest("no overlay was produced".into()))?;
    let rgb = image::DynamicImage::ImageRgba8(overlay.clone()).to_rgb8();
    let mut png = Vec::new();
    rgb.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| gradcam::Error::Image {
            path: png_path.clone(),
            reason: format!("cannot encode PNG: {e}"),
        })?;
    write_atomic(&png_path, &png)?;
    let probs = gradcam::softmax(&r.logits);
    let class = r.class as usize;
    let mut entry = json!({
        "image": path.display().to_string(),
        "output": png_path.display().to_string(),
        "width": overlay.width(),
        "height": overlay.height(),
        "class": class,
        "label": labels.get(class),
        "score": probs.get(class).copied().unwrap_or(0.0),
        "top": top_json(labels, &r.logits, 5),
    });
    if raw {
        let raw_path = names.path(&stem, "safetensors");
        let cam = r.cam.as_deref().unwrap_or_default();
        let grid_values = r.cam_grid.as_deref().unwrap_or_default();
        let tensors = [
            (
                "cam",
                vec![gradcam::CAM_SIZE as usize, gradcam::CAM_SIZE as usize],
                cam,
            ),
            (
                "cam_grid",
                vec![grid.0 as usize, grid.1 as usize],
                grid_values,
            ),
            ("logits", vec![r.logits.len()], &r.logits[..]),
        ];
        let views = tensors
            .iter()
            .map(|(name, shape, values)| {
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    shape.clone(),
                    bytemuck::cast_slice(values),
                )
                .map(|v| (name.to_string(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| gradcam::Error::InvalidRequest(format!("raw output: {e}")))?;
        let bytes = safetensors::serialize(views, None)
            .map_err(|e| gradcam::Error::InvalidRequest(format!("raw output: {e}")))?;
        write_atomic(&raw_path, &bytes)?;
        entry["raw"] = json!(raw_path.display().to_string());
    }
    Ok(entry)
}

//! `gradcam`: Grad-CAM heatmaps and classification on the GPU.

mod explain;
mod inputs;
mod log;
mod signals;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use gradcam::model::Arch;
use gradcam::output::escape_path;
use gradcam::{AdapterOptions, Engine, GpuContext, Labels, Model};
use serde_json::json;

/// The default model, compiled in so the binary works from any directory.
const DEFAULT_WEIGHTS: &[u8] = include_bytes!("../../../weights/efficientnet_lite0.safetensors");
const DEFAULT_WEIGHTS_NAME: &str = "<built-in efficientnet_lite0.safetensors>";
const DEFAULT_LABELS: &str = include_str!("../../../weights/imagenet_classes.txt");

/// Exit status when every input was processed.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status when some inputs failed; the others were processed.
pub(crate) const EXIT_SOME_FAILED: u8 = 1;
/// Exit status when the command could not run at all (bad arguments, unreadable weights or
/// labels, no GPU adapter, unwritable output directory).
pub(crate) const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "gradcam",
    version,
    about = "Grad-CAM heatmaps and classification on the GPU (EfficientNet-Lite0, WGSL on wgpu)",
    after_help = "Exit status: 0 every input processed; 1 some inputs failed (each named on stderr; \
                  the others were processed); 2 usage error, unreadable weights or labels, no GPU \
                  adapter, an output folder that cannot be written or is in use by another run; \
                  128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP: the images \
                  finished so far are written whole and listed in the report; resume with \
                  --resume).\n\n\
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
    /// <stem>-2, <stem>-3, ... in input order. Images found in sub-folders of a folder given as
    /// input go to the same sub-folders of DIR. DIR/journal.jsonl records each finished input as
    /// it is written; a stopped or killed run continues with --resume. One run at a time holds
    /// DIR (DIR/.gradcam.lock).
    Explain(explain::Args),
    /// List the layers a Grad-CAM can target (the names `explain --layer` takes), with their
    /// shapes; the default is marked.
    Layers {
        /// Weights (safetensors). Default: the built-in ImageNet model.
        #[arg(long, value_name = "FILE")]
        weights: Option<PathBuf>,
        /// The architecture of --weights, when recognising it from the tensors is not wanted.
        #[arg(long, value_name = "NAME")]
        arch: Option<String>,
    },
    /// Classify images: one JSON line per image on stdout,
    /// {"image": PATH, "top": [{"class": I, "label": "...", "score": P}, ...]},
    /// with softmax probabilities. A failing image gets an error line on stderr.
    Classify {
        /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF, ...) or folders of them (searched
        /// recursively).
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
pub(crate) struct Common {
    /// Weights (safetensors, as `safetensors.torch.save_file(model.state_dict(), FILE)` writes
    /// them) of a torchvision ResNet-18/34/50/101/152 or an EfficientNet-Lite0–4; the
    /// architecture is recognised from the tensors. Default: the built-in ImageNet
    /// EfficientNet-Lite0.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// The architecture of --weights (resnet50, efficientnet-lite2, ...), instead of recognising
    /// it.
    #[arg(long, value_name = "NAME")]
    pub arch: Option<String>,
    /// Input normalisation mean per RGB channel after x/255, e.g. 0.485,0.456,0.406 (default: the
    /// architecture's, or the weights file's `mean` header).
    #[arg(long, value_name = "R,G,B")]
    pub mean: Option<String>,
    /// Input normalisation divisor per RGB channel, e.g. 0.229,0.224,0.225 (default: the
    /// architecture's, or the weights file's `std` header).
    #[arg(long, value_name = "R,G,B")]
    pub std: Option<String>,
    /// Class labels, one per line in class order. Default: ImageNet's for 1000 classes,
    /// `class N` otherwise.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Use the adapter whose name contains this (case-insensitive), e.g. "llvmpipe" or "nvidia".
    #[arg(long, value_name = "NAME")]
    pub adapter: Option<String>,
    /// Refuse images larger than this many pixels (checked before decoding; such an image is an
    /// error naming it, the others go on).
    #[arg(long, value_name = "N", default_value_t = gradcam::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// Points `XDG_RUNTIME_DIR` at a private temporary folder when it is unset, as Vulkan drivers
/// complain on every start without one. The folder is removed when the value is dropped.
fn private_runtime_dir() -> Option<tempfile::TempDir> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|v| !v.is_empty()) {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("gradcam-runtime-")
        .tempdir()
        .ok()?;
    // Still one thread: nothing else reads the environment concurrently.
    std::env::set_var("XDG_RUNTIME_DIR", dir.path());
    Some(dir)
}

fn main() -> ExitCode {
    let _runtime_dir = private_runtime_dir();
    // An internal error is one line on stderr like every other message (the run still writes
    // its report where it can: panics in a worker are caught).
    std::panic::set_hook(Box::new(|info| {
        log::error(format!("internal error: {info}"))
    }));
    let cli = Cli::parse();
    match cli.command {
        Command::Layers { weights, arch } => {
            match load_model(weights.as_deref(), arch.as_deref()) {
                Ok(model) => print_layers(&model),
                Err(e) => fail_setup(e),
            }
        }
        Command::Classify {
            images,
            top,
            batch,
            common,
        } => match inputs::expand(images, &Default::default()) {
            Ok(inputs) => {
                let paths: Vec<PathBuf> = inputs.into_iter().map(|i| i.path).collect();
                classify(&paths, top as usize, batch, &common)
            }
            Err(e) => fail_setup(e),
        },
        Command::Explain(args) => explain::run(args),
    }
}

pub(crate) fn fail_setup(e: impl std::fmt::Display) -> ExitCode {
    log::error(e);
    ExitCode::from(EXIT_USAGE)
}

/// A failure's message, starting with the file's name (errors from decoding already do).
pub(crate) fn failure_message(path: &Path, e: impl std::fmt::Display) -> String {
    let msg = e.to_string();
    let shown = escape_path(path);
    if msg.starts_with(&shown) {
        msg
    } else {
        format!("{shown}: {msg}")
    }
}

fn report_failure(path: &Path, e: impl std::fmt::Display) {
    log::error(failure_message(path, e));
}

pub(crate) struct Setup {
    pub engine: Engine,
    pub labels: Labels,
    pub weights: String,
}

/// The model the common options name, with their normalisation.
pub(crate) fn load_common(common: &Common) -> Result<Model, gradcam::Error> {
    let mut model = load_model(common.weights.as_deref(), common.arch.as_deref())?;
    if common.mean.is_some() || common.std.is_some() {
        let parse = |flag: &str, text: &Option<String>, default: [f32; 3]| match text {
            Some(t) => gradcam::model::parse_channels(t)
                .map_err(|e| gradcam::Error::InvalidRequest(format!("--{flag}: {e}"))),
            None => Ok(default),
        };
        let mean = parse("mean", &common.mean, model.mean)?;
        let std = parse("std", &common.std, model.std)?;
        model.set_normalization(mean, std)?;
    }
    Ok(model)
}

/// The model in `weights` (as architecture `arch` when given), or the built-in one.
pub(crate) fn load_model(
    weights: Option<&Path>,
    arch: Option<&str>,
) -> Result<Model, gradcam::Error> {
    let arch = arch.map(Arch::parse).transpose()?;
    match weights {
        Some(path) => Model::load_as(path, arch),
        None => Model::from_bytes_as(
            Path::new(DEFAULT_WEIGHTS_NAME),
            DEFAULT_WEIGHTS.to_vec(),
            arch,
        ),
    }
}

/// The layers a Grad-CAM can target, one per line with its shape, the default marked.
pub(crate) fn print_layers(model: &Model) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let width = model
        .target_layers
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut lines = vec![format!("{:<width$}  shape (C × H × W)", "layer")];
    for (name, tensor) in &model.target_layers {
        let t = &model.tensors[*tensor];
        let default = if *name == model.default_layer {
            "  (default)"
        } else {
            ""
        };
        lines.push(format!(
            "{name:<width$}  {} × {} × {}{default}",
            t.channels, t.height, t.width
        ));
    }
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(EXIT_SOME_FAILED);
        }
    }
    ExitCode::from(EXIT_OK)
}

/// The labels and the GPU for `model`.
pub(crate) fn setup(common: &Common, model: Model) -> Result<Setup, gradcam::Error> {
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

pub(crate) fn top_json(labels: &Labels, logits: &[f32], k: usize) -> Vec<serde_json::Value> {
    gradcam::top_k(&gradcam::softmax(logits), k)
        .into_iter()
        .map(|(class, score)| json!({"class": class, "label": labels.get(class), "score": score}))
        .collect()
}

fn classify(paths: &[PathBuf], top: usize, batch: u32, common: &Common) -> ExitCode {
    let Setup { engine, labels, .. } = match load_common(common).and_then(|m| setup(common, m)) {
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
            let line = json!({"image": escape_path(path), "top": top_json(&labels, logits, top)});
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

//! `gradcam`: Grad-CAM heatmaps and classification on the GPU.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use gradcam::{AdapterOptions, Engine, GpuContext, Labels, Model};

/// The default model, compiled in so the binary works from any directory.
const DEFAULT_WEIGHTS: &[u8] = include_bytes!("../../weights/efficientnet_lite0.safetensors");
const DEFAULT_WEIGHTS_NAME: &str = "<built-in efficientnet_lite0.safetensors>";
const DEFAULT_LABELS: &str = include_str!("../../weights/imagenet_classes.txt");

/// Exit status when every input was processed.
const EXIT_OK: u8 = 0;
/// Exit status when some inputs failed; the others were processed.
const EXIT_SOME_FAILED: u8 = 1;
/// Exit status when the command could not run at all (bad arguments, unreadable weights or
/// labels, no GPU adapter).
const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "gradcam",
    version,
    about = "Grad-CAM heatmaps and classification on the GPU (EfficientNet-Lite0, WGSL on wgpu)",
    after_help = "Exit status: 0 every input processed; 1 some inputs failed (the others were \
                  processed); 2 usage error, unreadable weights or labels, or no GPU adapter.\n\n\
                  Environment: WGPU_BACKEND (vulkan, metal, dx12, gl; comma-separated) limits the \
                  backends tried; WGPU_ADAPTER_NAME picks an adapter by name substring, like --adapter."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Classify images: one JSON line per image on stdout,
    /// {"image": PATH, "top": [{"class": I, "label": "...", "score": P}, ...]},
    /// with softmax probabilities. A failing image gets an error line on stderr.
    Classify {
        /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF, ...).
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
    /// Class labels, one per line in class order. Default: ImageNet's for the built-in model,
    /// `class N` for other weights.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Use the adapter whose name contains this (case-insensitive), e.g. "llvmpipe" or "nvidia".
    #[arg(long, value_name = "NAME")]
    adapter: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Classify {
            images,
            top,
            batch,
            common,
        } => classify(&images, top as usize, batch, &common),
    }
}

fn fail_setup(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("gradcam: error: {e}");
    ExitCode::from(EXIT_USAGE)
}

struct Setup {
    engine: Engine,
    labels: Labels,
}

fn setup(common: &Common) -> Result<Setup, gradcam::Error> {
    let model = match &common.weights {
        Some(path) => Model::load(path)?,
        None => Model::from_bytes(Path::new(DEFAULT_WEIGHTS_NAME), DEFAULT_WEIGHTS.to_vec())?,
    };
    let classes = model.classes as usize;
    let labels = match (&common.labels, &common.weights) {
        (Some(path), _) => Labels::load(path, classes)?,
        (None, None) => Labels::parse(
            Path::new("<built-in imagenet_classes.txt>"),
            DEFAULT_LABELS,
            classes,
        )?,
        (None, Some(_)) if classes == 1000 => Labels::parse(
            Path::new("<built-in imagenet_classes.txt>"),
            DEFAULT_LABELS,
            classes,
        )?,
        (None, Some(_)) => Labels::numbered(classes),
    };
    let ctx = GpuContext::new(&AdapterOptions {
        name: common.adapter.clone(),
    })?;
    Ok(Setup {
        engine: Engine::new(Arc::new(ctx), model),
        labels,
    })
}

fn classify(paths: &[PathBuf], top: usize, batch: u32, common: &Common) -> ExitCode {
    let Setup { engine, labels } = match setup(common) {
        Ok(s) => s,
        Err(e) => return fail_setup(e),
    };
    let capacity = batch.min(engine.max_batch()).min(paths.len() as u32).max(1);
    let mut forward = match engine.forward(capacity) {
        Ok(f) => f,
        Err(e) => return fail_setup(e),
    };
    let mut failed = false;
    let stdout = std::io::stdout();
    for chunk in paths.chunks(capacity as usize) {
        let mut decoded = Vec::with_capacity(chunk.len());
        for path in chunk {
            match gradcam::decode_image(path) {
                Ok(img) => decoded.push((path, img)),
                Err(e) => {
                    eprintln!("gradcam: error: {e}");
                    failed = true;
                }
            }
        }
        if decoded.is_empty() {
            continue;
        }
        let refs: Vec<&image::RgbImage> = decoded.iter().map(|(_, i)| i).collect();
        let logits = match engine.classify(&mut forward, &refs) {
            Ok(l) => l,
            Err(e) => {
                for (path, _) in &decoded {
                    eprintln!("gradcam: error: {}: {e}", path.display());
                }
                failed = true;
                continue;
            }
        };
        let mut out = stdout.lock();
        for ((path, _), logits) in decoded.iter().zip(&logits) {
            let probs = gradcam::softmax(logits);
            let top: Vec<serde_json::Value> = gradcam::top_k(&probs, top)
                .into_iter()
                .map(|(class, score)| {
                    serde_json::json!({"class": class, "label": labels.get(class), "score": score})
                })
                .collect();
            let line = serde_json::json!({"image": path.display().to_string(), "top": top});
            if writeln!(out, "{line}").is_err() {
                return ExitCode::from(EXIT_SOME_FAILED);
            }
        }
    }
    ExitCode::from(if failed { EXIT_SOME_FAILED } else { EXIT_OK })
}

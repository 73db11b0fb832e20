//! The command line as clap parses it: every subcommand's arguments and their help, and nothing
//! else. `config.rs` turns them into a checked configuration; the runners (`explain.rs`,
//! `classify.rs`, `layers.rs`) carry it out and return the exit status.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gradcam::{Colormap, Method, TargetScore};

#[derive(Parser, Debug)]
#[command(
    name = "gradcam",
    version,
    about = "Grad-CAM heatmaps and classification on the GPU (torchvision's and timm's CNN \
             families from safetensors, EfficientNet-Lite0 built in, or any ONNX file of the \
             supported ops; WGSL on wgpu)",
    after_help = "Exit status: 0 every input processed; 1 some inputs failed (each named on stderr; \
                  the others were processed); 2 usage error, unreadable weights or labels, no GPU \
                  adapter, an output folder that cannot be written or is in use by another run; \
                  128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP: the images \
                  finished so far are written whole and listed in the report; resume with \
                  --resume).\n\n\
                  Environment: WGPU_BACKEND (vulkan, metal, dx12, gl; comma-separated) limits the \
                  backends tried; WGPU_ADAPTER_NAME picks an adapter by name substring, like --adapter."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Explain images with Grad-CAM: DIR/<stem>.png is the heatmap over the image at its own
    /// size, DIR/report.json lists each image's class, label, score and top-5.
    ///
    /// Outputs are written atomically and never replace an input; inputs with the same stem get
    /// <stem>-2, <stem>-3, ... in input order. Images found in sub-folders of a folder given as
    /// input go to the same sub-folders of DIR. DIR/journal.jsonl records each finished input as
    /// it is written; a stopped or killed run continues with --resume. One run at a time holds
    /// DIR (DIR/.gradcam.lock).
    Explain(ExplainArgs),
    /// List the layers a Grad-CAM can target (the names `explain --layer` takes), with their
    /// shapes; the default is marked.
    Layers(LayersArgs),
    /// Classify images: one JSON line per image on stdout,
    /// {"image": PATH, "top": [{"class": I, "label": "...", "score": P}, ...]},
    /// with softmax probabilities. A failing image gets an error line on stderr.
    Classify(ClassifyArgs),
    /// Score explanations by how the model's confidence moves when the input is perturbed by
    /// them (faithfulness metrics, each computed on the GPU with the explanation it scores):
    /// DIR/metrics.json and DIR/metrics.csv hold each image's value per method and metric, and
    /// the mean per method, which is also printed as a table. A failing image gets an error line
    /// on stderr and is left out; the others are scored.
    Evaluate(EvaluateArgs),
}

/// The arguments of `evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Image files or folders of them (searched recursively).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Output folder for metrics.json and metrics.csv (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The methods to compare, comma-separated (the names `explain --method` takes; `all`:
    /// every method).
    #[arg(long, default_value = "gradcam", value_name = "M1,M2,...")]
    pub method: String,
    /// The metrics, comma-separated: cam-mult-image-confidence-change, drop-in-confidence and
    /// increase-in-confidence (pytorch-grad-cam's classes of those names: the score on the
    /// input times the CAM, against the clean input's), average-drop and average-increase (the
    /// Grad-CAM++ paper's Average Drop and Increase in Confidence, per image as torch-cam) —
    /// these five are `confidence`, the default, and share one forward pass per batch —;
    /// deletion-auc and insertion-auc (RISE's, as torch-cam: one forward pass per step each);
    /// `all`: every metric.
    #[arg(long, default_value = "confidence", value_name = "NAME,...")]
    pub metric: String,
    /// deletion-auc and insertion-auc: the steps of their curves (default 20, as torch-cam).
    #[arg(long, default_value_t = gradcam::metrics::DEFAULT_STEPS, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub steps: u32,
    /// The score the metrics read for the explained class: softmax (its probability, the
    /// reference's ClassifierOutputSoftmaxTarget) or logit (ClassifierOutputTarget).
    #[arg(long, default_value = "softmax", value_parser = parse_target_score, value_name = "S")]
    pub target_score: TargetScore,
    /// Target layer (as `explain --layer`; default: the model's). Methods made at the input
    /// (saliency, fullgrad) ignore it.
    #[arg(long, value_name = "LAYER")]
    pub layer: Option<String>,
    /// Explain class N for every image (default: each image's predicted class).
    #[arg(long, value_name = "N")]
    pub class: Option<u32>,
    /// Per-image classes: a CSV of `image,class` lines, as `explain --targets`.
    #[arg(long, value_name = "FILE", conflicts_with = "class")]
    pub targets: Option<PathBuf>,
    /// Images per GPU batch.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    /// Scorecam and ablationcam: their forward passes run in chunks of N (as `explain`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub method_batch: Option<u32>,
    /// smooth-gradcam++: noisy copies of the input (as `explain`).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub samples: u32,
    /// smooth-gradcam++: the noise's standard deviation (as `explain`).
    #[arg(long, default_value_t = 0.3, value_parser = parse_noise_std, value_name = "S")]
    pub noise_std: f32,
    /// smooth-gradcam++: the noise's seed (as `explain`).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub seed: u32,
    #[command(flatten)]
    pub common: Common,
}

/// The arguments of `layers`.
#[derive(Args, Debug)]
pub struct LayersArgs {
    /// Weights (safetensors or ONNX). Default: the built-in ImageNet model.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// The architecture of --weights, when recognising it from the tensors is not wanted.
    #[arg(long, value_name = "NAME")]
    pub arch: Option<String>,
    /// Side of the square input, which sets the layers' shapes (default: the model's).
    #[arg(long, value_name = "N")]
    pub input_size: Option<u32>,
}

/// The arguments of `classify`.
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF, ...) or folders of them (searched
    /// recursively).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// How many classes to list per image.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub top: u32,
    /// Images per GPU batch.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,
    #[command(flatten)]
    pub common: Common,
}

/// The options every command that runs the model shares.
#[derive(Args, Debug)]
pub struct Common {
    /// Weights: safetensors, as `safetensors.torch.save_file(model.state_dict(), FILE)` writes
    /// them, of an architecture the engine knows (ResNet, ResNeXt, Wide-ResNet, VGG-16,
    /// MobileNetV2/V3, DenseNet, EfficientNet, EfficientNet-Lite, RegNet, ConvNeXt, Inception-v3,
    /// Xception, timm's ViT and DeiT, torchvision's ViT), recognised from the tensors; or an ONNX
    /// file (`.onnx`). Default: the built-in
    /// ImageNet EfficientNet-Lite0.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// The architecture of --weights (resnet50, efficientnet-lite2, ...), instead of recognising
    /// it.
    #[arg(long, value_name = "NAME")]
    pub arch: Option<String>,
    /// Side of the square input images are resized to (default: the architecture's, 224 for
    /// most, 299 for Inception-v3 and Xception; an ONNX file's static size, or 224 when its
    /// height and width are dynamic).
    #[arg(long, value_name = "N")]
    pub input_size: Option<u32>,
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
    /// Time every candidate kernel variant again on this adapter and replace the cached
    /// choices (tuning is otherwise done once per adapter, driver and version, on GPUs only;
    /// GRADCAM_TUNE=0 turns it off, 1 turns it on for a CPU adapter).
    #[arg(long)]
    pub tune: bool,
    /// Refuse images larger than this many pixels (checked before decoding; such an image is an
    /// error naming it, the others go on).
    #[arg(long, value_name = "N", default_value_t = gradcam::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// The arguments of `explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF, ...) or folders of them (searched
    /// recursively).
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Target layer, by the module path PyTorch users pass to pytorch-grad-cam (`layer4`,
    /// `layer3.1`, `features.30`, `head`, `blocks.N`). Default: the model's (ResNet `layer4`,
    /// VGG-16 `features.30`, VGG-16-BN `features.43`, MobileNetV2 `features.18`,
    /// EfficientNet-Lite `head`). Several, comma-separated (`layer3,layer4`), give
    /// pytorch-grad-cam's multi-layer CAM (--raw's grid is then the first layer's). `--layer
    /// help` (or `gradcam layers`) lists them with their shapes.
    #[arg(long, value_name = "LAYER")]
    pub layer: Option<String>,
    /// Explain this class for every image instead of each image's predicted class.
    #[arg(long, value_name = "N", conflicts_with = "targets")]
    pub class: Option<u32>,
    /// Per-image classes: a CSV file of `image,class` lines (paths as given on the command line,
    /// or relative to the current folder; a header line `image,class`, blank lines and lines
    /// starting with `#` are skipped). Images it does not list get their predicted class.
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Explain each image's K most likely classes: outputs `<stem>_<class>.png`, one report
    /// entry per class (`"rank"` 0 to K-1, most likely first).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..),
          conflicts_with_all = ["class", "targets"])]
    pub top_k: Option<u32>,
    /// Process only shard K of N (K from 0 to N-1): the inputs whose position in the inputs
    /// sorted by path is K modulo N, so that N independent runs (a Slurm array `--array=0-(N-1)`
    /// with `--shard $SLURM_ARRAY_TASK_ID/N`, Kubernetes Indexed Jobs, GNU parallel), each with
    /// its own --out, explain every input exactly once. With --resume a re-run shard continues.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Also write guided backpropagation as `<stem>_guided.png` and Guided Grad-CAM (the guided
    /// gradient times the CAM) as `<stem>_guided_gradcam.png`, at the model's input size, with
    /// pytorch-grad-cam's `deprocess_image`. Only `nn.ReLU` networks (ResNet, VGG) have a guided
    /// rule; on ReLU6 networks (Lite, MobileNetV2) it is the plain input gradient, as in the
    /// reference.
    #[arg(long)]
    pub guided: bool,
    /// pytorch-grad-cam's eigen_smooth: gradcam, gradcam++, xgradcam, hirescam,
    /// gradcam-elementwise, layercam, scorecam and ablationcam take the first principal
    /// component of what they would sum over the channels; the other methods ignore it.
    #[arg(long)]
    pub eigen_smooth: bool,
    /// pytorch-grad-cam's aug_smooth: the CAM is the mean of the CAMs of six variants of the
    /// input (flipped left-right or not, times 0.9, 1, 1.1), each flipped back; six times the
    /// work.
    #[arg(long)]
    pub aug_smooth: bool,
    /// CAM method, each equal to pytorch-grad-cam's class of that name: gradcam (GradCAM),
    /// hirescam (HiResCAM), gradcam-elementwise (GradCAMElementWise), gradcam++
    /// (GradCAMPlusPlus), xgradcam (XGradCAM), layercam (LayerCAM), eigencam (EigenCAM: no
    /// gradient, no backward pass), eigengradcam (EigenGradCAM), fem (FEM: no gradient), cam
    /// (torch-cam's CAM: the classifier's weights times the layer the global average pool reads,
    /// no gradient; that layer only), smooth-gradcam++ (torch-cam's SmoothGradCAMpp: Grad-CAM++
    /// with the gradient's powers averaged over --samples noisy copies of the input), scorecam (ScoreCAM: one forward pass per channel of the layer), ablationcam (AblationCAM:
    /// one pass of the network after the layer per channel), fullgrad (FullGrad: the input
    /// gradient times the input and every bias layer's bias times its gradient, at the input;
    /// --layer does not apply), saliency (max over RGB of the input gradient's magnitude;
    /// --layer does not apply).
    #[arg(long, default_value = "gradcam", value_parser = parse_method, value_name = "NAME")]
    pub method: Method,
    /// Heatmap colours: jet (OpenCV's, as pytorch-grad-cam), turbo, viridis, inferno, magma.
    #[arg(long, default_value = "jet", value_parser = parse_colormap, value_name = "NAME")]
    pub colormap: Colormap,
    /// Weight of the image in the overlay, in [0, 1]; the heatmap gets 1 - W.
    #[arg(long, default_value_t = 0.5, value_parser = parse_weight, value_name = "W")]
    pub image_weight: f32,
    /// Also write DIR/<stem>.safetensors with `cam` (f32 [S, S] at the model's input size S,
    /// 224 for the built-in model, comparable with
    /// pytorch-grad-cam's output), `cam_grid` (f32 [h, w], before upsampling, after ReLU) and
    /// `logits` (f32 [classes]).
    #[arg(long)]
    pub raw: bool,
    /// Add each image's localisation box to its report entry ("box": [x0, y0, x1, y1], pixels
    /// x0..x1 × y0..y1 of the image) and draw it on the overlay: the bounding box of the largest
    /// 8-connected region where the CAM, at the image's size, is at least --box-threshold of
    /// its maximum (the Grad-CAM paper's weakly supervised localisation).
    #[arg(long)]
    pub boxes: bool,
    /// Scorecam and ablationcam: the forward passes (one per channel and image) run on the GPU
    /// in chunks of N; default: as many as fit the device's limits, at most 256.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub method_batch: Option<u32>,
    /// smooth-gradcam++: noisy copies of the input, each a forward and a backward pass
    /// (default 4, as torch-cam).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub samples: Option<u32>,
    /// smooth-gradcam++: the standard deviation of the Gaussian noise, in the normalised input's
    /// units (default 0.3, as torch-cam).
    #[arg(long, value_parser = parse_noise_std, value_name = "S")]
    pub noise_std: Option<f32>,
    /// smooth-gradcam++: the noise's seed (default 0). An image gets the same noise in any
    /// batch, so its map does not depend on the other inputs.
    #[arg(long, value_name = "N")]
    pub seed: Option<u32>,
    /// The fraction of the CAM's maximum that --boxes thresholds at, in (0, 1].
    #[arg(long, default_value = "0.15", value_parser = parse_fraction, value_name = "F")]
    pub box_threshold: f64,
    /// Images per GPU batch (default: on a GPU the largest power of two up to 256 whose
    /// activations fit 8 GiB and one storage binding; 32 on an integrated GPU; 16 on a CPU
    /// adapter such as lavapipe). Larger batches are split into GPU batches that fit.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: Option<u32>,
    /// GPU batches in flight: with 2, one batch's results are read back while the GPU works on
    /// the next, at twice the GPU memory (default: 2 on a GPU, 1 on a CPU adapter and with
    /// --profile).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2))]
    pub in_flight: Option<u32>,
    /// Pixels per GPU batch, summed over its images: a batch of large photos is cut short so
    /// that host memory stays bounded (an image larger than this goes alone).
    #[arg(long, value_name = "N", default_value_t = gradcam::DEFAULT_MAX_PIXELS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_pixels: u64,
    /// Continue the unfinished run in DIR: inputs whose outputs are recorded in its journal
    /// and still whole are skipped, everything else is done, and the report covers all.
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Discard the unfinished run in DIR (its journal) and start over.
    #[arg(long)]
    pub restart: bool,
    /// Print GPU time per stage (preprocess, forward, backward, cam, overlay; from timestamp
    /// queries where the adapter has them), CPU decode and encode time, and GPU buffer bytes.
    #[arg(long)]
    pub profile: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    #[command(flatten)]
    pub common: Common,
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if f > 0.0 && f <= 1.0 {
        Ok(f)
    } else {
        Err(format!("{f} is outside (0, 1]"))
    }
}

fn parse_method(s: &str) -> Result<Method, String> {
    s.parse().map_err(|e: gradcam::Error| e.to_string())
}

fn parse_target_score(s: &str) -> Result<TargetScore, String> {
    s.parse().map_err(|e: gradcam::Error| e.to_string())
}

fn parse_colormap(s: &str) -> Result<Colormap, String> {
    s.parse().map_err(|e: gradcam::Error| e.to_string())
}

/// `--shard K/N`: this run's part of the sorted inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// K, from 0 to `count` - 1.
    pub index: usize,
    /// N, at least 1.
    pub count: usize,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not K/N (e.g. 0/4: the first of four shards)"))?;
    let number = |t: &str| {
        t.trim()
            .parse::<usize>()
            .map_err(|_| format!("`{t}` in `{s}` is not a whole number"))
    };
    let (index, count) = (number(k)?, number(n)?);
    if count == 0 {
        return Err(format!("`{s}`: there must be at least one shard"));
    }
    if index >= count {
        return Err(format!(
            "`{s}`: shards are numbered 0 to {} (K/N with K < N)",
            count - 1
        ));
    }
    Ok(Shard { index, count })
}

fn parse_noise_std(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not a finite value ≥ 0"))
    }
}

fn parse_weight(s: &str) -> Result<f32, String> {
    let w: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&w) {
        Ok(w)
    } else {
        Err(format!("{w} is outside [0, 1]"))
    }
}

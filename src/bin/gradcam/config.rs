//! The resolved configuration: the parsed arguments checked and turned into what the runners
//! use (the model with its normalisation, the target layers and class, the settings a run
//! records) and, once a run starts, the labels and the GPU. Everything that can be refused
//! without touching a file or the GPU is refused here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gradcam::model::{Arch, LoadOptions};
use gradcam::output::{canonical, escape_path};
use gradcam::{AdapterOptions, Engine, ExplainOptions, GpuContext, Labels, Method, Model, Target};
use serde_json::{json, Value};

use crate::args::{Common, ExplainArgs};

/// The default model, compiled into the library so the binary works from any directory.
use gradcam::model::{
    BUILTIN_WEIGHTS as DEFAULT_WEIGHTS, BUILTIN_WEIGHTS_NAME as DEFAULT_WEIGHTS_NAME,
};

/// `explain` resolved: a layer listing (`--layer help`), or a run.
pub enum Explain {
    /// Print the model's layers.
    ListLayers(Box<Model>),
    /// Explain the inputs.
    Run(Box<ExplainConfig>),
}

/// A checked `explain` run.
pub struct ExplainConfig {
    /// The model, with the normalisation the options give.
    pub model: Model,
    /// The target layers, comma-separated, as the model names them.
    pub layer: String,
    /// What the explainer computes.
    pub options: ExplainOptions,
    /// The class explained in every image not listed in `targets`.
    pub target: Target,
    /// Per-image classes from `--targets`, by canonical path.
    pub targets: HashMap<PathBuf, u32>,
    /// What the run records about itself in its journal; a resumed run must match it.
    pub settings: Value,
    /// The arguments, for what the runner reads as given (inputs, folder, batch, switches).
    pub args: ExplainArgs,
}

impl Explain {
    /// Checks `args` against the model they name.
    pub fn resolve(args: ExplainArgs) -> Result<Self, String> {
        let model = load_common(&args.common).map_err(|e| e.to_string())?;
        let layer = args
            .layer
            .clone()
            .unwrap_or_else(|| model.default_layer.clone());
        if layer == "help" {
            return Ok(Explain::ListLayers(Box::new(model)));
        }
        // A map made at the input image (fullgrad, saliency) has no target layer.
        let layer = if args.method.needs().input {
            gradcam::pipeline::INPUT_LAYER.to_string()
        } else {
            model.target_layer_list(&layer).map_err(|e| e.to_string())?;
            layer
        };
        if let Some(k) = args.top_k.filter(|&k| k > model.classes) {
            return Err(format!(
                "--top-k {k} is more than this model's {} classes",
                model.classes
            ));
        }
        if let Some(c) = args.class.filter(|&c| c >= model.classes) {
            return Err(format!(
                "class {c} is out of range: this model has classes 0..={}",
                model.classes - 1
            ));
        }
        let smooth = args.method == Method::SmoothGradCamPlusPlus;
        let noise = [
            (args.samples.is_some(), "--samples"),
            (args.noise_std.is_some(), "--noise-std"),
            (args.seed.is_some(), "--seed"),
        ];
        if let Some((_, flag)) = noise.iter().find(|(given, _)| *given && !smooth) {
            return Err(format!(
                "{flag} applies to --method smooth-gradcam++, not {}",
                args.method
            ));
        }
        let defaults = ExplainOptions::default();
        let options = ExplainOptions {
            layer: layer.clone(),
            method: args.method,
            colormap: args.colormap,
            image_weight: args.image_weight,
            input_gradient: false,
            method_batch: args.method_batch,
            guided: args.guided,
            eigen_smooth: args.eigen_smooth,
            aug_smooth: args.aug_smooth,
            samples: args.samples.unwrap_or(defaults.samples),
            noise_std: args.noise_std.unwrap_or(defaults.noise_std),
            seed: args.seed.unwrap_or(defaults.seed),
            ..defaults
        };
        let target = args.class.map(Target::Class).unwrap_or(Target::Predicted);
        let targets = match &args.targets {
            Some(file) => read_targets(file, model.classes)?,
            None => HashMap::new(),
        };
        let settings = settings(&args, &layer);
        Ok(Explain::Run(Box::new(ExplainConfig {
            model,
            layer,
            options,
            target,
            targets,
            settings,
            args,
        })))
    }
}

/// The `image,class` lines of a `--targets` file, by the image's canonical path; each error
/// names the file and line.
pub fn read_targets(file: &Path, classes: u32) -> Result<HashMap<PathBuf, u32>, String> {
    let shown = escape_path(file);
    let text = std::fs::read_to_string(file).map_err(|e| format!("{shown}: {e}"))?;
    let mut targets = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        let at = n + 1;
        if line.is_empty() || line.starts_with('#') || (at == 1 && line == "image,class") {
            continue;
        }
        let (image, class) = line
            .rsplit_once(',')
            .ok_or_else(|| format!("{shown}:{at}: expected `image,class`, found `{line}`"))?;
        let class: u32 = class
            .trim()
            .parse()
            .map_err(|_| format!("{shown}:{at}: `{}` is not a class number", class.trim()))?;
        if class >= classes {
            return Err(format!(
                "{shown}:{at}: class {class} is out of range: this model has classes 0..={}",
                classes - 1
            ));
        }
        targets.insert(canonical(Path::new(image.trim())), class);
    }
    Ok(targets)
}

/// What the run records about itself in the journal header: a resumed run must match it.
fn settings(req: &ExplainArgs, layer: &str) -> Value {
    let file = |p: &Option<PathBuf>| p.as_deref().map(|p| escape_path(&canonical(p)));
    let mut settings = json!({
        "method": req.method.name(),
        "layer": layer,
        "colormap": req.colormap.name(),
        "image_weight": req.image_weight,
        "class": req.class,
        "targets": file(&req.targets),
        "top_k": req.top_k,
        "shard": req.shard.map(|s| format!("{}/{}", s.index, s.count)),
        "guided": req.guided,
        "eigen_smooth": req.eigen_smooth,
        "aug_smooth": req.aug_smooth,
        "raw": req.raw,
        "boxes": req.boxes.then_some(req.box_threshold),
        "weights": file(&req.common.weights),
        "arch": req.common.arch,
        "input_size": req.common.input_size,
        "mean": req.common.mean,
        "std": req.common.std,
        "labels": file(&req.common.labels),
    });
    if req.method == Method::SmoothGradCamPlusPlus {
        let defaults = ExplainOptions::default();
        settings["noise"] = json!({
            "samples": req.samples.unwrap_or(defaults.samples),
            "std": req.noise_std.unwrap_or(defaults.noise_std),
            "seed": req.seed.unwrap_or(defaults.seed),
        });
    }
    settings
}

/// The settings where `past` and `now` differ, as `name: past → now`.
pub fn differences(past: &Value, now: &Value) -> Vec<String> {
    let Some(fields) = now.as_object() else {
        return vec![];
    };
    fields
        .iter()
        .filter(|(k, v)| past.get(k.as_str()).unwrap_or(&Value::Null) != *v)
        .map(|(k, v)| {
            format!(
                "{k}: {} → {v}",
                past.get(k.as_str()).unwrap_or(&Value::Null)
            )
        })
        .collect()
}

/// What a run needs besides the model: the engine on its GPU, the labels, and the weights' name
/// for the report.
pub struct Setup {
    pub engine: Engine,
    pub labels: Labels,
    pub weights: String,
}

/// The model the common options name, with their input size and normalisation.
pub fn load_common(common: &Common) -> Result<Model, gradcam::Error> {
    let channels = |flag: &str, text: &Option<String>| {
        text.as_deref()
            .map(|t| {
                gradcam::model::parse_channels(t)
                    .map_err(|e| gradcam::Error::InvalidRequest(format!("--{flag}: {e}")))
            })
            .transpose()
    };
    let options = LoadOptions {
        arch: common.arch.as_deref().map(Arch::parse).transpose()?,
        input_size: common.input_size,
        mean: channels("mean", &common.mean)?,
        std: channels("std", &common.std)?,
    };
    load_model(common.weights.as_deref(), &options)
}

/// The model in `weights` (the built-in one when `None`) with the `options` chosen.
pub fn load_model(weights: Option<&Path>, options: &LoadOptions) -> Result<Model, gradcam::Error> {
    match weights {
        Some(path) => Model::load_with(path, options),
        None => Model::from_bytes_with(
            Path::new(DEFAULT_WEIGHTS_NAME),
            DEFAULT_WEIGHTS.to_vec(),
            options,
        ),
    }
}

/// The labels and the GPU for `model`.
pub fn setup(common: &Common, model: Model) -> Result<Setup, gradcam::Error> {
    let classes = model.classes as usize;
    let labels = match &common.labels {
        Some(path) => Labels::load(path, classes)?,
        None => Labels::default_for(classes),
    };
    let model = model.with_labels(labels.clone())?;
    let ctx = GpuContext::new(&AdapterOptions {
        name: common.adapter.clone(),
    })?;
    if common.tune {
        ctx.tuner.retune();
    }
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

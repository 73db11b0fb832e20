//! `gradcam evaluate`: faithfulness metrics of one or more methods' explanations, computed on
//! the GPU with them (src/metrics.rs), written to DIR/metrics.json and DIR/metrics.csv and
//! summarised on stdout.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gradcam::output::{canonical, escape_path, OutputDir};
use gradcam::{ExplainOptions, Explainer, Method, Metric, Readback, Target};
use serde_json::{json, Value};

use crate::args::EvaluateArgs;
use crate::config::{load_common, read_targets, setup, Setup};
use crate::{fail_setup, failure_message, inputs, log, EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE};

/// The files written in the output folder.
const OUTPUTS: [&str; 2] = ["metrics.json", "metrics.csv"];

/// One image scored by one method.
struct Row {
    image: String,
    class: u32,
    label: String,
    method: Method,
    values: Vec<(Metric, f32)>,
}

/// Runs `gradcam evaluate`.
pub fn run(args: EvaluateArgs) -> ExitCode {
    let plan = match Plan::resolve(&args) {
        Ok(plan) => plan,
        Err(e) => return fail_setup(e),
    };
    let Plan {
        methods,
        every_method,
        metrics,
        inputs,
        setup: Setup { engine, .. },
        targets,
    } = plan;
    let out = match OutputDir::open(&args.out) {
        Ok(dir) => dir,
        Err(e) => return fail_setup(e),
    };
    // One run at a time writes DIR; its results never replace an input.
    let _lock = match out.lock() {
        Ok(lock) => lock,
        Err(e) => return fail_setup(e),
    };
    for name in OUTPUTS {
        let path = canonical(&args.out.join(name));
        if let Some(input) = inputs.iter().find(|i| canonical(i) == path) {
            return fail_setup(format!(
                "{}: an input is where the results would go; choose another --out",
                escape_path(input)
            ));
        }
    }
    let capacity = args
        .batch
        .min(engine.max_batch())
        .min(inputs.len() as u32)
        .max(1);
    let layer = args.layer.clone().unwrap_or_default();
    let mut explainers: Vec<(Method, Explainer)> = Vec::with_capacity(methods.len());
    for &method in &methods {
        let options = ExplainOptions {
            layer: if method.needs().input {
                String::new()
            } else {
                layer.clone()
            },
            method,
            method_batch: args.method_batch,
            metrics: metrics.clone(),
            target_score: args.target_score,
            metric_steps: args.steps,
            samples: args.samples,
            noise_std: args.noise_std,
            seed: args.seed,
            ..Default::default()
        };
        match engine.explainer(capacity, options) {
            Ok(e) => explainers.push((method, e)),
            // `--method all` takes the methods that apply to the model.
            Err(e @ gradcam::Error::InvalidRequest(_)) if every_method => log::line(&format!(
                "gradcam: warning: {method} left out: {}",
                gradcam::one_line(&e.to_string())
            )),
            Err(e) => {
                return fail_setup(format!("{method}: {}", gradcam::one_line(&e.to_string())))
            }
        }
    }
    let methods: Vec<Method> = explainers.iter().map(|(m, _)| *m).collect();
    if methods.is_empty() {
        return fail_setup("no method applies to this model");
    }
    let nothing = Readback {
        cam: false,
        cam_grid: false,
        overlay: false,
        guided: false,
    };
    let mut failed = false;
    let mut rows: Vec<Row> = Vec::with_capacity(inputs.len() * methods.len());
    for chunk in inputs.chunks(capacity as usize) {
        let mut decoded = Vec::with_capacity(chunk.len());
        for path in chunk {
            match gradcam::decode_image_limited(path, args.common.max_pixels) {
                Ok(img) => decoded.push((path, img)),
                Err(e) => {
                    log::error(failure_message(path, e));
                    failed = true;
                }
            }
        }
        if decoded.is_empty() {
            continue;
        }
        let refs: Vec<&image::RgbImage> = decoded.iter().map(|(_, i)| i).collect();
        let batch_targets: Vec<Target> = decoded
            .iter()
            .map(|(p, _)| target_of(p, args.class, &targets))
            .collect();
        // Each image is scored by every method, or by none: a batch that fails for one method
        // is left out for all, so the table compares the methods on the same images.
        let mut scored = Vec::with_capacity(explainers.len());
        let mut batch_failed = None;
        for (method, explainer) in &mut explainers {
            match explainer.explain(&refs, &batch_targets, nothing) {
                Ok(results) => scored.push((*method, results)),
                Err(e) => {
                    batch_failed = Some(format!("{method}: {}", gradcam::one_line(&e.to_string())));
                    break;
                }
            }
        }
        if let Some(e) = batch_failed {
            for (path, _) in &decoded {
                log::error(failure_message(path, &e));
            }
            failed = true;
            continue;
        }
        // Rows by image in input order, then by method in the order given.
        for (i, (path, _)) in decoded.iter().enumerate() {
            for (method, results) in &scored {
                let r = &results[i];
                rows.push(Row {
                    image: escape_path(path),
                    class: r.class,
                    label: r.label.clone(),
                    method: *method,
                    values: r.metrics.clone(),
                });
            }
        }
    }
    let summary = summary(&rows, &methods, &metrics);
    let written = out
        .write_with(Path::new(OUTPUTS[0]), |w| {
            write_json(w, &rows, &summary, (&methods, &metrics))
        })
        .and_then(|()| out.write_with(Path::new(OUTPUTS[1]), |w| write_csv(w, &rows, &metrics)))
        .and_then(|()| out.sync());
    if let Err(e) = written {
        log::error(e);
        return ExitCode::from(EXIT_USAGE);
    }
    print_table(
        &summary,
        &methods,
        &metrics,
        rows.len() / methods.len().max(1),
    );
    ExitCode::from(if failed { EXIT_SOME_FAILED } else { EXIT_OK })
}

/// What `evaluate` was asked for, checked before anything is written.
struct Plan {
    methods: Vec<Method>,
    /// Whether `--method` said `all`.
    every_method: bool,
    metrics: Vec<Metric>,
    inputs: Vec<PathBuf>,
    setup: Setup,
    targets: HashMap<PathBuf, u32>,
}

impl Plan {
    fn resolve(args: &EvaluateArgs) -> Result<Self, String> {
        let methods = parse_methods(&args.method)?;
        let every_method = args
            .method
            .split(',')
            .any(|m| m.trim().eq_ignore_ascii_case("all"));
        let metrics = Metric::parse_list(&args.metric).map_err(|e| e.to_string())?;
        let inputs = inputs::expand(args.images.clone(), &Default::default())?
            .into_iter()
            .map(|i| i.path)
            .collect();
        let model = load_common(&args.common).map_err(|e| e.to_string())?;
        if let Some(layer) = &args.layer {
            model.target_layer_list(layer).map_err(|e| e.to_string())?;
        }
        if let Some(c) = args.class.filter(|&c| c >= model.classes) {
            return Err(format!(
                "class {c} is out of range: this model has classes 0..={}",
                model.classes - 1
            ));
        }
        let targets = match &args.targets {
            Some(file) => read_targets(file, model.classes)?,
            None => HashMap::new(),
        };
        let setup = setup(&args.common, model).map_err(|e| e.to_string())?;
        Ok(Self {
            methods,
            every_method,
            metrics,
            inputs,
            setup,
            targets,
        })
    }
}

/// Methods from a comma-separated list (`all`: every method), each once, in the order given.
fn parse_methods(s: &str) -> Result<Vec<Method>, String> {
    let mut list = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let found: Vec<Method> = if name.eq_ignore_ascii_case("all") {
            Method::ALL.to_vec()
        } else {
            vec![name.parse().map_err(|e: gradcam::Error| e.to_string())?]
        };
        for m in found {
            if !list.contains(&m) {
                list.push(m);
            }
        }
    }
    if list.is_empty() {
        return Err("--method names no method".into());
    }
    Ok(list)
}

/// The class an image is explained for.
fn target_of(path: &Path, class: Option<u32>, targets: &HashMap<PathBuf, u32>) -> Target {
    if let Some(c) = class {
        return Target::Class(c);
    }
    match targets.get(&canonical(path)) {
        Some(&c) => Target::Class(c),
        None => Target::Predicted,
    }
}

/// Each method's mean of each metric over the images it scored (in f64).
fn summary(rows: &[Row], methods: &[Method], metrics: &[Metric]) -> Vec<Vec<Option<f64>>> {
    methods
        .iter()
        .map(|method| {
            metrics
                .iter()
                .map(|metric| {
                    let values: Vec<f64> = rows
                        .iter()
                        .filter(|r| r.method == *method)
                        .filter_map(|r| r.values.iter().find(|(m, _)| m == metric))
                        .map(|(_, v)| f64::from(*v))
                        .collect();
                    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
                })
                .collect()
        })
        .collect()
}

fn write_json(
    w: &mut dyn Write,
    rows: &[Row],
    summary: &[Vec<Option<f64>>],
    (methods, metrics): (&[Method], &[Metric]),
) -> std::io::Result<()> {
    let images: Vec<Value> = rows
        .iter()
        .map(|r| {
            let values: serde_json::Map<String, Value> = r
                .values
                .iter()
                .map(|(m, v)| (m.name().to_string(), json!(*v)))
                .collect();
            json!({
                "image": r.image,
                "class": r.class,
                "label": r.label,
                "method": r.method.name(),
                "metrics": values,
            })
        })
        .collect();
    let by_method: serde_json::Map<String, Value> = methods
        .iter()
        .zip(summary)
        .map(|(method, means)| {
            let means: serde_json::Map<String, Value> = metrics
                .iter()
                .zip(means)
                .map(|(m, mean)| (m.name().to_string(), json!(mean)))
                .collect();
            (method.name().to_string(), Value::Object(means))
        })
        .collect();
    let doc = json!({"images": images, "summary": by_method});
    serde_json::to_writer_pretty(&mut *w, &doc)?;
    w.write_all(b"\n")
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn write_csv(w: &mut dyn Write, rows: &[Row], metrics: &[Metric]) -> std::io::Result<()> {
    let header: Vec<&str> = ["image", "class", "label", "method"]
        .into_iter()
        .chain(metrics.iter().map(|m| m.name()))
        .collect();
    writeln!(w, "{}", header.join(","))?;
    for r in rows {
        let mut fields = vec![
            csv_field(&r.image),
            r.class.to_string(),
            csv_field(&r.label),
            r.method.name().to_string(),
        ];
        fields.extend(metrics.iter().map(|metric| {
            r.values
                .iter()
                .find(|(m, _)| m == metric)
                .map_or(String::new(), |(_, v)| v.to_string())
        }));
        writeln!(w, "{}", fields.join(","))?;
    }
    Ok(())
}

/// The means as a table on stdout: one row per method, one column per metric.
fn print_table(summary: &[Vec<Option<f64>>], methods: &[Method], metrics: &[Metric], n: usize) {
    let width = methods
        .iter()
        .map(|m| m.name().len())
        .max()
        .unwrap_or(6)
        .max("method".len());
    let mut out = String::new();
    out.push_str(&format!("{:width$}", "method"));
    for m in metrics {
        out.push_str(&format!("  {:>w$}", m.name(), w = m.name().len().max(8)));
    }
    out.push('\n');
    for (method, means) in methods.iter().zip(summary) {
        out.push_str(&format!("{:width$}", method.name()));
        for (m, mean) in metrics.iter().zip(means) {
            let shown = mean.map_or("-".to_string(), |v| format!("{v:.4}"));
            out.push_str(&format!("  {:>w$}", shown, w = m.name().len().max(8)));
        }
        out.push('\n');
    }
    out.push_str(&format!("(means over {n} images)\n"));
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

//! `gradcam classify`: one JSON line per image with its top classes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use gradcam::output::escape_path;
use gradcam::Labels;
use serde_json::json;

use crate::args::ClassifyArgs;
use crate::config::{load_common, setup, Setup};
use crate::{fail_setup, failure_message, inputs, log, EXIT_OK, EXIT_SOME_FAILED};

/// Runs `gradcam classify`.
pub fn run(args: ClassifyArgs) -> ExitCode {
    match inputs::expand(args.images.clone(), &Default::default()) {
        Ok(inputs) => {
            let paths: Vec<PathBuf> = inputs.into_iter().map(|i| i.path).collect();
            classify(&paths, &args)
        }
        Err(e) => fail_setup(e),
    }
}

pub fn top_json(labels: &Labels, logits: &[f32], k: usize) -> Vec<serde_json::Value> {
    gradcam::top_k(&gradcam::softmax(logits), k)
        .into_iter()
        .map(|(class, score)| json!({"class": class, "label": labels.get(class), "score": score}))
        .collect()
}

fn classify(paths: &[PathBuf], args: &ClassifyArgs) -> ExitCode {
    let (top, batch, common) = (args.top as usize, args.batch, &args.common);
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

fn report_failure(path: &Path, e: impl std::fmt::Display) {
    log::error(failure_message(path, e));
}

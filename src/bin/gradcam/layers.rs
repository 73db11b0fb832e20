//! `gradcam layers` (and `explain --layer help`): the layers a Grad-CAM can target.

use std::io::Write;
use std::process::ExitCode;

use gradcam::model::{Arch, LoadOptions};
use gradcam::Model;

use crate::args::LayersArgs;
use crate::config::load_model;
use crate::{fail_setup, EXIT_OK, EXIT_SOME_FAILED};

/// Runs `gradcam layers`.
pub fn run(args: LayersArgs) -> ExitCode {
    let options = match args.arch.as_deref().map(Arch::parse).transpose() {
        Ok(arch) => LoadOptions {
            arch,
            input_size: args.input_size,
            ..LoadOptions::default()
        },
        Err(e) => return fail_setup(e),
    };
    match load_model(args.weights.as_deref(), &options) {
        Ok(model) => print_layers(&model),
        Err(e) => fail_setup(e),
    }
}

/// The layers a Grad-CAM can target, one per line with its shape, the default marked.
pub fn print_layers(model: &Model) -> ExitCode {
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
        // A transformer's token layer: its CAM grid, and the tokens it drops.
        let tokens = match model.token_grid_of(*tensor) {
            Some(g) => format!(
                " ({} tokens: {} prefix dropped, {}×{} patches)",
                t.width, g.prefix, g.height, g.width
            ),
            None => String::new(),
        };
        let (h, w) = model.cam_grid_of(*tensor);
        lines.push(format!(
            "{name:<width$}  {} × {h} × {w}{tokens}{default}",
            t.channels
        ));
    }
    for line in lines {
        if writeln!(out, "{line}").is_err() {
            return ExitCode::from(EXIT_SOME_FAILED);
        }
    }
    ExitCode::from(EXIT_OK)
}

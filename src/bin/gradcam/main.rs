//! `gradcam`: Grad-CAM heatmaps and classification on the GPU.
//!
//! `args.rs` defines the command line, `config.rs` resolves it into a checked configuration, and
//! one runner per command (`explain.rs`, `classify.rs`, `evaluate.rs`, `layers.rs`) carries it out and returns
//! the exit status.

mod args;
mod classify;
mod config;
mod evaluate;
mod explain;
mod inputs;
mod layers;
mod log;
mod signals;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use gradcam::output::escape_path;

use args::{Cli, Command};

/// Exit status when every input was processed.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status when some inputs failed; the others were processed.
pub(crate) const EXIT_SOME_FAILED: u8 = 1;
/// Exit status when the command could not run at all (bad arguments, unreadable weights or
/// labels, no GPU adapter, unwritable output directory).
pub(crate) const EXIT_USAGE: u8 = 2;

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
    match Cli::parse().command {
        Command::Layers(args) => layers::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Evaluate(args) => evaluate::run(args),
        Command::Explain(args) => match config::Explain::resolve(args) {
            Ok(config::Explain::ListLayers(model)) => layers::print_layers(&model),
            Ok(config::Explain::Run(config)) => explain::run(*config),
            Err(e) => fail_setup(e),
        },
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

//! The crate's one error type.

use std::path::PathBuf;

use crate::output::escape_path;

/// Everything that can go wrong while loading a model, talking to the GPU or
/// reading inputs. Every variant names the file or resource involved so a
/// message printed on one line is enough to act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{shown}: {source}", shown = escape_path(.path))]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The safetensors container itself is malformed (bad header, truncated data).
    #[error("{shown}: not a valid safetensors file: {reason}", shown = escape_path(.path))]
    WeightsFormat {
        /// The weights file.
        path: PathBuf,
        /// What the parser reported.
        reason: String,
    },

    /// A tensor the architecture needs is absent.
    #[error("{shown}: tensor `{tensor}` is missing (expected shape {expected:?})", shown = escape_path(.path))]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The shape the architecture needs.
        expected: Vec<usize>,
    },

    /// A tensor has a shape other than the architecture needs.
    #[error("{shown}: tensor `{tensor}` has shape {found:?}, expected {expected:?}", shown = escape_path(.path))]
    TensorShape {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The shape the architecture needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A tensor has a dtype that cannot be converted to f32.
    #[error("{shown}: tensor `{tensor}` has dtype {found}, expected F32, F16 or BF16", shown = escape_path(.path))]
    TensorDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The dtype in the file.
        found: String,
    },

    /// A tensor holds NaN or infinite values.
    #[error("{shown}: tensor `{tensor}` holds a non-finite value at index {index}", shown = escape_path(.path))]
    TensorNotFinite {
        /// The weights file.
        path: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The first offending element.
        index: usize,
    },

    /// The weights describe a network this engine cannot run.
    #[error("{shown}: unsupported model: {reason}", shown = escape_path(.path))]
    UnsupportedModel {
        /// The weights file.
        path: PathBuf,
        /// Why it cannot be run.
        reason: String,
    },

    /// The labels file does not match the model.
    #[error("{shown}: {reason}", shown = escape_path(.path))]
    Labels {
        /// The labels file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// An image could not be decoded or is unusable.
    #[error("{shown}: cannot decode image: {reason}", shown = escape_path(.path))]
    Image {
        /// The image file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },

    /// No GPU adapter matched the request.
    #[error("no GPU adapter found{wanted} (backends tried: {backends}). {hint}")]
    NoAdapter {
        /// The user's adapter filter, already formatted (" matching `x`") or empty.
        wanted: String,
        /// The backends that were asked.
        backends: String,
        /// How to get a working adapter.
        hint: String,
    },

    /// The adapter refused to create a device with the limits the engine needs.
    #[error("cannot open GPU device on `{adapter}`: {reason}")]
    Device {
        /// The adapter's name.
        adapter: String,
        /// wgpu's message.
        reason: String,
    },

    /// wgpu reported an error (validation, out of memory, device lost) while running work.
    #[error("GPU error during {stage}: {reason}")]
    Gpu {
        /// What the engine was doing.
        stage: String,
        /// wgpu's message.
        reason: String,
    },

    /// A request that does not fit the engine's resources or the model.
    #[error("{0}")]
    InvalidRequest(String),

    /// A broken invariant of the engine itself (a bug to report, not a user error).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand for results carrying [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Folds a multi-line message (wgpu's "Caused by:" chains, decoder errors) into one line.
/// Paths in messages are shown escaped ([`escape_path`]), so a name holding a newline or
/// control character still gives one line.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

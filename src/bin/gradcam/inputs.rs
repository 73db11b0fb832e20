//! The inputs of a run: files as given, and the image files found in folders, searched
//! recursively.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use gradcam::output::{canonical, escape_path, holds_a_run};

/// File extensions taken from a folder given as an input.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "tga", "pnm", "ppm", "pgm", "qoi",
    "ico",
];

/// One input image.
#[derive(Clone, Debug)]
pub struct Input {
    /// The file, as given or as found in a folder.
    pub path: PathBuf,
    /// Where its outputs go, relative to the output folder: the sub-folder it was found in,
    /// relative to the folder that was given (empty for a file given by name).
    pub subdir: PathBuf,
    /// Whether the file was named on the command line (not found in a folder).
    pub named: bool,
    /// Its canonical path ([`canonical`]), computed once: what identifies it across runs.
    pub canonical: PathBuf,
    /// With `--top-k`: which of the image's most likely classes this input explains (0: the
    /// most likely). Each image is then K inputs, one per rank.
    pub rank: Option<u32>,
}

/// Inputs as given, with each folder replaced by the image files in it and in its sub-folders,
/// sorted by name at each level. Hidden entries (names starting with `.`), symlinks to folders,
/// and sub-folders that hold a gradcam run (its lock, journal or report) are not searched;
/// files whose canonical path is in `exclude` are left out. A folder with no images is an error
/// naming it.
pub fn expand(given: Vec<PathBuf>, exclude: &HashSet<PathBuf>) -> Result<Vec<Input>, String> {
    let mut out = Vec::with_capacity(given.len());
    for input in given {
        if !input.is_dir() {
            out.push(Input {
                canonical: canonical(&input),
                path: input,
                subdir: PathBuf::new(),
                named: true,
                rank: None,
            });
            continue;
        }
        let before = out.len();
        walk(&input, Path::new(""), exclude, &mut out)?;
        if out.len() == before {
            return Err(format!(
                "{}: no images in this folder or its sub-folders (looked for {}{})",
                escape_path(&input),
                IMAGE_EXTENSIONS.join(", "),
                if exclude.is_empty() {
                    ""
                } else {
                    "; the output folder's own files are not inputs"
                }
            ));
        }
    }
    Ok(out)
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn walk(
    dir: &Path,
    subdir: &Path,
    exclude: &HashSet<PathBuf>,
    out: &mut Vec<Input>,
) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", escape_path(dir)))?;
    let mut entries: Vec<std::fs::DirEntry> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if holds_a_run(&path) {
                continue; // a run's output folder
            }
            walk(&path, &subdir.join(&name), exclude, out)?;
            continue;
        }
        // A file, or a symlink to one (symlinks to folders are not followed).
        if !is_image_name(&path) || !path.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        let canonical = canonical(&path);
        if exclude.contains(&canonical) {
            continue;
        }
        out.push(Input {
            canonical,
            path,
            subdir: subdir.to_path_buf(),
            named: false,
            rank: None,
        });
    }
    Ok(())
}

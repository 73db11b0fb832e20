//! Writing results: atomic file writes and output names that never collide or replace an input.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically: into a temporary file in the same directory, flushed to
/// disk, then renamed over `path`. A reader (or a crash) never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("output");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

/// Picks output names in a directory: one per input, from the input's file stem, unique among
/// the outputs (a later input with a stem already taken gets `stem-2`, `stem-3`, ...), and never
/// the path of an input file.
#[derive(Debug)]
pub struct OutputNames {
    dir: PathBuf,
    taken: HashSet<String>,
    inputs: HashSet<PathBuf>,
    extensions: Vec<&'static str>,
}

impl OutputNames {
    /// Names for outputs in `dir` with the given extensions (e.g. `["png", "safetensors"]`; a
    /// name is free only if it is free with every extension), none equal to any of `inputs`.
    pub fn new(dir: &Path, inputs: &[PathBuf], extensions: &[&'static str]) -> Self {
        Self {
            dir: dir.to_path_buf(),
            taken: HashSet::new(),
            inputs: inputs.iter().map(|p| canonical(p)).collect(),
            extensions: extensions.to_vec(),
        }
    }

    /// The stem to use for `input`'s outputs (without extension).
    pub fn next(&mut self, input: &Path) -> String {
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "image".into());
        let mut candidate = stem.clone();
        let mut n = 1;
        while self.taken.contains(&candidate) || self.replaces_input(&candidate) {
            n += 1;
            candidate = format!("{stem}-{n}");
        }
        self.taken.insert(candidate.clone());
        candidate
    }

    /// The path of `stem` with `extension` in the output directory.
    pub fn path(&self, stem: &str, extension: &str) -> PathBuf {
        self.dir.join(format!("{stem}.{extension}"))
    }

    fn replaces_input(&self, stem: &str) -> bool {
        self.extensions
            .iter()
            .any(|e| self.inputs.contains(&canonical(&self.path(stem, e))))
    }
}

/// The canonical form of a path that may not exist yet (its directory canonicalized).
fn canonical(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dir.canonicalize()
                .map(|d| d.join(name))
                .unwrap_or_else(|_| p.to_path_buf())
        }
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_unique_and_inputs_are_never_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::create_dir(&a).unwrap();
        let inputs = vec![
            a.join("cat.png"),
            dir.path().join("cat.jpg"),
            dir.path().join("cat-2.png"),
            dir.path().join("dog.png"),
        ];
        for i in &inputs {
            std::fs::write(i, b"x").unwrap();
        }
        // Output into the directory holding dog.png: "dog.png" would replace it.
        let mut names = OutputNames::new(dir.path(), &inputs, &["png"]);
        let got: Vec<String> = inputs.iter().map(|i| names.next(i)).collect();
        assert_eq!(got, ["cat", "cat-3", "cat-2-2", "dog-2"]);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        write_atomic(&p, b"first").unwrap();
        write_atomic(&p, b"second").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"second");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
        let err = write_atomic(&dir.path().join("missing/out.bin"), b"x").unwrap_err();
        assert!(err.to_string().contains("missing/out.bin"));
    }
}

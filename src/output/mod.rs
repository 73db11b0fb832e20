//! Writing results safely: an output folder reached through file descriptors (never through a
//! planted symlink), atomic writes under short unpredictable temporary names, a lock so one run
//! owns a folder, an append-only journal of finished inputs, and output names that never collide
//! or replace an input.

mod dir;
mod journal;
mod names;

pub use dir::{write_atomic, DirLock, OutputDir, TEMP_PREFIX, TEMP_SUFFIX};
pub use journal::{record, Journal, PastRun, JOURNAL_NAME};
pub use names::{canonical, escape_path, unescape_path, OutputNames};

/// The name of the run's report inside the output folder.
pub const REPORT_NAME: &str = "report.json";
/// The name of the lock file inside the output folder.
pub const LOCK_NAME: &str = ".gradcam.lock";
/// The first field of every report (`"tool": "gradcam"`), by which a folder holding a run's
/// report is recognised without reading the whole report.
pub const REPORT_TOOL: &str = "gradcam";

/// Whether `dir` holds a gradcam run, running or ended: its lock, its journal, or a report that
/// starts with the `tool` field. Folders searched for inputs skip such folders.
pub fn holds_a_run(dir: &std::path::Path) -> bool {
    use std::io::Read;
    let starts_with = |name: &str, needle: &str| {
        let mut head = [0u8; 256];
        let n = std::fs::File::open(dir.join(name))
            .and_then(|mut f| f.read(&mut head))
            .unwrap_or(0);
        let head = String::from_utf8_lossy(&head[..n]);
        head.split_whitespace().collect::<String>().contains(needle)
    };
    dir.join(LOCK_NAME).is_file()
        || starts_with(JOURNAL_NAME, "{\"journal\":\"gradcam\"")
        || starts_with(REPORT_NAME, &format!("{{\"tool\":\"{REPORT_TOOL}\""))
}

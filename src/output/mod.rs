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

//! The run's journal: an append-only file of JSON lines in the output folder, so that after any
//! crash the folder tells which inputs are finished.
//!
//! Line 1 is the header (`{"journal": "gradcam", "version": 1, "settings": {...}, ...}`); then one
//! line per finished or failed input, written after its outputs are on disk and their folder is
//! flushed (`{"key": ..., "files": [{"path": ..., "bytes": N}], "entry": {...}}`, or
//! `{"key": ..., "entry": {..., "error": ...}}`). A later line for the same key replaces an
//! earlier one (a resumed run redoing a failed input). A torn last line, left by a kill in the
//! middle of a write, is cut off when the run is resumed. A run that ends by itself writes its
//! report (whose entries list their files) and then removes the journal.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

use super::dir::OutputDir;
use super::names::{canonical, escape_path, unescape_path};
use super::REPORT_NAME;
use crate::error::{Error, Result};

/// The journal's name inside the output folder.
pub const JOURNAL_NAME: &str = "journal.jsonl";

/// What an earlier run in the folder left: its journal when it was killed (or is killed while
/// ending), or else its report.
///
/// A run that ends by itself (done, or stopped by a signal) writes a report whose entries list
/// their files, then removes its journal; so the journal exists only while a run goes on or
/// after it was killed. Either one tells which inputs are finished.
#[derive(Debug, Default)]
pub struct PastRun {
    /// The earlier run's settings, as its journal header or report recorded them.
    pub settings: Value,
    /// Whether the earlier run processed every one of its inputs.
    pub finished: bool,
    /// The last record per input key.
    pub records: HashMap<String, Value>,
    /// Bytes of the journal up to the end of its last whole line, when there is a journal.
    journal_len: Option<u64>,
}

impl PastRun {
    /// Reads what an earlier run left in `dir`; `None` when it holds no run.
    pub fn read(dir: &OutputDir) -> Result<Option<Self>> {
        let mut run = PastRun::default();
        let report = dir
            .read(REPORT_NAME)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter(|r| r["status"].is_string());
        let journal = dir.read(JOURNAL_NAME)?;
        if report.is_none() && journal.is_none() {
            return Ok(None);
        }
        // A journal is the whole truth when there is one: it exists only while a run goes on
        // or after it was killed, and a resumed run copies what it carries over into it. The
        // report then only tells whether that run ended (killed between its final report and
        // the journal's removal).
        let status = report.as_ref().map(|r| r["status"].clone());
        if let Some(bytes) = journal {
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            run.journal_len = Some(whole as u64);
            run.finished = status == Some(json!("complete"));
            let mut header = false;
            for line in bytes[..whole].split(|&b| b == b'\n') {
                let Ok(value) = serde_json::from_slice::<Value>(line) else {
                    continue;
                };
                if value["journal"] == json!("gradcam") {
                    header = true;
                    run.settings = value["settings"].clone();
                } else if let Some(key) = value["key"].as_str() {
                    run.records.insert(key.to_string(), value);
                }
            }
            if !header {
                return Err(Error::InvalidRequest(format!(
                    "{}: not a gradcam journal; move it away or choose another --out",
                    escape_path(&dir.path().join(JOURNAL_NAME))
                )));
            }
        } else if let Some(report) = &report {
            run.settings = report["settings"].clone();
            run.finished = report["status"] == "complete";
            for entry in report["images"].as_array().into_iter().flatten() {
                let key = match entry["source"].as_str() {
                    Some(k) => k.to_string(),
                    None => match entry["image"].as_str().and_then(unescape_path) {
                        Some(image) => escape_path(&canonical(&image)),
                        None => continue,
                    },
                };
                run.records.insert(key.clone(), record(&key, entry));
            }
        }
        Ok(Some(run))
    }

    /// The output files (relative to the folder) that the earlier run recorded.
    pub fn outputs(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.records.values().flat_map(record_files).map(|(p, _)| p)
    }

    /// The record for `key` if its input was explained and every output it lists is still in
    /// `dir`, whole (a regular file of the recorded size).
    pub fn completed(&self, dir: &OutputDir, key: &str) -> Option<&Value> {
        let record = self.records.get(key)?;
        if record["entry"].get("error").is_some() {
            return None;
        }
        let files = record_files(record);
        let whole = !files.is_empty()
            && files
                .iter()
                .all(|(path, bytes)| dir.file_len(path) == Some(*bytes));
        whole.then_some(record)
    }

    /// The output stem (relative, without extension) of a record: its first file's path
    /// without the extension.
    pub fn stem(record: &Value) -> Option<PathBuf> {
        record_files(record)
            .first()
            .map(|(path, _)| path.with_extension(""))
    }
}

/// The `(relative path, bytes)` of each file a record lists.
fn record_files(record: &Value) -> Vec<(PathBuf, u64)> {
    record["files"]
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(|f| Some((unescape_path(f["path"].as_str()?)?, f["bytes"].as_u64()?)))
                // Only plain paths inside the folder: never absolute, never `..`.
                .filter(|(p, _)| p.components().all(|c| matches!(c, Component::Normal(_))))
                .collect()
        })
        .unwrap_or_default()
}

/// The journal of the run in progress, open for appending.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    /// Starts a new journal in `dir` (replacing an earlier run's) with a header holding
    /// `settings`.
    pub fn create(dir: &OutputDir, settings: &Value) -> Result<Self> {
        let header = json!({
            "journal": "gradcam",
            "version": 1,
            "pid": std::process::id(),
            "started": unix_seconds(),
            "settings": settings,
        });
        dir.write_durable(Path::new(JOURNAL_NAME), format!("{header}\n").as_bytes())?;
        Self::open(dir)
    }

    /// Continues `past`'s journal in `dir`, cutting off a torn last line; or, when `past` left
    /// only a report, starts a new one holding `settings` and the `carried` records (the inputs
    /// the resumed run keeps), so that a kill of the resumed run loses none of them.
    pub fn resume(
        dir: &OutputDir,
        past: &PastRun,
        settings: &Value,
        carried: &[&Value],
    ) -> Result<Self> {
        let Some(len) = past.journal_len else {
            let mut journal = Self::create(dir, settings)?;
            for record in carried {
                journal.append(record)?;
            }
            journal.sync()?;
            return Ok(journal);
        };
        let mut journal = Self::open(dir)?;
        journal.file.set_len(len).map_err(|e| journal.io(e))?;
        journal.append(&json!({"resumed": unix_seconds(), "pid": std::process::id()}))?;
        Ok(journal)
    }

    fn open(dir: &OutputDir) -> Result<Self> {
        Ok(Self {
            file: dir.append(JOURNAL_NAME)?,
            path: dir.path().join(JOURNAL_NAME),
        })
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends one record (one line, one write).
    pub fn append(&mut self, record: &Value) -> Result<()> {
        let line = format!("{record}\n");
        self.file.write_all(line.as_bytes()).map_err(|e| self.io(e))
    }

    /// Makes every record appended so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().map_err(|e| self.io(e))
    }

    /// Ends the journal once the run's final report, which lists every finished input with
    /// its files, is written: the journal is removed.
    pub fn remove(self, dir: &OutputDir) -> Result<()> {
        drop(self.file);
        dir.remove(Path::new(JOURNAL_NAME))
    }
}

/// The journal record of an input: its report entry (whose `files` lists the outputs written,
/// relative path and bytes; an entry with `error` has none) under the input's key.
pub fn record(key: &str, entry: &Value) -> Value {
    json!({"key": key, "files": entry["files"], "entry": entry})
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_a_torn_line_and_resume_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OutputDir::open(tmp.path()).unwrap();
        let mut j = Journal::create(&dir, &json!({"layer": "head"})).unwrap();
        dir.write(Path::new("a.png"), b"12345").unwrap();
        dir.sync().unwrap();
        j.append(&record(
            "/in/a.png",
            &json!({"image": "a", "files": [{"path": "a.png", "bytes": 5}]}),
        ))
        .unwrap();
        j.append(&record("/in/b.png", &json!({"error": "bad"})))
            .unwrap();
        j.sync().unwrap();
        drop(j);
        // A kill in the middle of a line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(tmp.path().join(JOURNAL_NAME))
            .unwrap();
        f.write_all(b"{\"key\": \"/in/c.p").unwrap();
        drop(f);

        let past = PastRun::read(&dir).unwrap().unwrap();
        assert!(!past.finished);
        assert_eq!(past.settings["layer"], "head");
        assert!(past.completed(&dir, "/in/a.png").is_some());
        assert!(past.completed(&dir, "/in/b.png").is_none(), "failed");
        assert!(past.completed(&dir, "/in/c.png").is_none(), "torn");
        assert_eq!(past.outputs().collect::<Vec<_>>(), [PathBuf::from("a.png")]);
        // An output that changed size is not complete.
        std::fs::write(tmp.path().join("a.png"), b"123").unwrap();
        assert!(past.completed(&dir, "/in/a.png").is_none());

        let mut j = Journal::resume(&dir, &past, &json!({}), &[]).unwrap();
        j.sync().unwrap();
        let text = std::fs::read_to_string(tmp.path().join(JOURNAL_NAME)).unwrap();
        assert!(text
            .lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()));

        // The run ends by itself: its report lists the files, and the journal goes.
        std::fs::write(tmp.path().join("a.png"), b"12345").unwrap();
        let report = json!({"status": "complete", "settings": {"layer": "head"}, "images": [
            {"image": "in/a.png", "output": "x/a.png", "files": [{"path": "a.png", "bytes": 5}]},
        ]});
        dir.write_durable(Path::new(REPORT_NAME), report.to_string().as_bytes())
            .unwrap();
        j.remove(&dir).unwrap();
        assert!(!tmp.path().join(JOURNAL_NAME).exists());
        let past = PastRun::read(&dir).unwrap().unwrap();
        assert!(past.finished);
        let key = escape_path(&canonical(Path::new("in/a.png")));
        let record = past.completed(&dir, &key).expect("recorded in the report");
        assert_eq!(PastRun::stem(record), Some(PathBuf::from("a")));
    }
}

//! The output folder, reached through file descriptors: every file is created with `O_EXCL` under
//! a short unpredictable temporary name, flushed, renamed into place and its folder flushed; a
//! file that must be reopened (the lock, the journal) is opened with `O_NOFOLLOW`; sub-folders are
//! opened with `O_NOFOLLOW` one component at a time. A symlink planted at any name the tool uses
//! is therefore never followed and its target never touched.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::names::escape_path;
use super::LOCK_NAME;
use crate::error::{Error, Result};

/// Temporary files in the output folder are named `TEMP_PREFIX` + 16 random hex digits +
/// `TEMP_SUFFIX`; a resumed run removes leftovers of this form.
pub const TEMP_PREFIX: &str = ".gradcam-";
/// See [`TEMP_PREFIX`].
pub const TEMP_SUFFIX: &str = ".tmp";

#[cfg(unix)]
type Handle = Arc<std::os::fd::OwnedFd>;
#[cfg(not(unix))]
type Handle = Arc<PathBuf>;

/// An output folder owned by one run.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    root: Handle,
    /// Sub-folders opened so far, by path relative to the root.
    subdirs: Mutex<HashMap<PathBuf, Handle>>,
    /// Folders with renames not yet flushed (see [`OutputDir::sync`]).
    dirty: Mutex<HashMap<PathBuf, Handle>>,
}

impl OutputDir {
    /// Creates `path` (and its parents) if missing and opens it. `path` itself may be a symlink
    /// to a folder (the user named it); nothing below it is ever followed.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(path).map_err(io)?;
        Self::existing(path)
    }

    /// Opens the existing folder `path`.
    fn existing(path: &Path) -> Result<Self> {
        let root = sys::open_root(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            root,
            subdirs: Mutex::new(HashMap::new()),
            dirty: Mutex::new(HashMap::new()),
        })
    }

    /// The folder's path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, rel: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.join(rel),
            source,
        }
    }

    /// The folder holding `rel` (made if missing) and `rel`'s file name.
    fn parent_of<'a>(&self, rel: &'a Path) -> Result<(Handle, &'a OsStr)> {
        let name = match rel.file_name() {
            Some(n) if rel.components().all(|c| matches!(c, Component::Normal(_))) => n,
            _ => {
                return Err(Error::InvalidRequest(format!(
                    "{}: not a plain path inside {}",
                    escape_path(rel),
                    escape_path(&self.path)
                )))
            }
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        if parent.as_os_str().is_empty() {
            return Ok((self.root.clone(), name));
        }
        let mut subdirs = self.subdirs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = subdirs.get(parent) {
            return Ok((h.clone(), name));
        }
        let mut handle = self.root.clone();
        let mut so_far = PathBuf::new();
        for part in parent.components() {
            so_far.push(part);
            handle = match subdirs.get(&so_far) {
                Some(h) => h.clone(),
                None => {
                    let (h, created) = sys::subdir(&handle, part.as_os_str())
                        .map_err(|e| self.io_error(&so_far, e))?;
                    if created {
                        // The new folder's own entry must be durable too (see `sync`).
                        let parent = so_far.parent().unwrap_or(Path::new("")).to_path_buf();
                        self.dirty
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(parent, handle.clone());
                    }
                    subdirs.insert(so_far.clone(), h.clone());
                    h
                }
            };
        }
        Ok((handle, name))
    }

    /// Writes `bytes` to `rel` atomically: a new temporary file (`O_EXCL`), flushed to disk,
    /// renamed over `rel`. A reader or a crash never sees a half-written file; a symlink at `rel`
    /// is replaced, not followed. The folder's entry is made durable by [`OutputDir::sync`].
    pub fn write(&self, rel: &Path, bytes: &[u8]) -> Result<()> {
        self.write_with(rel, |w| w.write_all(bytes))
    }

    /// [`OutputDir::write`] with the contents streamed by `fill` (through a buffer), for files
    /// too large to hold in memory twice: a report over a million inputs.
    pub fn write_with(
        &self,
        rel: &Path,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        let (file, tmp) = create_temp(&dir).map_err(|e| self.io_error(rel, e))?;
        let result = (|| {
            let mut w = std::io::BufWriter::with_capacity(1 << 16, file);
            fill(&mut w)?;
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            sys::rename(&dir, &tmp, name)
        })();
        if let Err(e) = result {
            let _ = sys::unlink(&dir, &tmp);
            return Err(self.io_error(rel, e));
        }
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(parent, dir);
        Ok(())
    }

    /// Flushes every folder that received a file since the last call, so the renames survive a
    /// power cut.
    pub fn sync(&self) -> Result<()> {
        let dirty: Vec<(PathBuf, Handle)> = self
            .dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for (rel, dir) in dirty {
            sys::sync_dir(&dir).map_err(|e| self.io_error(&rel, e))?;
        }
        Ok(())
    }

    /// [`OutputDir::write`] then [`OutputDir::sync`].
    pub fn write_durable(&self, rel: &Path, bytes: &[u8]) -> Result<()> {
        self.write(rel, bytes)?;
        self.sync()
    }

    /// Checks that a file can be created in the folder (and removes it again).
    pub fn probe(&self) -> Result<()> {
        let (file, tmp) = create_temp(&self.root).map_err(|e| Error::Io {
            path: self.path.clone(),
            source: std::io::Error::new(e.kind(), format!("output folder is not writable: {e}")),
        })?;
        drop(file);
        let _ = sys::unlink(&self.root, &tmp);
        Ok(())
    }

    /// The size of the regular file at `rel`, or `None` if there is none (a symlink is none).
    pub fn file_len(&self, rel: &Path) -> Option<u64> {
        let (dir, name) = self.parent_of_existing(rel)?;
        sys::regular_len(&dir, name)
    }

    fn parent_of_existing<'a>(&self, rel: &'a Path) -> Option<(Handle, &'a OsStr)> {
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return None;
        }
        let parent = rel.parent().unwrap_or(Path::new(""));
        if parent.as_os_str().is_empty() {
            return Some((self.root.clone(), rel.file_name()?));
        }
        let mut handle = self.root.clone();
        for part in parent.components() {
            handle = sys::open_subdir(&handle, part.as_os_str()).ok()?;
        }
        Some((handle, rel.file_name()?))
    }

    /// The contents of the regular file `name` in the folder, `None` if it does not exist. A
    /// symlink, FIFO or device at `name` is an error, and is never opened for reading.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match sys::open_existing(&self.root, OsStr::new(name), false) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)
                    .map_err(|e| self.io_error(Path::new(name), e))?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io_error(Path::new(name), e)),
        }
    }

    /// Opens the existing regular file `name` for appending, never through a symlink.
    pub fn append(&self, name: &str) -> Result<File> {
        sys::open_existing(&self.root, OsStr::new(name), true)
            .map_err(|e| self.io_error(Path::new(name), e))
    }

    /// Removes the file `rel` (a symlink there is removed itself) and flushes its folder.
    pub fn remove(&self, rel: &Path) -> Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        sys::unlink(&dir, name).map_err(|e| self.io_error(rel, e))?;
        sys::sync_dir(&dir).map_err(|e| self.io_error(rel, e))
    }

    /// Removes leftover temporary files (from a killed run) anywhere in the folder; returns how
    /// many. Symlinks are not followed, and sub-folders holding another run's lock are left alone.
    pub fn remove_temp_files(&self) -> usize {
        sys::remove_temps(&self.root, is_temp_name, OsStr::new(LOCK_NAME))
    }

    /// Takes the folder's lock (`flock` on `.gradcam.lock`), or fails at once if another run
    /// holds it. The lock is released when the returned value is dropped or the process ends,
    /// however it ends; a run that ends normally also removes the lock file.
    pub fn lock(&self) -> Result<DirLock> {
        let name = OsStr::new(LOCK_NAME);
        let io = |e| self.io_error(Path::new(LOCK_NAME), e);
        // The holder before us removes the file while still holding it: if what we locked is no
        // longer the file at that name, lock the new one.
        for _ in 0..100 {
            let mut file = sys::open_lock(&self.root, name).map_err(io)?;
            if !sys::try_lock(&file).map_err(io)? {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
                    format!(" (pid {holder})")
                } else {
                    String::new()
                };
                return Err(Error::InvalidRequest(format!(
                    "{}: the output folder is in use by another gradcam run{by}; wait for it to \
                     finish or choose another --out",
                    escape_path(&self.path)
                )));
            }
            if !sys::still_named(&self.root, name, &file) {
                continue;
            }
            let pid = format!("{}\n", std::process::id());
            let _ = file.set_len(0).and_then(|()| {
                use std::io::Seek;
                file.seek(std::io::SeekFrom::Start(0))?;
                file.write_all(pid.as_bytes())
            });
            return Ok(DirLock {
                file: Some(file),
                dir: self.root.clone(),
            });
        }
        Err(io(std::io::Error::other(
            "the lock file keeps changing; is another program removing it?",
        )))
    }
}

/// A held output-folder lock. Dropping it removes the lock file (while still holding the lock,
/// so a run waiting for it sees the change) and releases the lock.
#[derive(Debug)]
pub struct DirLock {
    file: Option<File>,
    dir: Handle,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = sys::unlink(&self.dir, OsStr::new(LOCK_NAME));
        }
        self.file = None;
    }
}

fn is_temp_name(name: &OsStr) -> bool {
    name.to_str().is_some_and(|n| {
        n.starts_with(TEMP_PREFIX)
            && n.ends_with(TEMP_SUFFIX)
            && n.len() == TEMP_PREFIX.len() + 16 + TEMP_SUFFIX.len()
    })
}

/// 64 unpredictable bits: the standard library's randomly keyed SipHash over a counter, the
/// time and the process id.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// A new file under a fresh temporary name in `dir`, created exclusively.
fn create_temp(dir: &Handle) -> std::io::Result<(File, OsString)> {
    loop {
        let name = OsString::from(format!("{TEMP_PREFIX}{:016x}{TEMP_SUFFIX}", random_u64()));
        match sys::create_excl(dir, &name) {
            Ok(f) => return Ok((f, name)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Writes `bytes` to `path` atomically and durably (see [`OutputDir::write`]): for one-off files
/// outside a run's output folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidRequest(format!("{}: not a file name", escape_path(path))))?;
    // A folder that cannot be opened is reported under the file's name, as a write error.
    let out = OutputDir::existing(dir).map_err(|e| match e {
        Error::Io { source, .. } => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        e => e,
    })?;
    out.write_durable(Path::new(name), bytes)
}

#[cfg(unix)]
mod sys {
    //! The folder operations on file descriptors (`*at` calls, `O_NOFOLLOW`, `O_EXCL`).
    use std::ffi::OsStr;
    use std::fs::File;
    use std::os::fd::OwnedFd;
    use std::path::Path;
    use std::sync::Arc;

    use rustix::fs::{self as fs, AtFlags, FileType, FlockOperation, Mode, OFlags};

    use super::Handle;

    fn file_mode() -> Mode {
        Mode::from_raw_mode(0o644)
    }

    pub fn open_root(path: &Path) -> std::io::Result<Handle> {
        let fd = fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Arc::new(fd))
    }

    pub fn open_subdir(dir: &Handle, name: &OsStr) -> std::io::Result<Handle> {
        let fd: OwnedFd = fs::openat(
            &**dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a symbolic link or not a folder; it is not followed",
            ),
            e => e.into(),
        })?;
        Ok(Arc::new(fd))
    }

    /// Opens sub-folder `name`, making it if missing; `true` when it was made.
    pub fn subdir(dir: &Handle, name: &OsStr) -> std::io::Result<(Handle, bool)> {
        let created = match fs::mkdirat(&**dir, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => true,
            Err(rustix::io::Errno::EXIST) => false,
            Err(e) => return Err(e.into()),
        };
        Ok((open_subdir(dir, name)?, created))
    }

    /// Removes files named like temporary files in `dir` and its sub-folders (opened without
    /// following symlinks), skipping folders that hold a lock file: another run's. Returns how
    /// many were removed.
    pub fn remove_temps(dir: &Handle, is_temp: fn(&OsStr) -> bool, lock: &OsStr) -> usize {
        use std::os::unix::ffi::OsStrExt;
        let Ok(entries) = fs::Dir::read_from(&**dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            match entry.file_type() {
                FileType::Directory => {
                    let Ok(sub) = open_subdir(dir, name) else {
                        continue;
                    };
                    if fs::statat(&*sub, lock, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                        continue;
                    }
                    removed += remove_temps(&sub, is_temp, lock);
                }
                _ if is_temp(name) && unlink(dir, name).is_ok() => removed += 1,
                _ => {}
            }
        }
        removed
    }

    pub fn create_excl(dir: &Handle, name: &OsStr) -> std::io::Result<File> {
        let fd = fs::openat(
            &**dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            file_mode(),
        )?;
        Ok(File::from(fd))
    }

    pub fn rename(dir: &Handle, from: &OsStr, to: &OsStr) -> std::io::Result<()> {
        Ok(fs::renameat(&**dir, from, &**dir, to)?)
    }

    pub fn unlink(dir: &Handle, name: &OsStr) -> std::io::Result<()> {
        Ok(fs::unlinkat(&**dir, name, AtFlags::empty())?)
    }

    pub fn sync_dir(dir: &Handle) -> std::io::Result<()> {
        Ok(fs::fsync(&**dir)?)
    }

    pub fn regular_len(dir: &Handle, name: &OsStr) -> Option<u64> {
        let st = fs::statat(&**dir, name, AtFlags::SYMLINK_NOFOLLOW).ok()?;
        (FileType::from_raw_mode(st.st_mode) == FileType::RegularFile).then_some(st.st_size as u64)
    }

    fn not_regular() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is not a regular file (a symbolic link, FIFO or device is never opened)",
        )
    }

    fn check_regular(fd: &OwnedFd) -> std::io::Result<()> {
        let st = fs::fstat(fd)?;
        if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
            Ok(())
        } else {
            Err(not_regular())
        }
    }

    fn nofollow_error(e: rustix::io::Errno) -> std::io::Error {
        if e == rustix::io::Errno::LOOP {
            not_regular()
        } else {
            e.into()
        }
    }

    pub fn open_existing(dir: &Handle, name: &OsStr, append: bool) -> std::io::Result<File> {
        let access = if append {
            OFlags::WRONLY | OFlags::APPEND
        } else {
            OFlags::RDONLY
        };
        let fd = fs::openat(
            &**dir,
            name,
            access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(nofollow_error)?;
        check_regular(&fd)?;
        Ok(File::from(fd))
    }

    pub fn open_lock(dir: &Handle, name: &OsStr) -> std::io::Result<File> {
        let fd = fs::openat(
            &**dir,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            file_mode(),
        )
        .map_err(nofollow_error)?;
        check_regular(&fd)?;
        Ok(File::from(fd))
    }

    /// Whether the file at `name` in `dir` is still `file` (same device and inode).
    pub fn still_named(dir: &Handle, name: &OsStr, file: &File) -> bool {
        match (
            fs::statat(&**dir, name, AtFlags::SYMLINK_NOFOLLOW),
            fs::fstat(file),
        ) {
            (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
            _ => false,
        }
    }

    /// `Ok(false)` when another process holds the lock.
    pub fn try_lock(file: &File) -> std::io::Result<bool> {
        match fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(not(unix))]
mod sys {
    //! Path-based fallbacks where `*at` calls are not available: exclusive creation and
    //! symlink checks by metadata.
    use std::ffi::OsStr;
    use std::fs::{File, OpenOptions};
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use super::Handle;

    fn not_regular() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is not a regular file (a symbolic link or device is never opened)",
        )
    }

    fn regular(path: &Path) -> std::io::Result<()> {
        let m = std::fs::symlink_metadata(path)?;
        if m.is_file() {
            Ok(())
        } else {
            Err(not_regular())
        }
    }

    pub fn open_root(path: &Path) -> std::io::Result<Handle> {
        if !path.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a folder",
            ));
        }
        Ok(Arc::new(path.to_path_buf()))
    }

    pub fn open_subdir(dir: &Handle, name: &OsStr) -> std::io::Result<Handle> {
        let p: PathBuf = dir.join(name);
        let m = std::fs::symlink_metadata(&p)?;
        if !m.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a symbolic link or not a folder; it is not followed",
            ));
        }
        Ok(Arc::new(p))
    }

    pub fn subdir(dir: &Handle, name: &OsStr) -> std::io::Result<(Handle, bool)> {
        let created = match std::fs::create_dir(dir.join(name)) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        Ok((open_subdir(dir, name)?, created))
    }

    pub fn remove_temps(dir: &Handle, is_temp: fn(&OsStr) -> bool, lock: &OsStr) -> usize {
        let Ok(entries) = std::fs::read_dir(&**dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if kind.is_dir() {
                if !entry.path().join(lock).exists() {
                    removed += remove_temps(&Arc::new(entry.path()), is_temp, lock);
                }
            } else if is_temp(&name) && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    pub fn create_excl(dir: &Handle, name: &OsStr) -> std::io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(name))
    }

    pub fn rename(dir: &Handle, from: &OsStr, to: &OsStr) -> std::io::Result<()> {
        std::fs::rename(dir.join(from), dir.join(to))
    }

    pub fn unlink(dir: &Handle, name: &OsStr) -> std::io::Result<()> {
        std::fs::remove_file(dir.join(name))
    }

    pub fn sync_dir(_dir: &Handle) -> std::io::Result<()> {
        Ok(())
    }

    pub fn regular_len(dir: &Handle, name: &OsStr) -> Option<u64> {
        let m = std::fs::symlink_metadata(dir.join(name)).ok()?;
        m.is_file().then_some(m.len())
    }

    pub fn open_existing(dir: &Handle, name: &OsStr, append: bool) -> std::io::Result<File> {
        let p = dir.join(name);
        regular(&p)?;
        OpenOptions::new().read(!append).append(append).open(p)
    }

    pub fn open_lock(dir: &Handle, name: &OsStr) -> std::io::Result<File> {
        let p = dir.join(name);
        if p.exists() {
            regular(&p)?;
        }
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(p)
    }

    pub fn still_named(dir: &Handle, name: &OsStr, _file: &File) -> bool {
        dir.join(name).is_file()
    }

    pub fn try_lock(file: &File) -> std::io::Result<bool> {
        match file.try_lock() {
            Ok(()) => Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
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

    #[test]
    fn symlinks_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let victim = outside.join("victim.txt");
        std::fs::write(&victim, b"keep").unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("a.png")).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("sub")).unwrap();
        std::os::unix::fs::symlink(&victim, out.join(LOCK_NAME)).unwrap();
        std::os::unix::fs::symlink(&victim, out.join("journal.jsonl")).unwrap();
        let d = OutputDir::open(&out).unwrap();
        // A symlink at the output name is replaced, its target untouched.
        d.write_durable(Path::new("a.png"), b"new").unwrap();
        assert_eq!(std::fs::read(out.join("a.png")).unwrap(), b"new");
        // A symlinked sub-folder is refused.
        let e = d.write(Path::new("sub/b.png"), b"x").unwrap_err();
        assert!(e.to_string().contains("not followed"), "{e}");
        // Lock and journal names are never opened through a symlink.
        assert!(d.lock().is_err());
        assert!(d.append("journal.jsonl").is_err());
        assert!(d.read("journal.jsonl").is_err());
        assert_eq!(d.file_len(Path::new("journal.jsonl")), None);
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }

    #[test]
    fn a_second_lock_fails_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let d = OutputDir::open(dir.path()).unwrap();
        let held = d.lock().unwrap();
        // flock locks belong to the open file description: a second open in the same process
        // conflicts just as another process's would.
        let e = OutputDir::open(dir.path()).unwrap().lock().unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("(pid {})", std::process::id())),
            "{e}"
        );
        drop(held);
        OutputDir::open(dir.path()).unwrap().lock().unwrap();
    }

    #[test]
    fn leftover_temp_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let tmp = format!("{TEMP_PREFIX}{:016x}{TEMP_SUFFIX}", 7);
        std::fs::write(dir.path().join(&tmp), b"x").unwrap();
        std::fs::write(dir.path().join("sub").join(&tmp), b"x").unwrap();
        std::fs::write(dir.path().join(".gradcam-mine.tmp"), b"x").unwrap();
        // Another run's folder inside this one, and a symlink to a folder, are left alone.
        std::fs::create_dir(dir.path().join("busy")).unwrap();
        std::fs::write(dir.path().join("busy").join(LOCK_NAME), b"1").unwrap();
        std::fs::write(dir.path().join("busy").join(&tmp), b"x").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join(&tmp), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let d = OutputDir::open(dir.path()).unwrap();
        assert_eq!(d.remove_temp_files(), 2);
        assert!(dir.path().join(".gradcam-mine.tmp").exists());
        assert!(dir.path().join("busy").join(&tmp).exists());
        assert!(outside.path().join(&tmp).exists());
    }
}

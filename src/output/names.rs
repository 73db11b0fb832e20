//! Output names that never collide or replace an input, and the escaped form in which every path
//! is shown: one line whatever the name holds, and distinct for distinct names.

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// `path` as one printable line: `\` becomes `\\`, newline, carriage return and tab become `\n`,
/// `\r`, `\t`, other control characters `\u{..}`, and bytes that are not UTF-8 `\xNN`. Two
/// different paths always give two different strings ([`unescape_path`] reverses it).
pub fn escape_path(path: &Path) -> String {
    escape_os(path.as_os_str())
}

fn escape_str(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' if cfg!(unix) => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(unix)]
fn escape_os(s: &OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::with_capacity(s.len());
    for chunk in s.as_bytes().utf8_chunks() {
        escape_str(chunk.valid(), &mut out);
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(not(unix))]
fn escape_os(s: &OsStr) -> String {
    let mut out = String::new();
    escape_str(&s.to_string_lossy(), &mut out);
    out
}

/// The path that [`escape_path`] turned into `s`; `None` if `s` is not such a string.
pub fn unescape_path(s: &str) -> Option<PathBuf> {
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' || !cfg!(unix) && !matches!(chars.clone().next(), Some('n' | 'r' | 't' | 'u'))
        {
            let mut buf = [0u8; 4];
            bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next()? {
            '\\' => bytes.push(b'\\'),
            'n' => bytes.push(b'\n'),
            'r' => bytes.push(b'\r'),
            't' => bytes.push(b'\t'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                bytes.push(u8::from_str_radix(&hex, 16).ok()?);
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?;
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    os_from_bytes(bytes).map(PathBuf::from)
}

#[cfg(unix)]
fn os_from_bytes(bytes: Vec<u8>) -> Option<OsString> {
    use std::os::unix::ffi::OsStringExt;
    Some(OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn os_from_bytes(bytes: Vec<u8>) -> Option<OsString> {
    String::from_utf8(bytes).ok().map(OsString::from)
}

/// The longest file name most file systems take, in bytes.
pub const NAME_MAX: usize = 255;

/// `name` cut to at most `room` bytes (at a character boundary where it is UTF-8).
fn shorten(name: &OsStr, room: usize) -> OsString {
    if name.len() <= room {
        return name.to_os_string();
    }
    match name.to_str() {
        Some(s) => {
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            OsString::from(&s[..end])
        }
        #[cfg(unix)]
        None => {
            use std::os::unix::ffi::OsStrExt;
            OsStr::from_bytes(&name.as_bytes()[..room]).to_os_string()
        }
        #[cfg(not(unix))]
        None => {
            let bytes = &name.as_encoded_bytes()[..room];
            // A cut inside a non-UTF-8 name: keep the valid prefix and say how much was cut.
            let valid = bytes.utf8_chunks().next().map_or("", |c| c.valid());
            let mut out = OsString::from(valid);
            if valid.len() < bytes.len() {
                out.push(format!("~{}", bytes.len() - valid.len()));
            }
            out
        }
    }
}

/// Picks output names in a folder: one per input, from the input's file stem inside the input's
/// sub-folder (mirrored from a searched directory), unique among the outputs (a later input with
/// a stem already taken gets `stem-2`, `stem-3`, ...), and never the path of an input file.
#[derive(Debug)]
pub struct OutputNames {
    dir: PathBuf,
    /// `dir`'s canonical form: an output's canonical path is this joined with its name (the
    /// tool never follows a symlink below the folder), so no output costs a system call here.
    canonical_dir: PathBuf,
    taken: HashSet<PathBuf>,
    inputs: HashSet<PathBuf>,
    extensions: Vec<&'static str>,
    /// Suffixes of the other outputs an input has beside its own (`_guided`): each name is
    /// taken only with all of them free.
    companions: Vec<&'static str>,
}

impl OutputNames {
    /// Names for outputs in `dir` with the given extensions (e.g. `["png", "safetensors"]`; a
    /// name is free only if it is free with every extension), none equal to any of `inputs`,
    /// given as canonical paths ([`canonical`]).
    pub fn new(
        dir: &Path,
        inputs: impl IntoIterator<Item = PathBuf>,
        extensions: &[&'static str],
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            canonical_dir: canonical(dir),
            taken: HashSet::new(),
            inputs: inputs.into_iter().collect(),
            extensions: extensions.to_vec(),
            companions: Vec::new(),
        }
    }

    /// Each input also has outputs `<stem><suffix>` for these suffixes (e.g. `_guided`).
    pub fn with_companions(mut self, suffixes: &[&'static str]) -> Self {
        self.companions = suffixes.to_vec();
        self
    }

    /// `stem` and its companions' stems.
    fn family(&self, stem: &Path) -> Vec<PathBuf> {
        std::iter::once(stem.to_path_buf())
            .chain(self.companions.iter().map(|c| {
                let mut name = stem.as_os_str().to_os_string();
                name.push(c);
                PathBuf::from(name)
            }))
            .collect()
    }

    /// Marks `stem` (relative to the folder, without extension) as taken, e.g. by an output an
    /// earlier, resumed run wrote.
    pub fn reserve(&mut self, stem: PathBuf) {
        for s in self.family(&stem) {
            self.taken.insert(s);
        }
    }

    /// The stem to use for `input`'s outputs, relative to the folder and without extension:
    /// `subdir/<input's stem>`, or `subdir/<stem>-N` when that is taken.
    ///
    /// Names stay within [`NAME_MAX`] bytes with the longest extension: a stem that would not
    /// fit (a 255-byte input name with `.safetensors`, or with `-2`) is shortened.
    pub fn next(&mut self, input: &Path, subdir: &Path) -> PathBuf {
        self.next_with_suffix(input, subdir, "")
    }

    /// [`OutputNames::next`] for the input's stem followed by `suffix` (e.g. `_285`).
    pub fn next_with_suffix(&mut self, input: &Path, subdir: &Path, suffix: &str) -> PathBuf {
        let stem: &OsStr = input
            .file_stem()
            .filter(|s| !s.is_empty())
            .unwrap_or(OsStr::new("image"));
        let longest_ext = self
            .extensions
            .iter()
            .map(|e| e.len() + 1)
            .max()
            .unwrap_or(0)
            + self.companions.iter().map(|c| c.len()).max().unwrap_or(0);
        let named = |n: &str| {
            let room = NAME_MAX.saturating_sub(longest_ext + suffix.len() + n.len());
            let mut name = shorten(stem, room);
            name.push(suffix);
            name.push(n);
            subdir.join(name)
        };
        let mut candidate = named("");
        let mut n = 1;
        let busy = |names: &Self, stem: &Path| {
            names
                .family(stem)
                .iter()
                .any(|s| names.taken.contains(s) || names.replaces_input(s))
        };
        while busy(self, &candidate) {
            n += 1;
            candidate = named(&format!("-{n}"));
        }
        self.reserve(candidate.clone());
        candidate
    }

    /// `stem` (relative) with `extension`, relative to the folder.
    pub fn relative(stem: &Path, extension: &str) -> PathBuf {
        let mut name = stem.as_os_str().to_os_string();
        name.push(".");
        name.push(extension);
        PathBuf::from(name)
    }

    /// The path of `stem` with `extension` in the output folder.
    pub fn path(&self, stem: &Path, extension: &str) -> PathBuf {
        self.dir.join(Self::relative(stem, extension))
    }

    fn replaces_input(&self, stem: &Path) -> bool {
        self.extensions.iter().any(|e| {
            self.inputs
                .contains(&self.canonical_dir.join(Self::relative(stem, e)))
        })
    }
}

/// The canonical form of `path`; for a path that does not exist (yet), its folder's canonical
/// form joined with its name (relative paths taken from the current directory).
pub fn canonical(path: &Path) -> PathBuf {
    if let Ok(c) = path.canonicalize() {
        return c;
    }
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or(absolute.clone()),
        _ => absolute,
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
        let mut names = OutputNames::new(dir.path(), inputs.iter().map(|p| canonical(p)), &["png"]);
        let got: Vec<PathBuf> = inputs
            .iter()
            .map(|i| names.next(i, Path::new("")))
            .collect();
        assert_eq!(got, ["cat", "cat-3", "cat-2-2", "dog-2"].map(PathBuf::from));
        // Mirrored sub-folders keep same-named files apart; a reserved name is skipped.
        names.reserve(PathBuf::from("b/x"));
        assert_eq!(
            names.next(Path::new("in/a/x.png"), Path::new("a")),
            Path::new("a/x")
        );
        assert_eq!(
            names.next(Path::new("in/b/x.png"), Path::new("b")),
            Path::new("b/x-2")
        );

        // Every name fits 255 bytes with the longest extension, suffix included.
        let mut names = OutputNames::new(dir.path(), [], &["png", "safetensors"]);
        let long = format!("{}é.png", "a".repeat(250));
        let first = names.next(Path::new(&long), Path::new(""));
        let second = names.next(Path::new(&long), Path::new(""));
        for stem in [&first, &second] {
            let name = OutputNames::relative(stem, "safetensors");
            assert!(name.as_os_str().len() <= NAME_MAX, "{}", name.display());
        }
        assert_ne!(first, second);
        assert!(second.to_str().unwrap().ends_with("-2"));
    }

    #[test]
    fn escaped_paths_are_one_line_and_distinct() {
        for raw in [
            "plain.png",
            "new\nline.png",
            "back\\slash",
            "tab\tx",
            "bell\u{7}",
        ] {
            let p = PathBuf::from(raw);
            let e = escape_path(&p);
            assert!(!e.contains('\n') && !e.chars().any(char::is_control), "{e}");
            assert_eq!(unescape_path(&e).as_deref(), Some(p.as_path()), "{e}");
        }
        assert_eq!(escape_path(Path::new("a\nb")), "a\\nb");
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let a = Path::new(OsStr::from_bytes(b"caf\xe9.png"));
            let b = Path::new(OsStr::from_bytes(b"caf\xe8.png"));
            assert_ne!(escape_path(a), escape_path(b));
            assert_eq!(escape_path(a), "caf\\xe9.png");
            assert_eq!(unescape_path(&escape_path(a)).as_deref(), Some(a));
        }
    }
}

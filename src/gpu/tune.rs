//! Self-tuning: the hot convolution kernels have several pipeline variants that compute the
//! same thing with different tilings ([`tuning_candidates`]). The first time a launch shape is
//! configured on an adapter, every candidate is timed on it (timestamp queries, the least of a
//! few runs) and the fastest is kept for every later launch of that shape. The choices are
//! cached on disk per adapter, driver, engine version and kernel sources ([`fingerprint`]), so
//! a process pays for them once.
//!
//! Tuning is on by default on GPUs with timestamp queries and off on CPU adapters (lavapipe),
//! where the builder's choices were measured. `GRADCAM_TUNE=0` turns it off, `1` on, `again`
//! re-times every shape (also [`Tuner::retune`], the CLI's `--tune`); `GRADCAM_TUNE_CACHE`
//! names the cache folder (default `$XDG_CACHE_HOME/gradcam`, else `~/.cache/gradcam`). A
//! missing or unwritable cache only costs time. Variants are named in the cache and in
//! `GRADCAM_FORCE=KERNEL=VARIANT[,...]` (e.g. `pointwise_conv=split_16`), which forces a variant
//! wherever it is a candidate, as [`Tuner::force`] does: for checking each variant end to end
//! through the CLI.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;

#[cfg(doc)]
use super::kernels::fingerprint;
use super::kernels::{tuning_candidates, KernelId, ALL_KERNELS};

/// `GRADCAM_FORCE`'s `KERNEL=VARIANT` pairs, comma-separated, each variant by its name; what
/// names no kernel or variant is left out.
fn parse_forced(text: &str) -> HashMap<KernelId, usize> {
    text.split(',')
        .filter_map(|pair| {
            let (name, variant) = pair.split_once('=')?;
            let kernel = KernelId::from_name(name.trim())?;
            Some((kernel, kernel.variant_named(variant.trim())?))
        })
        .collect()
}

/// Whether launches are tuned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TuneMode {
    /// Every launch runs the builder's variant.
    Off,
    /// Shapes not in the cache are timed once.
    On,
    /// Every shape is timed again, replacing the cache's choices.
    Again,
}

/// What the tuner says of one launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Run this variant.
    Use(usize),
    /// Time these candidates first.
    Time,
}

/// The per-adapter choices of pipeline variant, by kernel and parameters.
#[derive(Debug)]
pub struct Tuner {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    mode: TuneMode,
    /// Variant per launch key (kernel, builder's variant, parameter bytes).
    choices: BTreeMap<String, usize>,
    /// Keys timed since this process started (re-timed in `Again` mode only once).
    timed: std::collections::BTreeSet<String>,
    /// Each timing made by this process, in order: key and (variant, seconds) per candidate.
    timings: Vec<(String, Vec<(usize, f64)>)>,
    /// Variants forced per kernel (tests), over every other choice.
    forced: HashMap<KernelId, usize>,
    /// The cache file; `None` when no folder could be found.
    cache: Option<PathBuf>,
    /// Identifies the adapter, driver and engine the choices were measured on.
    identity: String,
}

impl Tuner {
    /// The tuner of an adapter: mode from `GRADCAM_TUNE` (default: on for GPUs with
    /// timestamps), choices from the disk cache.
    pub fn new(info: &wgpu::AdapterInfo, timestamps: bool) -> Self {
        let default = if timestamps && info.device_type != wgpu::DeviceType::Cpu {
            TuneMode::On
        } else {
            TuneMode::Off
        };
        let mode = match std::env::var("GRADCAM_TUNE").ok().as_deref().map(str::trim) {
            Some("0" | "off" | "false") => TuneMode::Off,
            Some("1" | "on" | "true") if timestamps => TuneMode::On,
            Some("again") if timestamps => TuneMode::Again,
            _ => default,
        };
        let identity = format!(
            "{} | {:?} | {:#x}:{:#x} | {} {} | gradcam {} | kernels {:016x}",
            info.name,
            info.backend,
            info.vendor,
            info.device,
            info.driver,
            info.driver_info,
            env!("CARGO_PKG_VERSION"),
            super::kernels::fingerprint()
        );
        let cache = cache_dir().map(|dir| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            identity.hash(&mut h);
            let name: String = info
                .name
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .take(40)
                .collect();
            dir.join(format!("tune-{name}-{:016x}.json", h.finish()))
        });
        let choices = cache
            .as_ref()
            .and_then(|p| load(p, &identity))
            .unwrap_or_default();
        let forced = std::env::var("GRADCAM_FORCE")
            .map(|v| parse_forced(&v))
            .unwrap_or_default();
        Self {
            state: Mutex::new(State {
                mode,
                choices,
                timed: Default::default(),
                timings: Vec::new(),
                forced,
                cache,
                identity,
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current mode.
    pub fn mode(&self) -> TuneMode {
        self.state().mode
    }

    /// Sets the mode (tests tune on lavapipe; an app may turn tuning off).
    pub fn set_mode(&self, mode: TuneMode) {
        self.state().mode = mode;
    }

    /// Times every shape again from now on (the CLI's `--tune`).
    pub fn retune(&self) {
        self.set_mode(TuneMode::Again);
    }

    /// Makes every launch of `kernel` whose candidates include `variant` run it (`None`: stop
    /// forcing); for tests that check each variant against the reference.
    pub fn force(&self, kernel: KernelId, variant: Option<usize>) {
        let mut s = self.state();
        match variant {
            Some(v) => s.forced.insert(kernel, v),
            None => s.forced.remove(&kernel),
        };
    }

    /// Where the choices are cached (`None`: nowhere).
    pub fn cache_path(&self) -> Option<PathBuf> {
        self.state().cache.clone()
    }

    /// Caches the choices in `dir` instead (reading what it holds).
    pub fn set_cache_dir(&self, dir: impl Into<PathBuf>) {
        let mut s = self.state();
        let name = s
            .cache
            .as_ref()
            .and_then(|p| p.file_name().map(|n| n.to_owned()))
            .unwrap_or_else(|| "tune.json".into());
        let path = dir.into().join(name);
        s.choices = load(&path, &s.identity).unwrap_or_default();
        s.cache = Some(path);
    }

    /// The variants chosen so far: (launch key, variant).
    pub fn choices(&self) -> Vec<(String, usize)> {
        self.state()
            .choices
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// The timings this process made, in order: launch key and each candidate's (variant,
    /// seconds), for reports.
    pub fn timings(&self) -> Vec<(String, Vec<(usize, f64)>)> {
        self.state().timings.clone()
    }

    /// What to run for a launch of `kernel` that the builder gave `variant`, with parameter
    /// bytes `params`.
    pub fn choose(&self, kernel: KernelId, variant: usize, params: &[u8]) -> Choice {
        let candidates = tuning_candidates(kernel, variant);
        if candidates.len() < 2 {
            return Choice::Use(variant);
        }
        let s = self.state();
        if let Some(&v) = s.forced.get(&kernel) {
            if candidates.contains(&v) {
                return Choice::Use(v);
            }
        }
        if s.mode == TuneMode::Off {
            return Choice::Use(variant);
        }
        let key = launch_key(kernel, variant, params);
        match s.mode {
            TuneMode::Again if !s.timed.contains(&key) => Choice::Time,
            _ => match s.choices.get(&key) {
                Some(&v) if candidates.contains(&v) => Choice::Use(v),
                _ => Choice::Time,
            },
        }
    }

    /// Records the variant timed fastest for each launch (kernel, the builder's variant,
    /// parameters, fastest, every candidate's time), and writes the cache.
    pub(crate) fn record(&self, results: Vec<Timing>) {
        let mut s = self.state();
        for (kernel, variant, params, best, times) in results {
            let key = launch_key(kernel, variant, &params);
            s.timed.insert(key.clone());
            s.choices.insert(key.clone(), best);
            s.timings.push((key, times));
        }
        if let Some(path) = s.cache.clone() {
            // Best effort: an unwritable cache only means timing again in the next process.
            let _ = save(&path, &s.identity, &s.choices);
        }
    }
}

/// One launch's timing: kernel, the builder's variant, parameter bytes, the fastest variant, and
/// each candidate's (variant, seconds).
pub(crate) type Timing = (KernelId, usize, Vec<u8>, usize, Vec<(usize, f64)>);

/// A launch's key: kernel name, the builder's variant's name and the parameter bytes in hex.
fn launch_key(kernel: KernelId, variant: usize, params: &[u8]) -> String {
    let hex: String = params.iter().map(|b| format!("{b:02x}")).collect();
    let name = kernel.variant_name(variant).unwrap_or("?");
    format!("{}/{name}/{hex}", ALL_KERNELS[kernel as usize].name)
}

/// The kernel a launch key names.
fn key_kernel(key: &str) -> Option<KernelId> {
    KernelId::from_name(key.split('/').next()?)
}

fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GRADCAM_TUNE_CACHE").filter(|d| !d.is_empty()) {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("gradcam"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("gradcam"))
}

fn load(path: &std::path::Path, identity: &str) -> Option<BTreeMap<String, usize>> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    if v.get("identity")?.as_str()? != identity {
        return None;
    }
    Some(
        v.get("choices")?
            .as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), key_kernel(k)?.variant_named(v.as_str()?)?)))
            .collect(),
    )
}

fn save(
    path: &std::path::Path,
    identity: &str,
    choices: &BTreeMap<String, usize>,
) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let named: BTreeMap<&str, &str> = choices
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), key_kernel(k)?.variant_name(*v)?)))
        .collect();
    let body = serde_json::json!({"identity": identity, "choices": named});
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, (body.to_string() + "\n").as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

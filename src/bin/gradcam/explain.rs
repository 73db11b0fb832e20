//! `gradcam explain`: a batch run that nothing can corrupt, hijack or lose.
//!
//! The output folder is locked for the run, every file in it is written through
//! [`OutputDir`] (exclusive temporary files, renames, flushed folders, never a symlink), and each
//! finished input is recorded in the folder's journal once its outputs are durable, so a killed
//! run is continued with `--resume`. Decoding, the GPU and PNG writing overlap on three threads;
//! none of them can end the run by failing to log.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use gradcam::boxes::{draw_localisation_box, localisation_box};
use gradcam::gpu::Profiler;
use gradcam::output::{
    canonical, escape_path, holds_a_run, record, DirLock, Journal, OutputDir, OutputNames, PastRun,
    JOURNAL_NAME, LOCK_NAME, REPORT_NAME, REPORT_TOOL,
};
use gradcam::{Explainer, Explanation, Labels, Readback, Target};
use serde_json::{json, Value};

use crate::classify::top_json;
use crate::config::{differences, setup, ExplainConfig, Setup};
use crate::inputs::{self, Input};
use crate::signals::Stop;
use crate::{fail_setup, failure_message, log, EXIT_OK, EXIT_SOME_FAILED};

/// A finished input's report entry, kept as compact JSON: a run over a million inputs holds a
/// few hundred bytes per input, not a tree of values.
#[derive(Clone, Debug)]
struct Entry {
    failed: bool,
    json: Box<str>,
}

impl Entry {
    fn new(entry: &Value) -> Self {
        Self {
            failed: entry.get("error").is_some(),
            json: entry.to_string().into_boxed_str(),
        }
    }
}

/// Where the report's `images` array goes in its pretty-printed head and tail.
const IMAGES_PLACEHOLDER: &str = "@@gradcam-images@@";

/// Decoder errors accumulated before they are passed on without an image to go with them.
const ERRORS_PER_BATCH: usize = 64;

/// One batch on its way from the decoder thread to the GPU: input indices with their images
/// or errors.
#[derive(Default)]
struct Decoded {
    images: Vec<(usize, image::RgbImage)>,
    errors: Vec<(usize, String)>,
}

/// One batch on its way from the GPU to the writer thread.
struct Explained {
    results: Vec<(usize, Result<Explanation, String>)>,
    errors: Vec<(usize, String)>,
}

/// Runs `gradcam explain`: opens and locks the folder, gathers the inputs, starts (or resumes)
/// the journal, explains every input on three overlapping threads, and writes the report.
pub fn run(config: ExplainConfig) -> ExitCode {
    let started = Instant::now();
    // From here on a stop signal ends the run with a report (a second one ends it at once).
    let stop = Stop::install();
    let folder = match Folder::open(&config) {
        Ok(f) => f,
        Err(e) => return fail_setup(e),
    };
    let (inputs, keys) = match gather_inputs(&config, &folder) {
        Ok(i) => i,
        Err(e) => return fail_setup(e),
    };
    let req = &config.args;
    let setup = match setup(&req.common, config.model.clone()) {
        Ok(s) => s,
        Err(e) => return fail_setup(e),
    };
    let engine = &setup.engine;
    let requested = req.batch.unwrap_or_else(|| engine.default_batch());
    let capacity = requested
        .min(engine.max_batch())
        .min(inputs.len() as u32)
        .max(1);
    // Two batches in flight on a GPU (one read back while the GPU works on the other); one on
    // a CPU adapter, whose cores do both, and when profiling.
    let cpu_adapter = engine.context().adapter_info.device_type == wgpu::DeviceType::Cpu;
    let in_flight = match req.in_flight {
        Some(n) => n,
        None if cpu_adapter || req.profile => 1,
        None => 2,
    }
    // No more explainers than batches.
    .min(inputs.len().div_ceil(capacity as usize).max(1) as u32);
    let mut explainers = Vec::with_capacity(in_flight as usize);
    for _ in 0..in_flight {
        match engine.explainer(capacity, config.options.clone()) {
            Ok(x) => explainers.push(x),
            Err(e) => return fail_setup(e),
        }
    }
    let mut progress = match Progress::start(&config, &folder, &inputs, &keys) {
        Ok(p) => p,
        Err(e) => return fail_setup(e),
    };
    let work = Work {
        config: &config,
        dir: &folder.dir,
        labels: &setup.labels,
        inputs: &inputs,
        keys: &keys,
        capacity,
        stop: &stop,
    };
    // Five stages, each timed six times over with --aug-smooth.
    let profiler = req.profile.then(|| Profiler::new(engine.context(), 32));
    let outcome = explain_inputs(&work, &mut explainers, profiler, &mut progress);
    let report = Report {
        setup: &setup,
        capacity,
        seconds: started.elapsed().as_secs_f64(),
        // The weights, which the explainers share, once.
        gpu_bytes: explainers.iter().map(Explainer::gpu_bytes).sum::<u64>()
            - (explainers.len() as u64 - 1) * explainers[0].forward().gpu_model().gpu_bytes(),
    };
    finish(&work, progress, outcome, &report)
}

/// The output folder, locked for the run, with what an earlier run left in it.
struct Folder {
    dir: OutputDir,
    _lock: DirLock,
    past: Option<PastRun>,
}

impl Folder {
    /// Makes, locks (a second run stops here at once) and probes the folder, and checks an
    /// earlier run in it against `--resume` / `--restart` and the settings.
    fn open(config: &ExplainConfig) -> Result<Self, String> {
        let req = &config.args;
        let out = req.out.as_path();
        let dir = OutputDir::open(out).map_err(|e| e.to_string())?;
        let lock = dir.lock().map_err(|e| e.to_string())?;
        dir.probe().map_err(|e| e.to_string())?;
        let past = PastRun::read(&dir).map_err(|e| e.to_string())?;
        if let Some(p) = &past {
            let unfinished = !p.finished && !p.records.is_empty();
            if unfinished && !req.resume && !req.restart {
                return Err(format!(
                    "{}: holds an unfinished run ({} inputs recorded in {JOURNAL_NAME}); add \
                     --resume to continue it, or --restart to start over",
                    escape_path(out),
                    p.records.len()
                ));
            }
            let changed = differences(&p.settings, &config.settings);
            if req.resume && !changed.is_empty() {
                return Err(format!(
                    "{}: --resume needs the settings of the run it continues; changed: {}",
                    escape_path(out),
                    changed.join(", ")
                ));
            }
        }
        Ok(Self {
            dir,
            _lock: lock,
            past,
        })
    }
}

/// The inputs, each once, with their keys (canonical paths): folders searched, the output
/// folder's own files and earlier outputs left out.
fn gather_inputs(
    config: &ExplainConfig,
    folder: &Folder,
) -> Result<(Vec<Input>, Vec<String>), String> {
    let req = &config.args;
    let out = req.out.as_path();
    let own: Vec<(PathBuf, &str)> = [REPORT_NAME, JOURNAL_NAME, LOCK_NAME]
        .into_iter()
        .map(|n| (canonical(&out.join(n)), n))
        .collect();
    let mut exclude: HashSet<PathBuf> = own.iter().map(|(p, _)| p.clone()).collect();
    if let Some(p) = &folder.past {
        exclude.extend(p.outputs().map(|rel| canonical(&out.join(rel))));
    }
    // A folder given as input that holds another run: that run's outputs are not inputs either
    // (sub-folders holding a run are not searched at all).
    for given in req.images.iter().filter(|g| g.is_dir() && holds_a_run(g)) {
        if canonical(given) == canonical(out) {
            continue;
        }
        if let Ok(Some(p)) = OutputDir::open(given).and_then(|d| PastRun::read(&d)) {
            exclude.extend(p.outputs().map(|rel| canonical(&given.join(rel))));
        }
    }
    let inputs = inputs::expand(req.images.clone(), &exclude)?;
    for input in inputs.iter().filter(|i| i.named) {
        if let Some((_, name)) = own.iter().find(|(p, _)| *p == input.canonical) {
            return Err(format!(
                "{}: is the output folder's {name}; it is never taken as an input or replaced \
                 (choose another --out)",
                escape_path(&input.path)
            ));
        }
    }
    // A file given twice is explained once: one key per input, the canonical path.
    let mut seen = HashSet::new();
    let mut unique: Vec<(Input, String)> = inputs
        .into_iter()
        .map(|i| {
            let key = escape_path(&i.canonical);
            (i, key)
        })
        .filter(|(_, k)| seen.insert(k.clone()))
        .collect();
    // --shard K/N: the inputs at positions K, K + N, ... of the inputs sorted by path, the same
    // list in every shard whatever order they were given in.
    if let Some(shard) = req.shard {
        unique.sort_by(|a, b| a.1.cmp(&b.1));
        unique = unique
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % shard.count == shard.index)
            .map(|(_, u)| u)
            .collect();
        if unique.is_empty() {
            return Err(format!(
                "--shard {}/{}: this shard has no inputs (there are fewer inputs than shards)",
                shard.index, shard.count
            ));
        }
    }
    let unique = unique.into_iter();
    // With --top-k each image is K inputs, one per rank, next to each other (decoded once),
    // keyed `<path>\ttop-<rank>`: an escaped path never holds a tab.
    Ok(match req.top_k {
        None => unique.unzip(),
        Some(k) => unique
            .flat_map(|(input, key)| {
                (0..k).map(move |r| {
                    let ranked = Input {
                        rank: Some(r),
                        ..input.clone()
                    };
                    (ranked, format!("{key}\ttop-{r}"))
                })
            })
            .unzip(),
    })
}

/// The run's record: each input's report entry once it is done (carried over from the run it
/// resumes, or written by this one), the output names taken, and the journal.
struct Progress {
    entries: Vec<Option<Entry>>,
    names: OutputNames,
    journal: Journal,
    resumed: usize,
    /// The inputs this run does, in input order.
    todo: Vec<usize>,
}

impl Progress {
    /// Carries over what the resumed run recorded and is still whole, and starts the journal.
    fn start(
        config: &ExplainConfig,
        folder: &Folder,
        inputs: &[Input],
        keys: &[String],
    ) -> Result<Self, String> {
        let req = &config.args;
        let dir = &folder.dir;
        let extensions: &[&'static str] = if req.raw {
            &["png", "safetensors"]
        } else {
            &["png"]
        };
        let companions: &[&'static str] = if req.guided {
            &[GUIDED_SUFFIX, GUIDED_GRADCAM_SUFFIX]
        } else {
            &[]
        };
        let mut names = OutputNames::new(
            &req.out,
            inputs.iter().map(|i| i.canonical.clone()),
            extensions,
        )
        .with_companions(companions);
        let mut entries: Vec<Option<Entry>> = vec![None; inputs.len()];
        let mut resumed = 0usize;
        let mut carried = Vec::new();
        if let (Some(p), true) = (&folder.past, req.resume) {
            for (i, key) in keys.iter().enumerate() {
                if let Some(record) = p.completed(dir, key) {
                    entries[i] = Some(Entry::new(&record["entry"]));
                    if let Some(stem) = PastRun::stem(record) {
                        names.reserve(stem);
                    }
                    carried.push(record);
                    resumed += 1;
                }
            }
        }
        dir.remove_temp_files();

        // No stale report: until this run ends, report.json says a run is in progress. A new
        // run writes it before making its journal, so a journal never sits beside an earlier
        // run's report; a resumed run first copies what it carries over into its journal.
        let placeholder = json!({
            "tool": REPORT_TOOL,
            "status": "running",
            "pid": std::process::id(),
            "journal": JOURNAL_NAME,
            "note": "this run has not ended; finished inputs are listed in the journal as they \
                     are written, and a stopped or killed run continues with --resume",
        });
        let write_placeholder = || {
            dir.write_durable(
                Path::new(REPORT_NAME),
                (serde_json::to_string_pretty(&placeholder).unwrap_or_default() + "\n").as_bytes(),
            )
        };
        let journal = match (&folder.past, req.resume) {
            (Some(p), true) => Journal::resume(dir, p, &config.settings, &carried)
                .and_then(|j| write_placeholder().map(|()| j)),
            _ => write_placeholder().and_then(|()| Journal::create(dir, &config.settings)),
        }
        .map_err(|e| e.to_string())?;
        let todo = (0..inputs.len())
            .filter(|&i| entries[i].is_none())
            .collect();
        Ok(Self {
            entries,
            names,
            journal,
            resumed,
            todo,
        })
    }
}

/// What the three threads share, read-only.
struct Work<'a> {
    config: &'a ExplainConfig,
    dir: &'a OutputDir,
    labels: &'a Labels,
    inputs: &'a [Input],
    keys: &'a [String],
    capacity: u32,
    stop: &'a Stop,
}

/// How the threads fared.
#[derive(Default)]
struct Outcome {
    stage_times: Vec<(String, f64)>,
    timestamps: bool,
    gpu_seconds: f64,
    decode_seconds: f64,
    encode_seconds: f64,
    /// Internal errors (a thread that stopped), each reported once.
    internal: Vec<String>,
    journal_failed: bool,
}

/// Explains `progress.todo`. Three stages overlap: the next batch decodes and the previous
/// one's PNGs are encoded and written on CPU threads while the GPU explains the current one.
fn explain_inputs(
    work: &Work,
    explainers: &mut [Explainer],
    mut profiler: Option<Profiler>,
    progress: &mut Progress,
) -> Outcome {
    let req = &work.config.args;
    let bar = if req.quiet || progress.todo.len() < 2 {
        indicatif::ProgressBar::hidden()
    } else {
        // Draws only when stderr is a terminal.
        let bar = indicatif::ProgressBar::new(progress.todo.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} images  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    };
    let mut outcome = Outcome::default();
    // Each input's class: its rank with --top-k, else from --targets, else --class, else the
    // predicted one.
    let target_of = |i: usize| target_of(work.config, &work.inputs[i]);
    let todo = std::mem::take(&mut progress.todo);
    let entries = Mutex::new(std::mem::take(&mut progress.entries));
    std::thread::scope(|scope| {
        let (to_gpu, from_decoder) = std::sync::mpsc::sync_channel::<Decoded>(0);
        let (to_writer, from_gpu) = std::sync::mpsc::sync_channel::<Explained>(0);
        let decoder = scope.spawn(|| decode_batches(work, &todo, to_gpu));
        let shapes = RawShapes {
            grid: explainers[0].grid_size(),
            cam: explainers[0].cam_size(),
        };
        let (names, journal, entries, bar) =
            (&mut progress.names, &mut progress.journal, &entries, &bar);
        let writer = scope
            .spawn(move || write_batches(work, from_gpu, shapes, names, journal, entries, bar));

        let what = Readback {
            // --boxes reads the CAM; --raw also its grid.
            cam: req.raw || req.boxes,
            cam_grid: req.raw,
            overlay: true,
            guided: req.guided,
        };
        // Batches submitted to the GPU and not read back yet, oldest first: with two
        // explainers, one batch's results are read while the GPU works on the next.
        let mut in_flight: VecDeque<InFlight> = VecDeque::with_capacity(explainers.len());
        let mut next = 0;
        let mut stopped = false;
        let mut batches = from_decoder.iter();
        loop {
            let batch = if stopped || work.stop.requested() {
                None
            } else {
                batches.next()
            };
            let t = Instant::now();
            if let Some(batch) = batch {
                let targets: Vec<Target> =
                    batch.images.iter().map(|(i, _)| target_of(*i)).collect();
                let slot = next;
                next = (next + 1) % explainers.len();
                // A panic in the GPU stage fails this batch and ends the run with a report,
                // rather than taking the finished work's record with it.
                let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    start_batch(
                        &mut explainers[slot],
                        &batch.images,
                        &targets,
                        what,
                        profiler.as_mut(),
                        &mut outcome.stage_times,
                    )
                }))
                .map_err(|p| format!("the GPU stage stopped: {}", panic_text(&p)));
                in_flight.push_back(InFlight {
                    slot,
                    batch,
                    targets,
                    started,
                });
                if in_flight.len() < explainers.len() {
                    outcome.gpu_seconds += t.elapsed().as_secs_f64();
                    continue;
                }
            }
            let Some(done) = in_flight.pop_front() else {
                break;
            };
            let explainer = &mut explainers[done.slot];
            let results = match done.started {
                Err(panicked) => Err(panicked),
                Ok(started) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    finish_batch(explainer, &done.batch.images, &done.targets, started, what)
                }))
                .map_err(|p| format!("the GPU stage stopped: {}", panic_text(&p))),
            };
            let index = done.batch.images.iter().map(|(i, _)| *i);
            let results = match results {
                Ok(out) => index.zip(out).collect(),
                Err(msg) => {
                    outcome.internal.push(msg.clone());
                    stopped = true;
                    index
                        .map(|i| (i, Err(format!("internal error: {msg}"))))
                        .collect()
                }
            };
            drop(done.batch.images);
            outcome.gpu_seconds += t.elapsed().as_secs_f64();
            let explained = Explained {
                results,
                errors: done.batch.errors,
            };
            if to_writer.send(explained).is_err() {
                break;
            }
        }
        drop(to_writer);
        drop(from_decoder);
        match decoder.join() {
            Ok(s) => outcome.decode_seconds = s,
            Err(p) => outcome
                .internal
                .push(format!("the decoder stopped: {}", panic_text(&p))),
        }
        match writer.join() {
            Ok((s, f)) => (outcome.encode_seconds, outcome.journal_failed) = (s, f),
            Err(p) => outcome
                .internal
                .push(format!("the writer stopped: {}", panic_text(&p))),
        }
    });
    bar.finish_and_clear();
    for e in &outcome.internal {
        log::error(format!("internal error: {e}"));
    }
    outcome.timestamps = profiler.as_ref().is_some_and(Profiler::enabled);
    progress.todo = todo;
    progress.entries = entries.into_inner().unwrap_or_else(|e| e.into_inner());
    outcome
}

/// The decoder thread: decodes `todo` into batches of at most `capacity` images and
/// `--batch-pixels` pixels; returns its seconds.
fn decode_batches(
    work: &Work,
    todo: &[usize],
    to_gpu: std::sync::mpsc::SyncSender<Decoded>,
) -> f64 {
    let req = &work.config.args;
    let (max_pixels, budget) = (req.common.max_pixels, req.batch_pixels);
    let inputs = work.inputs;
    let mut seconds = 0.0;
    let mut batch = Decoded::default();
    let mut pixels = 0u64;
    let mut previous: Option<(std::path::PathBuf, Result<image::RgbImage, String>)> = None;
    for &i in todo {
        if work.stop.requested() {
            return seconds;
        }
        let t = Instant::now();
        // The ranks of one image (--top-k) follow each other: decoded once.
        let decoded = match &previous {
            Some((canonical, d)) if *canonical == inputs[i].canonical => d.clone(),
            _ => {
                // A decoder that panics on a crafted file fails that file, not the run.
                let d = std::panic::catch_unwind(|| {
                    gradcam::decode_image_limited(&inputs[i].path, max_pixels)
                })
                .unwrap_or_else(|p| {
                    Err(gradcam::Error::Image {
                        path: inputs[i].path.clone(),
                        reason: format!("the decoder failed: {}", panic_text(&p)),
                    })
                })
                .map_err(|e| e.to_string());
                if inputs[i].rank.is_some() {
                    previous = Some((inputs[i].canonical.clone(), d.clone()));
                }
                d
            }
        };
        seconds += t.elapsed().as_secs_f64();
        match decoded {
            Ok(img) => {
                let p = u64::from(img.width()) * u64::from(img.height());
                let full = batch.images.len() == work.capacity as usize
                    || (!batch.images.is_empty() && pixels + p > budget);
                if full {
                    if to_gpu.send(std::mem::take(&mut batch)).is_err() {
                        return seconds;
                    }
                    pixels = 0;
                }
                pixels += p;
                batch.images.push((i, img));
            }
            Err(e) => {
                batch.errors.push((i, e));
                if batch.images.is_empty()
                    && batch.errors.len() >= ERRORS_PER_BATCH
                    && to_gpu.send(std::mem::take(&mut batch)).is_err()
                {
                    return seconds;
                }
            }
        }
    }
    if !batch.images.is_empty() || !batch.errors.is_empty() {
        let _ = to_gpu.send(batch);
    }
    seconds
}

/// The writer thread: writes each explained batch's files, makes them durable, records them in
/// the journal; returns its seconds and whether the journal failed.
fn write_batches(
    work: &Work,
    from_gpu: std::sync::mpsc::Receiver<Explained>,
    shapes: RawShapes,
    names: &mut OutputNames,
    journal: &mut Journal,
    entries: &Mutex<Vec<Option<Entry>>>,
    bar: &indicatif::ProgressBar,
) -> (f64, bool) {
    let (dir, inputs, keys, config) = (work.dir, work.inputs, work.keys, work.config);
    let raw = work.config.args.raw;
    let boxes = work
        .config
        .args
        .boxes
        .then_some(work.config.args.box_threshold as f32);
    let say = |msg: String| bar.suspend(|| log::error(msg));
    let mut seconds = 0.0;
    let mut journal_failed = false;
    for batch in from_gpu {
        let t = Instant::now();
        let mut done: Vec<(usize, Value)> = Vec::new();
        let failure = |i: usize, error: String| json!({"image": escape_path(&inputs[i].path), "error": error});
        for (i, error) in batch.errors {
            say(error.clone());
            done.push((i, failure(i, error)));
        }
        let mut written = Vec::new();
        for (i, result) in batch.results {
            let input = &inputs[i];
            let written_one = result.and_then(|r| {
                // A panic while encoding one image fails that image, not the run.
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    write_outputs(input, r, dir, names, (raw, boxes), work.labels, shapes)
                }))
                .map_err(|p| format!("internal error: {}", panic_text(&p)))?
                .map_err(|e| e.to_string())
            });
            match written_one {
                Ok(mut entry) => {
                    // What was explained, and how.
                    entry["method"] = json!(config.options.method.name());
                    entry["layer"] = json!(config.layer);
                    let target = target_of(config, input);
                    if let Target::Rank(r) = target {
                        entry["rank"] = json!(r);
                    }
                    entry["target"] = json!(match target {
                        Target::Predicted => "predicted",
                        Target::Class(_) => "class",
                        Target::Rank(_) => "rank",
                    });
                    // What --resume matches, whatever the directory it runs from.
                    entry["source"] = json!(keys[i]);
                    written.push((i, entry));
                }
                Err(e) => {
                    let msg = failure_message(&input.path, &e);
                    say(msg.clone());
                    done.push((i, failure(i, msg)));
                }
            }
        }
        // The renames are made durable before anything is recorded as written.
        match dir.sync() {
            Ok(()) => done.extend(written),
            Err(e) => {
                say(e.to_string());
                done.extend(
                    written
                        .into_iter()
                        .map(|(i, _)| (i, failure(i, e.to_string()))),
                );
            }
        }
        let mut recorded = Ok(());
        for (i, entry) in &done {
            if recorded.is_ok() {
                recorded = journal.append(&record(&keys[*i], entry));
            }
        }
        if let Err(e) = recorded.and_then(|()| journal.sync()) {
            if !journal_failed {
                say(e.to_string());
            }
            journal_failed = true;
        }
        let n = done.len() as u64;
        {
            let mut entries = entries.lock().unwrap_or_else(|e| e.into_inner());
            for (i, entry) in done {
                entries[i] = Some(Entry::new(&entry));
            }
        }
        bar.inc(n);
        seconds += t.elapsed().as_secs_f64();
    }
    (seconds, journal_failed)
}

/// What the report says about the run besides its inputs.
struct Report<'a> {
    setup: &'a Setup,
    capacity: u32,
    seconds: f64,
    gpu_bytes: u64,
}

/// Writes the report (replacing the placeholder), removes the journal, prints the profile and
/// returns the exit status.
fn finish(work: &Work, progress: Progress, outcome: Outcome, report: &Report) -> ExitCode {
    let config = work.config;
    let req = &config.args;
    let out = req.out.as_path();
    let dir = work.dir;
    let engine = &report.setup.engine;
    let entries = &progress.entries;
    let mut journal_failed = outcome.journal_failed;
    // A signal that came after the last input was done stopped nothing.
    let signal = work
        .stop
        .signal()
        .filter(|_| entries.iter().any(Option::is_none));
    let listed: Vec<&Entry> = entries.iter().flatten().collect();
    let failed = listed.iter().filter(|e| e.failed).count();
    let explained = listed.len() - failed;
    let not_started = entries.len() - listed.len();
    let status = if signal.is_some() {
        "interrupted"
    } else if not_started > 0 || !outcome.internal.is_empty() {
        "incomplete"
    } else {
        "complete"
    };
    let done_now = listed.len() - progress.resumed;
    let seconds = report.seconds;
    let json_report = json!({
        "tool": REPORT_TOOL,
        "status": status,
        "weights": report.setup.weights,
        "architecture": engine.model().architecture,
        "input_size": engine.model().input_size,
        "mean": engine.model().mean,
        "std": engine.model().std,
        "method": config.options.method.name(),
        "layer": config.layer,
        "colormap": req.colormap.name(),
        "image_weight": req.image_weight,
        "class": req.class,
        "adapter": engine.context().adapter_info.name,
        "backend": format!("{:?}", engine.context().adapter_info.backend).to_lowercase(),
        "batch": report.capacity,
        "settings": config.settings,
        // Streamed in below, one entry per line.
        "images": IMAGES_PLACEHOLDER,
        "totals": {
            "images": entries.len(),
            "explained": explained,
            "failed": failed,
            "not_started": not_started,
            "resumed": progress.resumed,
            "interrupted": signal.is_some(),
            "signal": signal,
            "seconds": seconds,
            "images_per_second": done_now as f64 / seconds.max(1e-9),
        },
    });
    if req.profile {
        print_profile(&Profile {
            stages: &outcome.stage_times,
            timestamps: outcome.timestamps,
            gpu_wall: outcome.gpu_seconds,
            decode: outcome.decode_seconds,
            encode: outcome.encode_seconds,
            gpu_bytes: report.gpu_bytes,
            batch: report.capacity,
            images: progress.todo.len(),
        });
    }
    let text = serde_json::to_string_pretty(&json_report).unwrap_or_default() + "\n";
    let placeholder = format!("\"{IMAGES_PLACEHOLDER}\"");
    let (head, tail) = text.split_once(&placeholder).unwrap_or((&text, ""));
    let written = dir
        .write_with(Path::new(REPORT_NAME), |w| {
            w.write_all(head.as_bytes())?;
            w.write_all(b"[")?;
            for (n, entry) in listed.iter().enumerate() {
                w.write_all(if n == 0 { b"\n    " } else { b",\n    " })?;
                w.write_all(entry.json.as_bytes())?;
            }
            w.write_all(if listed.is_empty() { b"]" } else { b"\n  ]" })?;
            w.write_all(tail.as_bytes())
        })
        .and_then(|()| dir.sync());
    if let Err(e) = written {
        log::error(e);
        return ExitCode::from(EXIT_SOME_FAILED);
    }
    // The report now lists every finished input with its files: the journal has done its job.
    if let Err(e) = progress.journal.remove(dir) {
        log::error(e);
        journal_failed = true;
    }
    if let Some(sig) = signal {
        log::line(&format!(
            "gradcam: stopped by signal {sig}: {explained} of {} images explained, listed in {}; \
             continue with --resume",
            entries.len(),
            escape_path(&out.join(REPORT_NAME))
        ));
        return ExitCode::from((128 + sig).clamp(0, 255) as u8);
    }
    let all_good = failed == 0 && status == "complete" && !journal_failed;
    ExitCode::from(if all_good { EXIT_OK } else { EXIT_SOME_FAILED })
}

fn panic_text(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// The run's counters for `--profile`.
struct Profile<'a> {
    stages: &'a [(String, f64)],
    timestamps: bool,
    gpu_wall: f64,
    decode: f64,
    encode: f64,
    gpu_bytes: u64,
    batch: u32,
    images: usize,
}

fn print_profile(p: &Profile) {
    let per = |s: f64| s * 1e3 / p.images.max(1) as f64;
    let row = |name: &str, s: f64| {
        log::line(&format!(
            "  {name:<28} {:10.1} ms {:8.2} ms/image",
            s * 1e3,
            per(s)
        ))
    };
    log::line(&format!(
        "profile ({} images, batch {}):",
        p.images, p.batch
    ));
    if p.timestamps {
        for (stage, t, _) in gradcam::gpu::profile::totals(p.stages) {
            row(&format!("GPU {stage}"), t);
        }
    } else {
        log::line("  (no GPU timestamps on this adapter: wall-clock only)");
    }
    row("GPU wall (upload..readback)", p.gpu_wall);
    row("CPU decode", p.decode);
    row("CPU encode+write", p.encode);
    log::line(&format!(
        "  GPU buffers: {:.1} MB ({:.1} MB per image of the batch)",
        p.gpu_bytes as f64 / 1e6,
        p.gpu_bytes as f64 / 1e6 / f64::from(p.batch)
    ));
}

/// A batch whose GPU work was submitted on `explainers[slot]`: its images, their targets, and
/// whether the upload and submission went well (a panic's message if they panicked).
struct InFlight {
    slot: usize,
    batch: Decoded,
    targets: Vec<Target>,
    started: Result<gradcam::Result<()>, String>,
}

/// Uploads a decoded batch and submits its GPU work with the copies of `what` for
/// [`finish_batch`] (timed by `profiler` when there is one), without waiting for it.
fn start_batch(
    explainer: &mut Explainer,
    images: &[(usize, image::RgbImage)],
    targets: &[Target],
    what: Readback,
    profiler: Option<&mut Profiler>,
    stage_times: &mut Vec<(String, f64)>,
) -> gradcam::Result<()> {
    if images.is_empty() {
        return Ok(());
    }
    let images: Vec<&image::RgbImage> = images.iter().map(|(_, img)| img).collect();
    explainer.upload(&images, targets)?;
    match profiler {
        Some(p) => stage_times.extend(explainer.run_profiled(p)?),
        None => explainer.run_with_readback(what)?,
    }
    Ok(())
}

/// Reads back a batch [`start_batch`] submitted; if the batch as a whole failed on the GPU, each
/// image is retried alone so one bad image does not take the others with it.
fn finish_batch(
    explainer: &mut Explainer,
    images: &[(usize, image::RgbImage)],
    targets: &[Target],
    started: gradcam::Result<()>,
    what: Readback,
) -> Vec<Result<Explanation, String>> {
    if images.is_empty() {
        return Vec::new();
    }
    match started.and_then(|()| explainer.read(what)) {
        Ok(r) => r.into_iter().map(Ok).collect(),
        Err(e) if images.len() == 1 => vec![Err(e.to_string())],
        Err(_) => images
            .iter()
            .zip(targets)
            .map(|((_, img), &target)| {
                explainer
                    .explain(&[img], &[target], what)
                    .map_err(|e| e.to_string())
                    .and_then(|mut r| r.pop().ok_or_else(|| "no result".to_string()))
            })
            .collect(),
    }
}

/// The shapes of the `--raw` tensors: the CAM grid at the target layer, and the CAM's side.
#[derive(Clone, Copy)]
struct RawShapes {
    grid: (u32, u32),
    cam: u32,
}

/// `--guided`'s outputs: `<stem>_guided.png`, `<stem>_guided_gradcam.png`.
const GUIDED_SUFFIX: &str = "_guided";
const GUIDED_GRADCAM_SUFFIX: &str = "_guided_gradcam";

/// Encodes `image` as PNG and writes it as `rel` in `dir`; returns its size.
fn write_png(
    dir: &OutputDir,
    rel: &Path,
    image: &image::RgbImage,
) -> Result<usize, gradcam::Error> {
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| gradcam::Error::Image {
            path: dir.path().join(rel),
            reason: format!("cannot encode PNG: {e}"),
        })?;
    dir.write(rel, &png)?;
    Ok(png.len())
}

/// The class an input is explained for: its rank with --top-k, else its class from --targets,
/// else --class, else the predicted one.
fn target_of(config: &ExplainConfig, input: &Input) -> Target {
    match input.rank {
        Some(r) => Target::Rank(r),
        None => config
            .targets
            .get(&input.canonical)
            .map_or(config.target, |&c| Target::Class(c)),
    }
}

fn write_outputs(
    input: &Input,
    r: Explanation,
    dir: &OutputDir,
    names: &mut OutputNames,
    (raw, boxes): (bool, Option<f32>),
    labels: &Labels,
    shapes: RawShapes,
) -> Result<Value, gradcam::Error> {
    // With --top-k, `<stem>_<class>`.
    let suffix = input
        .rank
        .map_or(String::new(), |_| format!("_{}", r.class));
    let stem = names.next_with_suffix(&input.path, &input.subdir, &suffix);
    let png_rel = OutputNames::relative(&stem, "png");
    let mut overlay = r
        .overlay
        .ok_or_else(|| gradcam::Error::InvalidRequest("no overlay was produced".into()))?;
    let (width, height) = overlay.dimensions();
    // The localisation box, from the CAM read back, drawn on the overlay.
    let bounding_box = boxes.and_then(|threshold| {
        let cam = r.cam.as_deref()?;
        let b = localisation_box(cam, shapes.cam, width, height, threshold)?;
        draw_localisation_box(&mut overlay, b);
        Some(b)
    });
    let rgb = image::DynamicImage::ImageRgba8(overlay).into_rgb8();
    let png_len = write_png(dir, &png_rel, &rgb)?;
    drop(rgb);
    let mut files = vec![json!({"path": escape_path(&png_rel), "bytes": png_len})];
    // --guided: the two pictures beside the overlay.
    let mut guided = serde_json::Map::new();
    for (picture, suffix, key) in [
        (&r.guided, GUIDED_SUFFIX, "guided"),
        (&r.guided_gradcam, GUIDED_GRADCAM_SUFFIX, "guided_gradcam"),
    ] {
        if let Some(picture) = picture {
            let mut name = stem.as_os_str().to_os_string();
            name.push(suffix);
            let rel = OutputNames::relative(Path::new(&name), "png");
            let len = write_png(dir, &rel, picture)?;
            files.push(json!({"path": escape_path(&rel), "bytes": len}));
            guided.insert(key.into(), json!(escape_path(&dir.path().join(&rel))));
        }
    }
    let probs = gradcam::softmax(&r.logits);
    let class = r.class as usize;
    let mut entry = json!({
        "image": escape_path(&input.path),
        "output": escape_path(&dir.path().join(&png_rel)),
        "width": width,
        "height": height,
        "class": class,
        "label": labels.get(class),
        "score": probs.get(class).copied().unwrap_or(0.0),
        "top": top_json(labels, &r.logits, 5),
    });
    if boxes.is_some() {
        entry["box"] = json!(bounding_box);
    }
    for (key, path) in guided {
        entry[key] = path;
    }
    if raw {
        let raw_rel = OutputNames::relative(&stem, "safetensors");
        let cam = r.cam.as_deref().unwrap_or_default();
        let grid_values = r.cam_grid.as_deref().unwrap_or_default();
        let tensors = [
            ("cam", vec![shapes.cam as usize, shapes.cam as usize], cam),
            (
                "cam_grid",
                vec![shapes.grid.0 as usize, shapes.grid.1 as usize],
                grid_values,
            ),
            ("logits", vec![r.logits.len()], &r.logits[..]),
        ];
        let views = tensors
            .iter()
            .map(|(name, shape, values)| {
                safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    shape.clone(),
                    bytemuck::cast_slice(values),
                )
                .map(|v| (name.to_string(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| gradcam::Error::InvalidRequest(format!("raw output: {e}")))?;
        let bytes = safetensors::serialize(views, None)
            .map_err(|e| gradcam::Error::InvalidRequest(format!("raw output: {e}")))?;
        dir.write(&raw_rel, &bytes)?;
        files.push(json!({"path": escape_path(&raw_rel), "bytes": bytes.len()}));
        entry["raw"] = json!(escape_path(&dir.path().join(&raw_rel)));
    }
    // Relative to the output folder, with sizes: what a resumed run checks.
    entry["files"] = json!(files);
    Ok(entry)
}

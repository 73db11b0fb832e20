//! A long batch run that nothing can corrupt, hijack or lose: symlinks planted in the output
//! folder, logging that fails, SIGKILL and --resume, SIGTERM, two runs into one folder, FIFOs,
//! odd names, recursion into sub-folders.
#![cfg(unix)]

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{assert_no_panic, root, stderr_lines};

fn gradcam() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gradcam"));
    c.current_dir(root());
    c
}

fn run(args: &[&Path]) -> Output {
    let out = gradcam().args(args).output().expect("run gradcam");
    assert_no_panic(&out);
    out
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

/// `n` small distinct PNGs (the sample photo at 96×64, one pixel marked per image) in `dir`.
fn small_images(dir: &Path, n: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let base = image::open(root().join("examples/images/chelsea.png"))
        .unwrap()
        .resize_exact(96, 64, image::imageops::FilterType::Triangle)
        .to_rgb8();
    (0..n)
        .map(|i| {
            let mut img = base.clone();
            img.put_pixel((i % 96) as u32, 0, image::Rgb([255, 0, (i / 96) as u8]));
            let path = dir.join(format!("img{i:04}.png"));
            img.save(&path).unwrap();
            path
        })
        .collect()
}

fn report(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// Every file under `dir` (relative), sorted, `.gradcam.lock` left out.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else if e.file_name() != ".gradcam.lock" {
                out.push(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn journal_records(out: &Path) -> usize {
    std::fs::read_to_string(out.join("journal.jsonl"))
        .map(|t| t.lines().filter(|l| l.contains("\"key\"")).count())
        .unwrap_or(0)
}

/// Starts `explain IN --out OUT --batch 2 [extra]`.
fn spawn_explain(input: &Path, out: &Path, extra: &[&str]) -> Child {
    gradcam()
        .arg("explain")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--batch", "2"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the journal in `out` records at least `n` inputs.
fn wait_for_records(out: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while journal_records(out) < n {
        assert!(
            Instant::now() < deadline,
            "the run never recorded {n} inputs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child`, killing it (and failing) after `secs`.
fn wait_at_most(mut child: Child, secs: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("gradcam did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn symlinks_planted_in_the_output_folder_are_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let victims: Vec<PathBuf> = (0..6).map(|i| outside.join(format!("victim{i}"))).collect();
    for v in &victims {
        std::fs::write(v, b"precious").unwrap();
    }
    let input = tmp.path().join("in");
    std::fs::create_dir_all(input.join("sub")).unwrap();
    std::fs::copy(
        root().join("examples/images/chelsea.png"),
        input.join("chelsea.png"),
    )
    .unwrap();
    std::fs::copy(
        root().join("examples/images/coffee.png"),
        input.join("sub/coffee.png"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // At the output, the report, temporary-file and probe names of this and earlier versions,
    // and a sub-folder the outputs mirror.
    let planted = [
        "chelsea.png",
        "report.json",
        ".chelsea.png.tmp",
        ".report.json.tmp",
        ".gradcam-write-test.1",
        ".gradcam-0000000000000000.tmp",
    ];
    for (name, victim) in planted.iter().zip(&victims) {
        std::os::unix::fs::symlink(victim, out.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(&outside, out.join("sub")).unwrap();

    let run = run(&[p("explain"), &input, p("--out"), &out]);
    assert_eq!(run.status.code(), Some(1), "{:?}", stderr_lines(&run));
    let err = stderr_lines(&run);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("sub") && err[0].contains("not followed"),
        "{err:?}"
    );
    for v in &victims {
        assert_eq!(std::fs::read(v).unwrap(), b"precious", "{}", v.display());
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), victims.len());
    // The outputs replaced the links; the links' targets are untouched.
    let meta = std::fs::symlink_metadata(out.join("chelsea.png")).unwrap();
    assert!(meta.file_type().is_file());
    image::open(out.join("chelsea.png")).unwrap();
    assert_eq!(report(&out)["totals"]["explained"], 1);

    // A symlink at the lock's name: the run refuses, the target untouched.
    let out2 = tmp.path().join("out2");
    std::fs::create_dir(&out2).unwrap();
    std::os::unix::fs::symlink(&victims[0], out2.join(".gradcam.lock")).unwrap();
    let run = self::run(&[p("explain"), &input.join("chelsea.png"), p("--out"), &out2]);
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(std::fs::read(&victims[0]).unwrap(), b"precious");
}

#[test]
fn logging_that_fails_never_stops_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    small_images(&input, 6);
    for i in 0..3 {
        std::fs::write(input.join(format!("broken{i}.png")), b"not a png").unwrap();
    }
    // stderr (and stdout) into a pipe that closes after one line.
    let out = tmp.path().join("out-pipe");
    let shell = format!(
        "'{}' explain '{}' --out '{}' --batch 2 2>&1 | head -n1; exit ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_gradcam"),
        input.display(),
        out.display()
    );
    let run = Command::new("bash").args(["-c", &shell]).output().unwrap();
    assert_eq!(run.status.code(), Some(1), "3 inputs failed");
    let r = report(&out);
    assert_eq!(r["status"], "complete");
    assert_eq!(r["totals"]["explained"], 6);
    assert_eq!(r["totals"]["failed"], 3);
    for i in 0..6 {
        image::open(out.join(format!("img{i:04}.png"))).unwrap();
    }
    // stderr on a full device.
    let out = tmp.path().join("out-full");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let run = gradcam()
        .arg("explain")
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .stderr(full)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let r = report(&out);
    assert_eq!(r["totals"]["explained"], 6);
    assert_eq!(r["totals"]["failed"], 3);
}

/// Starts a run over `n` small images into a fresh folder and sends `sig` once the journal
/// records a few: the folder, the input folder, the output folder and how the run ended.
fn stopped_mid_run(n: usize, sig: &str) -> (tempfile::TempDir, PathBuf, PathBuf, Output) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    small_images(&input, n);
    let out = tmp.path().join("out");
    let child = spawn_explain(&input, &out, &[]);
    wait_for_records(&out, 4);
    signal(&child, sig);
    let ended = wait_at_most(child, 120);
    (tmp, input, out, ended)
}

#[test]
fn sigkill_then_resume_gives_every_output_exactly_once() {
    let n = 120;
    let (_tmp, input, out, killed) = stopped_mid_run(n, "-KILL");
    assert_eq!(killed.status.code(), None, "killed by the signal");
    let recorded = journal_records(&out);
    assert!(
        recorded < n,
        "the run was stopped mid-way ({recorded} recorded)"
    );
    // The report never claims to be the killed run's result.
    assert_eq!(report(&out)["status"], "running");

    // Without --resume, the unfinished run is not silently overwritten.
    let again = run(&[p("explain"), &input, p("--out"), &out]);
    assert_eq!(again.status.code(), Some(2));
    let err = stderr_lines(&again).join("\n");
    assert!(
        err.contains("--resume") && err.contains("unfinished"),
        "{err}"
    );

    let resumed = wait_at_most(spawn_explain(&input, &out, &["--resume"]), 600);
    assert_no_panic(&resumed);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let r = report(&out);
    assert_eq!(r["status"], "complete");
    assert_eq!(r["totals"]["images"], n);
    assert_eq!(r["totals"]["explained"], n);
    assert!(r["totals"]["resumed"].as_u64().unwrap() >= recorded as u64 - 1);
    let images = r["images"].as_array().unwrap();
    assert_eq!(images.len(), n, "each input listed exactly once");
    let mut outputs: Vec<&str> = images
        .iter()
        .map(|e| e["output"].as_str().unwrap())
        .collect();
    for (i, e) in images.iter().enumerate() {
        assert!(e["image"]
            .as_str()
            .unwrap()
            .ends_with(&format!("img{i:04}.png")));
    }
    outputs.sort();
    outputs.dedup();
    assert_eq!(outputs.len(), n, "distinct outputs");
    let mut expected: Vec<PathBuf> = (0..n)
        .map(|i| PathBuf::from(format!("img{i:04}.png")))
        .collect();
    expected.push("report.json".into());
    expected.sort();
    assert_eq!(
        files_under(&out),
        expected,
        "no temporary or extra files; the journal is gone once the report lists everything"
    );
    assert!(!out.join(".gradcam.lock").exists());
    for o in outputs {
        image::open(o).unwrap_or_else(|e| panic!("{o}: {e}"));
    }
}

#[test]
fn sigterm_stops_after_the_batch_with_a_report() {
    let n = 120;
    let (_tmp, input, out, stopped) = stopped_mid_run(n, "-TERM");
    assert_no_panic(&stopped);
    assert_eq!(stopped.status.code(), Some(143));
    let r = report(&out);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["totals"]["signal"], 15);
    let listed = r["images"].as_array().unwrap();
    assert!(!listed.is_empty() && listed.len() < n, "{}", listed.len());
    for e in listed {
        image::open(e["output"].as_str().unwrap()).unwrap();
    }
    // Everything listed and nothing else: the report lists what the journal held.
    assert_eq!(files_under(&out).len(), listed.len() + 1);

    // The report is enough to resume from, and a resumed run that is killed in turn loses
    // nothing: what it carried over is in its journal from the start.
    let done = listed.len();
    let child = spawn_explain(&input, &out, &["--resume"]);
    wait_for_records(&out, done + 2);
    signal(&child, "-KILL");
    wait_at_most(child, 60);
    let rest = run(&[p("explain"), &input, p("--out"), &out, p("--resume")]);
    assert_eq!(rest.status.code(), Some(0), "{:?}", stderr_lines(&rest));
    let r = report(&out);
    assert!(r["totals"]["resumed"].as_u64().unwrap() >= done as u64 + 2);
    assert_eq!(r["totals"]["explained"], n);
    assert_eq!(r["images"].as_array().unwrap().len(), n);
    assert_eq!(files_under(&out).len(), n + 1, "each output exactly once");
}

#[test]
fn a_second_run_into_the_same_folder_is_refused_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let n = 60;
    small_images(&input, n);
    let out = tmp.path().join("out");
    let first = spawn_explain(&input, &out, &[]);
    wait_for_records(&out, 1);
    let t = Instant::now();
    let second = run(&[
        p("explain"),
        &input,
        p("--out"),
        &out,
        p("--colormap"),
        p("viridis"),
    ]);
    let took = t.elapsed();
    assert_eq!(second.status.code(), Some(2));
    assert!(took < Duration::from_secs(1), "refused after {took:?}");
    let err = stderr_lines(&second);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("in use") && err[0].contains(&format!("pid {}", first.id())),
        "{err:?}"
    );
    let first = wait_at_most(first, 600);
    assert_eq!(first.status.code(), Some(0));
    let r = report(&out);
    assert_eq!(r["colormap"], "jet");
    assert_eq!(r["totals"]["explained"], n);
}

#[test]
fn fifos_and_devices_are_errors_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let images = small_images(&input, 2);
    let fifo = tmp.path().join("pipe.png");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let out = tmp.path().join("out");
    let child = gradcam()
        .arg("explain")
        .arg(&images[0])
        .arg(&fifo)
        .arg("/dev/zero")
        .arg(&images[1])
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_at_most(child, 120);
    assert_eq!(run.status.code(), Some(1));
    let err = stderr_lines(&run);
    assert_eq!(err.len(), 2, "{err:?}");
    assert!(err[0].contains("pipe.png") && err[0].contains("not a regular file"));
    assert!(err[1].contains("/dev/zero"));
    assert!(out.join("img0000.png").exists() && out.join("img0001.png").exists());
}

#[test]
fn the_output_folders_own_files_are_never_inputs_or_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("photos");
    small_images(&folder, 3);
    // An image file that happens to be named report.json, in the output folder.
    let precious = std::fs::read(folder.join("img0000.png")).unwrap();
    std::fs::write(folder.join("report.json"), &precious).unwrap();
    let run1 = run(&[
        p("explain"),
        &folder.join("report.json"),
        p("--out"),
        &folder,
    ]);
    assert_eq!(run1.status.code(), Some(2));
    assert!(stderr_lines(&run1)[0].contains("report.json"));
    assert_eq!(std::fs::read(folder.join("report.json")).unwrap(), precious);
    std::fs::remove_file(folder.join("report.json")).unwrap();

    // Twice into the input folder itself: the second run does not explain the first's overlays.
    for round in 0..2 {
        let r = run(&[p("explain"), &folder, p("--out"), &folder]);
        assert_eq!(
            r.status.code(),
            Some(0),
            "round {round}: {:?}",
            stderr_lines(&r)
        );
        let rep = report(&folder);
        assert_eq!(rep["totals"]["images"], 3, "round {round}");
        let outputs: Vec<&str> = rep["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["output"].as_str().unwrap())
            .collect();
        assert!(outputs.iter().all(|o| o.ends_with("-2.png")), "{outputs:?}");
    }
    assert_eq!(files_under(&folder).len(), 3 + 3 + 1);

    // Into sub-folders of the input folder: neither the folder's own earlier overlays nor a
    // sub-folder holding another run are inputs.
    for sub in ["cam", "cam2"] {
        let r = run(&[p("explain"), &folder, p("--out"), &folder.join(sub)]);
        assert_eq!(r.status.code(), Some(0), "{:?}", stderr_lines(&r));
        assert_eq!(report(&folder.join(sub))["totals"]["images"], 3, "{sub}");
    }
}

#[test]
fn long_odd_and_non_utf8_names() {
    let tmp = tempfile::tempdir().unwrap();
    let src = small_images(&tmp.path().join("src"), 1).remove(0);
    let input = tmp.path().join("in");
    std::fs::create_dir(&input).unwrap();
    // A 255-byte name, the longest most file systems take.
    let long = format!("{}.png", "a".repeat(251));
    std::fs::copy(&src, input.join(&long)).unwrap();
    // Two names that are not UTF-8 and differ only in that byte.
    let names: [&[u8]; 2] = [b"caf\xe9.png", b"caf\xe8.png"];
    for n in names {
        std::fs::copy(&src, input.join(std::ffi::OsStr::from_bytes(n))).unwrap();
    }
    // A failing file whose name holds a newline.
    let broken = input.join("two\nlines.png");
    std::fs::write(&broken, b"not an image").unwrap();
    let out = tmp.path().join("out");
    let run = run(&[p("explain"), &input, p("--out"), &out]);
    assert_eq!(run.status.code(), Some(1));
    let err = stderr_lines(&run);
    assert_eq!(err.len(), 1, "one line: {err:?}");
    assert!(err[0].contains("two\\nlines.png"), "{err:?}");
    assert!(out.join(&long).exists(), "255-byte output name");
    // With --raw the longest name, `.safetensors`, decides: the stem is shortened to fit.
    let raw_out = tmp.path().join("raw");
    let raw = self::run(&[
        p("explain"),
        &input.join(&long),
        p("--out"),
        &raw_out,
        p("--raw"),
    ]);
    assert_eq!(raw.status.code(), Some(0), "{:?}", stderr_lines(&raw));
    let stem = "a".repeat(255 - ".safetensors".len());
    assert!(raw_out.join(format!("{stem}.png")).exists());
    assert!(raw_out.join(format!("{stem}.safetensors")).exists());
    for n in names {
        assert!(out.join(std::ffi::OsStr::from_bytes(n)).exists());
    }
    let r = report(&out);
    let listed: Vec<&str> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["image"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 4);
    let mut distinct = listed.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 4, "{listed:?}");
    assert!(
        listed.iter().any(|l| l.ends_with("caf\\xe9.png")),
        "{listed:?}"
    );
}

#[test]
fn sub_folders_are_searched_and_mirrored() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("data");
    for (class, photo) in [("cats", "chelsea.png"), ("dogs", "coffee.png")] {
        std::fs::create_dir_all(input.join(class).join("deeper")).unwrap();
        let bytes = std::fs::read(root().join("examples/images").join(photo)).unwrap();
        std::fs::write(input.join(class).join("1.png"), &bytes).unwrap();
        std::fs::write(input.join(class).join("deeper/1.png"), &bytes).unwrap();
    }
    std::fs::create_dir(input.join("empty")).unwrap();
    let out = tmp.path().join("out");
    let run = run(&[p("explain"), &input, p("--out"), &out]);
    assert_eq!(run.status.code(), Some(0), "{:?}", stderr_lines(&run));
    let expected: Vec<PathBuf> = [
        "cats/1.png",
        "cats/deeper/1.png",
        "dogs/1.png",
        "dogs/deeper/1.png",
        "report.json",
    ]
    .map(PathBuf::from)
    .to_vec();
    assert_eq!(files_under(&out), expected);
    assert_eq!(image::open(out.join("cats/1.png")).unwrap().width(), 451);
    assert_eq!(image::open(out.join("dogs/1.png")).unwrap().width(), 600);
    let r = report(&out);
    assert_eq!(r["images"][0]["label"], "Egyptian cat");
    assert_eq!(r["images"][2]["label"], "espresso");

    // A folder without images is an error naming it.
    let empty = input.join("empty");
    let run = self::run(&[p("explain"), &empty, p("--out"), &out]);
    assert_eq!(run.status.code(), Some(2));
    let err = stderr_lines(&run);
    assert!(
        err[0].contains("empty") && err[0].contains("no images"),
        "{err:?}"
    );
}

#[test]
fn a_successful_run_prints_nothing_and_bad_backends_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let run = gradcam()
        .args(["explain", "examples/images/chelsea.png", "--out"])
        .arg(&out)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&run.stderr),
        "",
        "nothing on stderr"
    );
    let run = gradcam()
        .args(["classify", "examples/images/chelsea.png"])
        .env("WGPU_BACKEND", "nonsense")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = stderr_lines(&run);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("`nonsense`") && err[0].contains("vulkan") && err[0].contains("dx12"),
        "{err:?}"
    );
}

#[test]
fn labels_with_a_byte_order_mark() {
    let text = "\u{feff}first\nsecond\n";
    let labels = gradcam::Labels::parse(Path::new("labels.txt"), text, 2).unwrap();
    assert_eq!(labels.get(0), "first");
}

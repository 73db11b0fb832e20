//! Shared test helpers: one GPU context and engine per test binary, fixtures, tolerances.
#![allow(dead_code)] // reason: each test binary uses a different subset of the helpers

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use gradcam::{AdapterOptions, Engine, GpuContext, Model};

pub mod seeded;
pub mod ties;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn weights_path() -> PathBuf {
    root().join("weights/efficientnet_lite0.safetensors")
}

/// The context every test in this binary shares (made once: compiling the kernels on lavapipe
/// takes a moment).
pub fn ctx() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        Arc::new(
            GpuContext::new(&AdapterOptions::default())
                .unwrap_or_else(|e| panic!("GPU context: {e}")),
        )
    })
    .clone()
}

/// The default model on the shared context.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let model = Model::load(weights_path()).unwrap_or_else(|e| panic!("loading weights: {e}"));
        Engine::new(ctx(), model)
    })
}

/// A list of numbers from fixture metadata (JSON).
pub fn floats(text: &str) -> Vec<f32> {
    serde_json::from_str(text).expect("fixture metadata: a list of numbers")
}

/// `(image / 255 - mean) / std` in f32, NHWC, as the fixture scripts compute it.
pub fn normalized(image: &Fixture, mean: &[f32], std: &[f32]) -> Vec<f32> {
    image
        .data
        .iter()
        .enumerate()
        .map(|(i, p)| (p / 255.0 - mean[i % 3]) / std[i % 3])
        .collect()
}

/// A fixture tensor: shape and values as f32 (u8, u16 and i64 tensors converted).
pub struct Fixture {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
    pub bytes: Vec<u8>,
}

/// The string metadata of `tests/fixtures/<name>.safetensors`.
pub fn fixture_metadata(name: &str) -> HashMap<String, String> {
    let path = root()
        .join("tests/fixtures")
        .join(format!("{name}.safetensors"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.metadata().clone().expect("fixture metadata")
}

/// The model a reference ran, named `<arch>.safetensors`: the shipped weights when the fixture
/// metadata's `seed` is `shipped`, else regenerated from its seed and `manifest` as
/// `safetensors.torch.save_file` would store them.
pub fn reference_model(arch: &str, meta: &HashMap<String, String>) -> Model {
    let bytes = match meta["seed"].as_str() {
        "shipped" => std::fs::read(weights_path()).expect("shipped weights"),
        // A fixture's `header`: the JSON of the weights file's own metadata (a custom ViT's
        // `num_heads`).
        seed => seeded::seeded_safetensors_with(
            &meta["manifest"],
            seed.parse().expect("seed"),
            meta.get("header")
                .map(|h| serde_json::from_str(h).expect("header is a JSON map of strings")),
        ),
    };
    let name = format!("{arch}.safetensors");
    Model::from_bytes(Path::new(&name), bytes).unwrap_or_else(|e| panic!("{arch}: {e}"))
}

/// All tensors of `tests/fixtures/<name>.safetensors`.
pub fn fixtures(name: &str) -> HashMap<String, Fixture> {
    let path = root()
        .join("tests/fixtures")
        .join(format!("{name}.safetensors"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    st.tensors()
        .into_iter()
        .map(|(k, v)| {
            let raw = v.data().to_vec();
            let data = match v.dtype() {
                safetensors::Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                safetensors::Dtype::U8 => raw.iter().map(|b| f32::from(*b)).collect(),
                safetensors::Dtype::U16 => raw
                    .chunks_exact(2)
                    .map(|b| f32::from(u16::from_le_bytes([b[0], b[1]])))
                    .collect(),
                safetensors::Dtype::I64 => raw
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32)
                    .collect(),
                d => panic!("fixture {k}: dtype {d:?}"),
            };
            (
                k,
                Fixture {
                    shape: v.shape().to_vec(),
                    data,
                    bytes: raw,
                },
            )
        })
        .collect()
}

/// NCHW (one image) → NHWC.
pub fn chw_to_hwc(chw: &[f32], c: usize, h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0.0; chw.len()];
    for ci in 0..c {
        for y in 0..h {
            for x in 0..w {
                out[(y * w + x) * c + ci] = chw[(ci * h + y) * w + x];
            }
        }
    }
    out
}

/// Largest |a - b| over two equal-length slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts every `actual[i]` is within `abs + rel * |expected[i]|` of `expected[i]`, printing
/// the first offending index and the worst difference.
#[track_caller]
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], abs: f32, rel: f32) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: length {} vs expected {}",
        actual.len(),
        expected.len()
    );
    let mut worst = (0usize, 0f32);
    let mut first_bad = None;
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let d = (a - e).abs();
        let within = d <= abs + rel * e.abs();
        if !within && first_bad.is_none() {
            first_bad = Some(i);
        }
        if d > worst.1 || d.is_nan() {
            worst = (i, d);
        }
    }
    if let Some(i) = first_bad {
        panic!(
            "{what}: index {i}: expected {}, got {} (tolerance {abs} + {rel}·|e|); worst |diff| {} at {}",
            expected[i], actual[i], worst.1, worst.0
        );
    }
}

/// Indices of the `k` largest values, largest first.
pub fn top_indices(v: &[f32], k: usize) -> Vec<usize> {
    gradcam::top_k(v, k).into_iter().map(|(i, _)| i).collect()
}

pub fn decode(path: &Path) -> image::RgbImage {
    gradcam::decode_image(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the `gradcam` binary in the repository root.
pub fn run_gradcam(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gradcam"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run gradcam")
}

/// stderr lines, without lavapipe's loader chatter (not ours).
pub fn stderr_lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("XDG_RUNTIME_DIR"))
        .map(str::to_string)
        .collect()
}

/// Fails if the process panicked.
#[track_caller]
pub fn assert_no_panic(out: &std::process::Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && out.status.code() != Some(101),
        "gradcam panicked:\n{err}"
    );
}

/// `DIR/report.json` of an `explain` run.
pub fn read_report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("valid JSON")
}

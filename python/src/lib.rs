//! Python bindings of the engine: `gradcam.Engine().explain(images)` returns the CAMs, overlays,
//! classes, scores, labels and logits as numpy arrays and Python lists. The GPU work runs with the
//! GIL released. Errors are Python exceptions carrying the CLI's one-line messages: `ValueError`
//! for what the caller gave (an image, a target, a method or layer name), `OSError` for files,
//! `RuntimeError` for the GPU.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use gradcam_engine as engine;
use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray2, PyArray3, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyBytes, PyDict, PyString};
use safetensors::tensor::{serialize, Dtype, TensorView};

use engine::boxes::{draw_localisation_box, localisation_box};
use engine::model::{Arch, LoadOptions};
use engine::{
    image, Colormap, ExplainOptions, Explainer, GpuContext, Method, Model, Readback, Target,
};

/// The engine's error as the Python exception for its kind, with its one-line message.
fn to_py(e: engine::Error) -> PyErr {
    let message = engine::one_line(&e.to_string());
    match e {
        engine::Error::Io { .. } => PyOSError::new_err(message),
        engine::Error::NoAdapter { .. }
        | engine::Error::Device { .. }
        | engine::Error::Gpu { .. }
        | engine::Error::Internal(_) => PyRuntimeError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// One input as the engine takes it, or why it cannot be: decoded files are decoded with the GIL
/// released, arrays and PIL images are copied while it is held.
enum Input {
    File(PathBuf),
    Pixels(image::RgbImage),
}

/// `obj` as an input: a path (str or os.PathLike), a PIL image, or a uint8 array [h, w, 3].
fn input_of(obj: &Bound<'_, PyAny>) -> Result<Input, String> {
    if let Ok(s) = obj.downcast::<PyString>() {
        return Ok(Input::File(PathBuf::from(s.to_string())));
    }
    if obj.hasattr("__fspath__").unwrap_or(false) {
        let path: PathBuf = obj.extract().map_err(|e| e.to_string())?;
        return Ok(Input::File(path));
    }
    let array = if obj.hasattr("convert").unwrap_or(false) && obj.hasattr("size").unwrap_or(false) {
        // A PIL image: its RGB pixels through numpy.
        let rgb = obj
            .call_method1("convert", ("RGB",))
            .map_err(|e| format!("converting the PIL image to RGB: {e}"))?;
        let numpy = obj.py().import("numpy").map_err(|e| e.to_string())?;
        numpy
            .call_method1("ascontiguousarray", (rgb,))
            .map_err(|e| e.to_string())?
    } else {
        obj.clone()
    };
    let array = array
        .downcast::<numpy::PyArrayDyn<u8>>()
        .map_err(|_| {
            "not a path, a PIL image or a numpy uint8 array of shape [height, width, 3]".to_string()
        })?
        .readonly();
    let shape = array.shape();
    if shape.len() != 3 || shape[2] != 3 {
        return Err(format!(
            "a uint8 array of shape {shape:?}; expected [height, width, 3] (RGB)"
        ));
    }
    let (h, w) = (shape[0], shape[1]);
    if h == 0 || w == 0 {
        return Err("an image with no pixels".into());
    }
    let pixels: Vec<u8> = match array.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => array.as_array().iter().copied().collect(),
    };
    let (w, h) = (
        u32::try_from(w).map_err(|_| "too wide".to_string())?,
        u32::try_from(h).map_err(|_| "too tall".to_string())?,
    );
    image::RgbImage::from_raw(w, h, pixels)
        .map(Input::Pixels)
        .ok_or_else(|| "inconsistent array size".to_string())
}

/// What selects an explainer: method, layer, colormap, image weight, guided, eigen_smooth,
/// aug_smooth, and Smooth Grad-CAM++'s samples, noise standard deviation (bits) and seed.
type Key = (String, String, String, u32, bool, bool, bool, u32, u32, u32);

/// An RGB picture as a numpy uint8 array [h, w, 3]; RGBA input loses its alpha.
fn rgb_array(py: Python<'_>, width: u32, height: u32, rgb: Vec<u8>) -> Py<PyArray3<u8>> {
    Array3::from_shape_vec((height as usize, width as usize, 3), rgb)
        .expect("picture size")
        .into_pyarray(py)
        .unbind()
}

/// The engine's model of a torch module: built from its state dict when a builder recognises
/// it, otherwise from an ONNX export of the module (with its module paths as layer names).
fn module_model(module: &Bound<'_, PyAny>, options: &LoadOptions) -> PyResult<Model> {
    let py = module.py();
    let class: String = module
        .getattr("__class__")?
        .getattr("__name__")?
        .extract()?;
    let state = state_dict_bytes(module)?;
    let name = PathBuf::from(format!("<{class} state dict>.safetensors"));
    let from_state = py.detach(|| Model::from_bytes_with(&name, state, options));
    let first =
        match from_state {
            Ok(model) => return Ok(model),
            Err(
                e @ (engine::Error::UnsupportedModel { .. } | engine::Error::WeightsFormat { .. }),
            ) if options.arch.is_none() => e,
            Err(e) => return Err(to_py(e)),
        };
    let size = options.input_size.unwrap_or(224);
    let onnx = onnx_bytes(module, size)?;
    let name = PathBuf::from(format!("<{class} ONNX export>.onnx"));
    py.detach(|| Model::from_bytes_with(&name, onnx, options))
        .map_err(|e| {
            PyValueError::new_err(format!(
                "{}; as a state dict: {}",
                engine::one_line(&e.to_string()),
                engine::one_line(&first.to_string())
            ))
        })
}

/// The `num_heads` of the first of `module`'s submodules that has one (an attention's: a vision
/// transformer's head count, which its state dict does not hold).
fn num_heads(module: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
    for m in module.call_method0("modules")?.try_iter()? {
        let m = m?;
        if let Ok(heads) = m.getattr("num_heads") {
            if let Ok(heads) = heads.extract::<u32>() {
                return Ok(Some(heads));
            }
        }
    }
    Ok(None)
}

/// `module.state_dict()` as a safetensors file in memory: floating tensors as float32, the
/// others (BatchNorm's counters) as int64; a transformer's head count as `num_heads` metadata.
fn state_dict_bytes(module: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let state = module.call_method0("state_dict")?;
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for item in state.call_method0("items")?.try_iter()? {
        let (name, tensor): (String, Bound<'_, PyAny>) = item?.extract()?;
        let tensor = tensor.call_method0("detach")?.call_method0("cpu")?;
        let floating: bool = tensor.call_method0("is_floating_point")?.extract()?;
        let (tensor, dtype) = if floating {
            (tensor.call_method0("float")?, Dtype::F32)
        } else {
            (tensor.call_method0("long")?, Dtype::I64)
        };
        let tensor = tensor.call_method0("contiguous")?;
        let shape: Vec<usize> = tensor.getattr("shape")?.extract()?;
        let bytes = tensor.call_method0("numpy")?.call_method0("tobytes")?;
        let bytes = bytes.downcast::<PyBytes>()?.as_bytes().to_vec();
        tensors.push((name, dtype, shape, bytes));
    }
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|view| (name.as_str(), view))
                .map_err(|e| PyValueError::new_err(format!("state dict tensor `{name}`: {e}")))
        })
        .collect::<PyResult<Vec<_>>>()?;
    let metadata = num_heads(module)?.map(|h| [("num_heads".to_string(), h.to_string())].into());
    serialize(views, metadata).map_err(|e| PyValueError::new_err(format!("state dict: {e}")))
}

/// `module` exported to ONNX in memory, in eval mode, for a `[batch, 3, size, size]` input with a
/// dynamic batch axis: through the TorchScript exporter, which names nodes by module path, or
/// the dynamo exporter where that one is gone.
fn onnx_bytes(module: &Bound<'_, PyAny>, size: u32) -> PyResult<Vec<u8>> {
    let py = module.py();
    let torch = py.import("torch")?;
    let buffer = py.import("io")?.call_method0("BytesIO")?;
    let device = match module.call_method0("parameters")?.try_iter()?.next() {
        Some(p) => p?.getattr("device")?,
        None => PyString::new(py, "cpu").into_any(),
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item("device", device)?;
    let dummy = torch.call_method("zeros", (1, 3, size, size), Some(&kwargs))?;
    let training: bool = module.getattr("training")?.extract()?;
    module.call_method0("eval")?;
    let export = |dynamo: bool| -> PyResult<()> {
        let kwargs = PyDict::new(py);
        kwargs.set_item("input_names", ["input"])?;
        kwargs.set_item("output_names", ["logits"])?;
        kwargs.set_item("opset_version", 17)?;
        kwargs.set_item("dynamo", dynamo)?;
        if dynamo {
            let batch = torch
                .getattr("export")?
                .getattr("Dim")?
                .getattr("DYNAMIC")?;
            kwargs.set_item("dynamic_shapes", ([(0, batch)].into_py_dict(py)?,))?;
        } else {
            let axes = [
                ("input", [(0, "batch")].into_py_dict(py)?),
                ("logits", [(0, "batch")].into_py_dict(py)?),
            ]
            .into_py_dict(py)?;
            kwargs.set_item("dynamic_axes", axes)?;
        }
        torch.getattr("onnx")?.call_method(
            "export",
            (module, (&dummy,), &buffer),
            Some(&kwargs),
        )?;
        Ok(())
    };
    // The TorchScript exporter warns that it is deprecated: the engine's choice, not the user's.
    let warnings = py.import("warnings")?;
    let quiet = warnings.call_method0("catch_warnings")?;
    quiet.call_method0("__enter__")?;
    warnings.call_method1("simplefilter", ("ignore",))?;
    let exported = export(false).or_else(|_| export(true));
    quiet.call_method1("__exit__", (py.None(), py.None(), py.None()))?;
    module.call_method1("train", (training,))?;
    exported?;
    let bytes = buffer.call_method0("getvalue")?;
    Ok(bytes.downcast::<PyBytes>()?.as_bytes().to_vec())
}

/// A GPU Grad-CAM engine on one adapter with one model. `Engine()` uses the built-in
/// EfficientNet-Lite0 (ImageNet); `Engine(weights="resnet50.safetensors")` loads a torchvision
/// ResNet, VGG, MobileNetV2 or EfficientNet-Lite state dict saved with safetensors. One engine
/// explains one batch at a time (a second thread's call meanwhile is refused): give each thread
/// or Ray actor its own.
#[pyclass(module = "gradcam")]
struct Engine {
    engine: engine::Engine,
    batch: u32,
    /// GPU batches in flight in one `explain` call over several batches.
    in_flight: usize,
    /// Per setting, up to `in_flight` explainers, used in turn.
    explainers: HashMap<Key, Vec<Explainer>>,
    /// `evaluate`'s explainers, by their settings.
    evaluators: HashMap<String, Explainer>,
}

#[pymethods]
impl Engine {
    /// `weights`: a safetensors or ONNX file (None: the built-in model); `model`: a torch
    /// module instead, read through its state dict when a builder recognises it and through an
    /// in-memory ONNX export otherwise; `arch`: the architecture of the weights instead of
    /// recognising it; `input_size`, `mean`, `std`: the side of the square input and the
    /// normalisation per RGB channel after x/255 (None: the model's); `adapter`: part of the GPU's
    /// name (e.g. "nvidia", "llvmpipe"); `batch`: images per GPU batch (None: the engine's
    /// default, up to 256 on a GPU, 16 on a CPU adapter); `labels`: a file with one class name per
    /// line; `in_flight`: GPU batches in flight when a call spans several (1 or 2; None: 2 on a
    /// GPU, where one batch is read back while the GPU works on the next, 1 on a CPU adapter).
    #[new]
    #[pyo3(signature = (weights=None, adapter=None, batch=None, labels=None, in_flight=None, *, model=None, arch=None, input_size=None, mean=None, std=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        weights: Option<PathBuf>,
        adapter: Option<String>,
        batch: Option<u32>,
        labels: Option<PathBuf>,
        in_flight: Option<usize>,
        model: Option<Bound<'_, PyAny>>,
        arch: Option<String>,
        input_size: Option<u32>,
        mean: Option<[f32; 3]>,
        std: Option<[f32; 3]>,
    ) -> PyResult<Self> {
        if let Some(n) = in_flight.filter(|n| !(1..=2).contains(n)) {
            return Err(PyValueError::new_err(format!(
                "in_flight={n}: expected 1 or 2"
            )));
        }
        if weights.is_some() && model.is_some() {
            return Err(PyValueError::new_err("weights and model: give one of them"));
        }
        let options = LoadOptions {
            arch: arch
                .as_deref()
                .map(Arch::parse)
                .transpose()
                .map_err(to_py)?,
            input_size,
            mean,
            std,
        };
        let loaded = match &model {
            Some(module) => Some(module_model(module, &options)?),
            None => None,
        };
        let engine = py
            .detach(|| -> engine::Result<engine::Engine> {
                let mut model = match (loaded, &weights) {
                    (Some(model), _) => model,
                    (None, Some(path)) => Model::load_with(path, &options)?,
                    (None, None) => Model::from_bytes_with(
                        std::path::Path::new(engine::model::BUILTIN_WEIGHTS_NAME),
                        engine::model::BUILTIN_WEIGHTS.to_vec(),
                        &options,
                    )?,
                };
                if let Some(path) = &labels {
                    let l = engine::Labels::load(path, model.classes as usize)?;
                    model = model.with_labels(l)?;
                }
                let ctx = GpuContext::new(&engine::AdapterOptions { name: adapter })?;
                Ok(engine::Engine::new(Arc::new(ctx), model))
            })
            .map_err(to_py)?;
        let batch = batch
            .unwrap_or_else(|| engine.default_batch())
            .clamp(1, engine.max_batch());
        let cpu = engine.context().adapter_info.device_type == engine::wgpu::DeviceType::Cpu;
        Ok(Self {
            engine,
            batch,
            in_flight: in_flight.unwrap_or(if cpu { 1 } else { 2 }),
            explainers: HashMap::new(),
            evaluators: HashMap::new(),
        })
    }

    /// The adapter: "name (backend)".
    #[getter]
    fn adapter(&self) -> String {
        self.engine.context().adapter_name()
    }

    /// The side of the square input images are resized to.
    #[getter]
    fn input_size(&self) -> u32 {
        self.engine.model().input_size
    }

    /// The input normalisation: (mean, std) per RGB channel after x/255.
    #[getter]
    fn normalization(&self) -> ([f32; 3], [f32; 3]) {
        let model = self.engine.model();
        (model.mean, model.std)
    }

    /// The model's architecture, e.g. "efficientnet-lite0".
    #[getter]
    fn architecture(&self) -> String {
        self.engine.model().architecture.clone()
    }

    /// The layers a CAM can target, by their PyTorch module paths.
    #[getter]
    fn layers(&self) -> Vec<String> {
        let model = self.engine.model();
        model.target_layers.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The layer explained when none is named.
    #[getter]
    fn default_layer(&self) -> String {
        self.engine.model().default_layer.clone()
    }

    /// The class names, in class order.
    #[getter]
    fn labels(&self) -> Vec<String> {
        let model = self.engine.model();
        (0..model.classes as usize)
            .map(|i| model.labels.get(i).to_string())
            .collect()
    }

    /// Images per GPU batch.
    #[getter]
    fn batch(&self) -> u32 {
        self.batch
    }

    /// Explains `images` (file paths, PIL images or numpy uint8 arrays [h, w, 3], any sizes)
    /// with `method` at `layer` (the CLI's names; None: the model's default layer) for
    /// `targets` (one class per image; None: each image's predicted class). `on_error`:
    /// "raise" (a bad image raises ValueError naming its index) or "skip" (it is left out of
    /// the result and listed in `Result.errors`). `boxes`: each image's localisation box (the
    /// largest region where the CAM at the image's size is at least `box_threshold` of its
    /// maximum) in `Result.boxes`, drawn on the overlay as the CLI's --boxes draws it unless
    /// `draw_boxes` is False.
    /// `guided`: guided backpropagation and Guided Grad-CAM pictures in `Result.guided` and
    /// `Result.guided_gradcam`. `eigen_smooth`, `aug_smooth`: pytorch-grad-cam's options.
    /// `samples`, `noise_std`, `seed`: method "smooth-gradcam++"'s noisy copies of the input
    /// (torch-cam's `num_samples` and `std`; an image gets the same noise in any batch).
    #[pyo3(signature = (images, method="gradcam", layer=None, targets=None, colormap="jet", image_weight=0.5, on_error="raise", boxes=false, box_threshold=0.15, draw_boxes=true, guided=false, eigen_smooth=false, aug_smooth=false, samples=4, noise_std=0.3, seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn explain(
        &mut self,
        py: Python<'_>,
        images: Vec<Bound<'_, PyAny>>,
        method: &str,
        layer: Option<String>,
        targets: Option<Vec<i64>>,
        colormap: &str,
        image_weight: f32,
        on_error: &str,
        boxes: bool,
        box_threshold: f32,
        draw_boxes: bool,
        guided: bool,
        eigen_smooth: bool,
        aug_smooth: bool,
        samples: u32,
        noise_std: f32,
        seed: u32,
    ) -> PyResult<ExplainResult> {
        let skip = match on_error {
            "raise" => false,
            "skip" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "on_error={other:?}: expected \"raise\" or \"skip\""
                )))
            }
        };
        if let Some(t) = &targets {
            if t.len() != images.len() {
                return Err(PyValueError::new_err(format!(
                    "{} targets for {} images: give one class per image, or None",
                    t.len(),
                    images.len()
                )));
            }
            let classes = i64::from(self.engine.model().classes);
            if let Some((i, c)) = t
                .iter()
                .enumerate()
                .find(|(_, c)| !(0..classes).contains(*c))
            {
                return Err(PyValueError::new_err(format!(
                    "targets[{i}]: class {c} is not one of the model's {classes} classes"
                )));
            }
        }
        let method: Method = method.parse().map_err(to_py)?;
        let colormap_value: Colormap = colormap.parse().map_err(to_py)?;
        if !(0.0..=1.0).contains(&image_weight) {
            return Err(PyValueError::new_err(format!(
                "image_weight={image_weight}: expected a value in [0, 1]"
            )));
        }
        if boxes && !(box_threshold > 0.0 && box_threshold <= 1.0) {
            return Err(PyValueError::new_err(format!(
                "box_threshold={box_threshold}: expected a fraction of the maximum in (0, 1]"
            )));
        }
        let mut errors: Vec<(usize, String)> = Vec::new();
        let mut inputs: Vec<(usize, Input)> = Vec::with_capacity(images.len());
        for (i, obj) in images.iter().enumerate() {
            match input_of(obj) {
                Ok(input) => inputs.push((i, input)),
                Err(e) if skip => errors.push((i, e)),
                Err(e) => return Err(PyValueError::new_err(format!("images[{i}]: {e}"))),
            }
        }

        // The noise's settings select an explainer only where they apply.
        let noise = match method {
            Method::SmoothGradCamPlusPlus => (samples, noise_std.to_bits(), seed),
            _ => (0, 0, 0),
        };
        let key: Key = (
            method.to_string(),
            layer.clone().unwrap_or_default(),
            colormap.to_string(),
            image_weight.to_bits(),
            guided,
            eigen_smooth,
            aug_smooth,
            noise.0,
            noise.1,
            noise.2,
        );
        // As many explainers as batches can be in flight in this call.
        let wanted = self
            .in_flight
            .min(inputs.len().div_ceil(self.batch as usize).max(1));
        while self.explainers.get(&key).map_or(0, Vec::len) < wanted {
            let options = ExplainOptions {
                layer: layer.clone().unwrap_or_default(),
                method,
                colormap: colormap_value,
                image_weight,
                guided,
                eigen_smooth,
                aug_smooth,
                samples,
                noise_std,
                seed,
                ..Default::default()
            };
            let ex = self.engine.explainer(self.batch, options).map_err(to_py)?;
            self.explainers.entry(key.clone()).or_default().push(ex);
        }
        let explainers = self.explainers.get_mut(&key).expect("inserted above");
        let batch = self.batch as usize;

        // Decoding and the GPU work, with the GIL released.
        let (done, failed) = py
            .detach(move || -> engine::Result<_> {
                let mut decoded: Vec<(usize, image::RgbImage)> = Vec::with_capacity(inputs.len());
                let mut failed: Vec<(usize, String)> = Vec::new();
                for (i, input) in inputs {
                    match input {
                        Input::Pixels(img) => decoded.push((i, img)),
                        Input::File(path) => match engine::decode_image(&path) {
                            Ok(img) => decoded.push((i, img)),
                            Err(e) => failed.push((i, engine::one_line(&e.to_string()))),
                        },
                    }
                }
                if !skip {
                    if let Some((i, e)) = failed.first() {
                        return Err(engine::Error::InvalidRequest(format!("images[{i}]: {e}")));
                    }
                }
                let what = Readback {
                    cam: true,
                    cam_grid: false,
                    overlay: true,
                    guided,
                };
                // Batch k runs on explainer k mod n; with two, batch k is read back after batch
                // k + 1 is submitted, so the copy-out overlaps the GPU's work.
                let n = explainers.len();
                let chunks: Vec<&[(usize, image::RgbImage)]> = decoded.chunks(batch).collect();
                let mut done = Vec::with_capacity(decoded.len());
                let mut pending: Option<usize> = None;
                for k in 0..=chunks.len() {
                    if let Some(chunk) = chunks.get(k) {
                        let imgs: Vec<&image::RgbImage> =
                            chunk.iter().map(|(_, img)| img).collect();
                        let tgts: Vec<Target> = match &targets {
                            Some(t) => chunk
                                .iter()
                                .map(|(i, _)| Target::Class(t[*i] as u32))
                                .collect(),
                            None => vec![Target::Predicted; chunk.len()],
                        };
                        explainers[k % n].upload(&imgs, &tgts)?;
                        explainers[k % n].run_with_readback(what)?;
                    }
                    // The oldest batch in flight, once the next is submitted (or none is left).
                    let read = match pending {
                        Some(p) if n > 1 || k >= chunks.len() => Some(p),
                        _ if n == 1 && k < chunks.len() => Some(k),
                        _ => None,
                    };
                    if let Some(r) = read {
                        let out = explainers[r % n].read(what)?;
                        done.extend(chunks[r].iter().map(|(i, _)| *i).zip(out));
                    }
                    pending = if n > 1 && k < chunks.len() {
                        Some(k)
                    } else {
                        None
                    };
                }
                Ok((done, failed))
            })
            .map_err(to_py)?;
        errors.extend(failed);
        errors.sort();

        let n = done.len();
        let side = self.engine.model().input_size as usize;
        let classes = self.engine.model().classes as usize;
        let mut cam = Vec::with_capacity(n * side * side);
        let mut logits = Vec::with_capacity(n * classes);
        let mut overlays = Vec::with_capacity(n);
        let (mut indices, mut class_ids, mut scores, mut labels) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut found_boxes = Vec::with_capacity(n);
        let (mut guided_pictures, mut guided_gradcam) = (Vec::new(), Vec::new());
        for (i, r) in done {
            let image_cam = r.cam.as_deref().unwrap_or(&[]);
            cam.extend_from_slice(image_cam);
            logits.extend_from_slice(&r.logits);
            let mut overlay = r.overlay.expect("overlay read back");
            let (w, h) = overlay.dimensions();
            if boxes {
                let b = localisation_box(image_cam, side as u32, w, h, box_threshold);
                if let (Some(b), true) = (b, draw_boxes) {
                    draw_localisation_box(&mut overlay, b);
                }
                found_boxes.push(b.map(|[x0, y0, x1, y1]| (x0, y0, x1, y1)));
            }
            let rgb: Vec<u8> = overlay
                .into_raw()
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            overlays.push(rgb_array(py, w, h, rgb));
            for (picture, list) in [
                (r.guided, &mut guided_pictures),
                (r.guided_gradcam, &mut guided_gradcam),
            ] {
                if let Some(p) = picture {
                    let (w, h) = p.dimensions();
                    list.push(rgb_array(py, w, h, p.into_raw()));
                }
            }
            indices.push(i);
            class_ids.push(r.class);
            scores.push(r.score);
            labels.push(r.label);
        }
        Ok(ExplainResult {
            cam: Array3::from_shape_vec((n, side, side), cam)
                .expect("cam size")
                .into_pyarray(py)
                .unbind(),
            overlay: overlays,
            classes: class_ids,
            scores,
            labels,
            logits: Array2::from_shape_vec((n, classes), logits)
                .expect("logits size")
                .into_pyarray(py)
                .unbind(),
            indices,
            errors,
            boxes: boxes.then_some(found_boxes),
            guided: guided.then_some(guided_pictures),
            guided_gradcam: guided.then_some(guided_gradcam),
        })
    }

    /// Faithfulness metrics of each method's explanations, computed on the GPU with them
    /// (the CLI's `gradcam evaluate`): `methods` (the CLI's method names), `metrics` (the
    /// CLI's metric names and groups; None: the five `confidence` metrics), `layer` (None: the
    /// model's default), `targets` (one class per image; None: each image's predicted class),
    /// `target_score` ("softmax" or "logit"), `steps` (deletion's and insertion's), `samples`,
    /// `noise_std`, `seed` (smooth-gradcam++'s, as in `explain`). `methods` may say "all".
    /// Returns
    /// {method: {metric: float32 [N]}}, values per image in input order. A bad image raises
    /// ValueError naming its index. The GIL is released while the GPU works.
    #[pyo3(signature = (images, methods=vec!["gradcam".to_string()], metrics=None, layer=None, targets=None, target_score="softmax", steps=20, samples=4, noise_std=0.3, seed=0))]
    #[allow(clippy::too_many_arguments)]
    fn evaluate<'py>(
        &mut self,
        py: Python<'py>,
        images: Vec<Bound<'py, PyAny>>,
        methods: Vec<String>,
        metrics: Option<Vec<String>>,
        layer: Option<String>,
        targets: Option<Vec<i64>>,
        target_score: &str,
        steps: u32,
        samples: u32,
        noise_std: f32,
        seed: u32,
    ) -> PyResult<Bound<'py, PyDict>> {
        // The CLI's names, `all` for every method, each once in the order given.
        let mut list: Vec<Method> = Vec::new();
        for name in &methods {
            let found = if name.eq_ignore_ascii_case("all") {
                Method::ALL.to_vec()
            } else {
                vec![name.parse::<Method>().map_err(to_py)?]
            };
            for m in found {
                if !list.contains(&m) {
                    list.push(m);
                }
            }
        }
        let every_method = methods.iter().any(|m| m.eq_ignore_ascii_case("all"));
        let methods = list;
        let metrics = match metrics {
            Some(list) => engine::Metric::parse_list(&list.join(",")).map_err(to_py)?,
            None => engine::Metric::CONFIDENCE.to_vec(),
        };
        let target_score: engine::TargetScore = target_score.parse().map_err(to_py)?;
        let classes = i64::from(self.engine.model().classes);
        let targets: Vec<Target> = match targets {
            Some(t) if t.len() != images.len() => {
                return Err(PyValueError::new_err(format!(
                    "{} targets for {} images: give one class per image, or None",
                    t.len(),
                    images.len()
                )))
            }
            Some(t) => t
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    if (0..classes).contains(&c) {
                        Ok(Target::Class(c as u32))
                    } else {
                        Err(PyValueError::new_err(format!(
                            "targets[{i}]: class {c} is not one of the model's {classes} classes"
                        )))
                    }
                })
                .collect::<PyResult<_>>()?,
            None => vec![Target::Predicted; images.len()],
        };
        let inputs: Vec<Input> = images
            .iter()
            .enumerate()
            .map(|(i, obj)| {
                input_of(obj).map_err(|e| PyValueError::new_err(format!("images[{i}]: {e}")))
            })
            .collect::<PyResult<_>>()?;
        // Made once per setting and kept, as `explain`'s are.
        let names: Vec<&str> = metrics.iter().map(|m| m.name()).collect();
        let keys: Vec<String> = methods
            .iter()
            .map(|m| {
                // The noise's settings select an explainer only where they apply.
                let noise = match m {
                    Method::SmoothGradCamPlusPlus => (samples, noise_std.to_bits(), seed),
                    _ => (0, 0, 0),
                };
                format!(
                    "{m}|{}|{}|{target_score}|{steps}|{noise:?}",
                    layer.as_deref().unwrap_or(""),
                    names.join(","),
                )
            })
            .collect();
        let mut explainers = Vec::with_capacity(methods.len());
        let (mut kept_methods, mut kept_keys) = (Vec::new(), Vec::new());
        for (&method, key) in methods.iter().zip(&keys) {
            if let Some(kept) = self.evaluators.remove(key) {
                explainers.push(kept);
                kept_methods.push(method);
                kept_keys.push(key.clone());
                continue;
            }
            let options = ExplainOptions {
                layer: if method.needs().input {
                    String::new()
                } else {
                    layer.clone().unwrap_or_default()
                },
                method,
                metrics: metrics.clone(),
                target_score,
                metric_steps: steps,
                samples,
                noise_std,
                seed,
                ..Default::default()
            };
            match self.engine.explainer(self.batch, options) {
                Ok(e) => explainers.push(e),
                // "all" takes the methods that apply to the model.
                Err(engine::Error::InvalidRequest(_)) if every_method => continue,
                Err(e) => return Err(to_py(e)),
            }
            kept_methods.push(method);
            kept_keys.push(key.clone());
        }
        let (methods, keys) = (kept_methods, kept_keys);
        let batch = self.batch as usize;
        let (n, metric_count, method_count) = (inputs.len(), metrics.len(), methods.len());
        // Per method, per metric, the values in input order.
        let (values, explainers) = py
            .detach(move || -> engine::Result<(MetricValues, Vec<Explainer>)> {
                let mut decoded = Vec::with_capacity(n);
                for (i, input) in inputs.into_iter().enumerate() {
                    decoded.push(match input {
                        Input::Pixels(img) => img,
                        Input::File(path) => engine::decode_image(&path).map_err(|e| {
                            engine::Error::InvalidRequest(format!(
                                "images[{i}]: {}",
                                engine::one_line(&e.to_string())
                            ))
                        })?,
                    });
                }
                let what = Readback {
                    cam: false,
                    cam_grid: false,
                    overlay: false,
                    guided: false,
                };
                let mut values = vec![vec![Vec::with_capacity(n); metric_count]; method_count];
                for (chunk, tgts) in decoded.chunks(batch).zip(targets.chunks(batch)) {
                    let imgs: Vec<&image::RgbImage> = chunk.iter().collect();
                    for (explainer, per_metric) in explainers.iter_mut().zip(&mut values) {
                        for r in explainer.explain(&imgs, tgts, what)? {
                            for (list, (_, v)) in per_metric.iter_mut().zip(&r.metrics) {
                                list.push(*v);
                            }
                        }
                    }
                }
                Ok((values, explainers))
            })
            .map_err(to_py)?;
        self.evaluators.extend(keys.into_iter().zip(explainers));
        let out = PyDict::new(py);
        for (method, per_metric) in methods.iter().zip(values) {
            let inner = PyDict::new(py);
            for (metric, list) in metrics.iter().zip(per_metric) {
                inner.set_item(metric.name(), list.into_pyarray(py))?;
            }
            out.set_item(method.name(), inner)?;
        }
        Ok(out)
    }
}

/// `evaluate`'s values: per method, per metric, per image.
type MetricValues = Vec<Vec<Vec<f32>>>;

/// A localisation box as Python sees it: (x0, y0, x1, y1).
type BoxCorners = (u32, u32, u32, u32);

/// What `Engine.explain` returns, for the images that were explained, in input order.
#[pyclass(module = "gradcam", name = "Result", get_all)]
struct ExplainResult {
    /// float32 [N, S, S]: the CAMs at the model's input size, as pytorch-grad-cam returns them.
    cam: Py<PyArray3<f32>>,
    /// uint8 [h, w, 3] per image: the heatmap blended over the image at its own size.
    overlay: Vec<Py<PyArray3<u8>>>,
    /// The class explained per image.
    classes: Vec<u32>,
    /// Its softmax probability.
    scores: Vec<f32>,
    /// Its name.
    labels: Vec<String>,
    /// float32 [N, classes].
    logits: Py<PyArray2<f32>>,
    /// Position of each result in the `images` given.
    indices: Vec<usize>,
    /// With on_error="skip": (position, message) of each image that could not be explained.
    errors: Vec<(usize, String)>,
    /// With boxes=True, per image: (x0, y0, x1, y1), pixels x0..x1 × y0..y1 of the image (ends
    /// exclusive), or None where the CAM has no positive value; None without boxes.
    boxes: Option<Vec<Option<BoxCorners>>>,
    /// With guided=True, per image: guided backpropagation as pytorch-grad-cam's
    /// deprocess_image makes it a picture, uint8 [S, S, 3]; None without guided.
    guided: Option<Vec<Py<PyArray3<u8>>>>,
    /// With guided=True, per image: Guided Grad-CAM (the CAM times the guided gradient),
    /// uint8 [S, S, 3]; None without guided.
    guided_gradcam: Option<Vec<Py<PyArray3<u8>>>>,
}

#[pymethods]
impl ExplainResult {
    fn __len__(&self) -> usize {
        self.classes.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "gradcam.Result({} images, classes {:?}, {} errors)",
            self.classes.len(),
            self.classes,
            self.errors.len()
        )
    }
}

/// GPU Grad-CAM: class activation maps equal to pytorch-grad-cam's, computed on any GPU (or a
/// CPU Vulkan driver) through wgpu.
#[pymodule]
fn gradcam(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<ExplainResult>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

//! Grad-CAM end to end on the GPU: forward, target class, targeted backward, CAM, colormap and
//! overlay, recorded as one command stream with no readback in between.

use std::sync::Arc;

use super::augment::AugSmooth;
use super::backward::{push_grad_step, BackwardPlan};
use super::cam::push_cam;
use super::forward::Forward;
use super::methods::{GradientTap, Method};
use super::metric_passes::MetricPasses;
use super::smooth_grad::{SmoothGrad, Stage};
use super::steps::{BatchShape, Steps};
use crate::colormap::Colormap;
use crate::error::{Error, Result};
use crate::gpu::kernels::launch;
use crate::gpu::params::{
    overlay_row_pitch, reduction_chunks, CamMinMaxParams, GuidedStatsParams, LogitGradParams,
    OverlayParams, SelectTargetParams, MAX_REDUCTION_CHUNKS,
};
use crate::gpu::{GpuContext, Profiler};
use crate::metrics::{Metric, TargetScore};

/// Where one image's overlay lies in [`Explainer::overlay_buffer`]: RGBA8 rows of `width`
/// pixels, `bytes_per_row` apart (a multiple of 256, as `copy_buffer_to_texture` requires),
/// starting at byte `offset` (a multiple of 256).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OverlayRegion {
    /// Byte offset of the first row.
    pub offset: u64,
    /// Bytes from one row to the next.
    pub bytes_per_row: u32,
    pub width: u32,
    pub height: u32,
}

impl OverlayRegion {
    /// The regions of a batch of images of `sizes`, in order.
    pub fn of_batch(sizes: &[(u32, u32)]) -> Vec<Self> {
        let mut offset = 0;
        sizes
            .iter()
            .map(|&(width, height)| {
                let region = Self {
                    offset,
                    bytes_per_row: overlay_row_pitch(width) * 4,
                    width,
                    height,
                };
                offset += region.len();
                region
            })
            .collect()
    }

    /// Bytes from the first row's start to the end of the last row's padding.
    pub fn len(&self) -> u64 {
        u64::from(self.bytes_per_row) * u64::from(self.height)
    }

    /// Whether the region has no pixels (never, for a region of an uploaded image).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The region's size as a texture extent.
    pub fn extent(&self) -> wgpu::Extent3d {
        wgpu::Extent3d {
            width: self.width,
            height: self.height,
            depth_or_array_layers: 1,
        }
    }

    /// The region of `buffer` as the source of `copy_buffer_to_texture`.
    pub fn copy_source<'a>(&self, buffer: &'a wgpu::Buffer) -> wgpu::TexelCopyBufferInfo<'a> {
        wgpu::TexelCopyBufferInfo {
            buffer,
            layout: wgpu::TexelCopyBufferLayout {
                offset: self.offset,
                bytes_per_row: Some(self.bytes_per_row),
                rows_per_image: Some(self.height),
            },
        }
    }

    /// The overlay's pixels out of the batch's bytes, its rows' padding left out.
    fn image(&self, packed: &[u8]) -> Option<image::RgbaImage> {
        let start = usize::try_from(self.offset).ok()?;
        let rows = packed.get(start..start + usize::try_from(self.len()).ok()?)?;
        let row = self.width as usize * 4;
        let pixels = if row == self.bytes_per_row as usize {
            rows.to_vec()
        } else {
            let mut pixels = Vec::with_capacity(row * self.height as usize);
            for r in rows.chunks_exact(self.bytes_per_row as usize) {
                pixels.extend_from_slice(&r[..row]);
            }
            pixels
        };
        image::RgbaImage::from_raw(self.width, self.height, pixels)
    }
}

/// Overlays are RGBA8, `Rgba8Unorm` or `Rgba8UnormSrgb` (the same bytes).
fn check_overlay_format(format: wgpu::TextureFormat) -> Result<()> {
    match format {
        wgpu::TextureFormat::Rgba8Unorm | wgpu::TextureFormat::Rgba8UnormSrgb => Ok(()),
        other => Err(Error::InvalidRequest(format!(
            "an overlay texture is Rgba8Unorm or Rgba8UnormSrgb, not {other:?}"
        ))),
    }
}

/// The batch's overlays as one image each. Copying out of the mapped readback into fresh
/// allocations is bound by page faults (1.7 GB/s measured on an H200 host), so a large batch is
/// split over the CPU's threads.
fn split_overlays(packed: &[u8], regions: &[OverlayRegion]) -> Vec<Option<image::RgbaImage>> {
    let one = |r: &OverlayRegion| r.image(packed);
    let at = regions.last().map_or(0, |r| (r.offset + r.len()) as usize);
    // Threads only where there is enough to copy: 8 MB per thread at least.
    const PER_THREAD: usize = 8 << 20;
    let threads = if cfg!(target_arch = "wasm32") {
        1
    } else {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(at / PER_THREAD)
            .min(regions.len())
            .max(1)
    };
    if threads == 1 {
        return regions.iter().map(one).collect();
    }
    // Contiguous runs of images of about equal bytes, one per thread.
    let share = at.div_ceil(threads);
    let mut runs: Vec<std::ops::Range<usize>> = Vec::with_capacity(threads);
    let mut start = 0;
    for (i, r) in regions.iter().enumerate() {
        let end = (r.offset + r.len()) as usize;
        if end >= share * (runs.len() + 1) || i + 1 == regions.len() {
            runs.push(start..i + 1);
            start = i + 1;
        }
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| {
                let regions = &regions[run];
                scope.spawn(move || regions.iter().map(one).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// Which class to explain for an image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// The class with the highest logit, chosen on the GPU.
    #[default]
    Predicted,
    /// This class.
    Class(u32),
    /// The class ranked this high by its logit, chosen on the GPU: 0 is the predicted class, 1
    /// the second most likely (ties by the lower class index).
    Rank(u32),
}

/// How an [`Explainer`] explains.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// Target layer, by the model's layer names (the module paths PyTorch users pass to
    /// pytorch-grad-cam: `layer4`, `features.18`, `head`, ...; see
    /// [`Model::target_layers`](crate::Model::target_layers)); empty: the model's default layer.
    /// Several, comma-separated (`layer3,layer4`), give pytorch-grad-cam's multi-layer CAM: each
    /// layer's map normalised and resized, then their mean, normalised again.
    pub layer: String,
    /// The CAM method.
    pub method: Method,
    /// Heatmap colours.
    pub colormap: Colormap,
    /// Weight of the image in the overlay, in [0, 1]; the heatmap gets `1 - image_weight`.
    pub image_weight: f32,
    /// Also compute the gradient of the target logit with respect to the (normalised) input
    /// image: see [`Explainer::input_gradient_buffer`].
    pub input_gradient: bool,
    /// Rows of each probe batch of Score-CAM and Ablation-CAM (the forward passes run per
    /// channel, in chunks); `None`: as many as fit the device's limits, at most 256.
    pub method_batch: Option<u32>,
    /// Also guided backpropagation and Guided Grad-CAM, the Grad-CAM paper's high-resolution
    /// pictures, at the model's input size: see [`Explanation::guided`].
    pub guided: bool,
    /// pytorch-grad-cam's `eigen_smooth`: the methods that sum weighted activations over the
    /// channels (Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, element-wise Grad-CAM, LayerCAM,
    /// Score-CAM, Ablation-CAM) take their first principal component instead; the others ignore
    /// it, as in the reference.
    pub eigen_smooth: bool,
    /// pytorch-grad-cam's `aug_smooth`: the whole pipeline runs on six variants of the input
    /// (left-right flipped or not, times 0.9, 1 or 1.1; the class re-chosen per variant when
    /// none is given) and the CAM is the mean of their CAMs, flipped back, with no
    /// renormalisation. The logits, class, grid and guided pictures read back are the plain
    /// image's.
    pub aug_smooth: bool,
    /// Smooth Grad-CAM++'s noisy samples of the input, each a forward and a backward pass
    /// (torch-cam's `num_samples`, default 4).
    pub samples: u32,
    /// The standard deviation of Smooth Grad-CAM++'s Gaussian noise, in the normalised input's
    /// units (torch-cam's `std`, default 0.3).
    pub noise_std: f32,
    /// The seed of Smooth Grad-CAM++'s noise. An image gets the same noise whatever batch it is
    /// in, so its map does not depend on its neighbours.
    pub seed: u32,
    /// Faithfulness metrics computed with the explanation ([`Explanation::metrics`]): each
    /// perturbation they need is one more forward pass per batch, after the CAM. The input and
    /// logits are restored afterwards; the activations stay the last perturbation's.
    pub metrics: Vec<Metric>,
    /// The score the metrics read for the explained class.
    pub target_score: TargetScore,
    /// Deletion's and insertion's steps (torch-cam's `steps`, default 20): each step is one forward
    /// pass per batch for each of the two (the blank input, their shared end, once).
    pub metric_steps: u32,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        Self {
            layer: String::new(),
            method: Method::GradCam,
            colormap: Colormap::Jet,
            image_weight: 0.5,
            input_gradient: false,
            method_batch: None,
            guided: false,
            eigen_smooth: false,
            aug_smooth: false,
            samples: 4,
            noise_std: 0.3,
            seed: 0,
            metrics: Vec::new(),
            target_score: TargetScore::Softmax,
            metric_steps: crate::metrics::DEFAULT_STEPS,
        }
    }
}

/// What [`Explainer::read`] brings back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readback {
    /// The CAM at model resolution.
    pub cam: bool,
    /// The CAM at the target layer's resolution, before normalization.
    pub cam_grid: bool,
    /// The overlays at each image's own size.
    pub overlay: bool,
    /// With [`ExplainOptions::guided`], the guided backpropagation and Guided Grad-CAM pictures.
    pub guided: bool,
}

impl Readback {
    /// Everything.
    pub const ALL: Self = Self {
        cam: true,
        cam_grid: true,
        overlay: true,
        guided: true,
    };
}

/// One image's result, read back.
#[derive(Clone, Debug)]
pub struct Explanation {
    /// The class explained.
    pub class: u32,
    /// Its name ([`crate::Model::labels`]).
    pub label: String,
    /// Its softmax probability over the logits.
    pub score: f32,
    /// The image's logits.
    pub logits: Vec<f32>,
    /// `[S × S]` row-major, S the model's input size ([`Explainer::cam_size`]): the normalized
    /// CAM, comparable with pytorch-grad-cam's output.
    pub cam: Option<Vec<f32>>,
    /// `[h × w]` at the (first) target layer's resolution: the method's map after ReLU, before
    /// any normalization (for Grad-CAM, ReLU(Σ_k w_k A_k)).
    pub cam_grid: Option<Vec<f32>>,
    /// The heatmap blended over the image at the image's own size.
    pub overlay: Option<image::RgbaImage>,
    /// With [`ExplainOptions::guided`]: guided backpropagation, the gradient of the target logit
    /// at the normalised input with every ReLU's backward passing only positive gradients where
    /// its input was positive (pytorch-grad-cam's `GuidedBackpropReLUModel`, which replaces only
    /// `nn.ReLU` modules: on ReLU6 networks, Lite and MobileNetV2, the plain input gradient),
    /// as its `deprocess_image` makes it a picture, `[S × S]`.
    pub guided: Option<image::RgbImage>,
    /// With [`ExplainOptions::guided`]: Guided Grad-CAM, `deprocess_image(cam · guided
    /// gradient)` with the method's final CAM, `[S × S]`.
    pub guided_gradcam: Option<image::RgbImage>,
    /// With [`ExplainOptions::metrics`], each metric's value for this image, in that order.
    pub metrics: Vec<(Metric, f32)>,
}

/// Buffers and recorded work for explaining batches of up to `capacity` images at one target
/// layer. Made once and reused: no allocation per batch unless a batch's images outgrow the
/// pixel buffers.
///
/// ```no_run
/// use std::sync::Arc;
/// use gradcam::{Engine, ExplainOptions, GpuContext, Model, Readback, Target};
///
/// # fn main() -> Result<(), gradcam::Error> {
/// // On an app's own device: GpuContext::from_device(device, queue)?
/// let ctx = Arc::new(GpuContext::new(&Default::default())?);
/// let engine = Engine::new(ctx, Model::load("weights/efficientnet_lite0.safetensors")?);
/// let mut explainer = engine.explainer(8, ExplainOptions::default())?;
/// let image = gradcam::decode_image("examples/images/chelsea.png")?;
///
/// // Everything on the GPU, results left there:
/// explainer.upload(&[&image], &[Target::Predicted])?;
/// explainer.run()?; // or explainer.record(&mut your_encoder)
/// let overlay: &wgpu::Buffer = explainer.overlay_buffer();
///
/// // Or read back, once, at the end:
/// let result = explainer.read(Readback::ALL)?.remove(0);
/// result.overlay.unwrap().save("chelsea_gradcam.png").ok();
/// # Ok(()) }
/// ```
pub struct Explainer {
    forward: Forward,
    options: ExplainOptions,
    plan: BackwardPlan,
    grid_size: (u32, u32),
    requested: wgpu::Buffer,
    requested_host: Vec<u32>,
    targets: wgpu::Buffer,
    grads: Vec<wgpu::Buffer>,
    cam_grid: wgpu::Buffer,
    cam: wgpu::Buffer,
    lut: wgpu::Buffer,
    /// overlay_max.wgsl's partial maxima, `[batch, chunks]`.
    maxima: wgpu::Buffer,
    /// Their maximum per image (cam_minmax.wgsl), which the overlay divides by.
    overlay_stats: wgpu::Buffer,
    overlay: wgpu::Buffer,
    steps: Steps,
    /// Index of the first CAM step in `steps` (the ones before are the backward pass).
    cam_start: usize,
    overlay_steps: Steps,
    bound_pixels: u64,
    staging: wgpu::Buffer,
    /// What [`Explainer::run_with_readback`] copied into `staging` with the batch's own
    /// submission, and that submission.
    copied: Option<(Readback, wgpu::SubmissionIndex)>,
    /// Bytes of the buffers only the recorded steps hold (CAM weights and statistics).
    internal_bytes: u64,
    /// With [`ExplainOptions::guided`], the pictures: RGBA8 in u32, `[batch, 2, S × S]`, and
    /// the guided gradient they are made from.
    guided: Option<wgpu::Buffer>,
    guided_gradient: Option<wgpu::Buffer>,
    /// With [`ExplainOptions::aug_smooth`], the variants' buffers and steps.
    aug: Option<AugSmooth>,
    /// With Smooth Grad-CAM++, the noisy samples' buffers and steps.
    smooth: Option<SmoothGrad>,
    /// The first step after the target choice (the backward pass's first).
    backward_start: usize,
    /// With [`ExplainOptions::metrics`], their passes.
    metrics: Option<MetricPasses>,
}

/// The layer name of a map made at the input image ([`Needs::input`](super::methods::Needs)).
pub const INPUT_LAYER: &str = "input";

/// `requested` value meaning "the argmax" (shaders/select_target.wgsl `ARGMAX`).
const ARGMAX: u32 = u32::MAX;
/// `requested` flag meaning "the class of rank `value & !RANKED`" (select_target.wgsl `RANKED`).
const RANKED: u32 = 1 << 31;

impl Explainer {
    /// A workspace on `forward`'s model and device for its capacity, explaining `options.layer`.
    /// Made by [`Engine::explainer`](crate::Engine::explainer), it keeps only the activations
    /// read after the forward pass; made on a [`Forward::new`], every activation.
    pub fn new(forward: Forward, mut options: ExplainOptions) -> Result<Self> {
        if !(0.0..=1.0).contains(&options.image_weight) {
            return Err(Error::InvalidRequest(format!(
                "image weight {} is outside [0, 1]",
                options.image_weight
            )));
        }
        if options.method_batch == Some(0) {
            return Err(Error::InvalidRequest(
                "the method batch must be at least 1".into(),
            ));
        }
        let ctx = forward.context().clone();
        let gpu_model = forward.gpu_model().clone();
        let model = gpu_model.model.clone();
        if options.layer.is_empty() {
            options.layer = model.default_layer.clone();
        }
        // Several layers (`layer3,layer4`) give pytorch-grad-cam's multi-layer CAM; a method
        // whose map is made at the input (saliency) ignores them.
        let needs = options.method.needs();
        if options.method == Method::FullGrad && model.token_grid.is_some() {
            // pytorch-grad-cam's FullGrad sums the biases of conv and BatchNorm layers, which a
            // transformer's blocks do not have.
            return Err(Error::InvalidRequest(format!(
                "fullgrad does not apply to a vision transformer ({}): choose another method",
                model.architecture
            )));
        }
        let layers = if needs.input {
            options.layer = INPUT_LAYER.into();
            vec![model.input]
        } else {
            model.target_layer_list(&options.layer)?
        };
        let target = layers[0];
        let mut targets = layers.clone();
        if options.input_gradient {
            targets.push(model.input);
        }
        let plan = BackwardPlan::new(&model, &targets)?;
        let cap = u64::from(forward.capacity());
        let grid_size = model.cam_grid_of(target);
        let grid_len = u64::from(grid_size.0 * grid_size.1);
        let cam_size = model.input_size;
        let cam_len = u64::from(cam_size * cam_size);

        let requested = ctx.storage("requested_classes", 4 * cap)?;
        let targets = ctx.storage("target_classes", 4 * cap)?;
        // Gradient buffers only where a backward pass runs.
        let backward = needs.backward() || options.input_gradient;
        let slots = if backward { plan.slots } else { 0 };
        let grads = (0..slots)
            .map(|i| ctx.storage(&format!("grad.{i}"), plan.slot_len as u64 * 4 * cap))
            .collect::<Result<Vec<_>>>()?;
        let cam_grid = ctx.storage("cam_grid", grid_len * 4 * cap)?;
        let cam = ctx.storage("cam", cam_len * 4 * cap)?;
        let lut = ctx.storage_with("colormap", &options.colormap.packed());
        let maxima = ctx.storage("overlay_maxima", 4 * u64::from(MAX_REDUCTION_CHUNKS) * cap)?;
        let overlay_stats = ctx.storage("overlay_stats", 8 * cap)?;
        let overlay = ctx.storage("overlay", 4 << 20)?;
        let staging = ctx.staging("explain_readback", 4 << 20);

        let mut steps = Steps::new("backward+cam");
        let classes = model.classes;
        let logits = forward.tensor(model.logits);
        steps.push(
            &ctx,
            launch::SelectTarget {
                logits,
                requested: &requested,
                targets: &targets,
            },
            move |s| SelectTargetParams {
                batch: s.images,
                classes,
                _pad: [0; 2],
            },
        );
        let backward_start = steps.len();
        // The backward pass, when the method or the caller needs a gradient, with the work the
        // method does on every layer's gradient on the way (FullGrad).
        let mut tap = options
            .method
            .unit()
            .gradient_tap(&ctx, &forward, options.eigen_smooth)?;
        if backward {
            push_backward(
                &ctx,
                &forward,
                &plan,
                &grads,
                &targets,
                &mut steps,
                tap.as_deref_mut(),
            )?;
        }

        let smooth = if options.method == Method::SmoothGradCamPlusPlus {
            // torch-cam's method alone: its noisy passes leave the network on the last sample.
            let alone = [
                (options.aug_smooth, "aug-smooth"),
                (options.guided, "guided pictures"),
                (options.input_gradient, "the input gradient"),
            ];
            if let Some((_, what)) = alone.iter().find(|(on, _)| *on) {
                return Err(Error::InvalidRequest(format!(
                    "smooth-gradcam++ does not combine with {what}"
                )));
            }
            Some(SmoothGrad::new(
                &ctx,
                &forward,
                (&plan, &grads),
                &layers,
                (options.samples, options.noise_std, options.seed),
            )?)
        } else {
            None
        };
        let cam_start = steps.len();
        let mut internal_bytes = push_cam(
            &ctx,
            options.method,
            &forward,
            &plan,
            &grads,
            &layers,
            &targets,
            options.method_batch,
            options.eigen_smooth,
            (&cam_grid, &cam),
            &mut steps,
            tap.as_deref_mut(),
            smooth.as_ref(),
        )?;
        // Guided backpropagation runs after the CAM, which Guided Grad-CAM multiplies in.
        let (guided, guided_gradient) = if options.guided {
            let (images, gradient, bytes) =
                push_guided(&ctx, &forward, &targets, &cam, &mut steps)?;
            internal_bytes += bytes;
            (Some(images), Some(gradient))
        } else {
            (None, None)
        };
        let aug = if options.aug_smooth {
            Some(AugSmooth::new(&ctx, &forward, &cam)?)
        } else {
            None
        };
        let metrics = if options.metrics.is_empty() {
            None
        } else {
            Some(MetricPasses::new(
                &ctx,
                &forward,
                (&cam, &targets),
                &options.metrics,
                (options.target_score, options.metric_steps),
            )?)
        };
        // Everything that reads the forward's tensors has asked for them: the rest share buffers.
        let mut forward = forward;
        forward.finish()?;
        let mut explainer = Self {
            forward,
            options,
            plan,
            grid_size,
            requested,
            requested_host: Vec::new(),
            targets,
            grads,
            cam_grid,
            cam,
            lut,
            maxima,
            overlay_stats,
            overlay,
            steps,
            cam_start,
            overlay_steps: Steps::new("overlay"),
            bound_pixels: u64::MAX,
            staging,
            copied: None,
            internal_bytes,
            guided,
            guided_gradient,
            aug,
            smooth,
            backward_start,
            metrics,
        };
        explainer.build_overlay_steps();
        Ok(explainer)
    }

    fn build_overlay_steps(&mut self) {
        let ctx = self.forward.context().clone();
        let (pixels, generation) = self.forward.pixels();
        let metas = self.forward.metas();
        let heat_weight = (1.0 - f64::from(self.options.image_weight)) as f32;
        let image_weight = self.options.image_weight;
        let cam_size = self.cam_size();
        let configure = move |s: &BatchShape| OverlayParams {
            batch: s.images,
            cam_h: cam_size,
            cam_w: cam_size,
            total_pixels: s.total_pixels,
            heat_weight,
            image_weight,
            chunks: reduction_chunks(s.largest_pixels),
            _pad: 0,
        };
        let mut steps = Steps::new("overlay");
        steps.push(
            &ctx,
            launch::OverlayMax {
                cam: &self.cam,
                lut: &self.lut,
                pixels,
                metas,
                maxima: &self.maxima,
            },
            configure,
        );
        // The partial maxima's maximum per image (the minimum is not used).
        steps.push(
            &ctx,
            launch::CamMinMax {
                map: &self.maxima,
                stats: &self.overlay_stats,
            },
            |s: &BatchShape| CamMinMaxParams {
                batch: s.images,
                len: reduction_chunks(s.largest_pixels),
                relu: 0,
                chunks: 1,
            },
        );
        steps.push(
            &ctx,
            launch::Overlay {
                cam: &self.cam,
                lut: &self.lut,
                pixels,
                metas,
                stats: &self.overlay_stats,
                overlay: &self.overlay,
            },
            configure,
        );
        self.overlay_steps = steps;
        self.bound_pixels = generation;
    }

    /// Bytes of all GPU buffers this explainer uses, weights included: the peak, since buffers
    /// are only ever replaced by larger ones.
    pub fn gpu_bytes(&self) -> u64 {
        let grads: u64 = self.grads.iter().map(wgpu::Buffer::size).sum();
        self.forward.gpu_bytes()
            + self.forward.gpu_model().gpu_bytes()
            + grads
            + self.requested.size()
            + self.targets.size()
            + self.cam_grid.size()
            + self.cam.size()
            + self.lut.size()
            + self.maxima.size()
            + self.overlay_stats.size()
            + self.overlay.size()
            + self.staging.size()
            + self.internal_bytes
            + self.guided.as_ref().map_or(0, wgpu::Buffer::size)
            + self.aug.as_ref().map_or(0, AugSmooth::gpu_bytes)
            + self.smooth.as_ref().map_or(0, SmoothGrad::gpu_bytes)
            + self.metrics.as_ref().map_or(0, MetricPasses::gpu_bytes)
    }

    /// The options it was made with.
    pub fn options(&self) -> &ExplainOptions {
        &self.options
    }

    /// The forward workspace (activations, logits).
    pub fn forward(&self) -> &Forward {
        &self.forward
    }

    /// The most images one batch can hold.
    pub fn capacity(&self) -> u32 {
        self.forward.capacity()
    }

    /// Height and width of the target layer (the CAM grid).
    pub fn grid_size(&self) -> (u32, u32) {
        self.grid_size
    }

    /// Side of the model-resolution CAM: the model's input size, as pytorch-grad-cam's output.
    pub fn cam_size(&self) -> u32 {
        self.forward.model().input_size
    }

    /// The backward plan (which convs run, gradient buffer sharing).
    pub fn plan(&self) -> &BackwardPlan {
        &self.plan
    }

    /// Uploads a batch: the images (any sizes) and, per image, the class to explain (`targets`
    /// empty: the predicted class for all).
    pub fn upload(&mut self, images: &[&image::RgbImage], targets: &[Target]) -> Result<()> {
        self.copied = None;
        self.set_targets(images.len(), targets)?;
        self.forward.upload_images(images)?;
        let shape = self.forward.shape();
        let ctx = self.forward.context().clone();
        let overlay_bytes = u64::from(shape.total_pixels) * 4;
        let (_, generation) = self.forward.pixels();
        if overlay_bytes > self.overlay.size() || generation != self.bound_pixels {
            if overlay_bytes > self.overlay.size() {
                let limit = ctx
                    .limits
                    .max_storage_buffer_binding_size
                    .min(ctx.limits.max_buffer_size);
                if overlay_bytes > limit {
                    return Err(Error::InvalidRequest(format!(
                        "the batch's overlays need {overlay_bytes} bytes, more than one buffer on this adapter \
                         ({limit} bytes); use a smaller batch or smaller images"
                    )));
                }
                self.overlay =
                    ctx.storage("overlay", overlay_bytes.next_power_of_two().min(limit))?;
            }
            self.build_overlay_steps();
        }
        self.steps.configure(&ctx, shape);
        self.overlay_steps.configure(&ctx, shape);
        if let Some(aug) = &mut self.aug {
            aug.configure(&ctx, shape);
        }
        if let Some(smooth) = &mut self.smooth {
            smooth.configure(&ctx, shape);
        }
        if let Some(metrics) = &mut self.metrics {
            metrics.configure(&ctx, shape);
        }
        Ok(())
    }

    /// Uploads already-normalized input tensors (NHWC) instead of images: the CAM is computed,
    /// but there is no overlay.
    pub fn upload_input(&mut self, nhwc: &[f32], targets: &[Target]) -> Result<()> {
        self.copied = None;
        let per = self.forward.model().tensors[self.forward.model().input].len();
        self.set_targets(nhwc.len() / per.max(1), targets)?;
        self.forward.upload_input(nhwc)?;
        let ctx = self.forward.context().clone();
        let shape = self.forward.shape();
        self.steps.configure(&ctx, shape);
        if let Some(aug) = &mut self.aug {
            aug.configure(&ctx, shape);
        }
        if let Some(smooth) = &mut self.smooth {
            smooth.configure(&ctx, shape);
        }
        if let Some(metrics) = &mut self.metrics {
            metrics.configure(&ctx, shape);
        }
        Ok(())
    }

    fn set_targets(&mut self, images: usize, targets: &[Target]) -> Result<()> {
        if !targets.is_empty() && targets.len() != images {
            return Err(Error::InvalidRequest(format!(
                "{} targets for {images} images",
                targets.len()
            )));
        }
        let classes = self.forward.model().classes;
        self.requested_host.clear();
        for i in 0..images {
            match targets.get(i).copied().unwrap_or_default() {
                Target::Predicted => self.requested_host.push(ARGMAX),
                Target::Class(c) if c < classes => self.requested_host.push(c),
                Target::Class(c) => {
                    return Err(Error::InvalidRequest(format!(
                        "class {c} is out of range: this model has classes 0..={}",
                        classes - 1
                    )))
                }
                Target::Rank(r) if r < classes => self.requested_host.push(RANKED | r),
                Target::Rank(r) => {
                    return Err(Error::InvalidRequest(format!(
                        "rank {r} is out of range: this model has {classes} classes"
                    )))
                }
            }
        }
        if images > 0 && images <= self.capacity() as usize {
            let ctx = self.forward.context();
            ctx.queue.write_buffer(
                &self.requested,
                0,
                bytemuck::cast_slice(&self.requested_host),
            );
        }
        Ok(())
    }

    /// Records the whole pipeline for the uploaded batch: preprocessing, forward, target choice,
    /// backward, CAM and (for image batches) the overlay. Nothing is read back.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) {
        let ctx = self.forward.context();
        let images = !self.forward.image_sizes().is_empty();
        // The metrics keep the preprocessed input before the pipeline runs on it.
        let with_images = self.record_metric_input(encoder, images);
        match (&self.aug, &self.smooth) {
            (Some(aug), _) => aug.record(ctx, encoder, &self.forward, with_images, |encoder| {
                self.forward.record(encoder, false);
                self.steps.record(ctx, encoder);
            }),
            (None, Some(smooth)) => {
                let (b, c) = (self.backward_start, self.cam_start);
                smooth.record(
                    ctx,
                    encoder,
                    &self.forward,
                    with_images,
                    |encoder, stage| match stage {
                        Stage::Forward => self.forward.record(encoder, false),
                        Stage::Select => self.steps.record_range(ctx, encoder, 0..b),
                        Stage::Backward => self.steps.record_range(ctx, encoder, b..c),
                    },
                );
                self.steps.record_range(ctx, encoder, c..self.steps.len());
            }
            (None, None) => {
                self.forward.record(encoder, with_images);
                self.steps.record(ctx, encoder);
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.record(ctx, encoder, &self.forward, |encoder| {
                self.forward.record(encoder, false)
            });
        }
        if images {
            self.overlay_steps.record(ctx, encoder);
        }
    }

    /// With metrics, records the preprocessing (for image batches) and the copy of the input they
    /// keep; returns whether the pipeline still has to preprocess.
    fn record_metric_input(&self, encoder: &mut wgpu::CommandEncoder, images: bool) -> bool {
        match &self.metrics {
            Some(metrics) => {
                if images {
                    self.forward.record_preprocess(encoder);
                }
                metrics.keep_input(encoder, &self.forward);
                false
            }
            None => images,
        }
    }

    /// Records what [`Explainer::record`] records, timed by `profiler`: stages `preprocess`,
    /// `forward`, `backward`, `cam`, `overlay`, or with `per_kernel` one timed pass per kernel.
    pub fn record_profiled(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        profiler: &mut Profiler,
        per_kernel: bool,
    ) {
        let ctx = self.forward.context();
        let images = !self.forward.image_sizes().is_empty();
        // Preprocessing first, timed, whatever runs after it (variants, samples, metrics).
        if images {
            self.forward
                .record_preprocess_profiled(encoder, profiler, per_kernel);
        }
        if let Some(metrics) = &self.metrics {
            metrics.keep_input(encoder, &self.forward);
        }
        let with_images = false;
        let (c, n) = (self.cam_start, self.steps.len());
        let pipeline = |encoder: &mut wgpu::CommandEncoder, profiler: &mut Profiler| {
            self.steps
                .record_range_profiled(ctx, encoder, 0..c, profiler, "backward", per_kernel);
            self.steps
                .record_range_profiled(ctx, encoder, c..n, profiler, "cam", per_kernel);
        };
        match (&self.aug, &self.smooth) {
            // Each stage's time is the sum over the six variants.
            (Some(aug), _) => aug.record(ctx, encoder, &self.forward, with_images, |encoder| {
                self.forward
                    .record_profiled(encoder, false, profiler, per_kernel);
                pipeline(encoder, profiler);
            }),
            // Each stage's time is the sum over the clean pass and the samples.
            (None, Some(smooth)) => {
                let b = self.backward_start;
                smooth.record(
                    ctx,
                    encoder,
                    &self.forward,
                    with_images,
                    |encoder, stage| {
                        let (range, label) = match stage {
                            Stage::Forward => {
                                self.forward
                                    .record_profiled(encoder, false, profiler, per_kernel);
                                return;
                            }
                            Stage::Select => (0..b, "backward"),
                            Stage::Backward => (b..c, "backward"),
                        };
                        self.steps.record_range_profiled(
                            ctx, encoder, range, profiler, label, per_kernel,
                        );
                    },
                );
                self.steps
                    .record_range_profiled(ctx, encoder, c..n, profiler, "cam", per_kernel);
            }
            (None, None) => {
                self.forward
                    .record_profiled(encoder, with_images, profiler, per_kernel);
                pipeline(encoder, profiler);
            }
        }
        // The metrics' forward passes count as forward time.
        if let Some(metrics) = &self.metrics {
            metrics.record(ctx, encoder, &self.forward, |encoder| {
                self.forward
                    .record_profiled(encoder, false, profiler, per_kernel)
            });
        }
        if images {
            let m = self.overlay_steps.len();
            self.overlay_steps.record_range_profiled(
                ctx,
                encoder,
                0..m,
                profiler,
                "overlay",
                per_kernel,
            );
        }
    }

    /// Number of kernel launches per batch (for sizing a per-kernel [`Profiler`]).
    pub fn launches(&self) -> usize {
        let variants = self.aug.as_ref().map_or(1, AugSmooth::variants);
        let extra = match &self.smooth {
            // Per sample: its noise, the forward pass on it (no preprocessing), the backward
            // pass and the sums; the clean input runs no backward pass.
            Some(smooth) => {
                let (forward, backward) = (
                    self.forward.launches().saturating_sub(1),
                    self.cam_start - self.backward_start,
                );
                smooth.samples() * (forward + backward + smooth.launches_per_sample()) - backward
            }
            None => 0,
        };
        // Each perturbation's forward pass, without preprocessing.
        let metrics = self.metrics.as_ref().map_or(0, |m| {
            let (own, passes) = m.launches();
            own + passes * self.forward.launches().saturating_sub(1)
        });
        variants * (self.forward.launches() + self.steps.len())
            + extra
            + metrics
            + self.overlay_steps.len()
    }

    /// Submits what [`Explainer::record`] records ([`Explainer::run_async`], blocking).
    /// Results stay on the GPU: see [`Explainer::cam_buffer`], [`Explainer::overlay_buffer`], or
    /// [`Explainer::read`].
    pub fn run(&self) -> Result<()> {
        self.context().block_on(self.run_async())
    }

    /// Submits what [`Explainer::record`] records; resolves to any error the submission raised.
    /// Work submitted later on the same queue (a readback, an app's render pass) sees the
    /// results.
    pub async fn run_async(&self) -> Result<()> {
        let ctx = self.forward.context();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.record(&mut encoder);
        ctx.submit_async("Grad-CAM", encoder).await
    }

    /// Submits the batch with the copies of its results for [`Explainer::read`] at the end of
    /// the same submission ([`Explainer::run_with_readback_async`], blocking on nothing but the
    /// submission). With two explainers taking batches in turn, reading one batch back then waits
    /// for that batch alone while the GPU works on the other's.
    pub fn run_with_readback(&mut self, what: Readback) -> Result<()> {
        let ctx = self.context().clone();
        ctx.block_on(self.run_with_readback_async(what))
    }

    /// [`Explainer::run_with_readback`] as a future.
    pub async fn run_with_readback_async(&mut self, what: Readback) -> Result<()> {
        let ctx = self.forward.context().clone();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.record(&mut encoder);
        self.record_readback(&mut encoder, what);
        let index = ctx.submit_indexed_async("Grad-CAM", encoder).await?;
        self.copied = Some((what, index));
        Ok(())
    }

    /// The buffers [`Explainer::read`] copies for `what`, with their bytes.
    fn readback_copies(&self, what: Readback) -> Vec<(&wgpu::Buffer, u64)> {
        let model = self.forward.model();
        let n = self.forward.batch() as u64;
        let cam_len = u64::from(self.cam_size() * self.cam_size());
        let grid_len = u64::from(self.grid_size.0 * self.grid_size.1);
        let mut copies: Vec<(&wgpu::Buffer, u64)> = vec![
            (
                self.forward.tensor(model.logits),
                n * u64::from(model.classes) * 4,
            ),
            (&self.targets, n * 4),
        ];
        if what.cam {
            copies.push((&self.cam, n * cam_len * 4));
        }
        if what.cam_grid {
            copies.push((&self.cam_grid, n * grid_len * 4));
        }
        if what.overlay && !self.forward.image_sizes().is_empty() {
            let total_pixels = u64::from(self.forward.shape().total_pixels);
            copies.push((&self.overlay, total_pixels * 4));
        }
        if let (Some(buffer), true) = (&self.guided, what.guided) {
            copies.push((buffer, n * cam_len * 2 * 4));
        }
        if let Some(metrics) = &self.metrics {
            copies.push(metrics.scores(self.forward.batch()));
        }
        copies
    }

    /// Records the copies of `what` into the staging buffer (grown to hold them).
    fn record_readback(&mut self, encoder: &mut wgpu::CommandEncoder, what: Readback) {
        let total: u64 = self.readback_copies(what).iter().map(|(_, b)| *b).sum();
        if total > self.staging.size() {
            let ctx = self.forward.context().clone();
            self.staging = ctx.staging("explain_readback", total.next_power_of_two());
        }
        let mut offset = 0;
        for (buffer, len) in self.readback_copies(what) {
            encoder.copy_buffer_to_buffer(buffer, 0, &self.staging, offset, len);
            offset += len;
        }
    }

    /// Submits the backward pass and the CAM again, on the forward activations now on the GPU
    /// ([`Explainer::run_backward_async`], blocking).
    pub fn run_backward(&self) -> Result<()> {
        self.context().block_on(self.run_backward_async())
    }

    /// Submits the backward pass and the CAM again, on the forward activations now on the GPU:
    /// for callers that edit them (the parity tests set activations that sit on a float32 tie to
    /// the reference's side before comparing input gradients).
    pub async fn run_backward_async(&self) -> Result<()> {
        if self.metrics.is_some() || self.smooth.is_some() || self.aug.is_some() {
            // Their last forward pass ran on a perturbed, noisy or other input, or (aug-smooth)
            // the CAM is a mean the backward pass alone would not make.
            return Err(Error::InvalidRequest(
                "the backward pass alone needs the input's own activations and a single CAM, \
                 which the metrics', smooth-gradcam++'s and aug-smooth's passes replace"
                    .into(),
            ));
        }
        let ctx = self.forward.context();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.steps.record(ctx, &mut encoder);
        ctx.submit_async("backward pass", encoder).await
    }

    /// Runs the batch timed per stage (`preprocess`, `forward`, `backward`, `cam`, `overlay`) and
    /// waits; the durations are read from `profiler` afterwards (empty without timestamps).
    pub fn run_profiled(&self, profiler: &mut Profiler) -> Result<Vec<(String, f64)>> {
        self.context().block_on(self.run_profiled_async(profiler))
    }

    /// [`Explainer::run_profiled`] as a future.
    pub async fn run_profiled_async(&self, profiler: &mut Profiler) -> Result<Vec<(String, f64)>> {
        let ctx = self.forward.context();
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.record_profiled(&mut encoder, profiler, false);
        profiler.resolve(&mut encoder);
        ctx.submit_async("Grad-CAM", encoder).await?;
        profiler.read_async(ctx).await
    }

    /// Uploads, runs and reads back a batch in one call ([`Explainer::explain_async`],
    /// blocking).
    pub fn explain(
        &mut self,
        images: &[&image::RgbImage],
        targets: &[Target],
        what: Readback,
    ) -> Result<Vec<Explanation>> {
        let ctx = self.context().clone();
        ctx.block_on(self.explain_async(images, targets, what))
    }

    /// Uploads, runs and reads back a batch; never blocks (see [`GpuContext::block_on`]).
    pub async fn explain_async(
        &mut self,
        images: &[&image::RgbImage],
        targets: &[Target],
        what: Readback,
    ) -> Result<Vec<Explanation>> {
        self.upload(images, targets)?;
        self.run_async().await?;
        self.read_async(what).await
    }

    /// The normalized CAMs of the batch: f32 `[batch, S, S]`, S = [`Explainer::cam_size`].
    pub fn cam_buffer(&self) -> &wgpu::Buffer {
        &self.cam
    }

    /// The CAMs at the target layer's resolution (after ReLU, before normalization): f32
    /// `[batch, h, w]`.
    pub fn cam_grid_buffer(&self) -> &wgpu::Buffer {
        &self.cam_grid
    }

    /// The overlays: RGBA8 (`r | g << 8 | b << 16 | a << 24` in each u32), the batch's images
    /// one after another, each at its own size, row-major, each row padded to a multiple of 256
    /// bytes; [`Explainer::overlay_regions`] says where each lies.
    pub fn overlay_buffer(&self) -> &wgpu::Buffer {
        &self.overlay
    }

    /// Where each image of the current batch has its overlay in [`Explainer::overlay_buffer`];
    /// empty when the batch was uploaded as tensors ([`Explainer::upload_input`]), which has no
    /// overlay.
    pub fn overlay_regions(&self) -> Vec<OverlayRegion> {
        OverlayRegion::of_batch(self.forward.image_sizes())
    }

    /// A texture for image `image`'s overlay: its size, in `format` (`Rgba8Unorm`, or
    /// `Rgba8UnormSrgb` to sample it as linear light), usable as a copy destination and source
    /// and for binding. Made once and filled per batch by
    /// [`Explainer::copy_overlay_to_texture`].
    pub fn create_overlay_texture(
        &self,
        image: usize,
        format: wgpu::TextureFormat,
    ) -> Result<wgpu::Texture> {
        let region = self.overlay_region(image)?;
        check_overlay_format(format)?;
        let largest = self.context().device.limits().max_texture_dimension_2d;
        if region.width > largest || region.height > largest {
            return Err(Error::InvalidRequest(format!(
                "the overlay of image {image} is {}x{}, larger than this adapter's textures \
                 ({largest} pixels a side)",
                region.width, region.height
            )));
        }
        Ok(self
            .context()
            .device
            .create_texture(&wgpu::TextureDescriptor {
                label: Some("overlay"),
                size: region.extent(),
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format,
                usage: wgpu::TextureUsages::COPY_DST
                    | wgpu::TextureUsages::COPY_SRC
                    | wgpu::TextureUsages::TEXTURE_BINDING,
                view_formats: &[],
            }))
    }

    /// Records the copy of image `image`'s overlay into the top-left corner of `texture`
    /// (RGBA8, at least the image's size, with `COPY_DST`): after [`Explainer::record`] in the
    /// same encoder, or after [`Explainer::run`]. The pixels never leave the GPU.
    pub fn copy_overlay_to_texture(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        image: usize,
        texture: &wgpu::Texture,
    ) -> Result<()> {
        let region = self.overlay_region(image)?;
        check_overlay_format(texture.format())?;
        if texture.width() < region.width || texture.height() < region.height {
            return Err(Error::InvalidRequest(format!(
                "the overlay of image {image} is {}x{}, larger than the texture ({}x{})",
                region.width,
                region.height,
                texture.width(),
                texture.height()
            )));
        }
        if texture.dimension() != wgpu::TextureDimension::D2 || texture.sample_count() != 1 {
            return Err(Error::InvalidRequest(
                "the overlay's texture must be 2D with one sample per pixel".into(),
            ));
        }
        if !texture.usage().contains(wgpu::TextureUsages::COPY_DST) {
            return Err(Error::InvalidRequest(
                "the overlay's texture needs TextureUsages::COPY_DST".into(),
            ));
        }
        encoder.copy_buffer_to_texture(
            region.copy_source(&self.overlay),
            texture.as_image_copy(),
            region.extent(),
        );
        Ok(())
    }

    /// Image `image`'s [`OverlayRegion`], or an error naming what is missing.
    fn overlay_region(&self, image: usize) -> Result<OverlayRegion> {
        let sizes = self.forward.image_sizes();
        if sizes.is_empty() {
            return Err(Error::InvalidRequest(
                "the batch was uploaded as tensors and has no overlay".into(),
            ));
        }
        self.overlay_regions().get(image).copied().ok_or_else(|| {
            Error::InvalidRequest(format!(
                "image {image} is not in the batch ({} images)",
                sizes.len()
            ))
        })
    }

    /// The class each image was explained for: u32 `[batch]`.
    pub fn target_buffer(&self) -> &wgpu::Buffer {
        &self.targets
    }

    /// The gradient of the target logit with respect to the target layer: f32 NHWC; `None` when
    /// no backward pass runs (a method that needs no gradient, without
    /// [`ExplainOptions::input_gradient`]).
    pub fn target_gradient_buffer(&self) -> Option<&wgpu::Buffer> {
        self.plan
            .slot_of_tensor(self.plan.targets[0])
            .and_then(|slot| self.grads.get(slot))
    }

    /// With [`ExplainOptions::input_gradient`], the gradient of the target logit with respect to
    /// the normalised input: f32 NHWC `[batch, S, S, 3]`.
    pub fn input_gradient_buffer(&self) -> Option<&wgpu::Buffer> {
        let input = self.forward.model().input;
        self.options
            .input_gradient
            .then(|| self.plan.slot_of_tensor(input))
            .flatten()
            .and_then(|slot| self.grads.get(slot))
    }

    /// Reads the batch's results back with one map: logits and classes always, the rest as
    /// `what` asks ([`Explainer::read_async`], blocking).
    pub fn read(&mut self, what: Readback) -> Result<Vec<Explanation>> {
        let ctx = self.context().clone();
        // After run_with_readback, wait for that submission alone.
        let index = match &self.copied {
            Some((copied, index)) if *copied == what => Some(index.clone()),
            _ => None,
        };
        ctx.block_on_submission(index, self.read_async(what))
    }

    /// Reads the batch's results back with one map once the GPU is done with them.
    pub async fn read_async(&mut self, what: Readback) -> Result<Vec<Explanation>> {
        let ctx = self.forward.context().clone();
        // Shared, not copied: each result names its class from it.
        let shared_model = self.forward.gpu_model().model.clone();
        let labels = &shared_model.labels;
        let model = self.forward.model();
        let n = self.forward.batch() as u64;
        let classes = u64::from(model.classes);
        let grid_len = u64::from(self.grid_size.0 * self.grid_size.1);
        let cam_len = u64::from(self.cam_size() * self.cam_size());
        let sizes: Vec<(u32, u32)> = self.forward.image_sizes().to_vec();
        let overlay = what.overlay && !sizes.is_empty();
        let total_pixels = u64::from(self.forward.shape().total_pixels);

        let side = self.cam_size();
        let guided_len = cam_len * 2 * 4;
        let guided = self.guided.is_some() && what.guided;
        // The copies, unless run_with_readback made them with the batch.
        if !matches!(&self.copied, Some((copied, _)) if *copied == what) {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            self.record_readback(&mut encoder, what);
            ctx.submit_async("Grad-CAM readback", encoder).await?;
        }
        self.copied = None;
        let total: u64 = self.readback_copies(what).iter().map(|(_, b)| *b).sum();
        // The mapped bytes are split straight into per-image results: each byte copied once.
        ctx.read_staging_async("Grad-CAM readback", &self.staging, total, |raw| {
            let mut at = 0usize;
            let mut take = |len: u64| {
                let s = &raw[at..at + len as usize];
                at += len as usize;
                s
            };
            let logits: Vec<f32> = bytemuck::pod_collect_to_vec(take(n * classes * 4));
            let targets: Vec<u32> = bytemuck::pod_collect_to_vec(take(n * 4));
            let cams: Option<Vec<f32>> = what
                .cam
                .then(|| bytemuck::pod_collect_to_vec(take(n * cam_len * 4)));
            let grids: Option<Vec<f32>> = what
                .cam_grid
                .then(|| bytemuck::pod_collect_to_vec(take(n * grid_len * 4)));
            let overlays: Option<&[u8]> = overlay.then(|| take(total_pixels * 4));
            let pictures: Option<&[u8]> = guided.then(|| take(n * guided_len));
            let scores: Option<Vec<f32>> = self.metrics.as_ref().map(|m| {
                let (_, bytes) = m.scores(n as u32);
                bytemuck::pod_collect_to_vec(take(bytes))
            });
            // RGBA8 → RGB, one picture of `[batch, 2]`.
            let picture = |i: usize, which: usize| {
                let at = (i * 2 + which) * cam_len as usize * 4;
                pictures.and_then(|p| {
                    let rgb: Vec<u8> = p[at..at + cam_len as usize * 4]
                        .chunks_exact(4)
                        .flat_map(|px| [px[0], px[1], px[2]])
                        .collect();
                    image::RgbImage::from_raw(side, side, rgb)
                })
            };

            let mut overlays = match overlays {
                Some(o) => split_overlays(o, &OverlayRegion::of_batch(&sizes)),
                None => Vec::new(),
            }
            .into_iter();
            let mut out = Vec::with_capacity(n as usize);
            for i in 0..n as usize {
                let overlay = overlays.next().flatten();
                let c = classes as usize;
                let image_logits = &logits[i * c..(i + 1) * c];
                let class = targets[i];
                out.push(Explanation {
                    class,
                    label: labels.get(class as usize).to_string(),
                    score: crate::softmax(image_logits)
                        .get(class as usize)
                        .copied()
                        .unwrap_or(0.0),
                    logits: image_logits.to_vec(),
                    cam: cams
                        .as_ref()
                        .map(|v| v[i * cam_len as usize..(i + 1) * cam_len as usize].to_vec()),
                    cam_grid: grids
                        .as_ref()
                        .map(|v| v[i * grid_len as usize..(i + 1) * grid_len as usize].to_vec()),
                    overlay,
                    guided: picture(i, 0),
                    guided_gradcam: picture(i, 1),
                    metrics: match (&self.metrics, &scores) {
                        (Some(m), Some(s)) => m.values(&s[i * m.slots()..(i + 1) * m.slots()]),
                        _ => Vec::new(),
                    },
                });
            }
            out
        })
        .await
    }

    /// Reads the target layer's gradient of the current batch (NHWC), for tests and debugging.
    pub fn read_target_gradient(&self) -> Result<Vec<f32>> {
        let model = self.forward.model();
        let n = model.tensors[self.plan.targets[0]].len() * self.forward.batch() as usize;
        self.forward.context().read_f32(
            self.target_gradient_buffer()
                .ok_or_else(|| Error::InvalidRequest("this method runs no backward pass".into()))?,
            n,
        )
    }

    /// Reads the guided-backpropagation gradient at the normalised input of the current batch
    /// (NHWC), when [`ExplainOptions::guided`] asked for it.
    pub fn read_guided_gradient(&self) -> Result<Vec<f32>> {
        let model = self.forward.model();
        let buffer = self.guided_gradient.as_ref().ok_or_else(|| {
            Error::InvalidRequest("the explainer was made without `guided`".into())
        })?;
        let n = model.tensors[model.input].len() * self.forward.batch() as usize;
        self.forward.context().read_f32(buffer, n)
    }

    /// Reads the input gradient of the current batch (NHWC), when
    /// [`ExplainOptions::input_gradient`] asked for it.
    pub fn read_input_gradient(&self) -> Result<Vec<f32>> {
        let model = self.forward.model();
        let buffer = self.input_gradient_buffer().ok_or_else(|| {
            Error::InvalidRequest("the explainer was made without `input_gradient`".into())
        })?;
        let n = model.tensors[model.input].len() * self.forward.batch() as usize;
        self.forward.context().read_f32(buffer, n)
    }

    /// The GPU context.
    pub fn context(&self) -> &Arc<GpuContext> {
        self.forward.context()
    }
}

/// Appends a backward pass by `plan` into `grads`, seeded with the gradient of each image's
/// target logit (`targets`).
fn push_backward(
    ctx: &GpuContext,
    forward: &Forward,
    plan: &BackwardPlan,
    grads: &[wgpu::Buffer],
    targets: &wgpu::Buffer,
    steps: &mut Steps,
    mut tap: Option<&mut (dyn GradientTap + 'static)>,
) -> Result<()> {
    let gpu_model = forward.gpu_model();
    let model = &gpu_model.model;
    let head = &model.tensors[plan.pooled_input];
    let (head_pixels, head_channels) = (head.height * head.width, head.channels);
    let fc_weight = gpu_model
        .classifier_weight()
        .ok_or_else(|| Error::UnsupportedModel {
            path: model.source.clone(),
            reason: "the classifier's weights exceed one GPU binding".into(),
        })?;
    steps.push(
        ctx,
        launch::LogitGrad {
            targets,
            fc_weight,
            grad: &grads[plan.slot_of[0]],
        },
        move |s| LogitGradParams {
            batch: s.images,
            pixels: head_pixels,
            channels: head_channels,
            _pad: 0,
        },
    );
    let mut taps = plan.bias_taps.iter().peekable();
    for done in 0..=plan.steps.len() {
        if done > 0 {
            push_grad_step(ctx, forward, plan, grads, steps, &plan.steps[done - 1])?;
        }
        while let Some(at) = taps.next_if(|t| t.after == done) {
            if let Some(tap) = tap.as_deref_mut() {
                tap.record(ctx, steps, forward, at, &grads[plan.slot_of[at.value]])?;
            }
        }
    }
    Ok(())
}

/// Appends guided backpropagation to the input and pytorch-grad-cam's `deprocess_image` of the
/// guided gradient and of it times `cam`, into a new buffer of RGBA8 pictures `[batch, 2, S·S]`.
/// Returns that buffer, the guided gradient's, and the bytes of the buffers only these steps
/// hold.
fn push_guided(
    ctx: &GpuContext,
    forward: &Forward,
    targets: &wgpu::Buffer,
    cam: &wgpu::Buffer,
    steps: &mut Steps,
) -> Result<(wgpu::Buffer, wgpu::Buffer, u64)> {
    let model = forward.model();
    let input = model.input;
    let plan = BackwardPlan::new(model, &[input])?.guided();
    let cap = u64::from(forward.capacity());
    let grads = (0..plan.slots)
        .map(|i| ctx.storage(&format!("guided_grad.{i}"), plan.slot_len as u64 * 4 * cap))
        .collect::<Result<Vec<_>>>()?;
    push_backward(ctx, forward, &plan, &grads, targets, steps, None)?;
    let gradient = plan
        .slot_of_tensor(input)
        .map(|slot| &grads[slot])
        .ok_or_else(|| Error::InvalidRequest("the guided plan has no input gradient".into()))?;
    let pixels = model.input_size * model.input_size;
    let stats = ctx.storage("guided_stats", 2 * 8 * cap)?;
    let images = ctx.storage("guided_images", 2 * u64::from(pixels) * 4 * cap)?;
    let params = move |s: &BatchShape| GuidedStatsParams {
        batch: s.images,
        pixels,
        _pad: [0; 2],
    };
    steps.push(
        ctx,
        launch::GuidedStats {
            gradient,
            cam,
            stats: &stats,
        },
        params,
    );
    steps.push(
        ctx,
        launch::GuidedImage {
            gradient,
            cam,
            stats: &stats,
            images: &images,
        },
        params,
    );
    let bytes = grads.iter().map(wgpu::Buffer::size).sum::<u64>() + stats.size();
    Ok((images, gradient.clone(), bytes))
}

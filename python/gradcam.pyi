"""GPU Grad-CAM: class activation maps equal to pytorch-grad-cam's, on any GPU through wgpu."""
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

ImageLike = Union[str, "os.PathLike[str]", npt.NDArray[np.uint8], "PIL.Image.Image"]  # noqa: F821

class Result:
    """What Engine.explain returns, for the images explained, in input order."""

    cam: npt.NDArray[np.float32]
    """[N, S, S]: the CAMs at the model's input size, as pytorch-grad-cam returns them."""
    overlay: List[npt.NDArray[np.uint8]]
    """Per image, [h, w, 3]: the heatmap blended over the image at its own size."""
    classes: List[int]
    """The class explained per image."""
    scores: List[float]
    """Its softmax probability."""
    labels: List[str]
    """Its name."""
    logits: npt.NDArray[np.float32]
    """[N, classes]."""
    indices: List[int]
    """Position of each result in the images given."""
    errors: List[Tuple[int, str]]
    """With on_error="skip": (position, message) of each image that could not be explained."""
    boxes: Optional[List[Optional[Tuple[int, int, int, int]]]]
    """With boxes=True, per image: (x0, y0, x1, y1), pixels x0..x1 x y0..y1 of the image (ends
    exclusive), or None where the CAM has no positive value. None without boxes."""
    guided: Optional[List[npt.NDArray[np.uint8]]]
    """With guided=True, per image, [S, S, 3]: guided backpropagation as deprocess_image makes it
    a picture. None without guided."""
    guided_gradcam: Optional[List[npt.NDArray[np.uint8]]]
    """With guided=True, per image, [S, S, 3]: Guided Grad-CAM. None without guided."""
    def __len__(self) -> int: ...

class Engine:
    """A GPU Grad-CAM engine on one adapter with one model.

    Engine() uses the built-in EfficientNet-Lite0 (ImageNet); Engine(weights="resnet50.safetensors")
    loads a state dict saved with safetensors of an architecture the engine knows (the README
    lists them), Engine(weights="model.onnx") an ONNX file, and Engine(model=module) a torch
    module: through its state dict when a builder recognises it, otherwise through an ONNX export
    made in memory; layers keep their module paths ("features.denseblock4"). arch names the
    architecture instead of recognising it. input_size, mean and std override the model's input
    side and its normalisation per RGB channel after x/255. adapter picks a GPU by part of its name ("nvidia", "llvmpipe"). batch is the
    images per GPU batch (None: up to 256 on a GPU, 16 on a CPU adapter); in_flight the GPU
    batches in flight when a call spans several (None: 2 on a GPU, 1 on a CPU adapter). One engine
    explains one batch at a time: give each thread (or Ray actor) its own.
    """

    def __init__(
        self,
        weights: Optional[Union[str, "os.PathLike[str]"]] = None,
        adapter: Optional[str] = None,
        batch: Optional[int] = None,
        labels: Optional[Union[str, "os.PathLike[str]"]] = None,
        in_flight: Optional[int] = None,
        *,
        model: Optional["torch.nn.Module"] = None,  # noqa: F821
        arch: Optional[str] = None,
        input_size: Optional[int] = None,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
    ) -> None: ...
    @property
    def adapter(self) -> str: ...
    @property
    def input_size(self) -> int: ...
    @property
    def normalization(self) -> Tuple[List[float], List[float]]:
        """(mean, std) per RGB channel after x/255."""
        ...
    @property
    def architecture(self) -> str: ...
    @property
    def layers(self) -> List[str]: ...
    @property
    def default_layer(self) -> str: ...
    @property
    def labels(self) -> List[str]: ...
    @property
    def batch(self) -> int: ...
    def explain(
        self,
        images: Sequence[ImageLike],
        method: str = "gradcam",
        layer: Optional[str] = None,
        targets: Optional[Sequence[int]] = None,
        colormap: str = "jet",
        image_weight: float = 0.5,
        on_error: str = "raise",
        boxes: bool = False,
        box_threshold: float = 0.15,
        draw_boxes: bool = True,
        guided: bool = False,
        eigen_smooth: bool = False,
        aug_smooth: bool = False,
        samples: int = 4,
        noise_std: float = 0.3,
        seed: int = 0,
    ) -> Result:
        """Explain images (paths, PIL images or uint8 arrays [h, w, 3], any sizes).

        method and layer take the CLI's names (layer None: the model's default); targets gives
        one class per image (None: each image's predicted class). A bad image raises ValueError
        naming its index, or with on_error="skip" is listed in Result.errors. boxes adds each
        image's localisation box (the largest region of the CAM at the image's size at least
        box_threshold of its maximum) to Result.boxes and draws it on the overlay, as the CLI's
        --boxes does (draw_boxes=False leaves the overlay plain). guided adds guided backpropagation and Guided Grad-CAM pictures.
        eigen_smooth and aug_smooth are pytorch-grad-cam's options. samples, noise_std and seed are
        method "smooth-gradcam++"'s noisy copies of the input (torch-cam's num_samples and std).
        The GIL is released while the GPU works.
        """
        ...
    def evaluate(
        self,
        images: Sequence[ImageLike],
        methods: Sequence[str] = ("gradcam",),
        metrics: Optional[Sequence[str]] = None,
        layer: Optional[str] = None,
        targets: Optional[Sequence[int]] = None,
        target_score: str = "softmax",
        steps: int = 20,
        samples: int = 4,
        noise_std: float = 0.3,
        seed: int = 0,
    ) -> Dict[str, Dict[str, npt.NDArray[np.float32]]]:
        """Faithfulness metrics of each method's explanations, computed on the GPU with them (the
        CLI's `gradcam evaluate`): {method: {metric: float32 [N]}}, per image in input order.
        methods and metrics take the CLI's names (metrics=None: the five "confidence" metrics;
        "all" adds deletion-auc and insertion-auc, of `steps` steps); target_score is "softmax"
        (the class's probability) or "logit". A bad image raises ValueError naming its index. The
        GIL is released while the GPU works.
        """
        ...

"""Reference CAMs of every method the engine ships, from pytorch-grad-cam 1.5.7, for
tests/parity_methods.rs.

    python tools/make_method_fixtures.py [ARCH ...]      (default: all)
    python tools/make_method_fixtures.py --only M1,M2 [ARCH ...]   (only these methods' maps,
                                                          merged into the existing files)
    python tools/make_method_fixtures.py --only smooth [ARCH ...]  (only the eigen_smooth and
                                                          aug_smooth maps)
    python tools/make_method_fixtures.py --scan          (how well conditioned each Lite0 block is)

Writes tests/fixtures/methods/<arch>[.probe|.smooth].safetensors (see PARTS) holding, for
examples/images/chelsea.png resized to the model's side S (PIL bicubic, as tools/make_arch_fixtures.py):
    image              u8  [S, S, 3]
    <method>.<layer>.<target>
                       u16 [S, S]   the method's CAM, in [0, 1], stored as round(65535 * cam) (the
                                    test divides by 65535: at most 7.7e-6 from the float32 map,
                                    half the file of float32) (pytorch-grad-cam's class of that name,
                                    `ClassifierOutputTarget`), <target> `pred` (the predicted
                                    class, no target given) or `c<N>` (class N: the second best)
    <...>.neg          u16 [S, S]   for the principal-component methods (eigencam, eigengradcam):
                                    the map with the projection's sign the other way (LAPACK's
                                    sign is arbitrary)
    smooth/<method>.<layer>.<target>, smooth/<...>.neg
                       u16 [S, S]   the method with eigen_smooth=True, for either sign of the
                                    principal component
    aug/<method>.<layer>.<target>
                       u16 [S, S]   the method with aug_smooth=True (its maps are means of six
                                    normalised maps, in [0, 1] too)
    <...>.f64          u16 [S, S]   the same computed in float64, where it differs from the
                                    float32 one by more than 1e-5 (an activation on the edge of
                                    float32 rounding flipped in the reference's float32 run)
  metadata: arch, weights (the fixture under tests/fixtures/arch/ whose manifest and seed give
  the weights), classes (JSON: the predicted and the explicit class).
The weights are those of tools/make_arch_fixtures.py: the shipped EfficientNet-Lite0, and seeded
torchvision ResNet-50.
"""
import copy
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_arch_fixtures import ARCHS, SEED, model_input, module  # noqa: E402
from seeded_weights import fill  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "methods")

# The engine's method names and pytorch-grad-cam's classes.
METHODS = {
    "gradcam": "GradCAM",
    "hirescam": "HiResCAM",
    "gradcam-elementwise": "GradCAMElementWise",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "fem": "FEM",
    "scorecam": "ScoreCAM",
    "ablationcam": "AblationCAM",
    "fullgrad": "FullGrad",
    # No pytorch-grad-cam class: computed from torch.autograd.grad (see `saliency`).
    "saliency": None,
}

# Methods whose map is a principal component: its sign is LAPACK's choice, so the fixture holds
# the reference's map for either sign (`.neg`: the projection negated before the ReLU).
EIGEN = {"eigencam": "eigen_cam", "eigengradcam": "eigen_grad_cam"}

# Methods that read no gradient give every class the same map: explained for the predicted one.
CLASS_FREE = {"eigencam", "fem"}

# arch: the target layers explained. Lite0's inner layer is blocks.8, the blocks.N where the
# reference is best conditioned: `--scan` perturbs the layer's activations A or gradient G by 1e-6
# relative noise and reports how far GradCAM++'s and XGradCAM's CAMs move. At blocks.8 they move
# by about 1e-5; at most other blocks by 2e-5 to 5e-3 (GradCAM++'s denominator
# 2G^2 + S_c G^3 + 1e-6 nears 0 where S_c G nears -2, XGradCAM's S_c nearly cancels), so there no
# independent float32 computation, the reference's own float64 run included, is within 1e-4.
LAYERS = {
    "efficientnet-lite0": ["head", "blocks.8"],
    "resnet50": ["layer4"],
    # The maps at the input only (saliency, FullGrad): FullGrad counts the BatchNorms that
    # follow no conv (each dense layer's norm1, the transitions', norm5).
    "densenet121": [],
}

# The methods that run one forward pass per channel, where they are checked: the reference takes
# ~150 s per image and class at a 1,280- or 2,048-channel layer on 2 cores, and so would the
# engine's Score-CAM on lavapipe (one whole network per channel). Score-CAM at Lite0's blocks.8
# (112 channels); Ablation-CAM at Lite0's head (after a ReLU6: ablated to 0) and blocks.8 (signed:
# the reference's minimum - k * 1e7 ablation value), and ResNet-50's layer4 for its class.
PROBE_LAYERS = {
    "scorecam": {"efficientnet-lite0": [("blocks.8", True)]},
    "ablationcam": {
        "efficientnet-lite0": [("head", True), ("blocks.8", True)],
        "resnet50": [("layer4", False)],
    },
}

# eigen_smooth: (method, layer, explicit class too) per arch, for the methods whose reference
# uses it (base_cam.get_cam_image, and HiResCAM's, GradCAMElementWise's, LayerCAM's and
# FullGrad's own).
SMOOTH = {
    "efficientnet-lite0": [
        ("gradcam", "head", True),
        ("gradcam++", "head", False),
        ("xgradcam", "head", False),
        ("hirescam", "head", False),
        ("gradcam-elementwise", "head", False),
        ("layercam", "head", False),
        # Score-CAM's eigen_smooth is Ablation-CAM's (the probe weights through the same
        # projection), checked at the head for a twentieth of the cost.
        ("ablationcam", "head", False),
        ("fullgrad", "input", True),
    ],
    "resnet50": [
        ("gradcam", "layer4", False),
        ("layercam", "layer4", False),
        ("fullgrad", "input", False),
    ],
}
# aug_smooth: (method, layer, explicit class too) per arch. Not GradCAM++ at Lite0's blocks.8:
# on the flipped and scaled variants the reference's own float32 and float64 maps there differ by
# 7.1e-5 (the conditioning `--scan` measures for the plain input), and this engine's by 1.1e-4.
AUG = {
    "efficientnet-lite0": [("gradcam", "head", True), ("gradcam++", "head", False)],
    "resnet50": [("gradcam", "layer4", False)],
}
# The modules whose get_2d_projection eigen_smooth calls.
SMOOTH_MODULES = ["base_cam", "hirescam", "grad_cam_elementwise", "layer_cam", "fullgrad_cam"]

# Ablation-CAM's weights are a float32 difference of two forward passes by definition (the
# reference's own float64 run differs by ~4e-4): no float64 variant.
NO_F64 = {"ablationcam"}


def saliency(model, x, cls):
    """The saliency map: max over channels of |d logit / d x|, normalised as pytorch-grad-cam
    normalises a one-layer map (scale_cam_image, ReLU, mean over the one layer, scale_cam_image)."""
    from pytorch_grad_cam.utils.image import scale_cam_image

    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    c = int(logits[0].argmax()) if cls is None else cls
    (g,) = torch.autograd.grad(logits[0, c], xg)
    m = g.abs().amax(dim=1).detach().numpy()
    side = m.shape[-1]
    m = scale_cam_image(np.maximum(m, 0), (side, side))[:, None]
    return scale_cam_image(np.mean(np.maximum(m, 0), axis=1))[0]


def cam_of(method, model, layer, x, cls, negate=False, smooth=False, aug=False):
    import importlib

    import pytorch_grad_cam

    if method == "saliency":
        return saliency(model, x, cls)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    klass = getattr(pytorch_grad_cam, METHODS[method])
    targets = None if cls is None else [ClassifierOutputTarget(cls)]
    owners = []
    if negate:
        names = SMOOTH_MODULES if smooth else [EIGEN[method]]
        owners = [importlib.import_module(f"pytorch_grad_cam.{n}") for n in names]
        original = owners[0].get_2d_projection
        for owner in owners:
            owner.get_2d_projection = lambda a: -original(a)
    extra = {}
    if method == "ablationcam":
        from pytorch_grad_cam.ablation_layer import AblationLayer

        class BlockAblationLayer(AblationLayer):
            """AblationLayer as the reference defines it, also accepting the keyword arguments
            (`drop_connect_rate`) that the Lite model passes to a block it replaces."""

            def __call__(self, x, **_):
                return super().__call__(x)

        extra["ablation_layer"] = BlockAblationLayer()
    # FullGrad takes every bias layer itself (and warns when given target layers).
    layers = [] if method == "fullgrad" else [module(model, layer)]
    try:
        with klass(model=model, target_layers=layers, **extra) as cam:
            return cam(input_tensor=x, targets=targets, eigen_smooth=smooth, aug_smooth=aug)[0]
    finally:
        for owner in owners:
            owner.get_2d_projection = original


def scan():
    """How far GradCAM++ and XGradCAM move at each Lite0 block under 1e-6 relative noise."""
    from make_fixtures import layer_module
    from pytorch_grad_cam.utils.image import scale_cam_image

    make, side, (mean, std), _ = ARCHS["efficientnet-lite0"]
    model = make().eval()
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    image, x = model_input(photo, side, mean, std)

    def maps(a, g):
        s = a.sum(axis=(2, 3))[:, :, None, None]
        g2 = g * g
        alpha = np.where(g != 0, g2 / (2 * g2 + s * g2 * g + 1e-6), 0)
        for w in ((np.maximum(g, 0) * alpha).sum(axis=(2, 3)), (g * a / (s + 1e-7)).sum(axis=(2, 3))):
            cam = np.maximum((w[:, :, None, None] * a).sum(axis=1), 0)
            yield scale_cam_image(cam, (side, side))[0]

    rng = np.random.default_rng(0)
    noisy = lambda v: (v * (1 + rng.normal(0, 1e-6, v.shape))).astype(np.float32)  # noqa: E731
    for b in range(len(model._blocks)):
        worst = 0.0
        for cls in (None, 282):
            saved = {}

            def hook(_, __, out):
                saved["a"] = out.detach().numpy().copy()
                out.register_hook(lambda g: saved.__setitem__("g", g.detach().numpy().copy()))

            handle = layer_module(model, f"blocks.{b}").register_forward_hook(hook)
            model.zero_grad()
            logits = model(x)
            logits[0, int(logits.argmax()) if cls is None else cls].backward()
            handle.remove()
            a, g = saved["a"], saved["g"]
            for base, by_a, by_g in zip(maps(a, g), maps(noisy(a), g), maps(a, noisy(g))):
                worst = max(worst, np.abs(by_a - base).max(), np.abs(by_g - base).max())
        print(f"blocks.{b}: GradCAM++ / XGradCAM move by up to {worst:.1e}")


def quantized(cam):
    """A CAM in [0, 1] as round(65535 * cam), u16."""
    return np.round(np.clip(cam, 0, 1) * 65535).astype(np.uint16)


# The files of an arch's fixture: <arch>.safetensors (the methods from one forward and backward
# pass), <arch>.probe.safetensors (Score-CAM, Ablation-CAM), <arch>.smooth.safetensors
# (eigen_smooth, aug_smooth).
PARTS = ["", "probe", "smooth"]


def part_of(key):
    """The part of the fixture that holds `key`."""
    if key.startswith(("smooth/", "aug/")):
        return "smooth"
    return "probe" if key.split(".")[0] in ("scorecam", "ablationcam") else ""


def part_path(name, part):
    return os.path.join(OUT, f"{name}{'.' + part if part else ''}.safetensors")


def plan(method, name):
    """(layer, classes) pairs of `method` on `name`; classes None = predicted only."""
    if method in ("saliency", "fullgrad"):
        # A map at the input (FullGrad: every bias layer and the input): no target layer.
        return [("input", True)]
    if method in PROBE_LAYERS:
        return PROBE_LAYERS[method].get(name, [])
    return [(layer, method not in CLASS_FREE) for layer in LAYERS[name]]


def main(names, only=None):
    from safetensors.numpy import load_file

    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    for name in names:
        make, side, (mean, std), _ = ARCHS[name]
        shipped = name == "efficientnet-lite0"
        model = (make() if shipped else fill(make(), SEED)).eval()
        m64 = copy.deepcopy(model).double()
        image, x = model_input(photo, side, mean, std)
        with torch.no_grad():
            logits = model(x)[0]
        order = torch.argsort(logits, descending=True)
        predicted, other = int(order[0]), int(order[1])
        out = {"image": image}
        if only:
            kept = [kv for part in PARTS for kv in load_file(part_path(name, part)).items()]
            if only == ["smooth"]:
                out = {k: v for k, v in kept if not k.startswith(("smooth/", "aug/"))}
            else:
                out = {k: v for k, v in kept if k.split(".")[0] not in only}
        if only == ["smooth"] or not only:
            for method, layer, both in SMOOTH.get(name, []):
                for cls in (None, other) if both else (None,):
                    key = f"smooth/{method}.{layer}." + ("pred" if cls is None else f"c{cls}")
                    out[key] = quantized(cam_of(method, model, layer, x, cls, smooth=True))
                    out[key + ".neg"] = quantized(
                        cam_of(method, model, layer, x, cls, negate=True, smooth=True)
                    )
            for method, layer, both in AUG.get(name, []):
                for cls in (None, other) if both else (None,):
                    key = f"aug/{method}.{layer}." + ("pred" if cls is None else f"c{cls}")
                    result = cam_of(method, model, layer, x, cls, aug=True)
                    out[key] = quantized(result)
                    # The flipped and scaled variants meet their own float32 edges.
                    exact = cam_of(method, m64, layer, x.double(), cls, aug=True)
                    d = np.abs(exact - result).max()
                    if d > 1e-5:
                        out[key + ".f64"] = quantized(exact)
                        print(f"  {key}: float32 and float64 differ by {d:.1e}")
        for method in [] if only == ["smooth"] else only or METHODS:
            # ResNet-50's input gradient goes through ReLU and max-pool ties that any two float32
            # runs may take either way: tests/parity_methods.rs pins the arch fixture's `flips`
            # for the maps made from the input gradient (saliency, FullGrad), as
            # tests/parity_arch.rs does for the gradient itself.
            for layer, both in plan(method, name):
                for cls in (None, other) if both else (None,):
                    key = f"{method}.{layer}." + ("pred" if cls is None else f"c{cls}")
                    result = cam_of(method, model, layer, x, cls)
                    out[key] = quantized(result)
                    if method in EIGEN:
                        out[key + ".neg"] = quantized(cam_of(method, model, layer, x, cls, True))
                        continue
                    if method in NO_F64:
                        continue
                    exact = cam_of(method, m64, layer, x.double(), cls)
                    d = np.abs(exact - result).max()
                    if d > 1e-5:
                        out[key + ".f64"] = quantized(exact)
                        print(f"  {key}: float32 and float64 differ by {d:.1e}")
        metadata = {
            "arch": name,
            "weights": f"arch/{name}",
            "classes": json.dumps([predicted, other]),
        }
        # Split in parts to keep each file small; the test reads them all.
        for part in PARTS:
            keys = {k: v for k, v in out.items() if part_of(k) == part or k == "image"}
            path = part_path(name, part)
            save_file(keys, path, metadata=metadata)
            print(f"{name}: predicted {predicted}, explicit {other} -> {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--scan"]:
        scan()
    elif sys.argv[1:2] == ["--only"]:
        main(sys.argv[3:] or list(LAYERS), sys.argv[2].split(","))
    else:
        main(sys.argv[1:] or list(LAYERS))

#!/usr/bin/env python3
"""Generate tests/fixtures/methods/torchcam.safetensors: the maps of the methods whose reference
is torch-cam (PyPI `torchcam`) rather than pytorch-grad-cam, on the shipped EfficientNet-Lite0 and
the seeded models of tools/make_arch_fixtures.py (the same weights, image and normalisation as
their arch fixtures).

Usage:
    pip install torch torchvision torchcam safetensors pillow numpy
    python3 tools/make_torchcam_fixtures.py

tests/fixtures/methods/torchcam.safetensors
    <arch>.cam.<layer>.<target>   f32 [h, w]   torchcam.methods.CAM(model, layer, fc)(class_idx)
                                               with normalized=True: Σ_c W[class, c] A_c, no ReLU,
                                               min-max normalised at the layer's resolution;
                                               <target> is `predicted` or the class index
    <arch>.smooth-gradcam++.<layer>.<target>
                                  f32 [h, w]   torchcam.methods.SmoothGradCAMpp(model, layer,
                                               num_samples=SAMPLES, std=STD)(class_idx), with
                                               the engine's noise (`noise`, seed SEED) in place
                                               of torch's sampler
    ....f64                                    the same in float64, where it differs by > 1e-5
  metadata: weights (the JSON map arch -> its arch fixture), classes (JSON map key -> class),
  noise (JSON {samples, std, seed}).
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
OUT = os.path.join(ROOT, "tests", "fixtures", "methods", "torchcam.safetensors")

# arch: (the layer the pool before the classifier reads, the classifier). DenseNet's
# `features.norm5` is overwritten in place by `F.relu` before the pool: torch-cam's hook keeps a
# view of it, as pytorch-grad-cam's does.
MODELS = {
    "efficientnet-lite0": ("head", "_fc"),
    "resnet18": ("layer4", "fc"),
    "densenet121": ("features.norm5", "classifier"),
}

# arch: the layers Smooth Grad-CAM++ is checked at.
SMOOTH_LAYERS = {"efficientnet-lite0": ["head"], "resnet18": ["layer4"]}
# Smooth Grad-CAM++'s noise: torch-cam's defaults, and a seed other than the engine's default.
SAMPLES, STD, SEED_NOISE = 4, 0.3, 7


def hash32(x):
    """Chris Wellons' lowbias32, on uint32 arrays (shaders/lib/random.wgsl `hash32`)."""
    x = np.asarray(x, dtype=np.uint32).copy()
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def noise(seed, sample, shape):
    """The engine's standard normal noise for one image of `shape` (C, H, W), sample `sample` of
    the stream `seed` (shaders/lib/random.wgsl `standard_normal`, keyed by the channel-first
    index), in float64."""
    index = np.arange(int(np.prod(shape)), dtype=np.uint32)

    def uniform(counter):
        h = hash32(np.uint32(seed) + hash32(np.uint32(sample) + hash32(counter)))
        return ((h >> np.uint32(9)).astype(np.float64) + 0.5) / 8388608.0

    u1 = uniform(np.uint32(2) * index)
    u2 = uniform(np.uint32(2) * index + np.uint32(1))
    return (np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)).reshape(shape)


class EngineNoise:
    """Stands in for torch-cam's `Normal(0, std)` sampler: sample m is the engine's sample m."""

    def __init__(self, std, seed, dtype):
        self.std, self.seed, self.dtype, self.drawn = std, seed, dtype, 0

    def sample(self, size):
        z = np.stack([noise(self.seed, self.drawn, tuple(size[1:]))] * size[0])
        self.drawn += 1
        return torch.from_numpy(self.std * z).to(self.dtype)


def torchcam_cam(model, layer, fc, x, cls):
    from torchcam.methods import CAM

    with CAM(model, target_layer=layer, fc_layer=fc, input_shape=tuple(x.shape[1:])) as extractor:
        with torch.no_grad():
            scores = model(x)
        return extractor(class_idx=int(cls), scores=scores, normalized=True)[0][0].numpy()


def torchcam_smooth_gradcampp(model, layer, x, cls):
    from torchcam.methods import SmoothGradCAMpp

    with SmoothGradCAMpp(
        model, target_layer=layer, num_samples=SAMPLES, std=STD, input_shape=tuple(x.shape[1:])
    ) as extractor:
        extractor._distrib = EngineNoise(STD, SEED_NOISE, x.dtype)
        model(x)
        cam = extractor(class_idx=int(cls), normalized=True)[0][0]
        assert extractor._distrib.drawn == SAMPLES
        return cam.detach().numpy()


def main():
    torch.set_num_threads(2)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    out, weights, classes = {}, {}, {}
    for arch, (layer, fc) in MODELS.items():
        make, side, (mean, std), _ = ARCHS[arch]
        model = make() if arch == "efficientnet-lite0" else fill(make(), SEED)
        model = model.eval()
        _, x = model_input(photo, side, mean, std)
        with torch.no_grad():
            logits = model(x)[0]
        order = torch.argsort(logits, descending=True).tolist()
        targets = [("predicted", order[0]), (str(order[1]), order[1])]
        for target, cls in targets:
            key = f"{arch}.cam.{layer}.{target}"
            cam = torchcam_cam(model, module(model, layer), getattr(model, fc), x, cls)
            out[key] = np.ascontiguousarray(cam, np.float32)
            classes[key] = cls
            print(f"{key}: class {cls}, {out[key].shape}")
        m64 = copy.deepcopy(model).double()
        for smooth_layer in SMOOTH_LAYERS.get(arch, []):
            for target, cls in targets:
                key = f"{arch}.smooth-gradcam++.{smooth_layer}.{target}"
                cam = torchcam_smooth_gradcampp(model, module(model, smooth_layer), x, cls)
                out[key] = np.ascontiguousarray(cam, np.float32)
                classes[key] = cls
                exact = torchcam_smooth_gradcampp(m64, module(m64, smooth_layer), x.double(), cls)
                d = np.abs(exact - cam).max()
                if d > 1e-5:
                    out[key + ".f64"] = np.ascontiguousarray(exact, np.float32)
                print(f"{key}: class {cls}, {cam.shape}, float32 vs float64 {d:.1e}")
        weights[arch] = f"arch/{arch}"
    metadata = {
        "weights": json.dumps(weights),
        "classes": json.dumps(classes),
        "noise": json.dumps({"samples": SAMPLES, "std": STD, "seed": SEED_NOISE}),
    }
    save_file(out, OUT, metadata=metadata)
    print(f"-> {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()

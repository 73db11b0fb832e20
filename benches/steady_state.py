#!/usr/bin/env python3
"""Steady-state throughput of the whole job, files in and overlay PNGs out, for this engine's CLI
and for pytorch-grad-cam, with each tool's start-up cancelled out: the *marginal* rate

    (images in the large folder - images in the small one) / (time for large - time for small)

measured on two folders of 224x224 PNGs (crops of the sample photos), each tool run as its own
process, the four runs alternating (ours small, ours large, reference small, reference large)
`--repeat` times, and the least time of each kept.

  gradcam:          `target/release/gradcam explain DIR --out OUT --batch B` (decode, GPU pipeline,
                    PNG encode and atomic write, report.json);
  pytorch-grad-cam: this script with --reference: PIL decode, antialiased resize + normalize
                    (torch), GradCAM at the default layer, show_cam_on_image, cv2.imwrite PNG.

Usage:
    cargo build --release
    python3 benches/steady_state.py [--small 16] [--large 160] [--batch 16] [--repeat 3]
                                    [--threads N]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_folder(path, count):
    """`count` 224x224 PNG crops of the two sample photos, all different."""
    from PIL import Image

    os.makedirs(path, exist_ok=True)
    photos = [Image.open(os.path.join(ROOT, "examples", "images", f)).convert("RGB")
              for f in ("chelsea.png", "coffee.png")]
    for i in range(count):
        p = photos[i % 2]
        w, h = p.size
        side = min(w, h) - (i // 2) % 64
        x = (i * 7) % (w - side + 1)
        y = (i * 13) % (h - side + 1)
        p.crop((x, y, x + side, y + side)).resize((224, 224)).save(os.path.join(path, f"{i:05d}.png"))


def reference(folder, out, batch, threads):
    """pytorch-grad-cam over every PNG of `folder`, overlays written to `out`."""
    import cv2
    import numpy as np
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.image import show_cam_on_image

    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from make_fixtures import add_head_hook_point, layer_module, load_model

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    model = load_model()
    add_head_hook_point(model)
    cam = GradCAM(model=model, target_layers=[layer_module(model, "head")])
    os.makedirs(out, exist_ok=True)
    names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    for i in range(0, len(names), batch):
        chunk = names[i:i + batch]
        rgbs = [np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in chunk]
        xs = []
        for rgb in rgbs:
            x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float()
            x = F.interpolate(x, (224, 224), mode="bilinear", antialias=True, align_corners=False)
            xs.append((x / 255.0 - 0.5) / 0.5)
        maps = cam(input_tensor=torch.cat(xs), targets=None)
        for name, rgb, m in zip(chunk, rgbs, maps):
            h, w = rgb.shape[:2]
            overlay = show_cam_on_image(np.float32(rgb) / 255, cv2.resize(m, (w, h)), use_rgb=True)
            cv2.imwrite(os.path.join(out, name), cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR))


def timed(cmd, env):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=16)
    ap.add_argument("--large", type=int, default=160)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--reference", nargs=2, metavar=("FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.reference:
        reference(args.reference[0], args.reference[1], args.batch, args.threads)
        return

    binary = os.path.join(ROOT, "target", "release", "gradcam")
    if not os.path.exists(binary):
        sys.exit(f"{binary}: build it first (cargo build --release)")
    env = dict(os.environ)
    env.setdefault("LP_NUM_THREADS", str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        folders = {}
        for size in (args.small, args.large):
            folders[size] = os.path.join(tmp, f"in{size}")
            make_folder(folders[size], size)
        times = {(tool, size): [] for tool in ("gradcam", "pytorch-grad-cam")
                 for size in (args.small, args.large)}
        for r in range(args.repeat):
            for tool in ("gradcam", "pytorch-grad-cam"):
                for size in (args.small, args.large):
                    out = os.path.join(tmp, f"out-{tool}-{size}-{r}")
                    if tool == "gradcam":
                        cmd = [binary, "explain", folders[size], "--out", out, "--batch", str(args.batch)]
                    else:
                        cmd = [sys.executable, os.path.abspath(__file__), "--batch", str(args.batch),
                               "--threads", str(args.threads), "--reference", folders[size], out]
                    times[(tool, size)].append(timed(cmd, env))
                    written = len([f for f in os.listdir(out) if f.endswith(".png")])
                    if written != size:
                        sys.exit(f"{tool}: {written} overlays written for {size} images")
        result = {"small": args.small, "large": args.large, "batch": args.batch,
                  "threads": args.threads, "repeat": args.repeat, "seconds": {}}
        for tool in ("gradcam", "pytorch-grad-cam"):
            small = min(times[(tool, args.small)])
            large = min(times[(tool, args.large)])
            result["seconds"][tool] = {"small": times[(tool, args.small)], "large": times[(tool, args.large)]}
            result[tool] = (args.large - args.small) / (large - small)
        result["ratio"] = result["gradcam"] / result["pytorch-grad-cam"]
        print(json.dumps(result, indent=2))
        print(f"\nmarginal images/s ({args.large} - {args.small} images of 224x224, batch {args.batch}, "
              f"{args.threads} threads, least of {args.repeat}):")
        print(f"  gradcam:          {result['gradcam']:8.2f}")
        print(f"  pytorch-grad-cam: {result['pytorch-grad-cam']:8.2f}")
        print(f"  ratio: {result['ratio']:.2f}x")


if __name__ == "__main__":
    main()

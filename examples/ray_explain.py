#!/usr/bin/env python3
"""Explain a folder of images, or any path Ray Data reads (local, s3://, gs://, ...), on a pool of
actors, one per GPU, with Ray Data: each actor holds one gradcam.Engine and explains batches of
decoded images; the overlays are written to OUT/overlays/<name>.png (through a temporary file and
a rename, never half-written, with each image's localisation box drawn) and the results to
OUT/results/ as JSON lines (path, class, label, score, box as [x0, y0, x1, y1] in the image's
pixels, overlay path, error). The same script runs on a laptop (CPU adapters when there is no GPU)
and on a cluster, by the address given to ray.init.

    pip install ./python "ray[data]"
    python3 examples/ray_explain.py IMAGES --out OUT [--actors N] [--gpus-per-actor 1] [--cpus-per-actor 1]
                                    [--batch 16] [--method gradcam] [--layer L] [--box-threshold 0.15]
                                    [--weights FILE] [--address auto|ray://HOST:10001]

Image names must be unique across the input (the overlay takes the input's file name).
"""
import argparse
import json
import os
import time


class Explain:
    """A Ray Data callable class: one engine per actor, reused for every batch it is given."""

    def __init__(self, out, method, layer, weights, box_threshold):
        import gradcam

        self.engine = gradcam.Engine(weights=weights)
        self.out = out
        self.method = method
        self.layer = layer
        self.box_threshold = box_threshold

    def __call__(self, batch):
        import numpy as np
        from PIL import Image

        paths = [str(p) for p in batch["path"]]
        images = [np.ascontiguousarray(img, dtype=np.uint8) for img in batch["image"]]
        res = self.engine.explain(images, method=self.method, layer=self.layer, on_error="skip",
                                  boxes=True, box_threshold=self.box_threshold)
        rows = {i: {"path": p, "class": None, "label": None, "score": None, "box": None,
                    "overlay": None, "error": None} for i, p in enumerate(paths)}
        for i, message in res.errors:
            rows[i]["error"] = message
        for k, i in enumerate(res.indices):
            name = os.path.splitext(os.path.basename(paths[i]))[0] + ".png"
            target = os.path.join(self.out, "overlays", name)
            tmp = f"{target}.{os.getpid()}.tmp"
            Image.fromarray(res.overlay[k]).save(tmp, format="PNG")
            os.replace(tmp, target)
            rows[i].update({"class": int(res.classes[k]), "label": res.labels[k],
                            "score": float(res.scores[k]), "overlay": target,
                            "box": list(res.boxes[k]) if res.boxes[k] is not None else None})
        columns = {}
        for key in ("path", "class", "label", "score", "box", "overlay", "error"):
            columns[key] = np.array([rows[i][key] for i in range(len(paths))], dtype=object)
        return columns


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", help="a folder or any path Ray Data's read_images takes")
    ap.add_argument("--out", required=True)
    ap.add_argument("--actors", type=int, default=1, help="engines, one per GPU (default 1)")
    ap.add_argument("--gpus-per-actor", type=float, default=None,
                    help="GPUs each actor reserves (default: 1 where the cluster has GPUs, else 0)")
    ap.add_argument("--cpus-per-actor", type=float, default=1,
                    help="CPUs each actor reserves (below 1 leaves room for Ray Data's reading "
                         "tasks on a small machine)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--method", default="gradcam")
    ap.add_argument("--layer", default=None)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--box-threshold", type=float, default=0.15,
                    help="the localisation box's threshold, a fraction of the CAM's maximum")
    ap.add_argument("--address", default=None, help="ray.init address (default: a local instance)")
    args = ap.parse_args()

    import ray

    ray.init(address=args.address, ignore_reinit_error=True, log_to_driver=False)
    gpus = args.gpus_per_actor
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    out = os.path.abspath(args.out)
    os.makedirs(os.path.join(out, "overlays"), exist_ok=True)

    start = time.perf_counter()
    ds = ray.data.read_images(args.images, include_paths=True, mode="RGB")
    results = ds.map_batches(
        Explain,
        fn_constructor_kwargs={"out": out, "method": args.method, "layer": args.layer,
                               "weights": args.weights, "box_threshold": args.box_threshold},
        batch_size=args.batch,
        batch_format="numpy",
        concurrency=args.actors,
        num_gpus=gpus,
        num_cpus=args.cpus_per_actor,
    )
    results.write_json(os.path.join(out, "results"))
    seconds = time.perf_counter() - start
    rows = []
    for name in sorted(os.listdir(os.path.join(out, "results"))):
        with open(os.path.join(out, "results", name)) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    explained = sum(1 for r in rows if r["error"] is None)
    summary = {"images": len(rows), "explained": explained, "errors": len(rows) - explained,
               "actors": args.actors, "gpus_per_actor": gpus, "seconds": seconds,
               "images_per_second": len(rows) / seconds if seconds > 0 else None}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

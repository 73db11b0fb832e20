"""examples/ray_explain.py on a local Ray instance (lavapipe here): every image explained once,
every overlay (with its localisation box) and box written and equal to the engine's, with one
actor and with two."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def make_folder(path, count):
    from PIL import Image

    path.mkdir()
    photos = [Image.open(ROOT / "examples" / "images" / f).convert("RGB")
              for f in ("chelsea.png", "coffee.png")]
    for i in range(count):
        p = photos[i % 2]
        w, h = p.size
        p.crop((i * 9, i * 5, w - i * 7, h - i * 3)).save(path / f"img{i:02d}.png")


@pytest.mark.parametrize("actors", [1, 2])
def test_ray_example_explains_every_image_once(tmp_path, actors):
    pytest.importorskip("ray")
    import gradcam
    from PIL import Image

    images = tmp_path / "in"
    make_folder(images, 6)
    out = tmp_path / "out"
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ray_explain.py"), str(images), "--out", str(out),
         "--actors", str(actors), "--cpus-per-actor", "0.5", "--batch", "4"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert (summary["images"], summary["explained"], summary["errors"]) == (6, 6, 0)
    print(f"ray_explain, {actors} actor(s): {summary['images_per_second']:.2f} images/s "
          f"({summary['seconds']:.1f} s including start-up)")

    rows = []
    for name in sorted(os.listdir(out / "results")):
        rows.extend(json.loads(line) for line in open(out / "results" / name) if line.strip())
    assert sorted(pathlib.Path(r["path"]).name for r in rows) == [f"img{i:02d}.png" for i in range(6)]
    engine = gradcam.Engine()
    for r in rows:
        rgb = np.asarray(Image.open(r["path"]).convert("RGB"))
        want = engine.explain([rgb], boxes=True)
        assert (r["class"], r["label"]) == (want.classes[0], want.labels[0])
        assert r["box"] == list(want.boxes[0])
        assert abs(r["score"] - want.scores[0]) < 1e-6
        written = np.asarray(Image.open(r["overlay"]).convert("RGB"))
        np.testing.assert_array_equal(written, want.overlay[0])
    assert not [f for f in os.listdir(out / "overlays") if not f.endswith(".png")]

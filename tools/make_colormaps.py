#!/usr/bin/env python3
"""Write the 256-entry RGB colormap tables the overlay kernel uses, as raw bytes (768 per table).

Usage:
    pip install opencv-python-headless matplotlib numpy
    python3 tools/make_colormaps.py

src/colormaps/jet.rgb      OpenCV's COLORMAP_JET, exactly (cv2.applyColorMap on 0..255, BGR -> RGB);
                           this is what pytorch-grad-cam's show_cam_on_image uses, not the textbook formula
src/colormaps/turbo.rgb    matplotlib's turbo
src/colormaps/viridis.rgb  matplotlib's viridis
src/colormaps/inferno.rgb  matplotlib's inferno
src/colormaps/magma.rgb    matplotlib's magma
Matplotlib's float tables are rounded to the nearest byte.
"""
import os

import cv2
import matplotlib
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src", "colormaps")


def opencv_jet() -> np.ndarray:
    ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
    bgr = cv2.applyColorMap(ramp, cv2.COLORMAP_JET).reshape(256, 3)
    return bgr[:, ::-1].copy()


def matplotlib_table(name: str) -> np.ndarray:
    cmap = matplotlib.colormaps[name].resampled(256)
    rgba = cmap(np.arange(256))
    return np.clip(np.rint(rgba[:, :3] * 255.0), 0, 255).astype(np.uint8)


def main():
    os.makedirs(OUT, exist_ok=True)
    tables = {"jet": opencv_jet()}
    for name in ("turbo", "viridis", "inferno", "magma"):
        tables[name] = matplotlib_table(name)
    for name, table in tables.items():
        assert table.shape == (256, 3) and table.dtype == np.uint8
        path = os.path.join(OUT, f"{name}.rgb")
        with open(path, "wb") as f:
            f.write(table.tobytes())
        print(f"wrote {path}: first {table[0].tolist()}, last {table[255].tolist()}")


if __name__ == "__main__":
    main()

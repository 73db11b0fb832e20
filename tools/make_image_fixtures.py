#!/usr/bin/env python3
"""Write the odd image files the hardening tests read: tests/fixtures/images/.

Usage:
    pip install pillow numpy
    python3 tools/make_image_fixtures.py

Every file is small. Each is made from the same synthetic picture (a colour gradient with a bright
square in the top-left quadrant) so a test can check that orientation and colours survive.
"""
import io
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "fixtures", "images")


def picture(w=48, h=32):
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), np.full_like(x, 96)], -1).astype(np.uint8)
    rgb[: h // 4, : w // 4] = 255  # marker: top-left as a viewer shows it
    return Image.fromarray(rgb, "RGB")


def main():
    os.makedirs(OUT, exist_ok=True)
    img = picture()
    img.save(os.path.join(OUT, "rgb.png"))
    img.convert("L").save(os.path.join(OUT, "gray.png"))
    img.convert("LA").save(os.path.join(OUT, "gray_alpha.png"))
    img.convert("RGBA").save(os.path.join(OUT, "rgba.png"))
    img.convert("P", palette=Image.ADAPTIVE, colors=32).save(os.path.join(OUT, "palette.png"))
    img.convert("CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=95)
    img.save(os.path.join(OUT, "rgb.jpg"), quality=95)
    img.save(os.path.join(OUT, "rgb.webp"), lossless=True)
    img.save(os.path.join(OUT, "rgb.bmp"))
    img.save(os.path.join(OUT, "rgb.tiff"))
    frames = [img, Image.new("RGB", img.size, (0, 0, 255))]
    frames[0].save(os.path.join(OUT, "animated.gif"), save_all=True, append_images=frames[1:], duration=100, loop=0)
    # EXIF orientation 6: stored rotated, a viewer turns it 90° clockwise. Stored as the picture
    # turned 90° counter-clockwise, so what a viewer shows is the upright 48x32 picture.
    exif = Image.Exif()
    exif[0x0112] = 6
    img.transpose(Image.Transpose.ROTATE_90).save(os.path.join(OUT, "exif_rotate90.jpg"), quality=95, exif=exif)
    # Broken files.
    png = io.BytesIO()
    img.save(png, "PNG")
    data = png.getvalue()
    open(os.path.join(OUT, "truncated.png"), "wb").write(data[: len(data) // 2])
    jpg = io.BytesIO()
    img.save(jpg, "JPEG", quality=95)
    data = jpg.getvalue()
    open(os.path.join(OUT, "truncated.jpg"), "wb").write(data[: len(data) // 2])
    open(os.path.join(OUT, "text.jpg"), "w").write("this is a text file, not a JPEG\n")
    open(os.path.join(OUT, "empty.png"), "wb").close()
    for name in sorted(os.listdir(OUT)):
        print(f"{name}: {os.path.getsize(os.path.join(OUT, name))} bytes")


if __name__ == "__main__":
    main()

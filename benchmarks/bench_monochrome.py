"""Monochrome (toned) detection: what `realness` refuses as "no colour to judge".

    python benchmarks/bench_monochrome.py [--data ../shared/data]

Counts the colour photos of val/ and val_fullres/ wrongly called monochrome, shows each
historic/ photograph's answer, and the share of synthetic toned prints of val/ photos caught:
one tone of a random hue and strength (flat, midtone-weighted, or split between shadows and
highlights) on the photo's own lightness, saved as JPEG at several qualities.
"""

from __future__ import annotations

import argparse
import colorsys
import io
from pathlib import Path

import numpy as np
from PIL import Image

from colorgan_hub.image_io import is_grayscale, is_monochrome, list_images

HERE = Path(__file__).parent


def toned(gray: np.ndarray, rng) -> np.ndarray:
    """A toned print (RGB float in [0, 1]) of a gray image in [0, 1]."""
    hue = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), 1, 1))
    strength = rng.uniform(0.05, 0.6)
    kind = rng.integers(3)
    g = gray[..., None]
    if kind == 0:  # flat: one colour multiplied in
        return g * ((1 - strength) + strength * hue)
    if kind == 1:  # strongest in the midtones, as chemical toning
        weight = strength * 4 * g * (1 - g)
        return g * (1 - weight) + weight * g * hue
    second = np.array(colorsys.hsv_to_rgb(rng.uniform(0, 1), 1, 1))  # split: one hue in the shadows, another in the highlights
    return g * ((1 - strength) + strength * ((1 - g) * hue + g * second))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--toned", type=int, default=200, help="val photos to tone")
    args = parser.parse_args(argv)
    out = {}
    for folder in ("val", "val_fullres"):
        photos, _ = list_images(args.data / folder, recursive=False)
        flagged = [p.name for p in photos if is_monochrome(Image.open(p))]
        out[folder] = {"photos": len(photos), "called_monochrome": len(flagged), "examples": flagged[:5]}
        print(f"{folder}: {len(flagged)} of {len(photos)} colour photos called monochrome {flagged[:5]}")
    historic, _ = list_images(args.data / "historic", recursive=False)
    out["historic"] = {}
    for p in historic:
        img = Image.open(p)
        answer = "grayscale" if is_grayscale(img) else "monochrome (toned)" if is_monochrome(img) else "COLOUR"
        out["historic"][p.name] = answer
        print(f"historic/{p.name}: {answer}")
    photos, _ = list_images(args.data / "val", recursive=False)
    rng = np.random.default_rng(0)
    prints = [toned(np.asarray(Image.open(p).convert("L"), np.float32) / 255, rng) for p in photos[: args.toned]]
    out["toned_caught"] = {}
    for quality in (None, 95, 85, 75, 60):
        caught = 0
        for image in prints:
            img = Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8))
            if quality is not None:
                buffer = io.BytesIO()
                img.save(buffer, "JPEG", quality=quality)
                img = Image.open(io.BytesIO(buffer.getvalue()))
            caught += is_monochrome(img)
        name = "PNG" if quality is None else f"JPEG {quality}"
        out["toned_caught"][name] = caught / len(prints)
        print(f"synthetic toned prints, {name}: {caught} of {len(prints)} called monochrome")
    return out


if __name__ == "__main__":
    main()

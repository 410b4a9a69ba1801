"""Point hints and a reference photo: Zhang et al.'s hint sweep, how well hints are honoured, the
truth as the reference, and the speed of a hinted colorization.

    python benchmarks/bench_hints.py [--model ID_OR_PATH] [--data ../shared/data/val] [--limit N] [--json OUT]

The sweep (`training/hint_sweep.py`, their colorization-pytorch `test_sweep.py`): each photo
resized to 256x256; N random hints, each a 6x6 patch's mean truth colour, the patch at a normal
draw around the centre (sd a quarter of the side); PSNR of the RGB result against the truth;
N = 0, 1, 2, 5, 10, 20, 50, 100; fixed seeds. Printed beside their SIGGRAPH17 network's figures on
1,000 ImageNet test photos, with the gains over no hints (the targets are theirs), and how far one
hint's colour leaks (`training/hint_sweep.py`'s `leakage`). Speed: a
1-megapixel photo with 10 hints through `colorize`, and the demo's round trip (colorize, realness,
two PNGs written), medians of 5 after a warm-up.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_inference import timed  # benchmarks/bench_inference.py, beside this script
from PIL import Image

from colorgan_hub import DEFAULT_MODEL, ColorGAN
from colorgan_hub.image_io import list_images, spread_evenly
from training.hint_sweep import COUNTS, ZHANG_SIGGRAPH17, simulated_hints, sweep, sweep_photo, truth_ab

TARGET_GAINS = {1: 0.9, 5: 3.0, 10: 4.0, 100: 6.7}


def speed(model) -> dict:
    """A 1-megapixel photo (scikit-image's astronaut, 1155x866) with 10 simulated hints."""
    from skimage import data

    rgb = np.asarray(Image.fromarray(data.astronaut()).resize((1155, 866), Image.Resampling.LANCZOS))
    hints = simulated_hints(truth_ab(rgb), 10, np.random.default_rng(0))
    photo = Image.fromarray(rgb).convert("L")

    def demo_round_trip():
        out = model.colorize(photo, hints=hints)
        model.realness(out, allow_grayscale=True)
        with tempfile.TemporaryDirectory() as folder:
            out.convert("L").save(Path(folder, "gray.png"), compress_level=1)
            out.save(Path(folder, "colour.png"), compress_level=1)

    return {
        "hinted_1mp_s": timed(lambda: model.colorize(photo, hints=hints), 5),
        "unhinted_1mp_s": timed(lambda: model.colorize(photo), 5),
        "demo_round_trip_1mp_s": timed(demo_round_trip, 5),
    }


def table(name: str, result: dict) -> str:
    lines = [
        f"{name}: {result['photos']} photos",
        "| N hints | " + " | ".join(str(n) for n in result["psnr"]) + " | truth as reference |",
        "|---" * (len(result["psnr"]) + 2) + "|",
        "| PSNR (dB) | " + " | ".join(f"{p:.2f}" for p in result["psnr"].values()) + f" | {result['reference_psnr']:.2f} |",
        "| gain | " + " | ".join(f"{g:+.2f}" for g in result["gain"].values()) + f" | {result['reference_gain']:+.2f} |",
        "| Zhang et al. SIGGRAPH17 (ImageNet) | " + " | ".join(f"{ZHANG_SIGGRAPH17[n]:.2f}" for n in result["psnr"]) + " | |",
        "| their gain | " + " | ".join(f"{ZHANG_SIGGRAPH17[n] - ZHANG_SIGGRAPH17[0]:+.2f}" for n in result["psnr"]) + " | |",
        f"hint honoured at N = 10: median {result['hint_error']:.1f} ab units from the hint's colour (target <= 10); "
        f"truth as reference: colourfulness {result['reference_colourfulness']:.0%} of the truth's (target 90-110%)",
        f"one hint of the opposite hue: the colour moves a median {result['leakage']['near']:.1f} ab units within 8 px of it, "
        f"{result['leakage']['far']:.1f} beyond 128 px (what leaks to the rest of the photo)",
    ]
    missed = [f"{n} hints {result['gain'][n]:+.2f} < {t:+.1f}" for n, t in TARGET_GAINS.items() if result["gain"][n] < t]
    lines.append("targets (gain >= theirs): " + ("all met" if not missed else "missed: " + "; ".join(missed)))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model with guidance inputs (default: the bundled one)")
    parser.add_argument("--data", nargs="+", default=["../shared/data/val", "../shared/data/val_fullres"], help="folders of colour photos")
    parser.add_argument("--limit", type=int, default=None, help="N photos of each folder, spread over it (default: all)")
    parser.add_argument("--no-multiscale", dest="multiscale", action="store_false", help="one scale instead of the default multi-scale")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    model = ColorGAN.from_pretrained(args.model)
    results = {"model": args.model, "multiscale": args.multiscale}
    for folder in args.data:
        photos = [sweep_photo(p) for p in spread_evenly(list_images(folder)[0], args.limit)]
        started = time.perf_counter()
        result = sweep(model, photos, counts=COUNTS, multiscale=args.multiscale)
        result["seconds"] = time.perf_counter() - started
        results[folder] = result
        print(table(folder, result), flush=True)
        print()
    results["speed"] = speed(model)
    s = results["speed"]
    print(
        f"speed (1 megapixel, 10 hints): colorize {s['hinted_1mp_s']:.3f} s (no hints {s['unhinted_1mp_s']:.3f} s; target 0.5 s); "
        f"the demo's round trip {s['demo_round_trip_1mp_s']:.3f} s (target 1 s)"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

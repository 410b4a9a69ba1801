"""Old films: how well the colorizer does when the black-and-white input was not made by the eye's
luminance, as real old photographs were not.

    python benchmarks/bench_film.py [--data ../shared/data/val] [--limit N] [--model ID_OR_PATH] [--json out.json]

Each colour photo of `--data` (protocol 256: short side 256, centre crop) is turned into the
black-and-white photograph a film would have made of it (`colorgan_hub.color.FILM_RESPONSES`:
the eye's luminance, as every evaluation elsewhere; unfiltered panchromatic film; orthochromatic
film, blind to red, most photographs before the 1930s; a blue-sensitive plate), and colorized.
The colours are judged against the photo's own: hue hits (macro and per family) and colourfulness
over the truth's. PSNR is not shown: the film's lightness is not the photo's, so it would
measure the film, not the colours.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from colorgan_hub import DEFAULT_MODEL, metrics
from colorgan_hub.color import FILM_RESPONSES, film_lightness
from colorgan_hub.evaluate import colour_metrics, load_truths
from colorgan_hub.image_io import list_images, spread_evenly
from colorgan_hub.model import load_model
from training.data import gray_of_lightness

HERE = Path(__file__).parent
COLUMNS = ("hue_macro", "hue_red", "hue_orange/yellow", "hue_green", "hue_blue/cyan", "hue_purple")


def film_photo(truth: np.ndarray, film: str) -> Image.Image:
    """The 8-bit black-and-white photograph `film` makes of an sRGB photo (H, W, 3) uint8."""
    return Image.fromarray(gray_of_lightness(film_lightness(truth, FILM_RESPONSES[film])), mode="L")


def measure(model, truths: list[np.ndarray], truth_cf: float, film: str) -> dict:
    """The figures of one film; `truth_cf`: the truths' mean colourfulness."""
    outputs = [np.asarray(out) for out in model.colorize([film_photo(t, film) for t in truths], batch_size=8)]
    figures = colour_metrics(outputs, truths)
    return {**{k: figures[k] for k in COLUMNS}, "cf_ratio": figures["cf"] / truth_cf}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "val")
    parser.add_argument("--limit", type=int, help="N photos only, spread evenly over the sorted list (a quick check)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Hub id or folder (default: the bundled model)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    paths, _ = list_images(args.data, recursive=False)
    truths = [np.asarray(img) for _, img in load_truths(spread_evenly(paths, args.limit))]
    truth_cf = float(np.mean([metrics.colorfulness(t)[0] for t in truths]))
    result = {"model": str(args.model), "photos": len(truths), "films": {}}
    print(f"{len(truths)} photos of {args.data}, model {args.model}\n")
    print("| film | " + " | ".join(c.removeprefix("hue_") for c in COLUMNS) + " | colourfulness / truth's |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for film in FILM_RESPONSES:
        row = result["films"][film] = measure(model, truths, truth_cf, film)
        print(f"| {film} | " + " | ".join(f"{row[c]:.3f}" for c in COLUMNS) + f" | {row['cf_ratio']:.2f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

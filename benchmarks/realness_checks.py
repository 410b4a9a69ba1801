"""The realness issue's checks as a new user would try them, on photos spread over a folder:
real colour photos, the same photos' lightness with one constant sepia tint, and the model's own
colorizations at the default working size and at 384 px.

    python benchmarks/realness_checks.py [--model ID_OR_PATH] [--data ../shared/data/val] [--count 20] [--json out.json]

For each case: how many are judged "photographed in colour" (realness > 0.5), how many
`realness` refuses as monochrome (no colour to judge), and the range of the scores. Photos at
protocol 256 (`colorgan evaluate`), spread evenly over the folder's sources.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from colorgan_hub import DEFAULT_MODEL
from colorgan_hub.evaluate import constant_baseline
from colorgan_hub.image_io import NoColourError
from colorgan_hub.model import load_model
from training.selection import validation_truths

HERE = Path(__file__).parent
SEPIA_AB = (8.0, 22.0)  # Lab a, b of the tint


def judge(model, images) -> dict:
    """Scores (None where refused as monochrome), how many are judged real and refused."""
    scores = []
    for image in images:
        try:
            scores.append(model.realness(image))
        except NoColourError:
            scores.append(None)
    judged = [s for s in scores if s is not None]
    return {
        "photos": len(scores),
        "judged_real": sum(s > 0.5 for s in judged),
        "refused_monochrome": scores.count(None),
        "min": min(judged, default=None),
        "median": float(np.median(judged)) if judged else None,
        "max": max(judged, default=None),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="Hub id or save_pretrained folder (default: the bundled model)")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "val")
    parser.add_argument("--count", type=int, default=20, help="photos, spread over the folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    photos = [img for _, img in validation_truths(args.data, args.count)]
    sepia = [constant_baseline(p.convert("RGB"), SEPIA_AB) for p in photos]
    gray = [p.convert("L") for p in photos]
    cases = {
        "real photos": photos,
        f"lightness + one sepia tint (a, b = {SEPIA_AB[0]:g}, {SEPIA_AB[1]:g})": sepia,
        f"own colorizations, working size {model.image_size} (default)": model.colorize(gray),
        "own colorizations, working size 384": model.colorize(gray, size=384),
    }
    results = {name: judge(model, images) for name, images in cases.items()}
    print(f"{args.model} on {len(photos)} photos of {args.data}:")
    print("| case | judged real (> 0.5) | refused as monochrome | min | median | max |")
    print("|---|---|---|---|---|---|")
    fmt = lambda x: "-" if x is None else f"{x:.3f}"  # noqa: E731
    for name, r in results.items():
        print(
            f"| {name} | {r['judged_real']} of {r['photos'] - r['refused_monochrome']} | {r['refused_monochrome']} | "
            f"{fmt(r['min'])} | {fmt(r['median'])} | {fmt(r['max'])} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()

"""A choice of colorizations: how different `colorize(variations=N)` makes them, and at what cost.

    python benchmarks/bench_variations.py [--data ../shared/data/val] [--limit N] [--strengths 0.5 1 1.5 2]
                                          [--variations 3] [--model ID_OR_PATH] [--sheet sheet.png] [--json out.json]

For each noise strength (`ColorGAN.variation_strength`), on the photos of `--data` (the truth;
the colorizer sees their L only), against the default colorization:
- diversity: mean pairwise ab distance (Lab units) between the N variations, over the truth's
  chromatic pixels (chroma >= 15, the pixels the hue hits judge), and each variation's distance
  to the default output;
- hue hits (macro over the five hue families) of the default and of each variation;
- smoothness: ab total variation (mean |d/dx| + |d/dy| of a and b) of each variation over the
  default's; blotches or salt-and-pepper would raise it;
- global share: for each pair of variations, the distance between their image-mean ab over their
  mean per-pixel ab distance (1: they differ by a pure tint; low: by region), averaged over pairs
  and photos.
The targets: each variation's hue hits within 0.05 of the default's, total variation at most
1.2x the default's, global share at most 0.3; `chosen` is the strength with the most diversity
that meets them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from colorgan_hub import DEFAULT_MODEL, metrics
from colorgan_hub.evaluate import load_truths
from colorgan_hub.image_io import list_images, spread_evenly
from colorgan_hub.model import load_model

HERE = Path(__file__).parent
HUE_MARGIN, TV_RATIO, GLOBAL_SHARE = 0.05, 1.2, 0.3


def total_variation(ab: np.ndarray) -> float:
    """Mean |d/dx| + |d/dy| of a and b (2, H, W), Lab units per pixel."""
    return float(np.abs(np.diff(ab, axis=2)).sum(axis=0).mean() + np.abs(np.diff(ab, axis=1)).sum(axis=0).mean())


def measure(model, truths: list[Image.Image], variations: int, seed: int = 0) -> tuple[dict, list]:
    """The figures of one setting, and (default, variations) of the first photos for a sheet."""
    defaults = model.colorize(truths, batch_size=8)
    drawn = model.colorize(truths, batch_size=8, variations=variations, seed=seed)
    hue_default = {name: np.zeros(2, np.int64) for name in metrics.HUE_FAMILIES}
    hue_each = [{name: np.zeros(2, np.int64) for name in metrics.HUE_FAMILIES} for _ in range(variations)]
    pair_sum = default_sum = pixels = 0.0
    shares = []
    tv_default, tv_each = 0.0, np.zeros(variations)
    for truth, default, options in zip(truths, defaults, drawn):
        ab_t = metrics.image_ab(np.asarray(truth))
        ab_d = metrics.image_ab(np.asarray(default))
        abs_v = [metrics.image_ab(np.asarray(v)) for v in options]
        chromatic = np.hypot(ab_t[0], ab_t[1]) >= metrics.HUE_CHROMA_TRUTH
        metrics.hue_hits_of(ab_d, ab_t, hue_default)
        for n, ab_v in enumerate(abs_v):
            metrics.hue_hits_of(ab_v, ab_t, hue_each[n])
            tv_each[n] += total_variation(ab_v)
            default_sum += np.linalg.norm(ab_v - ab_d, axis=0)[chromatic].sum()
        tv_default += total_variation(ab_d)
        for ab_i, ab_j in itertools.combinations(abs_v, 2):
            pair_sum += np.linalg.norm(ab_i - ab_j, axis=0)[chromatic].sum()
            per_pixel = np.linalg.norm(ab_i - ab_j, axis=0).mean()
            if per_pixel > 0.5:  # pairs that differ at all
                shares.append(np.linalg.norm(ab_i.mean(axis=(1, 2)) - ab_j.mean(axis=(1, 2))) / per_pixel)
        pixels += chromatic.sum()
    pairs = variations * (variations - 1) / 2
    hue_variations = [metrics.hue_rates(counts)["macro"] for counts in hue_each]
    figures = {
        "diversity": pair_sum / max(pixels * pairs, 1) if pairs else 0.0,
        "distance_to_default": default_sum / max(pixels * variations, 1),
        "hue_macro_default": metrics.hue_rates(hue_default)["macro"],
        "hue_macro_variations": hue_variations,
        "tv_ratio_variations": list(tv_each / tv_default),
        "global_share": float(np.mean(shares)) if shares else 0.0,
    }
    figures["meets_targets"] = bool(
        all(abs(h - figures["hue_macro_default"]) <= HUE_MARGIN for h in hue_variations)
        and max(figures["tv_ratio_variations"]) <= TV_RATIO
        and figures["global_share"] <= GLOBAL_SHARE
    )
    return figures, list(zip(defaults, drawn))


def sheet(truths, examples, path: Path, rows: int = 6, size: int = 160) -> None:
    """Rows of: the gray input, the default colorization, the variations, the truth."""
    columns = 3 + len(examples[0][1])
    canvas = Image.new("RGB", (columns * size, rows * size + 20), "white")
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(["input", "default", *[f"variation {n + 1}" for n in range(columns - 3)], "truth"]):
        draw.text((c * size + 4, 4), label, fill="black")
    for r, (truth, (default, options)) in enumerate(zip(truths[:rows], examples[:rows])):
        for c, img in enumerate([truth.convert("L").convert("RGB"), default, *options, truth]):
            canvas.paste(img.resize((size, size)), (c * size, 20 + r * size))
    canvas.save(path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "val"), help="colour photos (the truth)")
    parser.add_argument("--limit", type=int, help="N photos spread evenly over the folder (default: all; file names group photos by source)")
    parser.add_argument("--protocol", choices=["256", "full"], default="256", help="as `colorgan evaluate`")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Hub id or save_pretrained folder")
    parser.add_argument("--variations", type=int, default=3, help="variations drawn per photo")
    parser.add_argument("--strengths", type=float, nargs="+", default=None, help="noise strengths to try (default: the model's own)")
    parser.add_argument("--sheet", type=Path, help="write a sheet of the first photos at the chosen strength")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    truths = [img for _, img in load_truths(spread_evenly(list_images(args.data)[0], args.limit), args.protocol)]
    strengths = args.strengths or [model.variation_strength]
    rows, examples = {}, {}
    print(f"{len(truths)} photos of {args.data}, {args.variations} variations each, seed 0")
    print("| strength | diversity (ab) | to default (ab) | global share | hue macro default | hue macro variations | TV / default | targets | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for strength in strengths:
        model.variation_strength = strength
        start = time.perf_counter()
        rows[strength], examples[strength] = measure(model, truths, args.variations)
        row = rows[strength]
        print(
            f"| {strength:g} | {row['diversity']:.2f} | {row['distance_to_default']:.2f} | {row['global_share']:.2f} | {row['hue_macro_default']:.3f} | "
            f"{' / '.join(f'{h:.3f}' for h in row['hue_macro_variations'])} | {' / '.join(f'{t:.2f}' for t in row['tv_ratio_variations'])} | "
            f"{'met' if row['meets_targets'] else 'missed'} | {time.perf_counter() - start:.0f} |"
        )
    passing = [s for s in strengths if rows[s]["meets_targets"]]
    chosen = max(passing, key=lambda s: rows[s]["diversity"]) if passing else None
    print(f"chosen strength (most diversity within the targets): {chosen}")
    if args.sheet and (chosen is not None or len(strengths) == 1):
        sheet(truths, examples[chosen if chosen is not None else strengths[0]], args.sheet)
        print(f"sheet: {args.sheet}")
    result = {"photos": len(truths), "data": args.data, "variations": args.variations, "rows": {str(s): r for s, r in rows.items()}, "chosen": chosen}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

"""The colour statistics of a training folder: mean a, b of every pixel (the constant-colour
baseline of `colorgan evaluate`) and the share of pixels nearest each ab bin (the prior the
classification head is trained with; train.py estimates it itself on --prior_samples photos).

    python training/colour_stats.py --train_data_dir ../shared/data/train [--size 64]

Every photo the training filters keep with --min_colorfulness 0 (all colour photos) is shrunk to
--size px on its short side and each of its pixels counts once. Prints JSON.
"""

from __future__ import annotations

import argparse
import json

import datasets

from colorgan_hub.color import AB_SCALE, ab_bin_centres
from training.data import estimate_colour_prior, load_stream


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train_data_dir", required=True, help="local folder of colour photos")
    parser.add_argument("--size", type=int, default=64, help="short side (px) each photo is shrunk to")
    parser.add_argument("--bin_size", type=float, default=10.0, help="ab grid step of the bins")
    args = parser.parse_args(argv)
    stream = load_stream(data_dir=args.train_data_dir)
    stream = stream.cast_column("image", datasets.Image(decode=False))
    bins = ab_bin_centres(args.bin_size) / AB_SCALE
    prior, mean_ab, used = estimate_colour_prior(stream, "image", bins, samples=10**12, min_size=8, min_colorfulness=0.0, size=args.size)
    result = {"photos": used, "mean_ab": [round(float(v), 3) for v in mean_ab * AB_SCALE], "bins_used": int((prior > 0).sum()), "bins": len(bins)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()

"""How a run picks what it keeps: the validation photos, their baseline, and the selection score
shared by train.py (which generator step to keep) and choose_decoding.py (which decoding defaults).

The score is the weakest of three ratios, each against its target: PSNR gain over gray / 0.5 dB,
colourfulness / 0.6-0.8 of the truth's, hue hit rate (macro) / 0.4. A cast passes none of them
alone, and neither does a gray, faithful output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from colorgan_hub import metrics
from colorgan_hub.evaluate import gray_baseline, load_truths
from colorgan_hub.image_io import spread_evenly
from training.data import image_paths


@dataclass(frozen=True)
class Targets:
    psnr_gain: float = 0.5
    cf_ratio: float = 0.6
    hue_macro: float = 0.4


def validation_truths(folder, count: int) -> list[tuple[str, Image.Image]]:
    """`count` photos spread evenly over the whole of `folder` (file names group photos by source,
    so every source gets its share), at protocol 256."""
    return load_truths(spread_evenly(image_paths(folder), count), "256")


def baseline(truths) -> dict[str, float]:
    """The gray baseline's PSNR and the truth's colourfulness over `truths`, fixed for a run."""
    return {
        "gray_psnr": float(np.mean([metrics.psnr(gray_baseline(t), np.asarray(t))[0] for _, t in truths])) if truths else 0.0,
        "truth_cf": float(np.mean([metrics.colorfulness(np.asarray(t))[0] for _, t in truths])) if truths else 0.0,
    }


def score(result: dict, base: dict, targets: Targets) -> dict[str, float]:
    """Adds psnr_gain, cf_ratio and score to a `colour_metrics` result (returned, new dict)."""
    gain = result["psnr"] - base["gray_psnr"]
    cf_ratio = result["cf"] / max(base["truth_cf"], 1e-6)
    value = min(gain / targets.psnr_gain, cf_ratio / targets.cf_ratio, result["hue_macro"] / targets.hue_macro)
    return {**result, "psnr_gain": gain, "cf_ratio": cf_ratio, "score": value}

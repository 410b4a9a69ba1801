"""Colour-structure cues: how a photo's colour is laid out against its lightness.

The PatchGAN detector learns whatever tells its training fakes apart, which is often one
colorizer's signature: shown hand-tinted prints it never saw, it did worse than chance. These ten
numbers describe what every colorization shares to some degree and a colour photograph does not:
colour computed at a low resolution and spread over the lightness, so chroma edges that do not
follow lightness edges, flat washes inside textured regions, or colour that is a function of the
lightness alone. `realness` adds a linear read-out of them (fitted with the calibration, on held-out
photos, `model.realness_cues`) to the discriminator's calibrated logit.

Every photo is first JPEG-compressed at quality 90 at the working size (`normalise`), so a
colorization saved as a PNG and a camera's JPEG are judged alike: whether a file is a JPEG must not
be the cue.
"""

from __future__ import annotations

import cv2
import numpy as np

from .color import rgb_to_model_lab_numpy

CUE_NAMES = (
    "log chroma/lightness gradient ratio",
    "chroma/lightness gradient correlation",
    "log chroma/lightness fine-detail ratio",
    "chroma spread (std / mean)",
    "log mean chroma",
    "neutral share (chroma < 5)",
    "colour not explained by lightness",
    "log chroma gradient in flat areas",
    "hue entropy",
    "chromatic share (chroma > 10)",
)
NORMALISE_QUALITY = 90


def normalise(rgb: np.ndarray) -> np.ndarray:
    """The working-size photo (uint8 RGB) as a quality-90 JPEG gives it back."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, NORMALISE_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def _gradient(x: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))


def _fine(x: np.ndarray) -> np.ndarray:
    return x - cv2.GaussianBlur(x, (0, 0), 1.0)


def colour_cues(rgb: np.ndarray) -> np.ndarray:
    """The ten cues (CUE_NAMES, float32) of a working-size uint8 RGB photo (H, W, 3)."""
    lab = rgb_to_model_lab_numpy(normalise(rgb))
    l, a, b = lab[0] * 50.0 + 50.0, lab[1] * 110.0, lab[2] * 110.0
    grad_l, grad_c = _gradient(l), np.hypot(_gradient(a), _gradient(b))
    chroma = np.hypot(a, b)
    fine_c, fine_l = np.hypot(_fine(a), _fine(b)).mean(), np.abs(_fine(l)).mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(grad_l.ravel(), grad_c.ravel())[0, 1]
    # the share of the colour's variance that no function of lightness (10 bands) explains
    bands = np.clip((l / 10).astype(int), 0, 9).ravel()
    counts = np.maximum(np.bincount(bands, minlength=10), 1)
    residual = 0.0
    for channel in (a.ravel(), b.ravel()):
        band_mean = np.bincount(bands, channel, minlength=10) / counts
        residual += float(((channel - band_mean[bands]) ** 2).mean())
    unexplained = residual / (a.var() + b.var() + 1e-3)
    flat = grad_l <= np.percentile(grad_l, 30)  # never empty
    strong = chroma > 10
    if strong.mean() > 0.01:
        hist = np.histogram(np.arctan2(b, a)[strong], 12, (-np.pi, np.pi))[0] + 1e-6
        p = hist / hist.sum()
        entropy = float(-(p * np.log(p)).sum())
    else:
        entropy = 0.0
    cues = [np.log(grad_c.mean() / (grad_l.mean() + 1e-3) + 1e-4), correlation, np.log(fine_c / (fine_l + 1e-3) + 1e-4),
            chroma.std() / (chroma.mean() + 1e-3), np.log(chroma.mean() + 1.0), (chroma < 5).mean(), unexplained,
            np.log(grad_c[flat].mean() + 1e-2), entropy, strong.mean()]
    return np.nan_to_num(np.asarray(cues, dtype=np.float32))

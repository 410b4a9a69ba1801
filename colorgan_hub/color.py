"""CIE Lab colour conversions and the pix2pix normalisation, in one place.

Two families live here:

* Batched, differentiable torch conversions on (B, 3, H, W) tensors (training, tests), backed by
  kornia: sRGB (D65) floats in [0, 1] <-> L in [0, 100], a/b in about [-110, 110].
* Full-resolution numpy helpers for the inference pipeline, where a 12-megapixel photo must be
  handled in a fraction of a second: L from 8-bit sRGB through a 256-entry lookup table (exact), and
  Lab -> RGB through OpenCV with an L-preserving gamut mapping (chroma is reduced, never lightness).

The network sees L/50 - 1 and ab/110 (both in [-1, 1]); those constants are named below and used
everywhere else through `normalize_*` / `denormalize_*`.
"""

from __future__ import annotations

import cv2
import kornia.color
import numpy as np
import torch

L_OFFSET = 50.0  # network input: L / 50 - 1, in [-1, 1]
AB_SCALE = 110.0  # network output: ab / 110, tanh range [-1, 1]

# sRGB (D65) <-> XYZ and the D65 white point, as in skimage and kornia.
_XYZ_FROM_RGB = np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]])
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
_XYZ_FROM_RGB_NORM = (_XYZ_FROM_RGB / _WHITE_D65[:, None]).astype(np.float32)  # rows divided by the white point
_Y_WEIGHTS = _XYZ_FROM_RGB_NORM[1].copy()  # sRGB -> relative luminance Y
_RGB_FROM_XYZ = np.linalg.inv(_XYZ_FROM_RGB).astype(np.float32)
_LAB_EPSILON = 0.008856  # (6/29)^3
_LAB_KAPPA = 7.787  # (29/6)^2 / 3


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB (B, 3, H, W) in [0, 1] -> Lab (B, 3, H, W): L in [0, 100], a/b in about [-110, 110]."""
    return kornia.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Lab (B, 3, H, W) -> sRGB (B, 3, H, W), clipped to [0, 1] unless `clip=False`."""
    return kornia.color.lab_to_rgb(lab, clip=clip)


def normalize_l(l: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] -> network input in [-1, 1]."""
    return l / L_OFFSET - 1.0


def denormalize_l(l_norm: torch.Tensor) -> torch.Tensor:
    """Network input in [-1, 1] -> L in [0, 100]."""
    return (l_norm + 1.0) * L_OFFSET


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """a/b in about [-110, 110] -> network target in [-1, 1]."""
    return ab / AB_SCALE


def denormalize_ab(ab_norm: torch.Tensor) -> torch.Tensor:
    """Network output in [-1, 1] -> a/b in [-110, 110]."""
    return ab_norm * AB_SCALE


def rgb_to_model_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sRGB (B, 3, H, W) in [0, 1] -> (real_l (B, 1, H, W), real_ab (B, 2, H, W)), both normalised."""
    lab = rgb_to_lab(rgb)
    return normalize_l(lab[:, :1]), normalize_ab(lab[:, 1:])


def model_lab_to_rgb(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Normalised L (B, 1, H, W) and ab (B, 2, H, W) -> sRGB (B, 3, H, W) in [0, 1]."""
    return lab_to_rgb(torch.cat([denormalize_l(l_norm), denormalize_ab(ab_norm)], dim=1))


# ----------------------------------------------------------------------------------------------
# Full-resolution numpy path (inference).

_SRGB_TO_LINEAR_LUT = np.where(
    np.arange(256) / 255.0 <= 0.04045,
    np.arange(256) / 255.0 / 12.92,
    ((np.arange(256) / 255.0 + 0.055) / 1.055) ** 2.4,
).astype(np.float32)[None]  # (1, 256): cv2.LUT's shape


def _srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return cv2.LUT(rgb, _SRGB_TO_LINEAR_LUT)  # exact for 8-bit input, multithreaded
    rgb = np.clip(rgb.astype(np.float32, copy=False), 0.0, 1.0)
    return np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _lab_f(t: np.ndarray) -> np.ndarray:
    """The Lab companding function, in place on a float32 array of relative X, Y or Z."""
    f = np.cbrt(t)
    dark = t <= _LAB_EPSILON
    if dark.any():
        f[dark] = _LAB_KAPPA * t[dark] + 16.0 / 116.0
    return f


def rgb_to_l_numpy(rgb: np.ndarray) -> np.ndarray:
    """sRGB (H, W, 3), uint8 or float in [0, 1] -> CIE L (H, W) float32 in [0, 100]."""
    f = _lab_f(cv2.transform(_srgb_to_linear(rgb), _Y_WEIGHTS[None]))  # (H, W), from Y (white = 1)
    f *= 116.0
    f -= 16.0
    return f


def rgb_to_model_lab_numpy(rgb: np.ndarray) -> np.ndarray:
    """sRGB (H, W, 3), uint8 or float in [0, 1] -> normalised Lab (3, H, W) float32: L / 50 - 1, ab / 110.

    Exact (unlike OpenCV's Lab), channels first, ready for a training batch."""
    f = _lab_f(cv2.transform(_srgb_to_linear(rgb), _XYZ_FROM_RGB_NORM))  # (H, W, 3): f(X/Xn), f(Y), f(Z/Zn)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    out = np.empty((3, *f.shape[:2]), np.float32)
    np.multiply(fy, 116.0 / L_OFFSET, out=out[0])
    out[0] -= 16.0 / L_OFFSET + 1.0
    np.subtract(fx, fy, out=out[1])
    out[1] *= 500.0 / AB_SCALE
    np.subtract(fy, fz, out=out[2])
    out[2] *= 200.0 / AB_SCALE
    return out


# Gamut tests use linear RGB unclipped, so out-of-gamut colours show.
_GAMUT_TOLERANCE = 1e-4  # linear RGB; covers the rounding of the matrices at white


def _finv(t: np.ndarray) -> np.ndarray:
    """Inverse of the Lab companding function f."""
    return np.where(t > 6.0 / 29.0, t * t * t, (3.0 * (6.0 / 29.0) ** 2) * (t - 4.0 / 29.0))


def _fits(l: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where Lab (float32 vectors) lies in the sRGB gamut: linear RGB, NOT clipped, in [0, 1]."""
    fy = (l + 16.0) / 116.0
    x = _WHITE_D65[0] * _finv(fy + a / 500.0)
    y = _finv(fy)
    z = _WHITE_D65[2] * _finv(fy - b / 200.0)
    inside = np.ones(l.shape, bool)
    for row in _RGB_FROM_XYZ:  # one channel at a time: fewer temporaries
        channel = row[0] * x + row[1] * y + row[2] * z
        inside &= (channel >= -_GAMUT_TOLERANCE) & (channel <= 1.0 + _GAMUT_TOLERANCE)
    return inside


def _largest_fitting(l, a, b, hi, steps: int) -> np.ndarray:
    """Per pixel, the largest s in [0, hi] (bisection, `steps` halvings) with (l, s*a, s*b) in gamut;
    s = 0 (gray) always fits."""
    lo = np.zeros_like(hi)
    for _ in range(steps):
        mid = (lo + hi) * 0.5
        fits = _fits(l, a * mid, b * mid)
        lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid)
    return lo


_L_STEPS = 4  # max-chroma table: every 0.25 L (and every degree of hue)
_max_chroma_table = None


def _max_chroma() -> np.ndarray:
    """(401, 361) table of the largest in-gamut chroma for L = 0, 0.25, ..., 100 and hue 0..360 deg,
    built once on first use (bisection, about 0.1 s)."""
    global _max_chroma_table
    if _max_chroma_table is None:
        l, hue = np.meshgrid(np.arange(401, dtype=np.float32) / _L_STEPS, np.deg2rad(np.arange(361, dtype=np.float32)), indexing="ij")
        _max_chroma_table = _largest_fitting(l, np.cos(hue), np.sin(hue), np.full_like(l, 200.0), steps=24)
    return _max_chroma_table


def _chroma_scale(l: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel factor in [0, 1] that brings (a, b) inside the gamut at lightness l: from the
    table (the smallest of the four neighbouring entries, less 0.5%), then exact bisection for
    the rare pixels the table leaves outside."""
    chroma = np.hypot(a, b)
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    li = np.clip(l * _L_STEPS, 0, 400)
    l0, h0 = np.minimum(li.astype(np.int64), 399), np.minimum(hue.astype(np.int64), 359)
    table = _max_chroma()
    limit = np.minimum.reduce([table[l0, h0], table[l0 + 1, h0], table[l0, h0 + 1], table[l0 + 1, h0 + 1]])
    scale = np.minimum(1.0, 0.995 * limit / np.maximum(chroma, 1e-6)).astype(np.float32)
    miss = ~_fits(l, a * scale, b * scale)
    if miss.any():
        scale[miss] = _largest_fitting(l[miss], a[miss], b[miss], scale[miss], steps=7)
    return scale


def lab_to_rgb_numpy(lab: np.ndarray) -> np.ndarray:
    """Lab (H, W, 3) float32 -> sRGB (H, W, 3) float32 in [0, 1], keeping L.

    Where (L, a, b) lies outside the sRGB gamut, a and b are scaled towards 0 until it fits (hue
    kept), so lightness is never traded for colour: clipping R, G and B one by one, as most
    pipelines (and OpenCV's conversion) do, changes L and shifts hue.
    """
    lab = np.ascontiguousarray(lab, dtype=np.float32)
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)  # clips channel by channel
    # Only pixels with a channel exactly at 0 or 1 can have been clipped; check those precisely.
    interior = cv2.inRange(rgb, (1e-7, 1e-7, 1e-7), (1.0 - 1e-7, 1.0 - 1e-7, 1.0 - 1e-7))
    if cv2.countNonZero(interior) == interior.size:
        return rgb
    candidates = np.flatnonzero(interior.reshape(-1) == 0)
    cand = lab.reshape(-1, 3)[candidates]
    outside = ~_fits(cand[:, 0], cand[:, 1], cand[:, 2])
    if not outside.any():
        return rgb
    idx, (l, a, b) = candidates[outside], cand[outside].T
    scale = _chroma_scale(l, a, b)
    fitted = np.stack([l, a * scale, b * scale], axis=-1)[:, None, :]  # (N, 1, 3)
    rgb.reshape(-1, 3)[idx] = cv2.cvtColor(fitted, cv2.COLOR_Lab2RGB)[:, 0]
    return rgb


def recombine(l_full: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
    """Full-resolution L (H, W) + low-resolution ab (h, w, 2) -> sRGB (H, W, 3) uint8.

    ab is upsampled bilinearly (each channel on its own: cheaper than splitting a full-size array),
    then merged with the untouched L and converted with `lab_to_rgb_numpy`.
    """
    height, width = l_full.shape
    a, b = (cv2.resize(np.ascontiguousarray(ab_small[..., i]), (width, height), interpolation=cv2.INTER_LINEAR) for i in (0, 1))
    rgb = lab_to_rgb_numpy(cv2.merge([l_full, a, b]))
    return cv2.convertScaleAbs(rgb, alpha=255.0)  # round to nearest, saturate

"""CIE Lab colour conversions and the pix2pix normalisation, in one place.

Two families live here:

* Batched, differentiable torch conversions on (B, 3, H, W) tensors (training, tests), backed by
  kornia: sRGB (D65) floats in [0, 1] <-> L in [0, 100], a/b in about [-110, 110].
* numpy helpers: L of a photo at the network's working size, and exact normalised Lab for
  training crops (8-bit input through a 256-entry lookup table). The full-resolution
  recombination (the photo's L + upsampled ab -> RGB, L-preserving gamut mapping) is compiled, in
  `colorgan_hub.fullres`.

The network sees L/50 - 1 and ab/110 (both in [-1, 1]); those constants are named below and used
everywhere else through `normalize_*` / `denormalize_*`.
"""

from __future__ import annotations

import cv2
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
    import kornia.color  # here, not at the top: inference never needs it, and it costs a quarter second to import

    return kornia.color.rgb_to_lab(rgb)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Lab (B, 3, H, W) -> sRGB (B, 3, H, W), clipped to [0, 1] unless `clip=False`."""
    import kornia.color

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


def uint8_to_model_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """8-bit sRGB (B, 3, H, W) uint8 on any device -> normalised (L (B, 1, H, W), ab (B, 2, H, W))
    float32, also under autocast (Lab needs the precision): training batches, the detector."""
    with torch.autocast(rgb.device.type, enabled=False):
        return rgb_to_model_lab(rgb.float() / 255.0)


def model_lab_to_rgb(l_norm: torch.Tensor, ab_norm: torch.Tensor) -> torch.Tensor:
    """Normalised L (B, 1, H, W) and ab (B, 2, H, W) -> sRGB (B, 3, H, W) in [0, 1]."""
    return lab_to_rgb(torch.cat([denormalize_l(l_norm), denormalize_ab(ab_norm)], dim=1))


def gray_srgb_from_l(l_norm: torch.Tensor) -> torch.Tensor:
    """Normalised L (B, 1, H, W) in [-1, 1] -> the sRGB gray value (B, 1, H, W) in [0, 1] of that
    lightness (a = b = 0): Y from L by the inverse Lab companding, then the sRGB transfer curve.
    What an ImageNet network sees when a black-and-white photo is shown to it."""
    f = (denormalize_l(l_norm).clamp(0.0, 100.0) + 16.0) / 116.0
    y = torch.where(f > 6.0 / 29.0, f**3, (f - 16.0 / 116.0) / _LAB_KAPPA)  # relative luminance, white = 1
    y = y.clamp(0.0, 1.0)
    return torch.where(y <= 0.0031308, 12.92 * y, 1.055 * y.clamp_min(0.0031308) ** (1 / 2.4) - 0.055)


# ----------------------------------------------------------------------------------------------
# numpy path (working-size L, training crops; its tables also build `fullres`'s).


def _srgb_decode(v: np.ndarray) -> np.ndarray:
    """sRGB in [0, 1] -> linear light, in v's float precision."""
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


_SRGB_TO_LINEAR_LUT = _srgb_decode(np.arange(256) / 255.0).astype(np.float32)[None]  # (1, 256): cv2.LUT's shape


def _srgb_to_linear(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return cv2.LUT(rgb, _SRGB_TO_LINEAR_LUT)  # exact for 8-bit input, multithreaded
    return _srgb_decode(np.clip(rgb.astype(np.float32, copy=False), 0.0, 1.0)).astype(np.float32, copy=False)


def _lab_f(t: np.ndarray) -> np.ndarray:
    """The Lab companding function, on an array of relative X, Y or Z (float32 or float64)."""
    f = np.cbrt(t)
    dark = t <= _LAB_EPSILON
    if dark.any():
        f[dark] = _LAB_KAPPA * t[dark] + 16.0 / 116.0
    return f


# How black-and-white emulsions saw colour: weights on linear-light R, G, B (summing to 1, so white
# stays white). The eye's luminance is what a colour photo's L measures; old films differ. An
# orthochromatic film (most photographs before the 1930s) is blind to red: skies come out white and
# red things dark. A blue-sensitive plate (the 19th century) sees almost only blue. Unfiltered
# panchromatic film sees red, but more blue than the eye does. Approximate, from the emulsions'
# published sensitivity curves; the training draws responses between luminance and these.
FILM_RESPONSES = {
    "luminance": tuple(_Y_WEIGHTS.tolist()),  # relative luminance Y: the colour photo's own L
    "panchromatic": (0.30, 0.45, 0.25),
    "orthochromatic": (0.03, 0.52, 0.45),
    "blue-sensitive": (0.0, 0.15, 0.85),
}


def film_lightness(rgb: np.ndarray, weights=FILM_RESPONSES["luminance"], gamma: float = 1.0, black: float = 0.0, white: float = 100.0) -> np.ndarray:
    """8-bit sRGB (H, W, 3) -> the L (H, W) float32 in [0, 100] of a black-and-white photograph of
    it: a film with spectral `weights` on linear R, G, B, a tone curve Y ** gamma, printed between
    L = `black` and L = `white` (a faded print: lifted blacks, dull whites). The defaults give the
    colour photo's own L (`rgb_to_l_numpy`)."""
    y = cv2.transform(_srgb_to_linear(rgb), np.asarray(weights, np.float32)[None])  # (H, W), white = 1
    if gamma != 1.0:
        y = np.power(np.clip(y, 0.0, 1.0), gamma, dtype=np.float32)
    lightness = _lab_f(y)
    lightness *= 116.0
    lightness -= 16.0
    if black != 0.0 or white != 100.0:
        lightness *= (white - black) / 100.0
        lightness += black
    return lightness


def rgb_to_l_numpy(rgb: np.ndarray) -> np.ndarray:
    """sRGB (H, W, 3), uint8 or float in [0, 1] -> CIE L (H, W) float32 in [0, 100]."""
    return film_lightness(rgb)


L_OF_GRAY8 = rgb_to_l_numpy(np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2))[:, 0]  # (256,) float32


def gray_to_l_numpy(gray: np.ndarray) -> np.ndarray:
    """8-bit gray (H, W) uint8 -> CIE L (H, W) float32 in [0, 100], by table (as `rgb_to_l_numpy` of R = G = B)."""
    return L_OF_GRAY8[gray]


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


def tone_residual(rgb: np.ndarray, levels: int = 20, share: float = 75.0) -> float:
    """How far an sRGB image's colour is from being a function of its lightness alone, in Lab units.

    rgb: (H, W, 3) uint8, best a thumbnail (area-averaged: less JPEG noise). Pixels are grouped
    by L into `levels` bands; within each band, each pixel's distance in ab from the band's
    median colour; the `share`-th percentile of those distances. A gray or toned print (sepia,
    cyanotype, selenium, split toning: the tone may change with L but not across the picture)
    stays near 0 up to compression noise; a colour photo, with different colours at the same
    lightness, does not. A percentile, not the mean: JPEG's chroma errors sit on a few edge pixels.
    """
    lab = rgb_to_model_lab_numpy(rgb).reshape(3, -1)
    band = np.clip(((lab[0] + 1.0) * 0.5 * levels).astype(np.int64), 0, levels - 1)
    ab = lab[1:] * AB_SCALE
    distance = np.empty(ab.shape[1], np.float32)
    for k in np.unique(band):
        members = band == k
        distance[members] = np.hypot(*(ab[:, members] - np.median(ab[:, members], axis=1, keepdims=True)))
    return float(np.percentile(distance, share))


# ----------------------------------------------------------------------------------------------
# Quantised ab for the classification head (Zhang et al. 2016).

AB_RANGE = 110.0  # bin centres span [-AB_RANGE, AB_RANGE] in a and b


def ab_bin_centres(bin_size: float = 10.0) -> torch.Tensor:
    """Centres (K, 2) in Lab units of the `bin_size` grid cells over [-110, 110]^2 that meet the
    sRGB gamut: some point of the cell (its centre, corners or edge midpoints) is a displayable
    colour at some lightness L in [0, 100]. 262 cells for the 10-unit grid (Zhang et al. keep 313
    with a looser test). Row-major in a, then b; deterministic, so a saved model's bins can be
    checked against it."""
    grid = torch.arange(-AB_RANGE, AB_RANGE + 1e-6, bin_size, dtype=torch.float64)
    a, b = torch.meshgrid(grid, grid, indexing="ij")
    lightness = torch.linspace(0.0, 100.0, 201, dtype=torch.float64)
    meets = torch.zeros_like(a, dtype=torch.bool)
    half = bin_size / 2
    for da in (-half, 0.0, half):
        for db in (-half, 0.0, half):
            lab = torch.stack(
                [
                    lightness[:, None, None].expand(-1, *a.shape),
                    (a + da)[None].expand(len(lightness), -1, -1),
                    (b + db)[None].expand(len(lightness), -1, -1),
                ],
                dim=1,
            )  # (L, 3, A, B)
            rgb = lab_to_rgb(lab.float(), clip=False)
            meets |= ((rgb >= 0) & (rgb <= 1)).all(dim=1).any(dim=0)
    return torch.stack([a[meets], b[meets]], dim=1).float()  # (K, 2)

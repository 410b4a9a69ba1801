"""Full-resolution recombination: the photo's own lightness + the network's upsampled ab -> 8-bit sRGB.

This is the step that makes a 12-megapixel photo affordable. Done with array operations it takes
a dozen passes over the image (L, two resizes, a merge, Lab -> RGB, a gamut check, a gamut fix,
rounding); here it is one pass, compiled by numba and spread over the CPU cores, per pixel:

1. L of the input, exactly: Y is a sum of three 256-entry tables (8-bit sRGB -> weighted linear
   light), then f(Y) = cbrt(Y) from a 65,537-entry table with linear interpolation (error below
   1e-5 L). 8-bit gray input uses one table; high-bit-depth input arrives as float L.
2. a and b, bilinear from the low-resolution prediction, with OpenCV's INTER_LINEAR sampling
   (pixel centres aligned, edges clamped).
3. Lab -> XYZ -> linear sRGB. Where that leaves the gamut, chroma is reduced at the same L and
   hue until it fits (the largest fitting fraction: first from a (L, hue) table of the largest
   in-gamut chroma, less 0.5%, then by bisection in the rare cells the table overestimates), so
   lightness is never traded for colour. Clipping R, G and B one by one, as OpenCV's conversion
   and most pipelines do, changes L and shifts hue.
4. Linear -> 8-bit sRGB with exact round-to-nearest, from a table of the 255 code boundaries
   (bins of 1/4096 hold at most one boundary each), without a power function.

Compiled on first use (a few seconds) and cached on disk by numba (`cache=True`).
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange

from .color import _RGB_FROM_XYZ, _WHITE_D65, _XYZ_FROM_RGB_NORM, _lab_f, _srgb_decode

_GAMUT_TOLERANCE = 1e-4  # linear RGB; covers the rounding of the matrices at white


def _finv_np(t: np.ndarray) -> np.ndarray:
    return np.where(t > 6.0 / 29.0, t * t * t, (3.0 * (6.0 / 29.0) ** 2) * (t - 4.0 / 29.0))


# 1. L: Y contributions of each 8-bit channel, and f(Y) on a fine grid of Y.
_LINEAR = _srgb_decode(np.arange(256) / 255.0)
_Y_FROM_RGB8 = (_XYZ_FROM_RGB_NORM[1].astype(np.float64)[:, None] * _LINEAR[None]).astype(np.float32)  # (3, 256)
_Y_FROM_GRAY8 = _LINEAR.astype(np.float32)  # R = G = B: Y is the linear value (the weights sum to 1)
_F_STEPS = 1 << 16
_F_OF_Y = _lab_f(np.arange(_F_STEPS + 2) / _F_STEPS).astype(np.float32)  # one spare entry past Y = 1

# 4. Linear light -> 8-bit code: the code at each bin's start, and the boundary inside the bin.
_CODE_BINS = 4096
_BOUNDARIES = _srgb_decode((np.arange(1, 256) - 0.5) / 255.0)  # code k starts here (round to nearest)
_CODE_AT_BIN = np.searchsorted(_BOUNDARIES, np.arange(_CODE_BINS + 1) / _CODE_BINS, side="right").astype(np.uint8)
_STEP_IN_BIN = np.full(_CODE_BINS + 1, 2.0, np.float32)  # 2.0: no boundary in this bin
_STEP_IN_BIN[np.floor(_BOUNDARIES * _CODE_BINS).astype(np.int64)] = _BOUNDARIES
assert len(np.unique(np.floor(_BOUNDARIES * _CODE_BINS))) == 255, "a code bin holds two boundaries"

_M = _RGB_FROM_XYZ.astype(np.float32)
_XN, _ZN = float(_WHITE_D65[0]), float(_WHITE_D65[2])


# 3. The gamut: exact test (vectorised, for building the table) and the max-chroma table.
def fits(l: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where Lab lies in the sRGB gamut: linear RGB, NOT clipped, within [0, 1]."""
    fy = (np.asarray(l, np.float64) + 16.0) / 116.0
    xyz = np.stack([_XN * _finv_np(fy + np.asarray(a) / 500.0), _finv_np(fy), _ZN * _finv_np(fy - np.asarray(b) / 200.0)])
    rgb = np.tensordot(_RGB_FROM_XYZ.astype(np.float64), xyz, axes=1)
    return np.all((rgb >= -_GAMUT_TOLERANCE) & (rgb <= 1.0 + _GAMUT_TOLERANCE), axis=0)


def largest_fitting(l, a, b, hi, steps: int) -> np.ndarray:
    """Per element, the largest s in [0, hi] (bisection) with (l, s*a, s*b) in gamut; s = 0 fits."""
    lo, hi = np.zeros(np.shape(hi)), np.asarray(hi, np.float64).copy()
    for _ in range(steps):
        mid = (lo + hi) * 0.5
        ok = fits(l, a * mid, b * mid)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return lo


# Hue as a "diamond angle" p in [0, 4) (a > 0, b = 0 at 0; a = 0, b > 0 at 1; ...): monotone in
# the true angle, one division instead of atan2.
_L_STEPS, _P_STEPS = 4, 512  # table: every 0.25 L, every 1/128 of the diamond's quarter


def _diamond_direction(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit (a, b) direction of diamond angle p."""
    a = np.select([p < 1, p < 2, p < 3], [1 - p, 1 - p, p - 3], p - 3)
    b = np.select([p < 1, p < 2, p < 3], [p, 2 - p, 2 - p], p - 4)
    norm = np.hypot(a, b)
    return a / norm, b / norm


def _max_chroma_table() -> np.ndarray:
    """(401, 513) largest in-gamut chroma at L = 0, 0.25, ..., 100 and each table hue."""
    l, p = np.meshgrid(np.arange(100 * _L_STEPS + 1) / _L_STEPS, np.arange(_P_STEPS + 1) * 4.0 / _P_STEPS, indexing="ij")
    a, b = _diamond_direction(p)
    return largest_fitting(l, a, b, np.full(l.shape, 200.0), steps=22).astype(np.float32)


_MAX_CHROMA = None  # built on first use (about 0.5 s)
_MAX_CHROMA_LOCK = threading.Lock()


def _tables():
    global _MAX_CHROMA
    with _MAX_CHROMA_LOCK:
        if _MAX_CHROMA is None:
            _MAX_CHROMA = _max_chroma_table()
    return _Y_FROM_RGB8, _Y_FROM_GRAY8, _F_OF_Y, _M, _CODE_AT_BIN, _STEP_IN_BIN, _MAX_CHROMA


# ---------------------------------------------------------------------------------------------
# The compiled per-pixel path.

_JIT = dict(fastmath=True, error_model="numpy")  # no Python division checks: the loops vectorise


@njit(inline="always", **_JIT)
def _finv(t):
    return t * t * t if t > np.float32(6.0 / 29.0) else np.float32(3.0 * (6.0 / 29.0) ** 2) * (t - np.float32(4.0 / 29.0))


@njit(inline="always", **_JIT)
def _linear_rgb(fy, y, a, b, m):
    x = np.float32(_XN) * _finv(fy + a * np.float32(1.0 / 500.0))
    z = np.float32(_ZN) * _finv(fy - b * np.float32(1.0 / 200.0))
    return (m[0, 0] * x + m[0, 1] * y + m[0, 2] * z, m[1, 0] * x + m[1, 1] * y + m[1, 2] * z, m[2, 0] * x + m[2, 1] * y + m[2, 2] * z)


@njit(inline="always", **_JIT)
def _outside(r, g, b):
    lo, hi = np.float32(-_GAMUT_TOLERANCE), np.float32(1.0 + _GAMUT_TOLERANCE)
    return r < lo or g < lo or b < lo or r > hi or g > hi or b > hi


@njit(inline="always", **_JIT)
def _diamond(a, b):
    if b >= 0:
        return b / (a + b) if a >= 0 else 1 + (-a) / (-a + b)
    return 2 + (-b) / (-a - b) if a < 0 else 3 + a / (a - b)


@njit(inline="always", **_JIT)
def _code(v, code_at_bin, step_in_bin):
    if v <= 0.0:
        return np.uint8(0)
    if v >= 1.0:
        return np.uint8(255)
    n = int(v * np.float32(_CODE_BINS))
    return code_at_bin[n] + np.uint8(v >= step_in_bin[n])


@njit(inline="always", **_JIT)
def _write_fitted(out, i, j, fy, y, a, b, r, g, bl, m, code_at_bin, step_in_bin, max_chroma):
    """Lab (as f(Y), Y, a, b; linear RGB r, g, bl) -> 8-bit sRGB into out[i, j, :3], chroma
    reduced to fit the gamut."""
    if _outside(r, g, bl):
        chroma = np.sqrt(a * a + b * b)
        li = min(max((np.float32(116.0) * fy - np.float32(16.0)) * np.float32(_L_STEPS), np.float32(0.0)), np.float32(100 * _L_STEPS - 0.001))
        pi = min(max(_diamond(a, b) * np.float32(_P_STEPS / 4.0), np.float32(0.0)), np.float32(_P_STEPS - 0.001))
        l0, p0 = int(li), int(pi)
        limit = min(min(max_chroma[l0, p0], max_chroma[l0 + 1, p0]), min(max_chroma[l0, p0 + 1], max_chroma[l0 + 1, p0 + 1]))
        hi = min(np.float32(1.0), np.float32(0.995) * limit / max(chroma, np.float32(1e-6)))
        r, g, bl = _linear_rgb(fy, y, a * hi, b * hi, m)
        if _outside(r, g, bl):  # the table overestimated here: bisect below it
            lo = np.float32(0.0)
            for _ in range(10):
                mid = np.float32(0.5) * (lo + hi)
                r, g, bl = _linear_rgb(fy, y, a * mid, b * mid, m)
                if _outside(r, g, bl):
                    hi = mid
                else:
                    lo = mid
            r, g, bl = _linear_rgb(fy, y, a * lo, b * lo, m)
    out[i, j, 0] = _code(r, code_at_bin, step_in_bin)
    out[i, j, 1] = _code(g, code_at_bin, step_in_bin)
    out[i, j, 2] = _code(bl, code_at_bin, step_in_bin)


@njit(cache=True, **_JIT)
def _column_weights(width, w):
    """OpenCV INTER_LINEAR sampling along one axis: left source index and weight per output pixel."""
    left, frac = np.empty(width, np.int64), np.empty(width, np.float32)
    for j in range(width):
        s = min(max((j + 0.5) * (w / width) - 0.5, 0.0), w - 1.0)
        left[j] = int(s)
        frac[j] = s - left[j]
    return left, frac


@njit(inline="always", **_JIT)
def _ab_row(ab, i, height):
    """Row i of ab upsampled vertically (still at low width): (a, b), each with one repeated
    column at the end so that left + 1 is always valid."""
    h, w = ab.shape[0], ab.shape[1]
    s = min(max((i + 0.5) * (h / height) - 0.5, 0.0), h - 1.0)
    r0 = int(s)
    r1 = min(r0 + 1, h - 1)
    f = np.float32(s - r0)
    a, b = np.empty(w + 1, np.float32), np.empty(w + 1, np.float32)
    for c in range(w):
        a[c] = (1 - f) * ab[r0, c, 0] + f * ab[r1, c, 0]
        b[c] = (1 - f) * ab[r0, c, 1] + f * ab[r1, c, 1]
    a[w], b[w] = a[w - 1], b[w - 1]
    return a, b


@njit(inline="always", **_JIT)
def _f_of_y(f_table, y):
    t = y * np.float32(_F_STEPS)
    k = np.int32(t)
    f0 = f_table[k]
    return f0 + (t - np.float32(k)) * (f_table[k + 1] - f0)


@njit(inline="always", **_JIT)
def _finish_row(out, i, y, fy, ab, left, frac, m, code_at_bin, step_in_bin, max_chroma):
    """One output row from its Y and f(Y): simple loops over contiguous float32 rows that the
    compiler vectorises (ab, Lab -> linear RGB, 8-bit codes), then the rare out-of-gamut pixels."""
    width = y.shape[0]
    row_a, row_b = _ab_row(ab, i, out.shape[0])
    a, b = np.empty(width, np.float32), np.empty(width, np.float32)
    for j in range(width):
        c, f = left[j], frac[j]
        black_or_white = (y[j] <= np.float32(0.0)) | (y[j] >= np.float32(1.0))  # no chroma fits there
        a[j] = np.float32(0.0) if black_or_white else row_a[c] + f * (row_a[c + 1] - row_a[c])
        b[j] = np.float32(0.0) if black_or_white else row_b[c] + f * (row_b[c + 1] - row_b[c])
    rgb = np.empty((3, width), np.float32)
    outside = 0
    for j in range(width):
        r, g, bl = _linear_rgb(fy[j], y[j], a[j], b[j], m)
        gray = (a[j] == np.float32(0.0)) & (b[j] == np.float32(0.0))  # exactly gray, not to the matrices' rounding
        rgb[0, j], rgb[1, j], rgb[2, j] = (y[j], y[j], y[j]) if gray else (r, g, bl)
        outside += np.int32(_outside(r, g, bl))
    dst = out[i]
    for ch in range(3):
        for j in range(width):
            v = min(max(rgb[ch, j], np.float32(0.0)), np.float32(0.9999999))
            n = np.int32(v * np.float32(_CODE_BINS))
            dst[j, ch] = code_at_bin[n] + np.uint8(v >= step_in_bin[n])
    if outside:
        for j in range(width):
            if _outside(rgb[0, j], rgb[1, j], rgb[2, j]):
                _write_fitted(out, i, j, fy[j], y[j], a[j], b[j], rgb[0, j], rgb[1, j], rgb[2, j], m, code_at_bin, step_in_bin, max_chroma)


@njit(parallel=True, cache=True, **_JIT)
def _recombine_rgb8(rgb, ab, y_table, f_table, m, code_at_bin, step_in_bin, max_chroma, out):
    height, width = rgb.shape[0], rgb.shape[1]
    left, frac = _column_weights(width, ab.shape[1])
    y0, y1, y2 = y_table[0], y_table[1], y_table[2]
    for i in prange(height):
        src = rgb[i]
        y, fy = np.empty(width, np.float32), np.empty(width, np.float32)
        for j in range(width):
            y[j] = y0[src[j, 0]] + y1[src[j, 1]] + y2[src[j, 2]]
        for j in range(width):
            fy[j] = _f_of_y(f_table, y[j])
        _finish_row(out, i, y, fy, ab, left, frac, m, code_at_bin, step_in_bin, max_chroma)


@njit(parallel=True, cache=True, **_JIT)
def _recombine_gray8(gray, ab, y_table, f_table, m, code_at_bin, step_in_bin, max_chroma, out):
    height, width = gray.shape[0], gray.shape[1]
    left, frac = _column_weights(width, ab.shape[1])
    fy_of_gray = np.empty(256, np.float32)
    for v in range(256):
        fy_of_gray[v] = _f_of_y(f_table, y_table[v])
    for i in prange(height):
        src = gray[i]
        y, fy = np.empty(width, np.float32), np.empty(width, np.float32)
        for j in range(width):
            y[j] = y_table[src[j]]
            fy[j] = fy_of_gray[src[j]]
        _finish_row(out, i, y, fy, ab, left, frac, m, code_at_bin, step_in_bin, max_chroma)


@njit(parallel=True, cache=True, **_JIT)
def _recombine_l(l, ab, m, code_at_bin, step_in_bin, max_chroma, out):
    height, width = l.shape[0], l.shape[1]
    left, frac = _column_weights(width, ab.shape[1])
    for i in prange(height):
        y, fy = np.empty(width, np.float32), np.empty(width, np.float32)
        for j in range(width):
            fy[j] = (min(max(l[i, j], np.float32(0.0)), np.float32(100.0)) + np.float32(16.0)) * np.float32(1.0 / 116.0)
            y[j] = _finv(fy[j])
        _finish_row(out, i, y, fy, ab, left, frac, m, code_at_bin, step_in_bin, max_chroma)


def recombine(source: np.ndarray, ab_small: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """The input's lightness + low-resolution ab -> sRGB uint8 (H, W, 3), or (H, W, 4) with alpha.

    source: the full-resolution input, as 8-bit sRGB (H, W, 3) uint8, 8-bit gray (H, W) uint8, or
    CIE L (H, W) float32 in [0, 100] (high-bit-depth input). ab_small: (h, w, 2) in Lab units,
    upsampled bilinearly. The output's L equals the input's (to 8-bit rounding); chroma is
    reduced where the colour would leave the sRGB gamut.
    """
    y_rgb, y_gray, f_table, m, code_at_bin, step_in_bin, max_chroma = _tables()
    height, width = source.shape[:2]
    ab = np.ascontiguousarray(ab_small, dtype=np.float32)
    if ab.ndim != 3 or ab.shape[2] != 2 or ab.shape[0] < 1 or ab.shape[1] < 1:
        raise ValueError(f"ab_small must be (h, w, 2), got {ab.shape}")
    out = np.empty((height, width, 3 if alpha is None else 4), np.uint8)
    if source.dtype == np.uint8 and source.ndim == 3 and source.shape[2] == 3:
        _recombine_rgb8(np.ascontiguousarray(source), ab, y_rgb, f_table, m, code_at_bin, step_in_bin, max_chroma, out)
    elif source.dtype == np.uint8 and source.ndim == 2:
        _recombine_gray8(np.ascontiguousarray(source), ab, y_gray, f_table, m, code_at_bin, step_in_bin, max_chroma, out)
    elif np.issubdtype(source.dtype, np.floating) and source.ndim == 2:
        _recombine_l(np.ascontiguousarray(source, dtype=np.float32), ab, m, code_at_bin, step_in_bin, max_chroma, out)
    else:
        raise ValueError(f"source must be (H, W, 3) uint8 RGB, (H, W) uint8 gray or (H, W) float L, got {source.shape} {source.dtype}")
    if alpha is not None:
        out[..., 3] = alpha
    return out


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the 8-bit RGB and gray paths now, not on the
    first photo: a few seconds each the very first time, well under one once cached. Both as
    writable arrays and as read-only ones (numpy views of PIL images, what the pipeline passes):
    numba compiles each separately. Then the float L path (upscaled photos, high bit depth)."""
    ab = np.zeros((2, 2, 2), np.float32)
    for source in (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint8)):
        recombine(source, ab)
        source.flags.writeable = False
        recombine(source, ab)
    recombine(np.zeros((4, 4), np.float32), ab)

"""The one inference path: photo in, colorized photo out (the realness score: `realness.py`).

The CLI, the Space, validation during training, evaluation and the tests all come through here.
The generator runs at a working size (long side `size`, aspect kept, symmetric padding to the
multiple the U-Net needs); its ab prediction is upsampled bilinearly to the full size and
recombined with the ORIGINAL full-resolution L, so the output keeps every detail and the exact
lightness of the input (with `upscale`, the L the upscaler made of it; with `variations`,
several decodings of the same network output). Device (cuda > mps > cpu) and dtype (bf16/fp16
autocast on accelerators, fp32 on CPU) come from `devices.py`; every entry point is safe to call
from several threads on one model.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import cv2
import numpy as np
import torch
from PIL import Image

from .color import AB_SCALE, gray_to_l_numpy, lab_to_rgb, normalize_l, rgb_to_l_numpy
from .devices import inference, pick_device
from .fullres import recombine
from .guidance import NO_GUIDANCE, Guidance, HintError, check_hints, hint_points, match_chroma, read_reference
from .image_io import DEFAULT_MAX_PIXELS, ImageError, describe, load_image, to_rgb_alpha
from .options import MULTISCALE_FACTOR, check_options
from .upscale import load_upscaler, upscale_l


def working_shape(height: int, width: int, size: int) -> tuple[int, int]:
    """(h, w) with the long side `size`, aspect kept."""
    scale = size / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    shrinking = h < array.shape[0] or w < array.shape[1]
    return cv2.resize(array, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _lightness(img: Image.Image, size: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(full-resolution source for `recombine`, alpha or None, L at the working size).

    8-bit gray stays one channel (the common case: an old photo); 8-bit colour stays 8-bit RGB;
    high-bit-depth gray becomes float L. The working-size L is taken from the image resized in
    sRGB, as the training crops were."""
    work = working_shape(img.height, img.width, size)
    if img.mode in ("L", "RGB"):  # 8-bit: shrink with Pillow's area filter (on its own buffer, 1.7x OpenCV's speed)
        img.load()
        if img.width * img.height >= _OVERLAP_PIXELS:  # Pillow releases the GIL: shrink while numpy copies
            shrinking = _helper().submit(_shrink, img, work)
            full = np.asarray(img)
            small = shrinking.result()
        else:
            full, small = np.asarray(img), _shrink(img, work)
        return full, None, rgb_to_l_numpy(np.asarray(small.convert("RGB")))
    rgb, alpha = to_rgb_alpha(img)
    if rgb.dtype != np.uint8:  # high bit depth: keep its precision in L
        l_full = rgb_to_l_numpy(rgb)
        return l_full, alpha, resize(l_full, work)
    return rgb, alpha, rgb_to_l_numpy(resize(rgb, work))


_OVERLAP_PIXELS = 1_000_000
_HELPER = None
_HELPER_LOCK = threading.Lock()


def _helper() -> ThreadPoolExecutor:
    """One helper thread, started on first use, for work that overlaps with the caller's."""
    global _HELPER
    with _HELPER_LOCK:
        if _HELPER is None:
            _HELPER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="colorgan")
        return _HELPER


def _shrink(img: Image.Image, shape: tuple[int, int]) -> Image.Image:
    """Area average down to (h, w) (bilinear where it grows), as `resize` does for arrays."""
    h, w = shape
    if (w, h) == img.size:
        return img
    shrinking = h < img.height or w < img.width
    return img.resize((w, h), Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR)


def as_list(images) -> tuple[list, bool]:
    if isinstance(images, (list, tuple)):
        return list(images), False
    return [images], True


def same_shape_batches(shapes: list[tuple[int, int]], batch_size: int):
    """Indices grouped by identical shape, in chunks of at most batch_size."""
    by_shape = defaultdict(list)
    for i, shape in enumerate(shapes):
        by_shape[shape].append(i)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            yield indices[start : start + batch_size]


def padded_shape(shape: tuple[int, int], multiple: int) -> tuple[int, int]:
    """(h, w) rounded up to the generator's multiple."""
    return math.ceil(shape[0] / multiple) * multiple, math.ceil(shape[1] / multiple) * multiple


def predict_ab(
    model,
    l_works: list[np.ndarray],
    padded: tuple[int, int],
    device,
    temperature=None,
    vividness=None,
    variations: int | None = None,
    seed: int = 0,
    coarse_scale: float | None = None,
    guidance: Guidance | None = None,
) -> np.ndarray:
    """The network step, inside `inference`: working-size L arrays ((h, w) float32 in [0, 100],
    each at most `padded`) -> ab (B, H, W, 2) float32 in Lab units at the padded size (the
    symmetric padding goes on the bottom and right: crop [:h, :w] back); with `variations` N,
    (N, B, H, W, 2), N colorizations drawn with `seed` (`ColorGAN.sample_ab`); `coarse_scale`:
    multi-scale (`ColorGAN.class_logits`); `guidance`: the photos' hints and palettes."""
    l_batch = []
    for l_work in l_works:
        pad = ((0, padded[0] - l_work.shape[0]), (0, padded[1] - l_work.shape[1]))
        l_batch.append(np.pad(l_work, pad, mode="symmetric"))
    real_l = normalize_l(torch.from_numpy(np.stack(l_batch)[:, None]).to(device))  # (B, 1, H, W)
    real_l = real_l.contiguous(memory_format=torch.channels_last)
    if variations:
        seeds = [photo_seed(seed, l_work) for l_work in l_works]
        fake_ab = model.sample_ab(real_l, variations, seeds, temperature, vividness, coarse_scale, guidance).float() * model.ab_scale  # (N, B, 2, H, W)
        return fake_ab.permute(0, 1, 3, 4, 2).cpu().numpy()
    fake_ab = model.predict_ab(real_l, temperature, vividness, coarse_scale, guidance).float() * model.ab_scale  # (B, 2, H, W), Lab units
    return fake_ab.permute(0, 2, 3, 1).cpu().numpy()


def photo_seed(seed: int, l_work: np.ndarray) -> int:
    """The noise seed of one photo's variations: the user's seed mixed with a digest of the photo's
    working-size L (to 0.1), so that the same seed gives the same variations of a photo while
    photos of one size do not all get the same noise pattern."""
    return zlib.crc32(np.round(l_work * 10).astype(np.int16).tobytes(), seed & 0xFFFFFFFF) + (seed >> 32 << 32)


def upscaled(source: np.ndarray, alpha: np.ndarray | None, scale: int, device, max_pixels: int, name: str):
    """(L at `scale` times the size, by the bundled upscaler; the alpha resized to match): the
    full-resolution source `recombine` then colours. ImageError if the result would pass the
    pixel limit."""
    h, w = source.shape[:2]
    if h * w * scale * scale > max_pixels:
        raise ImageError(
            name,
            f"upscaled x{scale} it would be {w * scale}x{h * scale}, {h * w * scale * scale / 1e6:.1f} megapixels, "
            f"over the limit of {max_pixels / 1e6:g} (max_pixels)",
        )
    if source.dtype == np.uint8:
        l_full = gray_to_l_numpy(source) if source.ndim == 2 else rgb_to_l_numpy(source)
    else:
        l_full = source
    l_big = upscale_l(load_upscaler(scale), l_full, device)
    if alpha is not None:
        alpha = cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
    return l_big, alpha


def colorize(
    model,
    images,
    size: int | None = None,
    batch_size: int = 8,
    device=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    temperature: float | None = None,
    vividness: float | None = None,
    return_exceptions: bool = False,
    upscale: int = 1,
    variations: int | None = None,
    seed: int = 0,
    multiscale: bool | None = None,
    hints=None,
    reference=None,
):
    """Colorize one image (returns a PIL image) or a list (returns a list, run in batches).

    Each image may be a path, a PIL image or numpy array of any mode. The result is RGB (RGBA if
    the input had alpha) at the input's full size, with the input's L channel. Classification
    head: `vividness` (0 to 1) from muted and safe to bold and risky, `temperature` (> 0) the
    annealing of the colour distribution; both default to the model's config.

    `upscale` 2 or 4: the photo's L is first brought to that many times its width and height by
    the bundled upscaler (`colorgan_hub.upscale`), and the result has that size and that L; the
    result's pixels count against `max_pixels`. `variations` N: each result is a list of N
    different plausible colorizations instead of one image, the same ones for the same `seed`.
    `multiscale` (the default for a model with the classification head; False: one scale, about
    3x faster): the network sees each photo at 1.5x the working size and at the working size, and
    their colour distributions are averaged (docs/bundled-models.md has what it gains).

    `hints` (a model with guidance inputs, such as the bundled one): [(x, y, colour), ...], x and y
    in the input photo's pixels (top-left origin, floats allowed, also with `upscale`), colour
    "#rrggbb" or (r, g, b) of 0-255 (or `guidance.Chroma(a, b)`): that colour's chroma spreads over
    the region the point belongs to; the lightness stays the photo's. For a list of photos, a list
    of such lists (None for a photo without). `reference`: a colour photo (path, PIL image or
    array) whose palette every result takes. Both work with every other option; a model without
    guidance inputs refuses them (`guidance.HintError`, a ValueError, as for a bad hint).

    A list is read `batch_size` photos at a time, so memory holds one batch of full-size photos
    however long the list. An image that cannot be read raises ImageError naming it; with
    `return_exceptions=True` (as in `asyncio.gather`) its place in the returned list holds that
    ImageError instead, and every other photo is still colorized.
    """
    check_options(temperature, vividness, batch_size, upscale, variations, seed)
    images, single = as_list(images)
    per_photo_hints = _hints_per_photo(hints, single, len(images))
    ref = None
    if any(per_photo_hints) or reference is not None:
        if getattr(model, "guidance", None) is None:
            raise HintError(NO_GUIDANCE)
        if reference is not None:
            ref = read_reference(reference, model.generator.bins, max_pixels)
    size = size or model.image_size
    coarse_scale = None
    if multiscale is None:
        multiscale = model.head == "classification"
    if multiscale:  # a regression model refuses it in ColorGAN.predict_ab
        size, coarse_scale = round(size * MULTISCALE_FACTOR), 1 / MULTISCALE_FACTOR
    device = torch.device(device) if device is not None else pick_device()
    multiple = model.generator.multiple

    results = [None] * len(images)
    with inference(model, device):
        for start in range(0, len(images), batch_size):
            prepared = {}
            for i in range(start, min(start + batch_size, len(images))):
                name = describe(images[i], i)
                try:
                    img = load_image(images[i], max_pixels=max_pixels, source=name)
                    photo_hints = check_hints(per_photo_hints[i], img.width, img.height, name)
                    source, alpha, l_work = _lightness(img, size)
                    if upscale > 1:
                        source, alpha = upscaled(source, alpha, upscale, device, max_pixels, name)
                except (ImageError, HintError) as error:
                    if single or not return_exceptions:
                        raise
                    results[i] = error
                    continue
                scale = l_work.shape[1] / img.width  # input pixels -> working pixels
                prepared[i] = (source, alpha, l_work, padded_shape(l_work.shape, multiple), [(x * scale, y * scale, a, b) for x, y, a, b in photo_hints])
                del img
            order = list(prepared)
            for group in same_shape_batches([prepared[i][3] for i in order], batch_size):
                indices = [order[k] for k in group]
                guidance = None
                if ref is not None or any(prepared[i][4] for i in indices):
                    guidance = Guidance(hint_points([prepared[i][4] for i in indices]), None if ref is None else ref.palette.expand(len(indices), -1))
                fake_ab = predict_ab(
                    model, [prepared[i][2] for i in indices], prepared[indices[0]][3], device, temperature, vividness, variations, seed, coarse_scale, guidance
                )
                for k, i in enumerate(indices):
                    source, alpha, l_work, _, _ = prepared.pop(i)
                    h, w = l_work.shape
                    photo_ab = [ab[k, :h, :w] for ab in fake_ab] if variations else [fake_ab[k, :h, :w]]
                    if ref is not None:  # the reference's saturation too, not only its hues
                        photo_ab = [match_chroma(ab, ref.chroma) for ab in photo_ab]
                    colored = [Image.fromarray(recombine(source, ab, alpha)) for ab in photo_ab]  # full size, the input's L
                    results[i] = colored if variations else colored[0]
                    del source  # free the full-size input as soon as it is done
    return results[0] if single else results


def _hints_per_photo(hints, single: bool, count: int) -> list:
    """`colorize`'s hints as one entry per photo (None for none)."""
    if hints is None:
        return [None] * count
    if single:
        return [hints]
    if not isinstance(hints, (list, tuple)) or len(hints) != count:
        raise HintError(f"hints for a list of {count} photos must be a list of {count} per-photo lists (None for a photo without)")
    return list(hints)


class Suggestion(NamedTuple):
    """A colour `suggest_colours` offers: "#rrggbb", its (r, g, b), and the share of the model's
    colour distribution at the point that lies near it."""

    colour: str
    rgb: tuple[int, int, int]
    probability: float


def suggest_colours(
    model,
    image,
    x: float,
    y: float,
    k: int = 6,
    hints=None,
    reference=None,
    size: int | None = None,
    multiscale: bool | None = None,
    vividness: float | None = None,
    device=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Suggestion]:
    """The `k` most likely colours at (x, y) (the photo's pixels, top-left origin) from the
    classification head's distribution there, with the photo's other `hints` and `reference`
    taken into account: distinct colours (a colour's neighbours within 20 Lab units count with
    it), as RGB at that point's lightness (chroma reduced to fit sRGB), most likely first. The
    distribution is the one `colorize` decodes (its `vividness` correction included)."""
    if model.head != "classification":
        raise ValueError("colour suggestions need a model with the classification head (this one regresses ab)")
    if not 1 <= k <= 32:
        raise ValueError(f"k must be between 1 and 32, got {k}")
    name = describe(image)
    img = load_image(image, max_pixels=max_pixels, source=name)
    check_hints([(x, y, "#808080")], img.width, img.height, name)  # the point itself must lie on the photo
    photo_hints = check_hints(hints, img.width, img.height, name)
    if (photo_hints or reference is not None) and getattr(model, "guidance", None) is None:
        raise HintError(NO_GUIDANCE)
    palette = None if reference is None else read_reference(reference, model.generator.bins, max_pixels).palette
    size = size or model.image_size
    multiscale = model.head == "classification" if multiscale is None else multiscale
    if multiscale:
        size = round(size * MULTISCALE_FACTOR)
    source, _, l_work = _lightness(img, size)
    scale = l_work.shape[1] / img.width
    device = torch.device(device) if device is not None else pick_device()
    padded = padded_shape(l_work.shape, model.generator.multiple)
    l_pad = np.pad(l_work, ((0, padded[0] - l_work.shape[0]), (0, padded[1] - l_work.shape[1])), mode="symmetric")
    guidance = None
    if photo_hints or palette is not None:
        guidance = Guidance(hint_points([[(hx * scale, hy * scale, a, b) for hx, hy, a, b in photo_hints]]), None if palette is None else palette[None])
    with inference(model, device):
        real_l = normalize_l(torch.from_numpy(l_pad)[None, None].to(device))
        logits = model.class_logits(real_l, 1 / MULTISCALE_FACTOR if multiscale else None, guidance).float()  # (1, K, h, w)
        vividness = model.vividness if vividness is None else vividness
        weights = model.generator.rebalancing_weights(model.class_rebalancing)
        logits = logits - (1 - vividness) * torch.log(weights).view(1, -1, 1, 1)
        h, w = logits.shape[-2:]
        where = torch.tensor([[[[x * scale / 2 / w * 2 - 1, y * scale / 2 / h * 2 - 1]]]], device=device, dtype=torch.float32)
        probs = torch.softmax(torch.nn.functional.grid_sample(logits, where, align_corners=False)[0, :, 0, 0], dim=0).cpu()  # (K,)
    bins = model.generator.bins.float().cpu() * AB_SCALE  # (K, 2) Lab units
    near = torch.cdist(bins, bins) <= 20.0
    mass = near.float() @ probs  # each colour with its neighbours
    chosen = []
    for index in torch.argsort(mass, descending=True).tolist():
        if any(near[index, c] for c in chosen):
            continue
        chosen.append(index)
        if len(chosen) == k:
            break
    lightness = float(_point_lightness(source, x, y))
    return [Suggestion(*_displayable(lightness, *bins[i].tolist()), float(mass[i])) for i in chosen]


def _point_lightness(source: np.ndarray, x: float, y: float) -> float:
    """L (0-100) of the full-resolution source (uint8 gray or RGB, or float L) at (x, y)."""
    row, col = min(int(y), source.shape[0] - 1), min(int(x), source.shape[1] - 1)
    if source.dtype != np.uint8:
        return float(source[row, col])
    pixel = source[row : row + 1, col : col + 1]
    return float((gray_to_l_numpy(pixel) if pixel.ndim == 2 else rgb_to_l_numpy(pixel))[0, 0])


def _displayable(lightness: float, a: float, b: float) -> tuple[str, tuple[int, int, int]]:
    """("#rrggbb", (r, g, b)) of Lab (lightness, a, b), its chroma reduced until it fits sRGB."""
    shrink = torch.linspace(1.0, 0.0, 41)
    lab = torch.stack([torch.full_like(shrink, lightness), a * shrink, b * shrink], dim=1)[:, :, None, None]  # (41, 3, 1, 1)
    rgb = lab_to_rgb(lab, clip=False)[:, :, 0, 0]
    fits = ((rgb >= -1e-3) & (rgb <= 1 + 1e-3)).all(dim=1)
    best = rgb[int(fits.float().argmax())].clamp(0, 1)
    r, g, b8 = (int(round(float(c) * 255)) for c in best)
    return f"#{r:02x}{g:02x}{b8:02x}", (r, g, b8)

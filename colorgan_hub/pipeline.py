"""The one inference path: photo in, colorized photo out (the realness score: `realness.py`).

The CLI, the Space, validation during training, evaluation and the tests all come through here.
The generator runs at a working size (long side `size`, aspect kept, symmetric padding to the
multiple the U-Net needs); its ab prediction is upsampled bilinearly to the full size and
recombined with the ORIGINAL full-resolution L, so the output keeps every detail and the exact
lightness of the input (with `upscale`, the L the upscaler made of it; with `variations`,
several decodings of the same network output). Device (cuda > mps > cpu) and dtype (bf16/fp16
autocast on accelerators, fp32 on CPU) are decided here and nowhere else.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
from PIL import Image

from .color import gray_to_l_numpy, normalize_l, rgb_to_l_numpy
from .fullres import recombine
from .image_io import DEFAULT_MAX_PIXELS, ImageError, describe, load_image, to_rgb_alpha
from .upscale import SCALES, load_upscaler, upscale_l

def pick_device() -> torch.device:
    """The fastest device present: cuda, then Apple's mps, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _autocast(device: torch.device):
    """bf16 (or fp16 where bf16 is missing) on accelerators; plain fp32 on the CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    if device.type == "mps":
        return torch.autocast("mps", dtype=torch.float16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def inference(model, device):
    """Eval mode on `device` under inference_mode, restoring train mode after (validation)."""
    was_training = model.training
    if next(model.parameters()).device != device:
        model.to(device)
    model.to(memory_format=torch.channels_last)  # faster convolutions on CPU and GPU; a no-op once set
    model.eval()
    try:
        with torch.inference_mode(), _autocast(device):
            yield
    finally:
        model.train(was_training)


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


def _helper() -> ThreadPoolExecutor:
    """One helper thread, started on first use, for work that overlaps with the caller's."""
    global _HELPER
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


def predict_ab(model, l_works: list[np.ndarray], padded: tuple[int, int], device, temperature=None, vividness=None,
               variations: int | None = None, seed: int = 0, coarse_scale: float | None = None) -> np.ndarray:
    """The network step, inside `inference`: working-size L arrays ((h, w) float32 in [0, 100],
    each at most `padded`) -> ab (B, H, W, 2) float32 in Lab units at the padded size (the
    symmetric padding goes on the bottom and right: crop [:h, :w] back); with `variations` N,
    (N, B, H, W, 2), N colorizations drawn with `seed` (`ColorGAN.sample_ab`); `coarse_scale`:
    multi-scale (`ColorGAN.class_logits`)."""
    l_batch = []
    for l_work in l_works:
        pad = ((0, padded[0] - l_work.shape[0]), (0, padded[1] - l_work.shape[1]))
        l_batch.append(np.pad(l_work, pad, mode="symmetric"))
    real_l = normalize_l(torch.from_numpy(np.stack(l_batch)[:, None]).to(device))  # (B, 1, H, W)
    real_l = real_l.contiguous(memory_format=torch.channels_last)
    if variations:
        seeds = [photo_seed(seed, l_work) for l_work in l_works]
        fake_ab = model.sample_ab(real_l, variations, seeds, temperature, vividness, coarse_scale).float() * model.ab_scale  # (N, B, 2, H, W)
        return fake_ab.permute(0, 1, 3, 4, 2).cpu().numpy()
    fake_ab = model.predict_ab(real_l, temperature, vividness, coarse_scale).float() * model.ab_scale  # (B, 2, H, W), Lab units
    return fake_ab.permute(0, 2, 3, 1).cpu().numpy()


def photo_seed(seed: int, l_work: np.ndarray) -> int:
    """The noise seed of one photo's variations: the user's seed mixed with a digest of the photo's
    working-size L (to 0.1), so that the same seed gives the same variations of a photo while
    photos of one size do not all get the same noise pattern."""
    return zlib.crc32(np.round(l_work * 10).astype(np.int16).tobytes(), seed & 0xFFFFFFFF) + (seed >> 32 << 32)


def check_options(temperature=None, vividness=None, batch_size: int = 1, upscale: int = 1, variations: int | None = None, seed: int = 0) -> None:
    """ValueError, one line, for a colorize option out of its range (the CLI's exit 2)."""
    if temperature is not None and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if vividness is not None and not 0 <= vividness <= 1:
        raise ValueError(f"vividness must be in [0, 1], got {vividness}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if upscale not in (1, *SCALES):
        raise ValueError(f"upscale must be 1 (off) or one of {', '.join(map(str, SCALES))}, got {upscale}")
    if variations is not None and not 1 <= variations <= MAX_VARIATIONS:
        raise ValueError(f"variations must be between 1 and {MAX_VARIATIONS}, got {variations}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed}")


MAX_VARIATIONS = 16
MULTISCALE_FACTOR = 1.5  # multiscale: the photo at this many times the working size, and at the working size


def upscaled(source: np.ndarray, alpha: np.ndarray | None, scale: int, device, max_pixels: int, name: str):
    """(L at `scale` times the size, by the bundled upscaler; the alpha resized to match): the
    full-resolution source `recombine` then colours. ImageError if the result would pass the
    pixel limit."""
    h, w = source.shape[:2]
    if h * w * scale * scale > max_pixels:
        raise ImageError(name, f"upscaled x{scale} it would be {w * scale}x{h * scale}, {h * w * scale * scale / 1e6:.1f} megapixels, "
                               f"over the limit of {max_pixels / 1e6:g} (max_pixels)")
    if source.dtype == np.uint8:
        l_full = gray_to_l_numpy(source) if source.ndim == 2 else rgb_to_l_numpy(source)
    else:
        l_full = source
    l_big = upscale_l(load_upscaler(scale), l_full, device)
    if alpha is not None:
        alpha = cv2.resize(alpha, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
    return l_big, alpha


def colorize(model, images, size: int | None = None, batch_size: int = 8, device=None, max_pixels: int = DEFAULT_MAX_PIXELS,
             temperature: float | None = None, vividness: float | None = None, return_exceptions: bool = False,
             upscale: int = 1, variations: int | None = None, seed: int = 0, multiscale: bool = False):
    """Colorize one image (returns a PIL image) or a list (returns a list, run in batches).

    Each image may be a path, a PIL image or numpy array of any mode. The result is RGB (RGBA if
    the input had alpha) at the input's full size, with the input's L channel. Classification
    head: `vividness` (0 to 1) from muted and safe to bold and risky, `temperature` (> 0) the
    annealing of the colour distribution; both default to the model's config.

    `upscale` 2 or 4: the photo's L is first brought to that many times its width and height by
    the bundled upscaler (`colorgan_hub.upscale`), and the result has that size and that L; the
    result's pixels count against `max_pixels`. `variations` N: each result is a list of N
    different plausible colorizations instead of one image, the same ones for the same `seed`.
    `multiscale`: the network sees each photo at 1.5x the working size and at the working size,
    and their colour distributions are averaged (classification head; about 3x the network time;
    on `val` +0.16 dB and +0.010 hue hits, docs/bundled-models.md).

    A list is read `batch_size` photos at a time, so memory holds one batch of full-size photos
    however long the list. An image that cannot be read raises ImageError naming it; with
    `return_exceptions=True` (as in `asyncio.gather`) its place in the returned list holds that
    ImageError instead, and every other photo is still colorized.
    """
    check_options(temperature, vividness, batch_size, upscale, variations, seed)
    images, single = as_list(images)
    size = size or model.image_size
    coarse_scale = None
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
                    source, alpha, l_work = _lightness(img, size)
                    if upscale > 1:
                        source, alpha = upscaled(source, alpha, upscale, device, max_pixels, name)
                except ImageError as error:
                    if single or not return_exceptions:
                        raise
                    results[i] = error
                    continue
                prepared[i] = (source, alpha, l_work, padded_shape(l_work.shape, multiple))
                del img
            order = list(prepared)
            for group in same_shape_batches([prepared[i][3] for i in order], batch_size):
                indices = [order[k] for k in group]
                fake_ab = predict_ab(model, [prepared[i][2] for i in indices], prepared[indices[0]][3], device, temperature, vividness, variations, seed,
                                     coarse_scale)
                for k, i in enumerate(indices):
                    source, alpha, l_work, _ = prepared.pop(i)
                    h, w = l_work.shape
                    if variations:
                        results[i] = [Image.fromarray(recombine(source, ab[k, :h, :w], alpha)) for ab in fake_ab]
                    else:
                        results[i] = Image.fromarray(recombine(source, fake_ab[k, :h, :w], alpha))  # full size, the input's L
                    del source  # free the full-size input as soon as it is done
    return results[0] if single else results

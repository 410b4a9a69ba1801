"""Zhang et al.'s hint sweep (SIGGRAPH 2017; their colorization-pytorch `test_sweep.py`), through
the user pipeline: what `benchmarks/bench_hints.py` prints and what `train_guidance.py` validates.

Each photo is resized to 256x256; N hints are drawn, each the mean truth chroma of a 6x6 patch
whose corner is a normal draw around the centre (sd a quarter of the side, clipped to the photo),
placed at the patch's centre; the photo is colorized from its own lightness with those hints
(`colorize(..., hints=...)`, the model's default settings otherwise) and the PSNR of the RGB result
against the truth is averaged over the photos. The draws depend on (seed, photo index, N) alone.
Also: how well the hints are honoured (the result's chroma at each hint's place against the
hint's), how far one hint's colour leaks beyond its region (`leakage`), and the truth itself
given as the reference photo (PSNR, colourfulness against the truth's).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from colorgan_hub import metrics
from colorgan_hub.color import AB_SCALE, rgb_to_model_lab_numpy
from colorgan_hub.guidance import Chroma

SIDE = 256
PATCH = 6
COUNTS = (0, 1, 2, 5, 10, 20, 50, 100)
# Their SIGGRAPH17 network on 1,000 ImageNet test photos with this protocol (colorization-pytorch's README and sweep).
# Leakage: a hint of the opposite hue, LEAK_CHROMA ab units from gray; "near" within NEAR px of it,
# "far" beyond FAR px (of the 256-px side).
LEAK_CHROMA, NEAR, FAR = 40.0, 8, 128
ZHANG_SIGGRAPH17 = {0: 24.43, 1: 25.37, 2: 26.20, 5: 27.39, 10: 28.42, 20: 29.34, 50: 30.42, 100: 31.13}


def sweep_photo(path) -> np.ndarray:
    """A photo as the sweep sees it: RGB uint8, resized to SIDE x SIDE."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BICUBIC, reducing_gap=3.0))


def truth_ab(rgb: np.ndarray) -> np.ndarray:
    """(2, H, W) float32 Lab chroma of an RGB uint8 photo."""
    return rgb_to_model_lab_numpy(rgb)[1:] * AB_SCALE


def simulated_hints(ab: np.ndarray, count: int, rng: np.random.Generator, patch: int = PATCH) -> list[tuple[float, float, Chroma]]:
    """`count` hints on a photo with chroma `ab` (2, H, W): [(x, y, Chroma(a, b)), ...]."""
    _, height, width = ab.shape
    hints = []
    for _ in range(count):
        top = int(np.clip(rng.normal((height - patch + 1) / 2, (height - patch + 1) / 4), 0, height - patch))
        left = int(np.clip(rng.normal((width - patch + 1) / 2, (width - patch + 1) / 4), 0, width - patch))
        mean = ab[:, top : top + patch, left : left + patch].mean(axis=(1, 2))
        hints.append((left + patch / 2, top + patch / 2, Chroma(float(mean[0]), float(mean[1]))))
    return hints


def opposite(chroma: Chroma, strength: float = LEAK_CHROMA) -> Chroma:
    """A colour of the opposite hue to `chroma`, `strength` ab units from gray (red for a gray)."""
    a, b = chroma
    norm = float(np.hypot(a, b))
    a, b = (-a / norm, -b / norm) if norm > 1e-3 else (1.0, 0.0)
    return Chroma(a * strength, b * strength)


def leakage(model, photos: list[np.ndarray], automatic: list, hints: list, batch_size: int = 16, **options) -> dict:
    """Where one hint's colour goes: each photo's first hint recoloured to the opposite hue
    (`opposite`), against the photo's automatic result. Returns the medians over the photos of
    the mean ab change within NEAR px of the hint ("near") and the median change farther than
    FAR px ("far": colour that leaked to the rest of the photo)."""
    contrasted = [[(x, y, opposite(chroma))] for x, y, chroma in (h[0] for h in hints)]
    outputs = model.colorize([Image.fromarray(rgb) for rgb in photos], hints=contrasted, batch_size=batch_size, **options)
    rows, cols = np.mgrid[:SIDE, :SIDE]
    near, far = [], []
    for out, auto, ((x, y, _),) in zip(outputs, automatic, contrasted):
        change = np.linalg.norm(truth_ab(np.asarray(out)) - truth_ab(np.asarray(auto)), axis=0)
        distance = np.hypot(rows + 0.5 - y, cols + 0.5 - x)
        near.append(float(change[distance < NEAR].mean()))
        if (distance > FAR).any():
            far.append(float(np.median(change[distance > FAR])))
    return {"near": float(np.median(near)), "far": float(np.median(far))}


def sweep(
    model,
    photos: list[np.ndarray],
    counts=COUNTS,
    seed: int = 0,
    reference: bool = True,
    batch_size: int = 16,
    honour_at: int = 10,
    leak: bool = True,
    **options,
) -> dict:
    """The sweep over `photos` (RGB uint8, SIDE x SIDE). Returns {"psnr": {N: mean dB}, "gain":
    {N: dB over N = 0}, "hint_error": median ab distance at the hints for N = `honour_at`,
    "leakage" (`leakage`, when N = 0 and 1 are swept), "reference_psnr", "reference_gain",
    "reference_colourfulness" (ratio to the truth's)}. `options` go to `colorize` (e.g. multiscale)."""
    abs_ = [truth_ab(rgb) for rgb in photos]
    result = {"psnr": {}, "gain": {}, "photos": len(photos)}
    automatic = None
    for count in counts:
        hints = [simulated_hints(ab, count, np.random.default_rng([seed, i, count])) for i, ab in enumerate(abs_)]
        outputs = model.colorize([Image.fromarray(rgb) for rgb in photos], hints=hints if count else None, batch_size=batch_size, **options)
        if count == 0:
            automatic = outputs
        elif count == 1 and leak and automatic is not None:
            result["leakage"] = leakage(model, photos, automatic, hints, batch_size=batch_size, **options)
        result["psnr"][count] = float(np.mean([metrics.psnr(np.asarray(out), rgb)[0] for out, rgb in zip(outputs, photos)]))
        if count == honour_at:
            errors = []
            for out, photo_hints in zip(outputs, hints):
                out_ab = truth_ab(np.asarray(out))
                for x, y, chroma in photo_hints:
                    errors.append(float(np.hypot(*(out_ab[:, int(y), int(x)] - np.array(chroma)))))
            result["hint_error"] = float(np.median(errors))
    base = result["psnr"].get(0)
    if base is not None:
        result["gain"] = {n: p - base for n, p in result["psnr"].items()}
    if reference:
        outputs = [model.colorize(Image.fromarray(rgb), reference=Image.fromarray(rgb), **options) for rgb in photos]
        result["reference_psnr"] = float(np.mean([metrics.psnr(np.asarray(out), rgb)[0] for out, rgb in zip(outputs, photos)]))
        if base is not None:
            result["reference_gain"] = result["reference_psnr"] - base
        truth_cf = float(np.mean(metrics.colorfulness(np.stack(photos))))
        result["reference_colourfulness"] = float(np.mean(metrics.colorfulness(np.stack([np.asarray(o) for o in outputs])))) / max(truth_cf, 1e-6)
    return result

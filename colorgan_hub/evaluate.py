"""Evaluation: a model against the gray baseline and the ground truth, and its detector.

Used by `colorgan evaluate` and by validation during training. On the same photos it measures
the model's colorizations (through the user pipeline), two baselines on the input's own L (gray,
a = b = 0; and one constant colour, the mean a, b of the training photos' pixels) and the ground
truth, with the metrics of `metrics.py`, hue hit rates per hue family among them; then the detector: real photos vs
the model's own colorizations of them, clean, after JPEG quality 75, and resized to half.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from . import fakes, metrics
from .fullres import recombine
from .image_io import ImageError, center_crop, jpeg_roundtrip, load_image
from .options import MULTISCALE_FACTOR

PROTOCOLS = ("256", "full")

# The constant-colour baseline: the mean a, b (Lab units) over every pixel of the 14,521 photos of
# ../shared/data/train (each shrunk to 64 px on its short side), measured once by
# `training/colour_stats.py`; never fitted on evaluation photos. A faint yellow.
CONSTANT_AB = (4.49, 9.35)


def _report_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def load_truths(paths, protocol: str = "256", report=_report_error) -> list[tuple[str, Image.Image]]:
    """Ground-truth photos as RGB; `protocol="256"`: short side 256 and centre crop, as the papers.
    Unusable files are passed over, each told to `report`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    truths = []
    for path in paths:
        try:
            img = load_image(path).convert("RGB")
        except ImageError as err:
            report(str(err))
            continue
        if protocol == "256":
            img = center_crop(img, 256)
        truths.append((str(path), img))
    return truths


def gray_baseline(truth: Image.Image) -> np.ndarray:
    """The photo with a = b = 0: its own lightness, no colour; uint8 (H, W, 3)."""
    return recombine(np.asarray(truth), np.zeros((1, 1, 2), np.float32))


def constant_baseline(truth: Image.Image, ab=CONSTANT_AB) -> np.ndarray:
    """The photo's own lightness with one constant a, b on every pixel; uint8 (H, W, 3)."""
    return recombine(np.asarray(truth), np.asarray(ab, np.float32).reshape(1, 1, 2))


def _photo_metrics(output: np.ndarray, truth: np.ndarray) -> tuple:
    """One photo's PSNR, SSIM, colourfulness (output, truth), ab AuC and hue-hit counts."""
    ab_o, ab_t = metrics.image_ab(output), metrics.image_ab(truth)  # once for both ab metrics
    counts = {name: np.zeros(2, np.int64) for name in metrics.HUE_FAMILIES}
    metrics.hue_hits_of(ab_o, ab_t, counts)
    return (
        metrics.psnr(output, truth)[0],
        metrics.ssim(output, truth)[0],
        metrics.colorfulness(output)[0],
        metrics.colorfulness(truth)[0],
        metrics.ab_auc_of(ab_o, ab_t),
        counts,
    )


def colour_metrics(outputs, truths, progress=None, workers: int = 2) -> dict[str, float]:
    """Mean PSNR, SSIM, colourfulness, delta-CF and ab AuC of outputs against truths (uint8 lists),
    and the hue hit rates pooled over all pixels ("hue_macro", "hue_all", "hue_<family>").
    Photos are measured `workers` at a time (NumPy and OpenCV release the GIL); `progress(n)` is
    told after each image."""
    psnr, ssim, cf, cf_truth, auc = [], [], [], [], []
    counts = {name: np.zeros(2, np.int64) for name in metrics.HUE_FAMILIES}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for p, s, c, c_t, a, photo_counts in pool.map(_photo_metrics, outputs, truths):
            psnr.append(p), ssim.append(s), cf.append(c), cf_truth.append(c_t), auc.append(a)
            for name in counts:
                counts[name] += photo_counts[name]
            if progress is not None:
                progress(1)
    hue = metrics.hue_rates(counts)
    return {
        "psnr": float(np.mean(psnr)),
        "ssim": float(np.mean(ssim)),
        "cf": float(np.mean(cf)),
        "dcf": float(abs(np.mean(cf) - np.mean(cf_truth))),
        "auc": float(np.mean(auc)),
        "hue_macro": hue.pop("macro"),
        "hue_all": hue.pop("all"),
        **{f"hue_{name}": rate for name, rate in hue.items()},
    }


def truth_metrics(truths, progress=None) -> dict[str, float]:
    """`colour_metrics(truths, truths)` without comparing each photo with itself: PSNR at its cap
    (100), SSIM, AuC and every hue hit rate 1 (NaN for a hue family none of the photos has)."""
    cf = [metrics.colorfulness(t)[0] for t in truths]
    present = {name: False for name in metrics.HUE_FAMILIES}
    for t in truths:
        counts = {name: np.zeros(2, np.int64) for name in metrics.HUE_FAMILIES}
        ab = metrics.image_ab(t)
        metrics.hue_hits_of(ab, ab, counts)
        present = {name: present[name] or bool(counts[name][1]) for name in present}
        if progress is not None:
            progress(1)
    hue = {f"hue_{name}": 1.0 if seen else float("nan") for name, seen in present.items()}
    any_seen = any(present.values())
    return {
        "psnr": 100.0,
        "ssim": 1.0,
        "cf": float(np.mean(cf)),
        "dcf": 0.0,
        "auc": 1.0,
        "hue_macro": 1.0 if any_seen else float("nan"),
        "hue_all": 1.0 if any_seen else float("nan"),
        **hue,
    }


def _half(img: Image.Image) -> Image.Image:
    return img.resize((max(8, img.width // 2), max(8, img.height // 2)), Image.Resampling.BICUBIC)


def detector_metrics(model, reals, fakes, batch_size=8, progress=None, clean_scores: dict | None = None) -> dict[str, dict[str, float]]:
    """Detection metrics (real = 1, colorized = 0): clean, JPEG quality 75, resized to half.
    `progress(n)` is told after each batch of n images; `clean_scores`, a dict, receives the clean
    probabilities ("real", "fake") for `family_detector_metrics` to reuse."""
    variants = {"clean": lambda im: im, "jpeg75": lambda im: jpeg_roundtrip(im, 75), "half": _half}
    labels = [1] * len(reals) + [0] * len(fakes)
    results = {}
    for name, change in variants.items():
        images = list(reals) + list(fakes)
        probs = []
        for start in range(0, len(images), 4 * batch_size):
            chunk = [change(im) for im in images[start : start + 4 * batch_size]]
            probs += model.realness(chunk, batch_size=max(batch_size, 32), allow_grayscale=True)
            if progress is not None:
                progress(len(chunk))
        results[name] = metrics.detection_report(probs, labels)
        if name == "clean" and clean_scores is not None:
            clean_scores.update(real=probs[: len(reals)], fake=probs[len(reals) :])
    return results


FAMILY_SEED = 2026
FAMILY_NAMES = {
    "own": "own generator (default settings)",
    "generator": "own generator, random settings and sizes",
    "checkpoints": "other generators (checkpoints, other head)",
    "toned": "toned prints (one colour on L)",
    "hand-tint": "hand-tinting (flat washes)",
    "transfer": "colour transfer (Welsh et al.)",
    "mix": "balanced mix of the families",
}


def family_fakes(model, photos, families=fakes.FAMILIES, generators=(), seed=FAMILY_SEED, progress=None) -> dict[str, list[np.ndarray]]:
    """Each family's fake of every photo (uint8 RGB), through the users' recombination path; the
    checkpoints family only when `generators` are given. `progress(n)` after each family."""
    arrays = [np.asarray(p) for p in photos]
    out = {}
    for family in families:
        if family == "checkpoints" and not generators:
            continue
        out[family] = fakes.make_fakes(family, arrays, seed=seed, model=model, generators=generators)
        if progress is not None:
            progress(len(arrays))
    return out


def family_detector_metrics(model, reals, own, by_family, batch_size=8, progress=None, clean_scores: dict | None = None) -> dict[str, dict[str, float]]:
    """Detection metrics of real photos against each family's fakes of them ("own": the model's
    colorizations at its defaults), and against a balanced mix (photo i's fake from family
    i mod the number of families): ECE and how saturated the probabilities are there.
    `clean_scores`: the reals' and own fakes' probabilities when `detector_metrics` has them."""

    def score(images):
        probs = model.realness(list(images), batch_size=max(batch_size, 32), allow_grayscale=True)
        if progress is not None:
            progress(len(images))
        return probs

    real = clean_scores["real"] if clean_scores else score(reals)
    fake = {"own": clean_scores["fake"] if clean_scores else score(own), **{name: score(images) for name, images in by_family.items()}}
    rows = {name: metrics.detection_report(real + probs, [1] * len(real) + [0] * len(probs)) for name, probs in fake.items()}
    if by_family:
        names = list(by_family)
        mix = [fake[names[i % len(names)]][i] for i in range(len(real))]
        rows["mix"] = metrics.detection_report(real + mix, [1] * len(real) + [0] * len(mix))
        both = np.asarray(real + mix)
        confidence = np.maximum(both, 1 - both)
        rows["mix"]["median_confidence"] = float(np.median(confidence))
        rows["mix"]["saturated"] = float(np.mean(confidence > 0.999))
        rows["mix"]["families"] = names
    return rows


def _bar(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, unit="image", disable=None if enabled else True, file=sys.stderr)  # None: no bar in a log


def evaluate(
    model,
    paths,
    protocol="256",
    size=None,
    batch_size=8,
    detector=True,
    progress=True,
    report=_report_error,
    temperature=None,
    vividness=None,
    generators=(),
    multiscale=None,
) -> dict:
    """The whole evaluation on the photos at `paths`; a JSON-ready dict. With `progress`, one bar
    per stage on stderr: colorize, colour metrics (every row), detector (every variant), the
    detector against the colorizer family (`generators`: other generators for its checkpoints
    family, left out without them). `multiscale`: as `colorize` (None: its default)."""
    truths = load_truths(paths, protocol, report=report)
    if multiscale is None:
        multiscale = model.head == "classification"
    if not truths:
        raise ValueError("no usable images to evaluate")
    outputs = []
    with _bar(len(truths), "colorize", progress) as bar:
        for start in range(0, len(truths), batch_size):
            chunk = [img for _, img in truths[start : start + batch_size]]
            outputs += model.colorize(chunk, size=size, batch_size=batch_size, temperature=temperature, vividness=vividness, multiscale=multiscale)
            bar.update(len(chunk))
    truth_arrays = [np.asarray(img) for _, img in truths]
    candidates = {
        "model": lambda: [np.asarray(o) for o in outputs],
        "gray": lambda: [gray_baseline(img) for _, img in truths],
        "constant colour": lambda: [constant_baseline(img) for _, img in truths],
    }
    with _bar((len(candidates) + 1) * len(truths), "colour metrics", progress) as bar:
        rows = {name: colour_metrics(make(), truth_arrays, progress=bar.update) for name, make in candidates.items()}
        rows["ground truth"] = truth_metrics(truth_arrays, progress=bar.update)
    result = {"protocol": protocol, "images": len(truths), "size": size or model.image_size, "colour": rows}
    if model.head == "classification":
        result["temperature"] = model.temperature if temperature is None else temperature
        result["vividness"] = model.vividness if vividness is None else vividness
        result["multiscale"] = multiscale
    if detector:  # the detector looks at its own working size (model.realness_size), whatever --size colorized at
        result["detector_size"] = model.realness_size
        clean = {}
        with _bar(3 * 2 * len(truths), "detector", progress) as bar:
            result["detector"] = detector_metrics(model, [img for _, img in truths], outputs, batch_size=batch_size, progress=bar.update, clean_scores=clean)
        families = [f for f in fakes.FAMILIES if f != "checkpoints" or generators]
        with _bar(2 * len(families) * len(truths), "detector families", progress) as bar:
            by_family = family_fakes(model, truth_arrays, families, generators, progress=bar.update)
            result["detector_families"] = family_detector_metrics(
                model, truth_arrays, [np.asarray(o) for o in outputs], by_family, batch_size=batch_size, progress=bar.update, clean_scores=clean
            )
    return result


def format_markdown(result: dict) -> str:
    """The evaluation as markdown tables."""
    temperature = f", vividness {result['vividness']}, temperature {result['temperature']}" if "temperature" in result else ""
    if result.get("multiscale"):
        temperature += f", multi-scale (also at {round(result['size'] * MULTISCALE_FACTOR)})"
    families = list(metrics.HUE_FAMILIES)
    lines = [
        f"Protocol {result['protocol']}, {result['images']} images, working size {result['size']}{temperature}.",
        "",
        "| | PSNR (dB) | SSIM | CF | dCF | AuC | hue hits (macro) | hue hits (all) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["colour"].items():
        lines.append(
            f"| {name} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['cf']:.2f} | {row['dcf']:.2f} | {row['auc']:.4f} "
            f"| {row['hue_macro']:.3f} | {row['hue_all']:.3f} |"
        )
    lines += [
        "",
        "Hue hit rate per hue family of the truth (chroma >= 15; hit: chroma >= 7.5, hue within 30 degrees):",
        "",
        "| | " + " | ".join(families) + " |",
        "|---" * (len(families) + 1) + "|",
    ]
    for name, row in result["colour"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row['hue_' + f]:.3f}" for f in families) + " |")
    if "detector" in result:
        size = result.get("detector_size", result["size"])
        lines += [
            "",
            f"Detector (real photos vs this model's colorizations of them; it looks at long side {size} px):",
            "",
            "| | AUC | AP | accuracy | HTER | ECE |",
            "|---|---|---|---|---|---|",
        ]
        names = {"clean": "clean", "jpeg75": "JPEG quality 75", "half": "resized to half"}
        for key, row in result["detector"].items():
            lines.append(f"| {names[key]} | {row['auc']:.4f} | {row['ap']:.4f} | {row['accuracy']:.4f} | {row['hter']:.4f} | {row['ece']:.4f} |")
    if "detector_families" in result:
        lines += [
            "",
            "Detector against the colorizer family (real photos vs each family's colorizations of them):",
            "",
            "| fakes | AUC | AP | accuracy | HTER | ECE |",
            "|---|---|---|---|---|---|",
        ]
        for key, row in result["detector_families"].items():
            figures = " | ".join(f"{row[k]:.4f}" for k in ("auc", "ap", "accuracy", "hter", "ece"))
            lines.append(f"| {FAMILY_NAMES.get(key, key)} | {figures} |")
        mix = result["detector_families"].get("mix")
        if mix:
            lines += ["", f"On the mix: median confidence {mix['median_confidence']:.3f}, share of answers beyond 0.999 / 0.001: {mix['saturated']:.3f}."]
    return "\n".join(lines)

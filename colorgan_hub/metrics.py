"""Colorization and detection metrics, vectorised (numpy, OpenCV), on 8-bit RGB like the papers.

Colour: PSNR (per image, then averaged: the DDColor / CT2 convention), SSIM (Gaussian window 11,
sigma 1.5, per channel), colourfulness (Hasler & Suesstrunk 2003, DDColor / CT2 variant),
delta-CF, Zhang et al.'s AuC of the per-pixel ab error, and hue hit rates per hue family (a
colour cast cannot pass them: only pixels whose hue is right count).
Detection (real photo = 1, machine-colorized = 0): ROC-AUC, average precision, accuracy at 0.5,
HTER, expected calibration error (15 equal-width bins).
"""

from __future__ import annotations

import cv2
import numpy as np

from .color import AB_SCALE, rgb_to_model_lab_numpy

# ----------------------------------------------------------------------------------------------
# Colour metrics. Images are uint8 arrays (H, W, 3) or batches (N, H, W, 3).


def _batch(images) -> np.ndarray:
    array = np.asarray(images)
    return array[None] if array.ndim == 3 else array


def psnr(pred, target) -> np.ndarray:
    """PSNR (dB) of each 8-bit RGB image; (N,) array. Identical images give 100 dB (the cap)."""
    pred, target = _batch(pred).astype(np.float64), _batch(target).astype(np.float64)
    mse = ((pred - target) ** 2).mean(axis=(1, 2, 3))
    return np.minimum(10.0 * np.log10(255.0**2 / np.maximum(mse, 1e-12)), 100.0)


def ssim(pred, target) -> np.ndarray:
    """SSIM of each 8-bit RGB image (Wang et al. 2004): Gaussian window 11, sigma 1.5, K = (0.01, 0.03),
    computed per channel over the valid region and averaged; (N,) array. Matches
    `skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255, channel_axis=-1)`."""
    window = cv2.getGaussianKernel(11, 1.5, cv2.CV_64F).astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for p, t in zip(_batch(pred), _batch(target)):
        # float32 (fast), centred on 128 so the variances keep their precision: var and cov do not
        # change under a shift, the means get the 128 back.
        x, y = p.astype(np.float32) - 128.0, t.astype(np.float32) - 128.0
        maps = np.concatenate([x, y, x * x, y * y, x * y], axis=2)  # (H, W, 5C): one separable pass for all
        maps = cv2.sepFilter2D(maps, -1, window, window)[5:-5, 5:-5].astype(np.float64)  # the valid region
        mu_x, mu_y, xx, yy, xy = np.split(maps, 5, axis=2)
        var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
        mu_x, mu_y = mu_x + 128.0, mu_y + 128.0
        s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        scores.append(s.mean(axis=(0, 1)).mean())
    return np.array(scores)


def colorfulness(images) -> np.ndarray:
    """Colourfulness of each 8-bit RGB image; (N,) array.

    Hasler & Suesstrunk (2003) define rg = R - G, yb = (R + G) / 2 - B and
    CF = sqrt(std_rg^2 + std_yb^2) + 0.3 * sqrt(mean_rg^2 + mean_yb^2). DDColor and CT2 (and the
    widely copied pyimagesearch code they use) take ABSOLUTE values, rg = |R - G|,
    yb = |(R + G) / 2 - B|, before the statistics: opposite hues no longer cancel in the mean, so
    the variant scores higher than the original on most photos. We implement that variant, so our
    numbers compare with theirs; 0 for any gray image either way.
    """
    rgb = _batch(images).astype(np.float64)
    rg = np.abs(rgb[..., 0] - rgb[..., 1])
    yb = np.abs(0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2])
    axes = (1, 2)
    std = np.sqrt(rg.std(axis=axes) ** 2 + yb.std(axis=axes) ** 2)
    mean = np.sqrt(rg.mean(axis=axes) ** 2 + yb.mean(axis=axes) ** 2)
    return std + 0.3 * mean


def delta_colorfulness(preds, targets) -> float:
    """|mean CF of the outputs - mean CF of the ground truth| over a set of images."""
    return float(abs(np.mean([colorfulness(p)[0] for p in preds]) - np.mean([colorfulness(t)[0] for t in targets])))


def image_ab(image: np.ndarray) -> np.ndarray:
    """8-bit RGB (H, W, 3) -> CIE ab (2, H, W) in Lab units (exact, by lookup table): what
    `ab_auc` and `hue_hits` compare; `ab_auc_of` and `hue_hits_of` take it computed once."""
    return rgb_to_model_lab_numpy(image)[1:] * AB_SCALE


def ab_auc(pred, target, max_threshold: int = 150) -> np.ndarray:
    """Zhang et al. (2016) AuC of each image: the share of pixels whose ab error (Euclidean, Lab
    units) is within a threshold, averaged over thresholds 0, 1, ..., 150; (N,) array in [0, 1]."""
    return np.array([ab_auc_of(image_ab(p), image_ab(t), max_threshold) for p, t in zip(_batch(pred), _batch(target))])


def ab_auc_of(ab_pred: np.ndarray, ab_target: np.ndarray, max_threshold: int = 150) -> float:
    """`ab_auc` of one image pair given as ab (2, H, W) in Lab units."""
    error = np.linalg.norm(ab_pred - ab_target, axis=0).ravel()
    # error <= t for an integer t  <=>  ceil(error) <= t: a histogram of ceil(error), accumulated
    counts = np.bincount(np.minimum(np.ceil(error), max_threshold + 1).astype(np.int64), minlength=max_threshold + 2)
    within = np.cumsum(counts)[: max_threshold + 1] / error.size  # share <= 0, 1, ..., 150
    return float(within.mean())


# Hue families by the truth's hue angle atan2(b, a) in degrees: [start, end), red wraps round 0.
HUE_FAMILIES = {"red": (330, 30), "orange/yellow": (30, 100), "green": (100, 170), "blue/cyan": (170, 280), "purple": (280, 330)}
HUE_CHROMA_TRUTH = 15.0  # truth pixels at least this chromatic (hypot(a, b), Lab units) are judged
HUE_CHROMA_HIT = 7.5  # a hit needs at least this much chroma in the colorization...
HUE_TOLERANCE = 30.0  # ...and a hue within this many degrees of the truth's


def hue_hits(pred, target) -> dict[str, np.ndarray]:
    """Per hue family, [hits, chromatic truth pixels] over 8-bit RGB images (H, W, 3) or (N, H, W, 3).

    Both are taken to CIE Lab (D65). A truth pixel counts when its chroma is >= 15; it is a hit when
    the colorization's chroma there is >= 7.5 and its hue angle is within 30 degrees of the truth's.
    Counts (not rates) so that callers pool them over photos: see `hue_rates`."""
    counts = {name: np.zeros(2, np.int64) for name in HUE_FAMILIES}
    for p, t in zip(_batch(pred), _batch(target)):
        hue_hits_of(image_ab(p), image_ab(t), counts)
    return counts


def hue_hits_of(ab_p: np.ndarray, ab_t: np.ndarray, counts: dict[str, np.ndarray]) -> None:
    """Add one image pair, given as ab (2, H, W) in Lab units, to `hue_hits` counts."""
    chroma_t = np.hypot(ab_t[0], ab_t[1])
    judged = chroma_t >= HUE_CHROMA_TRUTH
    if not judged.any():
        return
    hue_t = np.degrees(np.arctan2(ab_t[1][judged], ab_t[0][judged])) % 360
    hue_p = np.degrees(np.arctan2(ab_p[1][judged], ab_p[0][judged])) % 360
    difference = np.abs(hue_p - hue_t)
    hit = (np.hypot(ab_p[0][judged], ab_p[1][judged]) >= HUE_CHROMA_HIT) & (np.minimum(difference, 360 - difference) <= HUE_TOLERANCE)
    for name, (start, end) in HUE_FAMILIES.items():
        family = (hue_t >= start) & (hue_t < end) if start < end else (hue_t >= start) | (hue_t < end)
        counts[name] += (int(hit[family].sum()), int(family.sum()))


def hue_rates(counts: dict[str, np.ndarray]) -> dict[str, float]:
    """Pooled hue hit rates from `hue_hits` counts (summed over photos): per family, "all" (hits /
    chromatic pixels over every family) and "macro" (the mean of the five family rates; a family
    with no chromatic pixel counts as NaN and is left out of the mean)."""
    rates = {name: float(c[0] / c[1]) if c[1] else float("nan") for name, c in counts.items()}
    total = sum(counts.values())
    rates["all"] = float(total[0] / total[1]) if total[1] else float("nan")
    family_rates = [rates[name] for name in HUE_FAMILIES if counts[name][1]]
    rates["macro"] = float(np.mean(family_rates)) if family_rates else float("nan")
    return rates


# ----------------------------------------------------------------------------------------------
# Detection metrics. `labels`: 1 = real colour photo, 0 = machine-colorized; `probs`: P(real).


def roc_auc(probs, labels) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels).astype(bool)
    pos, neg = probs[labels], probs[~labels]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("ROC-AUC needs both real and colorized examples")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    values = np.concatenate([pos, neg])
    for v in np.unique(values):  # average ranks over ties
        tied = values == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def average_precision(probs, labels) -> float:
    """Average precision of the real class: sum over thresholds of (recall step) x precision."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels).astype(bool)
    order = np.argsort(-probs, kind="mergesort")
    probs, labels = probs[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(probs)), len(probs) - 1]  # last index of each score
    tp = np.cumsum(labels)[distinct]
    precision = tp / (distinct + 1)
    recall = tp / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def accuracy(probs, labels, threshold: float = 0.5) -> float:
    return float(np.mean((np.asarray(probs) >= threshold) == np.asarray(labels).astype(bool)))


def hter(probs, labels, threshold: float = 0.5) -> float:
    """Half total error rate: (false-accept rate + false-reject rate) / 2 at `threshold`."""
    probs, labels = np.asarray(probs), np.asarray(labels).astype(bool)
    false_accept = np.mean(probs[~labels] >= threshold)  # colorized taken as real
    false_reject = np.mean(probs[labels] < threshold)  # real taken as colorized
    return float((false_accept + false_reject) / 2)


def expected_calibration_error(probs, labels, bins: int = 15) -> float:
    """ECE (Guo et al. 2017): the confidence of the predicted class, max(p, 1 - p), is put in `bins`
    equal-width bins over [0, 1]; the sum of |accuracy - mean confidence| per bin, weighted by the
    bin's share of the examples."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels).astype(bool)
    confidence = np.maximum(probs, 1 - probs)
    correct = (probs >= 0.5) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def detection_report(probs, labels) -> dict[str, float]:
    """All detection metrics at once."""
    return {
        "auc": roc_auc(probs, labels),
        "ap": average_precision(probs, labels),
        "accuracy": accuracy(probs, labels),
        "hter": hter(probs, labels),
        "ece": expected_calibration_error(probs, labels),
    }

"""Candidate features for the realness detector, measured before any is built in: does a feature
tell real photos from a family of colorizations it was never fitted on?

    python benchmarks/detector_features.py --generators GEN... [--model ID_OR_PATH] [--data ../shared/data/val]
        [--count 300] [--json out.json]

On photos spread over `--data` (protocol 256) it makes every family's fakes (`colorgan_hub.fakes`;
`--generators`: the checkpoints family's models) and pseudo-fakes (`fakes.corrupted`), then
computes three feature sets on each image:

* ``cues``: the ten colour-structure cues the bundled detector reads (`cues.colour_cues` of the
  working-size image, as `realness.photo_cues` computes them);
* ``plausibility``: how likely the image's colour is under the model's own generator given its
  lightness, the classification head's per-pixel distribution with the class rebalancing divided
  out (soft-assigned to the colour bins with a 5-unit Gaussian, as Zhang et al. encode targets):
  the mean and 10th percentile of the log-likelihood, the same relative to the most likely colour,
  the share of pixels within e^-1 of it, the chroma above the expected chroma, the hue agreement
  with the expected colour on chromatic pixels, and the distance to it.

* ``structure``: seven more numbers of how the colour lies on the lightness at the detector's
  working size, after the same JPEG round trip: the effective number of colours (exp of the
  entropy of a fine a, b histogram of the chromatic pixels), the share of the eight fullest bins,
  the colour's variance left unexplained by lightness band and local contrast together, the
  correlation of fine chroma and fine lightness detail, the share of fine colour detail a local
  linear fit on fine lightness explains, the colour's local spread in flat areas, and the spread
  of fine colour detail (90th over 50th percentile).

With `--one_class_photos N` it also fits one-class readings on N real training photos alone
(`--train_data`; no fakes at all, so every family is one they never saw): the Mahalanobis distance
(Ledoit-Wolf covariance) and the mean distance to the 5 nearest training photos, on the cues, on
the cues with the structure numbers, and on a discriminator's activations (`--discriminator`,
default the model's own; each layer's channel means and spreads, one Mahalanobis distance per
layer, standardised and summed).
These need scikit-learn (`pip install scikit-learn`; not a dependency of the package).

It prints (1) each feature's AUC alone, real against each family (0.5: no signal; below 0.5: the
family sits on the other side), and (2) a leave-one-family-out study of a linear read-out
(L2-regularised logistic regression, fitted on even-numbered photos, measured on odd-numbered
ones): for each feature set and way of reading it (linear; linear plus squared z-scores, so a
family that departs from real photos the other way is caught too; linear plus the log Mahalanobis
distance from the real photos), with and without pseudo-fakes among the fitted fakes, the AUC on
each family, the left-out one in brackets. These read-outs use no discriminator: they measure the
features alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from colorgan_hub import DEFAULT_MODEL, fakes
from colorgan_hub.color import rgb_to_model_lab, rgb_to_model_lab_numpy
from colorgan_hub.image_io import load_image
from colorgan_hub.metrics import roc_auc
from colorgan_hub.model import load_model
from colorgan_hub.pipeline import padded_shape, working_shape
from colorgan_hub.realness import CUE_NAMES, _fine, _gradient, colour_cues, normalise, working_rgb
from training.selection import validation_truths

HERE = Path(__file__).parent
PLAUSIBILITY_NAMES = (
    "log-likelihood",
    "log-likelihood p10",
    "relative log-likelihood",
    "relative p10",
    "share near the best colour",
    "chroma above expected",
    "hue agreement",
    "distance to expected ab",
)
STRUCTURE_NAMES = (
    "log effective colours",
    "eight fullest colour bins",
    "colour not explained by lightness and contrast",
    "fine chroma/lightness correlation",
    "fine colour explained by fine lightness",
    "log colour spread in flat areas",
    "fine colour detail p90/p50",
)
FAMILIES = ("generator", "checkpoints", "toned", "hand-tint", "transfer")
COLUMNS = FAMILIES + ("pseudo",)
SIGMA = 5.0  # Lab units: the soft assignment to colour bins


def plausibility(model, rgb: np.ndarray, size: int) -> np.ndarray:
    """PLAUSIBILITY_NAMES of one uint8 RGB image, at working size `size` (the generator's)."""
    classifier = model.generator
    bins = classifier.bins.float() * model.ab_scale  # (K, 2), Lab units
    log_weights = torch.log(classifier.rebalancing_weights(model.class_rebalancing))
    h, w = working_shape(*rgb.shape[:2], size)
    lab = rgb_to_model_lab_numpy(normalise(cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)))
    ph, pw = padded_shape((h, w), classifier.multiple)
    l = np.pad(lab[0], ((0, ph - h), (0, pw - w)), mode="symmetric")
    with torch.inference_mode():
        logits = classifier(torch.from_numpy(l)[None, None].float())[0]  # (K, ph/2, pw/2)
    log_p = torch.log_softmax(logits - log_weights[:, None, None], 0)[:, : (h + 1) // 2, : (w + 1) // 2]
    hh, ww = log_p.shape[1:]
    ab = torch.from_numpy(cv2.resize(lab[1:].transpose(1, 2, 0) * model.ab_scale, (ww, hh), interpolation=cv2.INTER_AREA)).reshape(-1, 2)
    log_p = log_p.reshape(len(bins), -1).t()  # (P, K)
    log_lik = torch.logsumexp(log_p - torch.cdist(ab, bins) ** 2 / (2 * SIGMA**2), 1)  # log sum_k p_k K(ab, bin_k)
    p = log_p.exp()
    kernel = torch.exp(-(torch.cdist(bins, bins) ** 2) / (2 * SIGMA**2))  # (K, K)
    best = torch.log((p @ kernel).max(1).values + 1e-30)  # the most likely bin colour's likelihood
    relative = log_lik - best
    expected = p @ bins  # (P, 2)
    chroma = ab.norm(dim=1)
    chromatic = chroma > 8
    agreement = torch.nn.functional.cosine_similarity(ab, expected + 1e-6, dim=1)
    values = [
        log_lik.mean(),
        torch.quantile(log_lik, 0.1),
        relative.mean(),
        torch.quantile(relative, 0.1),
        (relative > -1).float().mean(),
        (chroma - p @ bins.norm(dim=1)).mean(),
        agreement[chromatic].mean() if chromatic.any() else torch.tensor(0.0),
        (ab - expected).norm(dim=1).mean(),
    ]
    return np.array([float(v) for v in values], np.float32)


def structure(rgb: np.ndarray) -> np.ndarray:
    """STRUCTURE_NAMES of one working-size uint8 RGB image."""
    lab = rgb_to_model_lab_numpy(normalise(rgb))
    l, a, b = lab[0] * 50.0 + 50.0, lab[1] * 110.0, lab[2] * 110.0
    chroma = np.hypot(a, b)
    chromatic = chroma > 6
    if chromatic.sum() > 50:
        counts = np.histogram2d(a[chromatic], b[chromatic], bins=80, range=[[-120, 120], [-120, 120]])[0].ravel()
        p = counts[counts > 0] / counts.sum()
        effective, fullest = np.exp(-(p * np.log(p)).sum()), np.sort(counts)[::-1][:8].sum() / counts.sum()
    else:
        effective, fullest = 1.0, 1.0
    mean = cv2.blur(l, (5, 5))
    contrast = np.sqrt(np.maximum(cv2.blur(l * l, (5, 5)) - mean * mean, 0.0))
    key = (np.clip((l / 10).astype(int), 0, 9) * 4 + np.digitize(contrast, np.percentile(contrast, [25, 50, 75]))).ravel()
    counts = np.maximum(np.bincount(key, minlength=40), 1)
    residual = sum(float(((c - (np.bincount(key, c, minlength=40) / counts)[key]) ** 2).mean()) for c in (a.ravel(), b.ravel()))
    fine_l, fine_a, fine_b, fine_c = _fine(l), _fine(a), _fine(b), _fine(chroma)
    correlation = np.corrcoef(fine_l.ravel(), fine_c.ravel())[0, 1] if fine_c.std() > 1e-6 else 0.0
    window = lambda x: cv2.blur(x, (9, 9))  # noqa: E731
    variance_l = window(fine_l * fine_l) + 1e-3
    explained = sum(float((window(fine_l * f) ** 2 / variance_l).mean()) for f in (fine_a, fine_b))
    explained /= sum(float(window(f * f).mean()) for f in (fine_a, fine_b)) + 1e-6
    gradient = _gradient(l)
    flat = gradient <= np.percentile(gradient, 30)
    spread = sum(np.maximum(cv2.blur(c * c, (5, 5)) - cv2.blur(c, (5, 5)) ** 2, 0.0) for c in (a, b)) ** 0.5
    fine = np.hypot(fine_a, fine_b)
    values = [
        np.log(effective),
        fullest,
        residual / (a.var() + b.var() + 1e-3),
        np.nan_to_num(correlation),
        explained,
        np.log(spread[flat].mean() + 0.01),
        np.log((np.percentile(fine, 90) + 0.05) / (np.percentile(fine, 50) + 0.05)),
    ]
    return np.array(values, np.float32)


def working(model, images: list[np.ndarray]) -> list[np.ndarray]:
    """The images as `realness` sees them: uint8 RGB at the detector's working size (`realness_size`)."""
    return [working_rgb(load_image(x), model.realness_size) for x in images]


def discriminator_activations(model, images: list[np.ndarray]) -> list[np.ndarray]:
    """Per layer of the model's discriminator, (N, 2C): each channel's mean and spread over a
    working-size image (`working`)."""
    layers = [m for m in model.discriminator.layers if isinstance(m, torch.nn.LeakyReLU)]
    out: list[list[np.ndarray]] = [[] for _ in layers]
    caught: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda module, inputs, output: caught.append(output)) for m in layers]
    try:
        for small in images:
            caught.clear()
            with torch.inference_mode():
                model.discriminator(*rgb_to_model_lab(torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0))
            for k, a in enumerate(caught):
                out[k].append(torch.cat([a.mean((2, 3)), a.std((2, 3))], 1)[0].numpy())
    finally:
        for hook in hooks:
            hook.remove()
    return [np.stack(x) for x in out]


def one_class(train: list[np.ndarray]):
    """One-class scorers fitted on real photos' features alone (higher: more like them): the
    Mahalanobis distance (Ledoit-Wolf), per block of features then standardised and summed, and
    the mean distance to the 5 nearest photos (standardised features, all blocks together)."""
    from sklearn.covariance import LedoitWolf
    from sklearn.neighbors import NearestNeighbors

    blocks = []
    for x in train:
        mean, scale = x.mean(0), x.std(0) + 1e-6
        precision = LedoitWolf().fit((x - mean) / scale).precision_

        def distance(x, mean=mean, scale=scale, precision=precision):
            z = (x - mean) / scale
            return np.einsum("ij,jk,ik->i", z, precision, z)

        own = distance(x)
        blocks.append((distance, own.mean(), own.std()))
    joined = np.concatenate(train, 1)
    mean, scale = joined.mean(0), joined.std(0) + 1e-6
    neighbours = NearestNeighbors(n_neighbors=5).fit((joined - mean) / scale)
    return {
        "Mahalanobis": lambda xs: -sum((d(x) - m) / s for (d, m, s), x in zip(blocks, xs)),
        "5 nearest": lambda xs: -neighbours.kneighbors((np.concatenate(xs, 1) - mean) / scale)[0].mean(1),
    }


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    return roc_auc(np.concatenate([positive, negative]), np.r_[np.ones(len(positive)), np.zeros(len(negative))])


def fit_readout(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iterations: int = 50):
    """L2-regularised logistic regression by Newton steps on standardised features: a scorer."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = np.c_[(x - mean) / scale, np.ones(len(x))]
    w = np.zeros(z.shape[1])
    penalty = l2 * np.diag(np.r_[np.ones(z.shape[1] - 1), 0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        hessian = (z * (p * (1 - p))[:, None]).T @ z / len(y) + penalty + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hessian, z.T @ (p - y) / len(y) + penalty @ w)
    return lambda x: np.c_[(x - mean) / scale, np.ones(len(x))] @ w


def readings(real_fit: np.ndarray):
    """Ways of reading a feature vector, each fixed by the fitted real photos only."""
    mean, scale = real_fit.mean(0), real_fit.std(0) + 1e-6
    covariance = np.cov(real_fit.T) + 1e-3 * np.diag(real_fit.var(0) + 1e-6)
    inverse = np.linalg.inv(covariance)

    def distance(x):
        d = x - mean
        return np.log(np.einsum("ij,jk,ik->i", d, inverse, d) + 1e-6)[:, None]

    return {"linear": lambda x: x, "+ squared z": lambda x: np.c_[x, ((x - mean) / scale) ** 2], "+ Mahalanobis": lambda x: np.c_[x, distance(x)]}


def one_class_study(model, sets: dict, small: dict, features: dict, folder: Path, count: int, detector) -> dict:
    """AUC, real photos against each family, of one-class readings fitted on `count` real photos
    of `folder` alone; `small`: each of `sets` at the model's working size (`working`); the
    activations are `detector`'s discriminator's, at its own working size."""
    photos = [np.asarray(img.convert("RGB")) for _, img in validation_truths(folder, count)]
    train = working(model, photos)
    if detector.realness_size == model.realness_size:
        seen, train_seen = small, train
    else:
        seen, train_seen = {name: working(detector, images) for name, images in sets.items()}, working(detector, photos)
    train_features = {
        "cues": np.stack([colour_cues(x) for x in train]),
        "structure": np.stack([structure(x) for x in train]),
        "discriminator": discriminator_activations(detector, train_seen),
    }
    for name, images in seen.items():
        features[name]["discriminator"] = discriminator_activations(detector, images)
    blocks = {
        "cues": lambda f: [f["cues"]],
        "cues + structure": lambda f: [np.concatenate([f["cues"], f["structure"]], 1)],
        "discriminator activations": lambda f: f["discriminator"],
    }
    print(f"\nOne-class readings fitted on {len(train)} real photos of {folder} alone (AUC real > family):\n")
    print("| features | reading | " + " | ".join(COLUMNS) + " |\n" + "|---" * (len(COLUMNS) + 2) + "|")
    results = {}
    for label, block in blocks.items():
        for reading, score in one_class(block(train_features)).items():
            real = score(block(features["real"]))
            row = {f: auc(real, score(block(features[f]))) for f in COLUMNS}
            results[f"{label} | {reading}"] = row
            print(f"| {label} | {reading} | " + " | ".join(f"{row[f]:.3f}" for f in COLUMNS) + " |")
    return results


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL), help="Hub id or save_pretrained folder, classification head (default: the bundled model)")
    parser.add_argument("--generators", nargs="+", required=True, help="the checkpoints family: other models (Hub ids or folders)")
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "val")
    parser.add_argument("--count", type=int, default=300, help="photos, spread over the folder (half fit, half measure)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--one_class_photos", type=int, default=0, help="real training photos for the one-class readings (0: none)")
    parser.add_argument(
        "--discriminator",
        help="the model whose discriminator's activations are read (default: --model; "
        "one trained against its own generator only has seen none of the families)",
    )
    parser.add_argument("--train_data", type=Path, default=HERE.parent.parent / "shared" / "data" / "train")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    model = load_model(args.model).eval()
    if model.head != "classification":
        raise SystemExit(f"{args.model}: the plausibility features need a classification head")
    generators = [load_model(g).eval() for g in args.generators]
    photos = [np.asarray(img.convert("RGB")) for _, img in validation_truths(args.data, args.count)]
    sets = {
        "real": photos,
        **{f: fakes.make_fakes(f, photos, seed=args.seed, model=model, generators=generators) for f in FAMILIES},
        "pseudo": [fakes.corrupted(p, fakes.rng_for(args.seed + 101, i)) for i, p in enumerate(photos)],
    }
    small = {name: working(model, images) for name, images in sets.items()}
    features = {}
    for name, images in sets.items():
        features[name] = {
            "cues": np.stack([colour_cues(x) for x in small[name]]),  # as `realness` reads them
            "structure": np.stack([structure(x) for x in small[name]]),
            "plausibility": np.stack([plausibility(model, x, model.image_size) for x in images]),
        }
    results = {"photos": len(photos), "alone": {}, "study": {}}
    print(f"{args.model} on {len(photos)} photos of {args.data}\n\nEach feature alone, AUC real > family:\n")
    print("| feature | " + " | ".join(COLUMNS) + " |\n" + "|---" * (len(COLUMNS) + 1) + "|")
    for group, names in (("cues", CUE_NAMES), ("structure", STRUCTURE_NAMES), ("plausibility", PLAUSIBILITY_NAMES)):
        for j, name in enumerate(names):
            row = {f: auc(features["real"][group][:, j], features[f][group][:, j]) for f in COLUMNS}
            results["alone"][name] = row
            print(f"| {name} | " + " | ".join(f"{row[f]:.3f}" for f in COLUMNS) + " |")
    fit, measure = np.arange(len(photos)) % 2 == 0, np.arange(len(photos)) % 2 == 1
    print("\nLeave-one-family-out, linear read-out (left-out family's AUC in brackets):\n")
    print("| features | reading | pseudo-fakes | trained without | " + " | ".join(FAMILIES) + " |\n" + "|---" * (len(FAMILIES) + 4) + "|")
    for groups in (("cues",), ("cues", "structure"), ("cues", "plausibility")):
        take = lambda name, rows: np.concatenate([features[name][g][rows] for g in groups], 1)  # noqa: E731
        for reading, read in readings(take("real", fit)).items():
            for pseudo in (False, True):
                for left_out in FAMILIES:
                    fitted = [f for f in FAMILIES if f != left_out] + (["pseudo"] if pseudo else [])
                    x = np.concatenate([read(take("real", fit))] + [read(take(f, fit)) for f in fitted])
                    y = np.r_[np.ones(fit.sum()), np.zeros(fit.sum() * len(fitted))]
                    score = fit_readout(x, y)
                    real = score(read(take("real", measure)))
                    row = {f: auc(real, score(read(take(f, measure)))) for f in FAMILIES}
                    results["study"][f"{'+'.join(groups)} | {reading} | {pseudo} | {left_out}"] = row
                    cells = [f"({row[f]:.3f})" if f == left_out else f"{row[f]:.3f}" for f in FAMILIES]
                    print(f"| {' + '.join(groups)} | {reading} | {'yes' if pseudo else 'no'} | {left_out} | " + " | ".join(cells) + " |")
    if args.one_class_photos:
        results["one_class"] = one_class_study(
            model, sets, small, features, args.train_data, args.one_class_photos, load_model(args.discriminator).eval() if args.discriminator else model
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()

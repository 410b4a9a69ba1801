"""The family of colorizations the realness detector is trained and judged against.

A detector shown one generator learns that generator's signature and nothing else (ours called a
constant sepia tint "photographed in colour"). So it is trained, and measured, against a family:

* ``generator``: the model's own generator at random decoding settings (temperature, vividness)
  and working sizes, through `model.colorize` as users run it;
* ``checkpoints``: other generators (other points of training, the other head), given as models;
* ``toned``: one colour of any hue and strength on the photo's lightness (sepia, cyanotype,
  selenium, tinted film), half of them stronger in the mid-tones as toned prints are;
* ``hand-tint``: a few flat, soft-edged washes of colour over regions, the rest left neutral or
  toned, as hand-coloured photographs are;
* ``transfer``: another photo's colours carried over by matching lightness and local texture
  (Welsh, Ashikhmin & Mueller 2002, with Reinhard et al.'s luminance remapping).

Every fake is made as the users' colorizations are: a colour (a, b) prediction at some size,
upsampled and recombined with the photo's own full-resolution lightness by `fullres.recombine`
(the same gamut mapping, the same rounding). Each photo's fake is seeded by (seed, index), so an
evaluation draws the same fakes every time.
"""

from __future__ import annotations

import cv2
import numpy as np

from .color import AB_SCALE, L_OFFSET, rgb_to_l_numpy, rgb_to_model_lab_numpy
from .fullres import recombine
from .metrics import image_ab

FAMILIES = ("generator", "checkpoints", "toned", "hand-tint", "transfer")

# The generator family's settings: working sizes (long side) and decoding ranges.
GENERATOR_SIZES = (96, 128, 192, 256, 384)
TEMPERATURE_RANGE = (0.2, 1.0)
VIVIDNESS_RANGE = (0.0, 1.0)


def rng_for(seed: int, index: int) -> np.random.Generator:
    """The random stream of one fake: the same (seed, index) always draws the same fake."""
    return np.random.default_rng([seed, index])


def _shrink(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """The photo area-averaged down to `long_side` (never enlarged)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, long_side / max(h, w))
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) if scale < 1 else rgb


def _working_l(rgb: np.ndarray, long_side: int) -> np.ndarray:
    """The photo's L (0-100) shrunk to `long_side` (never enlarged)."""
    return rgb_to_l_numpy(_shrink(rgb, long_side))


def _ab(hue_degrees, chroma) -> np.ndarray:
    angle = np.deg2rad(hue_degrees)
    return np.stack([chroma * np.cos(angle), chroma * np.sin(angle)], axis=-1).astype(np.float32)


def toned(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One colour of any hue and strength (chroma 3-35) on the photo's lightness; half the time
    its strength follows the mid-tones (none in pure black and white), as in a toned print."""
    hue, chroma = rng.uniform(0, 360), rng.uniform(3, 35)
    if rng.random() < 0.5:
        return recombine(rgb, _ab(hue, chroma).reshape(1, 1, 2))
    l = _working_l(rgb, 64) / 100.0
    strength = np.clip(4.0 * l * (1.0 - l), 0.0, 1.0) ** rng.uniform(0.5, 1.5)
    return recombine(rgb, _ab(hue, chroma * strength))


def hand_tint(rgb: np.ndarray, rng: np.random.Generator, long_side: int = 96) -> np.ndarray:
    """2-5 flat washes of colour (chroma 8-40) over regions that follow the photo's lightness and
    a smooth random layout, soft-edged; a region may stay uncoloured, or the whole print toned."""
    l = _working_l(rgb, long_side)
    h, w = l.shape
    regions = int(rng.integers(2, 6))
    # each region's affinity: a smooth random field plus a preference for a lightness band
    coarse = rng.normal(size=(regions, 4, 4)).astype(np.float32)
    fields = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in coarse])
    centres = rng.uniform(10, 95, size=regions)
    smooth_l = cv2.GaussianBlur(l, (0, 0), 2.0)  # regions follow shapes, not texture
    band = -np.abs(smooth_l[None] - centres[:, None, None]) / 25.0
    label = np.argmax(fields + rng.uniform(0.5, 2.0) * band, axis=0)
    hues, chromas = rng.uniform(0, 360, regions), rng.uniform(8, 40, regions)
    chromas[rng.random(regions) < 0.25] = 0.0  # left as the print was
    ab = _ab(hues, chromas)[label]  # (h, w, 2)
    if rng.random() < 0.4:  # the print itself toned underneath
        ab += _ab(rng.uniform(20, 90), rng.uniform(3, 12))
    sigma = rng.uniform(0.5, 2.5)  # brush edges, at the working size
    return recombine(rgb, cv2.GaussianBlur(ab, (0, 0), sigma))


def transfer(rgb: np.ndarray, reference: np.ndarray, rng: np.random.Generator, long_side: int = 128, samples: int = 200) -> np.ndarray:
    """Colour from `reference` (another photo, uint8 RGB): each pixel takes the a, b of the
    reference sample with the nearest lightness and local standard deviation (5x5), after the
    reference's lightness is remapped to the photo's mean and spread (Welsh et al. 2002)."""
    l = _working_l(rgb, long_side)
    lab = rgb_to_model_lab_numpy(_shrink(reference, long_side))
    ref_l, ref_ab = (lab[0] + 1.0) * L_OFFSET, lab[1:].transpose(1, 2, 0) * AB_SCALE
    ref_l = (ref_l - ref_l.mean()) * (l.std() / max(ref_l.std(), 1e-3)) + l.mean()

    def local_std(x):
        mean = cv2.blur(x, (5, 5))
        return np.sqrt(np.maximum(cv2.blur(x * x, (5, 5)) - mean * mean, 0.0))

    # jittered grid samples of the reference, as Welsh et al.
    side = max(1, int(np.sqrt(samples)))
    ys = ((np.arange(side)[:, None] + rng.random((side, side))) * ref_l.shape[0] / side).astype(int).clip(0, ref_l.shape[0] - 1)
    xs = ((np.arange(side)[None, :] + rng.random((side, side))) * ref_l.shape[1] / side).astype(int).clip(0, ref_l.shape[1] - 1)
    ys, xs = ys.ravel(), xs.ravel()
    features = np.stack([ref_l[ys, xs], local_std(ref_l)[ys, xs]], axis=1)  # (S, 2)
    colours = ref_ab[ys, xs]  # (S, 2)
    target = np.stack([l, local_std(l)], axis=-1).reshape(-1, 2).astype(np.float64)
    # nearest sample by squared distance, equal weights as Welsh et al.: |t|^2 - 2 t.f + |f|^2, whose
    # first term is the same for every sample (one matrix product instead of a (pixels, samples, 2) array)
    features = features.astype(np.float64)
    distance = (features**2).sum(1)[None] - 2.0 * (target @ features.T)  # (pixels, S)
    ab = colours[np.argmin(distance, axis=1)].reshape(*l.shape, 2).astype(np.float32)
    return recombine(rgb, ab)


CORRUPTIONS = ("coarse", "shifted", "recoloured", "noisy")


def corrupted(rgb: np.ndarray, rng: np.random.Generator, kinds: tuple[str, ...] | None = None) -> np.ndarray:
    """A pseudo-fake made from the photo's own colour (uint8 RGB in, the same size out): its a, b
    at a working size of 96-256 px, then `kinds` of CORRUPTIONS (default: each with chance 0.4, at
    least one), applied in the order listed below, recombined with its lightness as every fake is.
    Training material only, not a family: what colorizations share is
    colour that is not the scene's own, and here the colour is the scene's own made wrong, so a
    detector learns the wrongness rather than one colorizer's look (as self-blended images do for
    face forgeries, Shiohara & Yamasaki 2022):

    * ``recoloured``: inside a soft random region, the colour turned by 40-180 degrees of hue and
      its chroma scaled 0.5-1.5x (colour that does not belong to what is there);
    * ``shifted``: the colour displaced by a smooth random field of 1-6 px (colour edges that miss
      the lightness edges);
    * ``noisy``: colour noise at the working size (blurred 0.3-1.5 px, standard deviation 2-8),
      colour that flickers where the scene's does not;
    * ``coarse``: the colour at a 2-8x lower resolution, upsampled (colour computed small)."""
    small = _shrink(rgb, int(rng.choice((96, 128, 160, 192, 256))))
    ab = image_ab(small).transpose(1, 2, 0)
    h, w = ab.shape[:2]
    if kinds is None:
        chosen = [k for k in CORRUPTIONS if rng.random() < 0.4] or [CORRUPTIONS[int(rng.integers(0, len(CORRUPTIONS)))]]
    elif set(kinds) - set(CORRUPTIONS) or not kinds:
        raise ValueError(f"unknown corruption in {kinds!r}; they are {', '.join(CORRUPTIONS)}")
    else:
        chosen = list(kinds)

    def field(cells: int) -> np.ndarray:
        return cv2.resize(rng.normal(size=(cells, cells)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)

    if "recoloured" in chosen:
        turn = np.deg2rad(rng.uniform(40, 180) * rng.choice((-1, 1)))
        rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]], np.float32)
        other = ab @ rotation.T * rng.uniform(0.5, 1.5)
        mask = (field(int(rng.integers(2, 6))) > rng.uniform(-0.5, 0.8)).astype(np.float32)
        mask = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.5, 3.0))[..., None]
        ab = mask * other + (1.0 - mask) * ab
    if "shifted" in chosen:
        amount = rng.uniform(1.0, 6.0) * max(h, w) / 128
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        ab = cv2.remap(ab, xs + amount * field(4), ys + amount * field(4), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if "noisy" in chosen:
        noise = cv2.GaussianBlur(rng.normal(size=(h, w, 2)).astype(np.float32), (0, 0), rng.uniform(0.3, 1.5))
        ab = ab + noise * (rng.uniform(2.0, 8.0) / max(float(noise.std()), 1e-6))
    if "coarse" in chosen:
        factor = rng.uniform(2.0, 8.0)
        ab = cv2.resize(ab, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    return recombine(rgb, np.ascontiguousarray(ab, dtype=np.float32))


def generator_settings(model, rng: np.random.Generator) -> dict:
    """Random decoding settings and working size for `model.colorize` (the generator family)."""
    settings = {"size": int(rng.choice(GENERATOR_SIZES))}
    if model.head == "classification":
        settings["temperature"] = float(rng.uniform(*TEMPERATURE_RANGE))
        settings["vividness"] = float(rng.uniform(*VIVIDNESS_RANGE))
    return settings


def colorize_family(
    models, photos: list[np.ndarray], seed: int, start: int = 0, random_settings: bool = True, group: int = 8, default_share: float = 0.0
) -> list[np.ndarray]:
    """Colorizations of `photos` (uint8 RGB arrays) by `models`, through `model.colorize` as users
    run it: photo i goes to models[(start + i) % len(models)], at settings drawn once per group of
    `group` photos (so they run batched), or the model's own with `random_settings=False`; with
    `default_share`, that share of the groups (drawn at random) gets the model's own settings
    too (what most users' colorizations are made with)."""
    models = list(models)
    out: list[np.ndarray | None] = [None] * len(photos)
    for first in range(0, len(photos), group * len(models)):
        for k, model in enumerate(models):
            indices = [i for i in range(first, min(first + group * len(models), len(photos))) if (start + i) % len(models) == k]
            if not indices:
                continue
            rng = rng_for(seed, start + indices[0])
            own = not random_settings or (default_share > 0 and rng.random() < default_share)
            settings = {} if own else generator_settings(model, rng)
            results = model.colorize([photos[i] for i in indices], batch_size=group, **settings)
            for i, img in zip(indices, results):
                out[i] = np.asarray(img)
    return out


def make_fakes(
    family: str, photos: list[np.ndarray], seed: int = 0, start: int = 0, model=None, generators=(), references=None, default_share: float = 0.0
) -> list[np.ndarray]:
    """The `family`'s fake of each photo (uint8 RGB arrays in, the same sizes out).

    `model`: the generator family's model; `generators`: the checkpoints family's models;
    `references`: the transfer family's colour sources (default: the other photos, photo i
    takes photo i + 1 + a seeded offset). `start`: the photos' index in a larger set, so a set
    made in pieces draws what it would in one go. `default_share`: the generator family's share
    of photos colorized at the model's own settings (`colorize_family`); evaluation keeps 0."""
    if family == "generator":
        if model is None:
            raise ValueError("the generator family needs the model")
        return colorize_family([model], photos, seed, start, default_share=default_share)
    if family == "checkpoints":
        if not generators:
            raise ValueError("the checkpoints family needs other generators (models)")
        return colorize_family(generators, photos, seed, start)
    if family == "toned":
        return [toned(p, rng_for(seed, start + i)) for i, p in enumerate(photos)]
    if family == "hand-tint":
        return [hand_tint(p, rng_for(seed, start + i)) for i, p in enumerate(photos)]
    if family == "transfer":
        pool = references if references is not None else photos
        if len(pool) < 2 and references is None:
            raise ValueError("the transfer family needs at least two photos (or references)")
        fakes = []
        for i, p in enumerate(photos):
            rng = rng_for(seed, start + i)
            j = (i + 1 + int(rng.integers(0, max(1, len(pool) - 1)))) % len(pool)
            if references is None and j == i:
                j = (i + 1) % len(pool)
            fakes.append(transfer(p, pool[j], rng))
        return fakes
    raise ValueError(f"unknown family {family!r}; the families are {', '.join(FAMILIES)}")

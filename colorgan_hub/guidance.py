"""Guidance: a user's point hints and a reference photo, from their parsing to the network that
carries them over the photo.

A point hint is (x, y, colour): a position in the photo's pixels and the colour the user knows is
there. Only its chroma (Lab a, b) is used; the photo's lightness stays its own. A reference is a
colour photo whose palette, its colour distribution over the classification head's ab bins, the
result should take (Zhang et al. 2017's global hints).

`Guide` is the part of a guided model that reads them (`ColorGAN(guidance=...)`), on top of the
automatic colorizer, whose weights it leaves alone: with no hints and no reference the model's
output is the automatic colorizer's, bit for bit. Two designs:

* "attention": each hint is a token (its colour, and the decoder's features where it was placed).
  At strides 8 and 2 every pixel attends over the hints and a "none of them" token, with scores
  from the features of both ends and their distance, so a hint reaches the pixels that look like
  its own (an object, up to its edges). At stride 8 the attended colour and its weight enter the
  decoder (zero-initialised convolutions); at stride 2, the logits' grid, the colour distribution
  becomes a mixture: the network's own distribution with the "none" weight, each hint's colour
  (a narrow Gaussian over the bins) with its weight.
* "maps": Zhang et al.'s input layout moved into the decoder: the hints' ab and mask, area-pooled
  to each decoder stride, through conv 3x3 - ReLU - conv 1x1 (zero-initialised) added to that
  block's output (what `../shared/notes/guidance-experiments.md` measured first).

The reference, in both: its palette through an MLP into the bottleneck (stride 16) and as a
prior on the logits, gain(x) * (log palette - log training prior): the network's distribution
reweighted by how much more common each colour is in the reference than in the training photos.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch import nn

from .color import AB_SCALE, rgb_to_model_lab_numpy
from .image_io import ImageError, describe, is_monochrome, load_image, to_rgb_alpha

DESIGNS = ("attention", "maps")
PALETTE_SIZE = 128  # px, long side, at which a reference's palette is counted
PALETTE_SMOOTHING = 5.0  # Lab units: a reference's palette is blurred over the bins by this much
MAX_HINTS = 256  # per photo: far more than anyone places by hand, and the attention stays cheap


NO_GUIDANCE = "this model takes no hints or reference photo (it has no guidance inputs; the bundled model has them)"


class HintError(ValueError):
    """A hint or reference that cannot be used, in one line (the CLI's exit 2)."""


class Chroma(NamedTuple):
    """A hint's colour given directly as Lab chroma (a, b), in Lab units (benchmarks give the
    truth's mean chroma this way, as Zhang et al.'s protocol does)."""

    a: float
    b: float


class Guidance(NamedTuple):
    """What a guided network sees, for a batch of B photos at the working size.

    points: (B, N, 5) float32 rows (y, x, a, b, valid): y, x in working-size pixels (0 at the top
        left corner of the photo, pixel centres at i + 0.5), a, b normalised (Lab / AB_SCALE),
        valid 1 for a hint and 0 for padding. N may be 0.
    palette: (B, K) float32, each row a reference's colour distribution over the bins (summing to
        1), or all zeros for a photo without reference; or None when no photo has one.
    """

    points: torch.Tensor
    palette: torch.Tensor | None = None

    @property
    def empty(self) -> bool:
        return not bool(self.points[..., 4].any()) and (self.palette is None or not bool(self.palette.any()))

    def scaled(self, factor: float) -> Guidance:
        """The same hints on the photo resized by `factor` (multi-scale's second pass)."""
        points = self.points.clone()
        points[..., :2] *= factor
        return Guidance(points, self.palette)

    def to(self, device) -> Guidance:
        return Guidance(self.points.to(device), None if self.palette is None else self.palette.to(device))


# ---------------------------------------------------------------------------------------------
# What users give.

_HEX = re.compile(r"#?([0-9a-fA-F]{6})")


def parse_colour(colour) -> tuple[int, int, int]:
    """ "#rrggbb" (or "rrggbb") or an (r, g, b) of 0-255 -> (r, g, b). HintError otherwise."""
    if isinstance(colour, str):
        match = _HEX.fullmatch(colour.strip())
        if not match:
            raise HintError(f"colour {colour!r} is not #rrggbb")
        value = int(match.group(1), 16)
        return value >> 16, (value >> 8) & 255, value & 255
    try:
        values = [float(c) for c in colour]
    except (TypeError, ValueError):
        raise HintError(f"colour {colour!r} is neither #rrggbb nor (r, g, b) of 0-255") from None
    if len(values) != 3 or not all(0 <= v <= 255 for v in values):
        raise HintError(f"colour {colour!r} is neither #rrggbb nor (r, g, b) of 0-255")
    return tuple(int(round(v)) for v in values)


def colour_ab(rgb: tuple[int, int, int]) -> tuple[float, float]:
    """The Lab chroma (a, b) of an 8-bit sRGB colour."""
    lab = rgb_to_model_lab_numpy(np.array([[rgb]], np.uint8))  # (3, 1, 1), normalised
    return float(lab[1, 0, 0]) * AB_SCALE, float(lab[2, 0, 0]) * AB_SCALE


def hint_chroma(colour) -> tuple[float, float]:
    """A hint's colour ("#rrggbb", (r, g, b) or `Chroma`) -> its Lab chroma (a, b)."""
    if isinstance(colour, Chroma):
        return float(colour.a), float(colour.b)
    return colour_ab(parse_colour(colour))


def check_hints(hints, width: int, height: int, name: str = "photo") -> list[tuple[float, float, float, float]]:
    """A user's hints [(x, y, colour), ...] on a `width` x `height` photo -> [(x, y, a, b), ...] in
    its pixels and Lab units. HintError, naming the photo and the hint, for a hint that is not
    (x, y, colour), lies outside the photo, or has a colour that cannot be read."""
    if hints is None:
        return []
    if isinstance(hints, (str, bytes)) or not isinstance(hints, Sequence):
        raise HintError(f"{name}: hints must be a list of (x, y, colour), got {type(hints).__name__}")
    if len(hints) > MAX_HINTS:
        raise HintError(f"{name}: {len(hints)} hints, more than {MAX_HINTS}")
    checked = []
    for n, hint in enumerate(hints, 1):
        if isinstance(hint, dict):
            hint = (hint.get("x"), hint.get("y"), hint.get("colour", hint.get("color")))
        try:
            x, y, colour = hint
            x, y = float(x), float(y)
        except (TypeError, ValueError):
            raise HintError(f"{name}: hint {n} is not (x, y, colour): {hint!r}") from None
        if not (0 <= x <= width and 0 <= y <= height) or math.isnan(x + y):
            raise HintError(f"{name}: hint {n} at ({x:g}, {y:g}) is outside the photo ({width}x{height})")
        try:
            a, b = hint_chroma(colour)
        except HintError as err:
            raise HintError(f"{name}: hint {n}: {err}") from None
        checked.append((x, y, a, b))
    return checked


def hint_points(batch: Sequence[Sequence[tuple[float, float, float, float]]]) -> torch.Tensor:
    """Hints of B photos, [(x, y, a, b), ...] each in working-size pixels and Lab units ->
    `Guidance.points` (B, N, 5), N the most hints of any photo."""
    count = max((len(h) for h in batch), default=0)
    points = torch.zeros(len(batch), count, 5)
    for i, hints in enumerate(batch):
        for n, (x, y, a, b) in enumerate(hints):
            points[i, n] = torch.tensor([y, x, a / AB_SCALE, b / AB_SCALE, 1.0])
    return points


class Reference(NamedTuple):
    """A reference photo as the model uses it: its palette (K,) over the head's bins, normalised
    (what the network reads), and its chroma distribution, CHROMA_QUANTILES quantiles of its
    pixels' chroma in Lab units (what the result's saturation is matched to, `match_chroma`)."""

    palette: torch.Tensor
    chroma: np.ndarray


CHROMA_QUANTILES = 256
CHROMA_SMOOTHING = 0.05  # of the long side: how far a saturation change spreads (chosen on val and by eye, docs/guidance.md)


def read_reference(reference, bins: torch.Tensor, max_pixels: int | None = None) -> Reference:
    """A reference photo (path, PIL image or array) -> its `Reference`, counted at PALETTE_SIZE px
    (long side); the palette blurred over the bins by PALETTE_SMOOTHING. HintError for a reference
    that cannot be read or has no colour (grayscale, or a toned print)."""
    name = describe(reference)
    try:
        img = load_image(reference, **({"max_pixels": max_pixels} if max_pixels else {}), source=name)
    except ImageError as err:
        raise HintError(f"reference {err}") from None
    if is_monochrome(img):
        raise HintError(f"reference {name}: it has no colour to take a palette from (a grayscale or toned photo)")
    rgb, _ = to_rgb_alpha(img)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    scale = min(1.0, PALETTE_SIZE / max(rgb.shape[:2]))
    small = cv2.resize(rgb, (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    ab = rgb_to_model_lab_numpy(np.ascontiguousarray(small))[1:]  # normalised
    chroma = np.hypot(ab[0], ab[1]).ravel() * AB_SCALE
    quantiles = np.quantile(chroma, np.linspace(0, 1, CHROMA_QUANTILES)).astype(np.float32)
    return Reference(palette_of(torch.from_numpy(ab), bins), quantiles)


def match_chroma(ab: np.ndarray, quantiles: np.ndarray, smoothing: float = CHROMA_SMOOTHING) -> np.ndarray:
    """A result's ab (h, w, 2), Lab units, given the reference's saturation: each pixel's chroma is
    sent to the reference's chroma at the same rank (the most saturated pixel to the reference's
    highest chroma, the median to its median), and that change, as a log gain, is blurred over
    `smoothing` of the long side, so that regions change together instead of pixel by pixel
    (blotches); hues are kept. The network gives the palette's hues but spreads the saturation
    evenly; this gives the reference's saturation too, region by region (docs/guidance.md has
    what it changes and the smoothing chosen)."""
    chroma = np.hypot(ab[..., 0], ab[..., 1])
    ranks = np.empty(chroma.size, np.float32)
    ranks[np.argsort(chroma, axis=None, kind="stable")] = np.linspace(0, 1, chroma.size, dtype=np.float32)
    target = np.interp(ranks, np.linspace(0, 1, len(quantiles), dtype=np.float32), quantiles).reshape(chroma.shape)
    log_gain = np.log((target + 1) / (chroma + 1)).astype(np.float32)  # + 1: a gray pixel's hue is not blown up
    if smoothing > 0:
        log_gain = cv2.GaussianBlur(log_gain, (0, 0), smoothing * max(chroma.shape))
    return np.ascontiguousarray(ab * np.exp(log_gain)[..., None])


def palette_of(ab: torch.Tensor, bins: torch.Tensor, smoothing: float = PALETTE_SMOOTHING) -> torch.Tensor:
    """Normalised ab (2, h, w) or (B, 2, h, w) -> palette (K,) or (B, K): the share of pixels nearest
    each bin, blurred over the bins by `smoothing` Lab units (a palette, not an exact histogram)."""
    single = ab.dim() == 3
    ab = ab[None] if single else ab
    bins = bins.float().to(ab.device)
    nearest = torch.cdist(ab.float().flatten(2).transpose(1, 2), bins[None].expand(len(ab), -1, -1)).argmin(dim=2)  # (B, hw)
    counts = torch.zeros(len(ab), len(bins), device=ab.device).scatter_add_(1, nearest, torch.ones_like(nearest, dtype=torch.float32))
    kernel = torch.exp(-(torch.cdist(bins, bins) ** 2) / (2 * (smoothing / AB_SCALE) ** 2))  # (K, K)
    palette = counts @ kernel
    palette = palette / palette.sum(dim=1, keepdim=True)
    return palette[0] if single else palette


# ---------------------------------------------------------------------------------------------
# The network.


def _zero_conv(in_ch: int, out_ch: int, kernel: int = 1) -> nn.Conv2d:
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2, bias=False)
    nn.init.zeros_(conv.weight)
    return conv


class _Propagation(nn.Module):
    """Attention of every pixel of a feature map over the hints and a "none" token.

    Scores: q(x) . k_i / sqrt(dim) - exp(reach) * |x - p_i|^2 (distance as a share of the long
    side), with q and k 1x1 projections of the features (k read at the hint's place) plus the
    hint's colour; the "none" score is a 1x1 projection of the pixel's own features."""

    def __init__(self, channels: int, dim: int = 64):
        super().__init__()
        self.dim = dim
        self.features = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, dim, 1))
        self.query = nn.Conv2d(dim, dim, 1)
        self.key = nn.Conv2d(dim, dim, 1)
        self.colour_key = nn.Linear(2, dim)
        self.none = nn.Conv2d(dim, 1, 1)
        nn.init.constant_(self.none.bias, 2.0)  # at first a hint moves only what is near it
        self.reach = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(self, x: torch.Tensor, points: torch.Tensor, grid_stride: float) -> torch.Tensor:
        """x (B, C, h, w) at `grid_stride` working pixels per cell, points (B, N, 5) ->
        weights (B, 1 + N, h, w) summing to 1 over the tokens (0: none)."""
        batch, _, h, w = x.shape
        embedded = self.features(x.float())  # (B, d, h, w)
        query = self.query(embedded).flatten(2)  # (B, d, hw)
        cells = points[..., :2] / grid_stride  # (B, N, 2) y, x in cells
        where = torch.stack([cells[..., 1] / w * 2 - 1, cells[..., 0] / h * 2 - 1], dim=-1)  # grid_sample's (x, y) in [-1, 1]
        at_hints = nn.functional.grid_sample(self.key(embedded), where[:, :, None], align_corners=False)[..., 0]  # (B, d, N)
        keys = at_hints + self.colour_key(points[..., 2:4]).transpose(1, 2)  # (B, d, N)
        scores = torch.einsum("bdp,bdn->bnp", query, keys) / math.sqrt(self.dim)  # (B, N, hw)
        ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5).view(1, 1, h, 1)
        xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5).view(1, 1, 1, w)
        distance2 = ((ys - cells[..., 0, None, None]) ** 2 + (xs - cells[..., 1, None, None]) ** 2) / max(h, w) ** 2  # (B, N, h, w)
        scores = scores - self.reach.exp() * distance2.flatten(2)
        scores = scores.masked_fill(points[..., 4, None] <= 0, float("-inf"))  # padding is no hint
        scores = torch.cat([self.none(embedded).flatten(2), scores], dim=1)  # (B, 1 + N, hw)
        return torch.softmax(scores, dim=1).view(batch, -1, h, w)


class Guide(nn.Module):
    """The guided part of a classification generator on an EfficientNet U-Net (see the module's
    docstring). `hook(guidance)` gives the generator's per-stage hook for one call, and `mix`
    turns the head's logits into the guided log-probabilities."""

    def __init__(self, design: str, stage_channels: Sequence[int], bins: torch.Tensor, dim: int = 64, palette_hidden: int = 256):
        super().__init__()
        if design not in DESIGNS:
            raise ValueError(f"guidance must be one of {DESIGNS}, got {design!r}")
        self.design = design
        bins_count = len(bins)
        coarse, fine = stage_channels[1], stage_channels[3]  # strides 8 and 2
        if design == "attention":
            self.coarse = _Propagation(coarse, dim)
            self.coarse_inject = _zero_conv(3, coarse)
            self.fine = _Propagation(fine, dim)
            self.fine_inject = _zero_conv(3, fine)
            self.colour_width = nn.Parameter(torch.tensor(math.log(6.0 / AB_SCALE)))  # a hint's colour: a Gaussian this wide over the bins
        else:
            self.inject = nn.ModuleList([nn.Sequential(nn.Conv2d(4, 32, 3, padding=1), nn.ReLU(), _zero_conv(32, ch)) for ch in stage_channels])
        self.palette_in = nn.Sequential(nn.Linear(bins_count, palette_hidden), nn.ReLU(), nn.Linear(palette_hidden, stage_channels[0]))
        nn.init.zeros_(self.palette_in[2].weight)
        nn.init.zeros_(self.palette_in[2].bias)
        self.palette_gain = _zero_conv(fine, 1)
        self.palette_gain_bias = nn.Parameter(torch.zeros(()))

    # -- per call ----------------------------------------------------------------------------

    def hook(self, guidance: Guidance, working: tuple[int, int], state: dict):
        """The generator hook for one call on a (B, 1, *working) batch. `state` (a fresh dict per
        call) receives what `mix` needs: nothing is kept on the module between calls."""
        points = guidance.points
        has_points = points.shape[1] > 0 and bool(points[..., 4].any())
        has_palette = guidance.palette is not None and bool(guidance.palette.any())
        height = working[0]

        def hook(stage: int, x: torch.Tensor) -> torch.Tensor:
            stride = height / x.shape[-2]
            if stage == 0 and has_palette:
                given = (guidance.palette.sum(dim=1) > 0).float()[:, None, None, None]  # (B, 1, 1, 1)
                x = x + given * self.palette_in(guidance.palette.float())[:, :, None, None].to(x.dtype)
            if has_points and self.design == "maps":
                x = x + self.inject[stage](self._maps(points, x.shape[-2:], stride)).to(x.dtype)
            elif has_points and stage in (1, 3):
                propagation, inject = (self.coarse, self.coarse_inject) if stage == 1 else (self.fine, self.fine_inject)
                weights = propagation(x, points, stride)  # (B, 1 + N, h, w)
                if stage == 3:
                    state["weights"] = weights
                attended = torch.einsum("bnhw,bnc->bchw", weights[:, 1:], points[..., 2:4])  # (B, 2, h, w)
                x = x + inject(torch.cat([attended, 1 - weights[:, :1]], dim=1)).to(x.dtype)
            if stage == 3 and has_palette:
                given = (guidance.palette.sum(dim=1) > 0).float()[:, None, None, None]
                state["palette_gain"] = given * (self.palette_gain(x.float()) + self.palette_gain_bias)  # (B, 1, h, w)
            return x

        return hook

    @staticmethod
    def _maps(points: torch.Tensor, shape: tuple[int, int], stride: float) -> torch.Tensor:
        """(B, 4, h, w): the hints' mean ab, their mask and count in each cell of a stride-`stride` grid."""
        batch, h, w = len(points), *shape
        cy = (points[..., 0] / stride).long().clamp(0, h - 1)
        cx = (points[..., 1] / stride).long().clamp(0, w - 1)
        index = (cy * w + cx).clamp(0, h * w - 1)  # (B, N)
        valid = points[..., 4]
        sums = torch.zeros(batch, 3, h * w, device=points.device)
        values = torch.stack([points[..., 2] * valid, points[..., 3] * valid, valid], dim=1)  # (B, 3, N)
        sums.scatter_add_(2, index[:, None].expand(-1, 3, -1), values)
        count = sums[:, 2:]
        mean_ab = sums[:, :2] / count.clamp_min(1)
        return torch.cat([mean_ab, (count > 0).float(), count], dim=1).view(batch, 4, h, w)

    def mix(self, logits: torch.Tensor, guidance: Guidance, state: dict, bins: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Head logits (B, K, h, w) -> guided log-probabilities (B, K, h, w)."""
        log_probs = torch.log_softmax(logits.float(), dim=1)
        gain = state.get("palette_gain")
        if gain is not None:
            ratio = torch.log(guidance.palette.float() + 1e-4) - torch.log(prior.float() + 1e-4)  # (B, K)
            log_probs = torch.log_softmax(log_probs + gain * ratio[:, :, None, None], dim=1)
        weights = state.get("weights")
        if weights is None:
            return log_probs
        width = self.colour_width.exp()
        hint_ab = guidance.points[..., 2:4].float()  # (B, N, 2)
        kernels = torch.softmax(-(torch.cdist(hint_ab, bins.float()[None].expand(len(hint_ab), -1, -1)) ** 2) / (2 * width**2), dim=2)  # (B, N, K)
        probs = weights[:, :1] * log_probs.exp() + torch.einsum("bnhw,bnk->bkhw", weights[:, 1:], kernels)
        return torch.log(probs.clamp_min(1e-12))

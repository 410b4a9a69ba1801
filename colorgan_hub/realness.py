"""The realness score, in one place: the probability that a colour photo was photographed in
colour rather than colorized from a black-and-white one.

`score` (what `ColorGAN.realness` calls): the photo at the detector's working size
(`model.realness_size`), the conditional PatchGAN's mean patch logit, Platt-scaled by
`model.realness_calibration`, plus a linear read-out (`model.realness_cues`) of ten
colour-structure cues measured here (`colour_cues`). Grayscale and toned monochrome prints have no
colour to judge (`NoColourError`). Fitting the calibration and the read-out, and training the
detector, are training's: `training/calibration.py`, `training/detector.py`.

The cues: the PatchGAN detector learns whatever tells its training fakes apart, which is often one
colorizer's signature: shown hand-tinted prints it never saw, it did worse than chance. These ten
numbers describe what every colorization shares to some degree and a colour photograph does not:
colour computed at a low resolution and spread over the lightness, so chroma edges that do not
follow lightness edges, flat washes inside textured regions, or colour that is a function of the
lightness alone. Every photo is first JPEG-compressed at quality 90 at the working size
(`normalise`), so a colorization saved as a PNG and a camera's JPEG are judged alike: whether a
file is a JPEG must not be the cue.

The ImageNet features (a model with `realness_features`, e.g. "efficientnet-lite0"): the same
normalised photo through a frozen ImageNet-pretrained EfficientNet-Lite body, each channel's mean
and standard deviation over the photo at strides 8, 16 and 32 (`ImageNetFeatures`), and a linear
read-out of them (`model.realness_feature_readout`) added to the logit like the cues'. A network
that knows what skies, leaves and faces look like in colour sees colour that is wrong for the
object, which the PatchGAN and the cues, looking at local structure, do not.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn

from .color import AB_SCALE, L_OFFSET, rgb_to_model_lab_numpy, uint8_to_model_lab
from .efficientnet import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLiteEncoder
from .image_io import DEFAULT_MAX_PIXELS, ImageError, NoColourError, describe, is_grayscale, is_monochrome, load_image, to_rgb_alpha
from .pipeline import as_list, inference, pick_device, resize, same_shape_batches, working_shape

MONOCHROME = "monochrome (toned) photograph: no colour to judge"
GRAYSCALE = "black-and-white (grayscale) photograph: no colour to judge (colorize it first)"

CUE_NAMES = (
    "log chroma/lightness gradient ratio",
    "chroma/lightness gradient correlation",
    "log chroma/lightness fine-detail ratio",
    "chroma spread (std / mean)",
    "log mean chroma",
    "neutral share (chroma < 5)",
    "colour not explained by lightness",
    "log chroma gradient in flat areas",
    "hue entropy",
    "chromatic share (chroma > 10)",
)
NORMALISE_QUALITY = 90


def normalise(rgb: np.ndarray) -> np.ndarray:
    """The working-size photo (uint8 RGB) as a quality-90 JPEG gives it back."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, NORMALISE_QUALITY])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]


def _gradient(x: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0), cv2.Sobel(x, cv2.CV_32F, 0, 1))


def _fine(x: np.ndarray) -> np.ndarray:
    return x - cv2.GaussianBlur(x, (0, 0), 1.0)


def colour_cues(rgb: np.ndarray) -> np.ndarray:
    """The ten cues (CUE_NAMES, float32) of a working-size uint8 RGB photo (H, W, 3)."""
    return normalised_cues(normalise(rgb))


def normalised_cues(normalised: np.ndarray) -> np.ndarray:
    """`colour_cues` of a photo `normalise` has already given back (the ImageNet features read the same)."""
    lab = rgb_to_model_lab_numpy(normalised)
    l, a, b = (lab[0] + 1.0) * L_OFFSET, lab[1] * AB_SCALE, lab[2] * AB_SCALE
    grad_l, grad_c = _gradient(l), np.hypot(_gradient(a), _gradient(b))
    chroma = np.hypot(a, b)
    fine_c, fine_l = np.hypot(_fine(a), _fine(b)).mean(), np.abs(_fine(l)).mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(grad_l.ravel(), grad_c.ravel())[0, 1]
    # the share of the colour's variance that no function of lightness (10 bands) explains
    bands = np.clip((l / 10).astype(int), 0, 9).ravel()
    counts = np.maximum(np.bincount(bands, minlength=10), 1)
    residual = 0.0
    for channel in (a.ravel(), b.ravel()):
        band_mean = np.bincount(bands, channel, minlength=10) / counts
        residual += float(((channel - band_mean[bands]) ** 2).mean())
    unexplained = residual / (a.var() + b.var() + 1e-3)
    flat = grad_l <= np.percentile(grad_l, 30)  # never empty
    strong = chroma > 10
    if strong.mean() > 0.01:
        hist = np.histogram(np.arctan2(b, a)[strong], 12, (-np.pi, np.pi))[0] + 1e-6
        p = hist / hist.sum()
        entropy = float(-(p * np.log(p)).sum())
    else:
        entropy = 0.0
    cues = [
        np.log(grad_c.mean() / (grad_l.mean() + 1e-3) + 1e-4),
        correlation,
        np.log(fine_c / (fine_l + 1e-3) + 1e-4),
        chroma.std() / (chroma.mean() + 1e-3),
        np.log(chroma.mean() + 1.0),
        (chroma < 5).mean(),
        unexplained,
        np.log(grad_c[flat].mean() + 1e-2),
        entropy,
        strong.mean(),
    ]
    return np.nan_to_num(np.asarray(cues, dtype=np.float32))


def default_readout(dim: int) -> torch.Tensor:
    """(3, dim): rows mean 0, scale 1, weight 0 for every input (a read-out that changes nothing)."""
    readout = torch.zeros(3, dim)
    readout[1] = 1.0
    return readout


def default_cue_readout() -> torch.Tensor:
    """The cues' read-out that changes nothing, (3, len(CUE_NAMES))."""
    return default_readout(len(CUE_NAMES))


def readout_logit(readout: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A linear read-out's part of the realness logit (B,): ((values - mean) / scale) @ weight."""
    mean, scale, weight = readout.float()
    return ((values.float() - mean) / scale) @ weight


FEATURE_STAGES = slice(2, None)  # of the encoder's strides 2, 4, 8, 16, 32: pooled at 8, 16 and 32


class ImageNetFeatures(nn.Module):
    """A colour photo's pooled ImageNet features: (B, 3, h, w) uint8 RGB -> (B, `dim`) float32, the
    mean and the standard deviation over the photo of each channel of a frozen EfficientNet-Lite
    body (RGB stem) at strides 8, 16 and 32. The ImageNet weights are loaded by training
    (`training/detector.py --features`) and saved with the model; it stays in eval mode."""

    def __init__(self, variant: str = "efficientnet-lite0"):
        super().__init__()
        self.encoder = EfficientNetLiteEncoder(variant, in_ch=3)
        self.encoder.requires_grad_(False)
        self.dim = 2 * sum(self.encoder.channels[FEATURE_STAGES])
        self.train(False)

    def train(self, mode: bool = True):
        return super().train(False)  # ImageNet BatchNorm statistics, always

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        x = (rgb.float() / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        stages = [f.float() for f in self.encoder(x)[FEATURE_STAGES]]
        return torch.cat([f.mean(dim=(2, 3)) for f in stages] + [f.std(dim=(2, 3), correction=0) for f in stages], dim=1)


# ----------------------------------------------------------------------------------------------
# The score of photos.


def score(
    model,
    images,
    size: int | None = None,
    batch_size: int = 8,
    device=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allow_grayscale: bool = False,
    return_exceptions: bool = False,
):
    """Calibrated probability that each colour image was photographed in colour (not colorized).

    One image -> a float in [0, 1]; a list -> a list of floats. Grayscale images and toned
    monochrome prints (sepia, cyanotype, selenium: colour that depends on the lightness alone,
    `image_io.is_monochrome`) have no colour to judge: one such image raises NoColourError (an
    ImageError; its reason is GRAYSCALE or MONOCHROME), and in a list it gets None in place of a
    probability, so that the other photos are still scored (`colorgan score --json` writes the
    same null). With `allow_grayscale` every image is scored: evaluation and calibration score
    every colorization, also a nearly colourless one. A file that cannot be read raises ImageError
    naming it, also in a list; with `return_exceptions=True` a list holds that ImageError in its
    place and the other photos are still scored. The detector sees each photo at long side `size`
    (default `model.realness_size`, the size its calibration was fitted at).
    """
    values = logits(model, images, size, batch_size, device, max_pixels, allow_grayscale, return_exceptions=return_exceptions)
    if isinstance(values, list):
        return [x if x is None or isinstance(x, ImageError) else _sigmoid(x) for x in values]
    return _sigmoid(values)


def _sigmoid(x: float) -> float:
    """1 / (1 + e^-x) without overflow at either end."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def working_rgb(img: Image.Image, size: int) -> np.ndarray:
    """A loaded photo as the detector sees it: uint8 RGB, long side `size` (area-averaged)."""
    rgb, _ = to_rgb_alpha(img)
    return resize(rgb, working_shape(*rgb.shape[:2], size))


def photo_cues(model, images, size: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(N, len(CUE_NAMES)) float32: the colour-structure cues of each photo as `realness` computes
    them (at the detector's working size, `model.realness_size`), what the cue read-out is fitted on."""
    prepared, _ = _prepare(images, size or model.realness_size, max_pixels, allow_grayscale=True, keep_errors=False)
    return np.stack([colour_cues(rgb) for rgb in prepared])


def photo_features(model, images, size: int | None = None, batch_size: int = 8, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """(N, model.feature_net.dim) float32: the ImageNet features of each photo as `realness`
    computes them (the normalised photo at the detector's working size), what their read-out is
    fitted on. Needs a model with `realness_features`."""
    prepared, _ = _prepare(images, size or model.realness_size, max_pixels, allow_grayscale=True, keep_errors=False)
    out = np.zeros((len(prepared), model.feature_net.dim), np.float32)
    for indices, _, normalised in _batches(model, prepared, list(range(len(prepared))), batch_size, next(model.parameters()).device, normalised=True):
        out[indices] = model.feature_net(normalised).float().cpu().numpy()
    return out


def _prepare(images, size: int, max_pixels: int, allow_grayscale: bool, keep_errors: bool, single: bool = False):
    """Each photo loaded and brought to the detector's view (`working_rgb`): (prepared, results),
    prepared[i] the uint8 RGB at `size` or None, results[i] None or, for a photo that could not be
    loaded, its ImageError (raised unless `keep_errors`). A photo with no colour to judge raises
    NoColourError when it is the only one (`single`), else it is left as None to answer None."""
    images, _ = as_list(images)
    prepared, results = [], [None] * len(images)
    for i, image in enumerate(images):
        source = describe(image, i)
        try:
            img = load_image(image, max_pixels=max_pixels, source=source)
        except ImageError as error:
            if single or not keep_errors:
                raise
            results[i] = error
            prepared.append(None)
            continue
        reason = None if allow_grayscale else GRAYSCALE if is_grayscale(img) else MONOCHROME if is_monochrome(img) else None
        if reason is not None:
            if single:
                raise NoColourError(source, reason)
            prepared.append(None)  # an answer (None), not a failure: the rest of the list is still scored
            continue
        prepared.append(working_rgb(img, size))
    return prepared, results


def _batches(model, prepared: list, indices: list[int], batch_size: int, device, normalised: bool):
    """Under `inference`: (indices, uint8 RGB (B, 3, h, w), the JPEG-normalised photos as a tensor
    (B, 3, h, w) or None) for the `indices` of `prepared`, photos of one size per batch."""
    with inference(model, device):
        for batch in same_shape_batches([prepared[i].shape[:2] for i in indices], batch_size):
            chosen = [indices[k] for k in batch]
            rgb = torch.from_numpy(np.stack([prepared[i] for i in chosen])).to(device).permute(0, 3, 1, 2)  # (B, 3, h, w) uint8
            flat = torch.from_numpy(np.stack([normalise(prepared[i]) for i in chosen])).to(device).permute(0, 3, 1, 2) if normalised else None
            yield chosen, rgb, flat


def logits(
    model,
    images,
    size: int | None = None,
    batch_size: int = 8,
    device=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    allow_grayscale: bool = False,
    calibrated: bool = True,
    return_exceptions: bool = False,
):
    """The detector's logit per image, as `realness` computes it (None for a photo with no colour
    to judge in a list, the ImageError for an unreadable one with `return_exceptions`):
    calibrated, or with `calibrated=False` the raw mean patch logit (what the calibration is
    fitted on). The photo is seen at `size` (long side; default `model.realness_size`, the size
    the calibration was fitted at)."""
    _, single = as_list(images)
    device = torch.device(device) if device is not None else pick_device()
    prepared, results = _prepare(images, size or model.realness_size, max_pixels, allow_grayscale, return_exceptions, single)
    scored = [i for i, p in enumerate(prepared) if p is not None]
    read_cues, read_features = calibrated and model.uses_cues, calibrated and model.uses_features
    for indices, rgb, normalised in _batches(model, prepared, scored, batch_size, device, normalised=read_cues or read_features):
        real_l, real_ab = uint8_to_model_lab(rgb)
        cues = torch.from_numpy(np.stack([normalised_cues(x) for x in normalised.permute(0, 2, 3, 1).cpu().numpy()])) if read_cues else None
        features = model.feature_net(normalised) if read_features else None
        batch_logits = model.realness_logit(real_l, real_ab, calibrated=calibrated, cues=cues, features=features).float().cpu().tolist()
        for i, x in zip(indices, batch_logits):
            results[i] = x
    return results[0] if single else results

"""Image input and output: open any photo safely, turn it into sRGB + alpha arrays, save results.

Every failure a user can cause (missing, empty, truncated, corrupt or non-image file, a
decompression bomb, an image too small to colorize) raises `ImageError`, a `ValueError` whose
message names the file and the reason. Any PIL mode is accepted (1, L, LA, P, RGB, RGBA, CMYK,
YCbCr, I;16, I, F, ...), and the EXIF orientation is applied.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm", ".pbm", ".tga"}
DEFAULT_MAX_PIXELS = 50_000_000  # decompression-bomb guard: 50 megapixels
MIN_SIDE = 8  # a U-Net level needs pixels to work on
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")
GRAY_MODES = ("1", "L", "LA", "La", *_HIGH_DEPTH_MODES)  # modes that hold no colour at all
# Mean per-pixel channel spread (8-bit units) under which a colour-mode image counts as gray.
GRAY_SPREAD = 2.0


class InputError(ValueError):
    """An input that cannot be used, with the file (or input) and the reason in the message:
    `source` and `reason` apart for callers that show them apart (the demo shows the reason)."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ImageError(InputError):
    """A photo that cannot be used."""


class NoColourError(ImageError):
    """A grayscale photo or a toned monochrome print given to the realness score: not a broken
    file but an answer (it was not photographed in colour, and there is no colour to judge)."""


def describe(image, index: int | None = None) -> str:
    """A name for an input in error messages: its path, its file name, or its position."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    name = getattr(image, "filename", "") if isinstance(image, Image.Image) else ""
    if name:
        return str(name)
    kind = type(image).__name__
    return f"input #{index} ({kind})" if index is not None else f"input ({kind})"


def check_size(img: Image.Image, source: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """ImageError if the image is over `max_pixels` or under MIN_SIDE on a side (header only)."""
    w, h = img.size
    if w * h > max_pixels:
        raise ImageError(source, f"{w}x{h} is {w * h / 1e6:.1f} megapixels, over the limit of {max_pixels / 1e6:g}")
    if min(w, h) < MIN_SIDE:
        raise ImageError(source, f"{w}x{h} is too small: both sides must be at least {MIN_SIDE} px")


def load_image(image, max_pixels: int = DEFAULT_MAX_PIXELS, source: str | None = None) -> Image.Image:
    """Open a path, PIL image, numpy array or an encoded file's bytes as a fully decoded, upright
    PIL image.

    Raises ImageError for anything that cannot be colorized, naming `source` (default: the path).
    """
    source = source or describe(image)
    if isinstance(image, np.ndarray):
        image = _from_array(image, source)
    elif isinstance(image, (str, os.PathLike)):
        problem = file_problem(Path(image))
        if problem:
            raise ImageError(source, problem)
        image = _decode(Path(image), source, max_pixels)
    elif isinstance(image, (bytes, bytearray)):
        if not image:
            raise ImageError(source, "empty file")
        image = _decode(io.BytesIO(image), source, max_pixels)
    elif not isinstance(image, Image.Image):
        raise ImageError(source, f"expected a path, PIL image, numpy array or bytes, got {type(image).__name__}")
    check_size(image, source, max_pixels)
    return upright(image)


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (the same image when there is nothing to
    turn: exif_transpose copies even then); a broken EXIF block leaves it as it is."""
    try:
        if image.getexif().get(0x0112, 1) != 1:
            return ImageOps.exif_transpose(image)
    except Exception:  # a broken EXIF block should not cost the photo
        pass
    return image


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Short side resized to `size` (bicubic), then the central size x size square: the papers'
    256 protocol (evaluation and validation)."""
    return ImageOps.fit(image, (size, size), Image.Resampling.BICUBIC)


def jpeg_roundtrip(image: Image.Image, quality: int) -> Image.Image:
    """The image as a JPEG of `quality` would give it back (RGB)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def file_problem(path: Path, what: str = "an image") -> str | None:
    """Why `path` cannot be opened as a file at all (missing, a folder, empty), or None."""
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return f"is a folder, not {what}"
    if path.stat().st_size == 0:
        return "empty file"
    return None


def _decode(file, source: str, max_pixels: int) -> Image.Image:
    """A path or binary file object -> the decoded PIL image; ImageError naming `source` otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(file)
            check_size(img, source, max_pixels)  # before decoding anything
            img.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(source, "not an image file (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(source, f"refused as a decompression bomb ({err})") from None
    except OSError as err:
        raise ImageError(source, f"truncated or corrupt image ({err})") from None
    except Exception as err:  # Pillow plugins raise many kinds on damaged data
        raise ImageError(source, f"cannot be decoded ({type(err).__name__}: {err})") from None
    return img


def _from_array(array: np.ndarray, source: str) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(source, f"array of shape {array.shape} is not (H, W), (H, W, 3) or (H, W, 4)")
    if array.dtype != np.uint8:
        if not np.issubdtype(array.dtype, np.floating):
            raise ImageError(source, f"array dtype {array.dtype} is not uint8 or float in [0, 1]")
        array = (np.clip(np.nan_to_num(array), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array)


def to_rgb_alpha(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """PIL image of any mode -> (sRGB (H, W, 3) uint8 or float32 in [0, 1], alpha (H, W) uint8 or None).

    High-bit-depth gray (I;16, I, F) stays float so no precision is lost before L is computed: float
    data in [0, 1] is taken as is, data whose maximum is at most 255 on a 0-255 scale, the rest on
    0-65535.
    """
    alpha = None
    if img.mode in _HIGH_DEPTH_MODES:
        gray = np.asarray(img, dtype=np.float32)
        top = gray.max(initial=0.0)
        if img.mode == "F" and top <= 1.0:
            scale = 1.0  # float data already in [0, 1]
        elif top <= 255.0:
            scale = 255.0  # 8-bit values stored in a wide mode
        else:
            scale = 65535.0  # 16-bit data
        gray = np.clip(gray / scale, 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        alpha = np.asarray(rgba)[..., 3].copy()
        return np.asarray(rgba)[..., :3].copy(), alpha
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB")), alpha


def is_grayscale(img: Image.Image) -> bool:
    """True if the image carries no colour to judge: a gray mode, or R = G = B up to JPEG noise."""
    if img.mode in GRAY_MODES:
        return True
    thumb = img.convert("RGB").resize((64, 64), Image.Resampling.BILINEAR) if max(img.size) > 64 else img.convert("RGB")
    rgb = np.asarray(thumb, dtype=np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean()) < GRAY_SPREAD


MONOCHROME_RESIDUAL = 1.0  # Lab units of `color.tone_residual` on a 48 px thumbnail: below it, a toned print


def is_monochrome(img: Image.Image) -> bool:
    """True for a gray or toned photograph (sepia, cyanotype, selenium, split toning): colour that
    is a function of the lightness alone, so there is no colour to judge. The threshold leaves
    every photo of ../shared/data/val and val_fullres (622 colour photos) judged as colour."""
    from .color import tone_residual

    if is_grayscale(img):
        return True
    thumb = img.convert("RGB")
    thumb.thumbnail((48, 48), Image.Resampling.BOX)
    return tone_residual(np.asarray(thumb)) < MONOCHROME_RESIDUAL


def list_images(folder, recursive: bool = True) -> tuple[list[Path], list[Path]]:
    """(image files, other files) in `folder` (and its subfolders if `recursive`), each sorted;
    hidden files and folders are left out. Images are known by their suffix (IMAGE_SUFFIXES).
    The one listing rule of the CLI, evaluation and training."""
    folder = Path(folder)
    pattern = folder.rglob("*") if recursive else folder.iterdir()
    images, others = [], []
    for path in pattern:
        if any(part.startswith(".") for part in path.relative_to(folder).parts) or not path.is_file():
            continue
        (images if path.suffix.lower() in IMAGE_SUFFIXES else others).append(path)
    return sorted(images), sorted(others)


def spread_evenly(items: list, count: int | None) -> list:
    """`count` of `items` spread evenly over the list (all of them when `count` is None or not
    smaller). Photo folders sorted by name group photos by source: the first N would cover a few
    sources only."""
    if count is None or count >= len(items):
        return list(items)
    return [items[i * len(items) // count] for i in range(count)]


def output_path(input_path: Path, output_dir: Path) -> Path:
    """Where a colorized file goes: same stem, JPEG for JPEG inputs, PNG for everything else."""
    is_jpeg = input_path.suffix.lower() in (".jpg", ".jpeg", ".jpe", ".jfif")
    return output_dir / (input_path.stem + (input_path.suffix if is_jpeg else ".png"))


def save_image(img: Image.Image, path: Path) -> None:
    """Save as JPEG quality 95 (no alpha possible there) or lossless PNG, by extension."""
    if path.suffix.lower() in (".jpg", ".jpeg", ".jpe", ".jfif"):
        img.convert("RGB").save(path, quality=95, subsampling=0)
    else:
        img.save(path)

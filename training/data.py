"""The training data stream: Hugging Face `datasets` (Hub or local imagefolder) -> Lab batches.

    stream (undecoded) -> calibration hold-out split -> max_train_samples -> seeded shuffle buffer
    -> split_dataset_by_node -> decode + filter (undecodable, tiny, grayscale, near-grayscale;
    each drop counted and logged) -> random resized crop + flip -> uint8 (3, H, W)
    -> exact Lab per sample (LUT + OpenCV) -> DataLoader batches of uint8 RGB and normalised L, ab.

Images stay undecoded (bytes, or just a path for a local folder) until after the shuffle, so the
shuffle buffer is cheap: for a local folder it covers the whole folder.
Multi-process: `split_dataset_by_node` (not accelerate's dispatching, which would decode every
image on rank 0 and broadcast it) gives each process its own shards, or every world_size-th
example when the shards do not divide evenly (a local imagefolder is one shard).

Also here: the colour prior's counts (`ab_histogram`), the upscaler's stream of damaged
low-resolution crops, and the detector's augmentation (`degrade_photo`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import math
import os
import random
from collections import Counter

import cv2
import datasets
import numpy as np
import torch
from datasets.distributed import split_dataset_by_node
from PIL import Image

from colorgan_hub import image_io
from colorgan_hub.color import FILM_RESPONSES, L_OF_GRAY8, L_OFFSET, film_lightness, gray_to_l_numpy, rgb_to_l_numpy, rgb_to_model_lab_numpy, uint8_to_model_lab
from colorgan_hub.image_io import jpeg_roundtrip
from colorgan_hub.metrics import colorfulness
from colorgan_hub.upscale import L_MAX  # the upscaler sees L / L_MAX

logger = logging.getLogger(__name__)

DROP_REASONS = ("undecodable", "oversized", "tiny", "grayscale", "near_grayscale")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the photos come from and how they are filtered and cropped (train.py's data flags)."""

    train_data_dir: str | None = None  # a local image folder, or:
    dataset_name: str | None = None  # a Hub dataset id
    dataset_config_name: str | None = None
    split: str = "train"
    image_column: str | None = None
    streaming: bool = True
    max_train_samples: int | None = None
    shuffle_buffer_size: int = 1000
    resolution: int = 256  # training crop size (px)
    crop_scale_min: float = 0.5  # smallest random crop, as a share of the image's area
    min_image_size: int = 64  # drop images whose short side is below this
    min_colorfulness: float = 5.0  # drop near-grayscale images below this
    calibration_fraction: float = 0.05  # share held out (by hash) for the realness calibration
    film_probability: float = 0.0  # share of crops whose input L is made as an old film would (`film_lightness`)
    seed: int = 0

    @classmethod
    def from_args(cls, args) -> DataConfig:
        """The data part of parsed flags (any object with these attributes)."""
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})


_IMAGE_COLUMN_GUESSES = ("image", "img", "jpg", "jpeg", "png", "webp")


def add_source_arguments(parser) -> None:
    """The flags naming the photos a saved model was trained on (scripts that work on a trained
    model: calibrate.py, detector.py); `check_source_arguments` after parsing."""
    parser.add_argument("--train_data_dir", help="the local training folder the model was trained on")
    parser.add_argument("--dataset_name", help="or the Hub dataset it was trained on")
    parser.add_argument("--dataset_config_name", help="its configuration")
    parser.add_argument("--split", default="train", help="its split")
    parser.add_argument("--image_column", help="its image column")


def check_source_arguments(parser, args) -> None:
    """Exactly one source: a parser error otherwise."""
    if (args.dataset_name is None) == (args.train_data_dir is None):
        parser.error("give exactly one of --dataset_name and --train_data_dir")


def load_stream(dataset_name=None, dataset_config_name=None, data_dir=None, split="train", streaming=True):
    """A Hub dataset or a local image folder as a `datasets` dataset (streamed by default)."""
    if data_dir is not None:
        # data_files, not data_dir: with data_dir, `datasets` infers splits from file names and
        # silently leaves every "*test*" / "*valid*" file out of "train".
        files = {"train": os.path.join(data_dir, "**")}
        return datasets.load_dataset("imagefolder", data_files=files, split="train", streaming=streaming)
    return datasets.load_dataset(dataset_name, dataset_config_name, split=split, streaming=streaming)


def find_image_column(ds, image_column=None) -> str:
    """The column holding images: the one asked for, else the first `datasets.Image` feature."""
    names = list(ds.features or {}) or list(ds.column_names or [])
    if image_column is not None:
        if names and image_column not in names:
            raise ValueError(f"--image_column {image_column!r} not in the dataset's columns {names}")
        return image_column
    for name, feature in (ds.features or {}).items():
        if isinstance(feature, datasets.Image):
            return name
    for name in _IMAGE_COLUMN_GUESSES:
        if name in names:
            return name
    raise ValueError(f"no image column found among {names}: pass --image_column")


def _sample_key(ref) -> bytes:
    """A stable identity for a sample: its file name, else its first bytes."""
    path = ref.get("path") if isinstance(ref, dict) else None
    if path:
        return os.path.basename(path).encode()
    data = ref.get("bytes") if isinstance(ref, dict) else None
    return (data or b"")[:65536]


def is_held_out(ref, fraction: float) -> bool:
    """Deterministic hold-out by hash: the same images every run, whatever the stream order."""
    if fraction <= 0:
        return False
    digest = hashlib.sha1(_sample_key(ref)).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _count_local_files(data_dir: str) -> int:
    return sum(len(files) for _, _, files in os.walk(data_dir))


def build_stream(config: DataConfig, process_index=0, num_processes=1, held_out=False):
    """The undecoded, shuffled, per-process stream of image references, and its image column."""
    ds = load_stream(config.dataset_name, config.dataset_config_name, config.train_data_dir, config.split, config.streaming)
    column = find_image_column(ds, config.image_column)
    ds = ds.select_columns([column]).cast_column(column, datasets.Image(decode=False))
    if config.calibration_fraction > 0:
        ds = ds.filter(lambda ex: is_held_out(ex[column], config.calibration_fraction) == held_out)
    if config.max_train_samples is not None and not held_out:
        ds = ds.take(config.max_train_samples)
    if not config.streaming:
        ds = ds.to_iterable_dataset(num_shards=max(num_processes, 1))
    if not held_out:
        buffer_size = config.shuffle_buffer_size
        if config.train_data_dir is not None:  # entries are paths: cover the whole folder
            buffer_size = max(buffer_size, _count_local_files(config.train_data_dir))
        ds = ds.shuffle(seed=config.seed, buffer_size=buffer_size)
    return split_dataset_by_node(ds, rank=process_index, world_size=num_processes), column


def training_stream(config: DataConfig, process_index=0, num_processes=1, seed=None, purpose="training") -> ColorizationStream:
    """Decoded, filtered, randomly cropped samples of this process's share (repeating by epoch)."""
    stream, column = build_stream(config, process_index, num_processes)
    return ColorizationStream(
        stream,
        column,
        config.resolution,
        config.min_image_size,
        config.min_colorfulness,
        crop_scale=(config.crop_scale_min, 1.0),
        seed=config.seed + process_index if seed is None else seed,
        process=(process_index, num_processes),
        purpose=purpose,
        film_probability=config.film_probability,
    )


def usable_photos(config: DataConfig, limit: int, held_out: bool) -> list[Image.Image]:
    """Up to `limit` decoded photos that pass the training filters, from the held-out part of the
    training source (`held_out`, the realness calibration's) or from the training part."""
    stream, column = build_stream(config, held_out=held_out)
    photos = []
    for example in stream:
        img, _ = decode(example[column], config.min_image_size, config.min_colorfulness, 2 * config.resolution)
        if img is not None:
            photos.append(img)
        if len(photos) >= limit:
            break
    return photos


def count_held_out_files(config: DataConfig) -> int | None:
    """How many files of a local training folder are held out for the realness calibration (by
    the same hash); None for a Hub dataset (not known without reading it)."""
    if config.train_data_dir is None:
        return None
    images, _ = image_io.list_images(config.train_data_dir, recursive=True)
    return sum(is_held_out({"path": str(p)}, config.calibration_fraction) for p in images)


def _source(ref) -> str:
    return (ref.get("path") if isinstance(ref, dict) else None) or "<bytes>"


def decode(ref, min_size: int, min_colorfulness: float, draft_size: int):
    """Undecoded reference -> RGB PIL image, or the reason it is dropped."""
    source = _source(ref)
    try:
        if isinstance(ref, Image.Image):
            img = ref
        else:
            img = Image.open(io.BytesIO(ref["bytes"]) if ref.get("bytes") else ref["path"])
            image_io.check_size(img, source)  # the pixel limit, from the header, before decoding
            img.draft("RGB", (draft_size, draft_size))  # JPEG: decode at a reduced scale, much faster
            img.load()
        img = image_io.upright(img)
    except image_io.ImageError as err:
        if "too small" in err.reason:
            return None, "tiny"
        logger.warning("skipping %s", err)
        return None, "oversized"
    except Exception as err:  # any damage in any format: count it, never stop training
        logger.warning("skipping undecodable image %s: %s: %s", source, type(err).__name__, err)
        return None, "undecodable"
    if min(img.size) < min_size:
        return None, "tiny"
    if img.mode in image_io.GRAY_MODES:
        return None, "grayscale"
    if img.mode != "RGB":
        img = img.convert("RGB")
    thumb = np.asarray(img.reduce(max(1, min(img.size) // 64)))  # box-filtered thumbnail, cheap
    if colorfulness(thumb)[0] < min_colorfulness:  # the BigColor / CT2 filter: gray teaches gray
        return None, "near_grayscale"
    return img, None


def random_film_lightness(rgb: np.ndarray, rng: random.Random) -> np.ndarray:
    """`film_lightness` of a random film and print: a response drawn between the eye's luminance
    and one of the old emulsions, a tone curve, and print black and white points."""
    old = FILM_RESPONSES[rng.choice(("panchromatic", "orthochromatic", "blue-sensitive"))]
    t = rng.random()
    weights = tuple((1 - t) * y + t * o for y, o in zip(FILM_RESPONSES["luminance"], old))
    return film_lightness(rgb, weights, gamma=math.exp(rng.uniform(-0.3, 0.3)), black=rng.uniform(0.0, 8.0), white=rng.uniform(92.0, 100.0))


def random_resized_crop(img: Image.Image, size: int, rng: random.Random, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), flip=True) -> np.ndarray:
    """RandomResizedCrop + horizontal flip, as torchvision's, in one OpenCV resample; (size, size, 3)."""
    width, height = img.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            x, y = rng.randint(0, width - w), rng.randint(0, height - h)
            break
    else:  # fall back to the central square
        w = h = min(width, height)
        x, y = (width - w) // 2, (height - h) // 2
    region = np.asarray(img)[y : y + h, x : x + w]
    shrinking = w > size or h > size
    crop = cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if flip and rng.random() < 0.5:
        crop = cv2.flip(crop, 1)
    return crop


class ColorizationStream(torch.utils.data.IterableDataset):
    """Decoded, filtered, augmented samples: {"rgb": uint8 (3, H, W), "drops": counts since the last}.

    Carrying the drop counts inside the samples keeps the batch size fixed and the counts exact,
    with or without DataLoader workers. The stream repeats by epoch (`set_epoch` reshuffles).
    """

    def __init__(
        self,
        stream,
        column,
        resolution,
        min_size=64,
        min_colorfulness=5.0,
        crop_scale=(0.5, 1.0),
        seed=0,
        repeat=True,
        process=(0, 1),
        purpose="training",
        film_probability=0.0,
    ):
        super().__init__()
        self.process, self.purpose = process, purpose  # for the log
        self.resumed = False
        self.stream, self.column, self.resolution, self.crop_scale = stream, column, resolution, crop_scale
        self.min_size, self.min_colorfulness = min_size, min_colorfulness
        self.seed, self.repeat, self.epoch = seed, repeat, 0
        self.film_probability = film_probability

    def resume(self, epoch: int, stream_state: dict | None) -> None:
        """Continue where a checkpoint left off: same epoch, same stream position if known.

        The shuffle buffer is not in the stream state: what it held is skipped, so after a resume
        the rest of that epoch is shorter (for a local folder, whose buffer is the whole folder,
        empty) and the next epoch starts with a fresh shuffle.
        """
        self.epoch, self.resumed = epoch, True
        if stream_state is not None:
            self.stream.load_state_dict(stream_state)

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        rng = random.Random(hash((self.seed, self.epoch, worker.id if worker else 0)))
        drops = Counter()
        fresh_epoch = not self.resumed
        while True:
            self.stream.set_epoch(self.epoch)
            yielded = False
            for example in self.stream:
                img, reason = decode(example[self.column], self.min_size, self.min_colorfulness, 2 * self.resolution)
                if img is None:
                    drops[reason] += 1
                    continue
                crop = random_resized_crop(img, self.resolution, rng, scale=self.crop_scale)
                if not yielded and self.epoch == 0:  # shows that each process reads its own share
                    logger.info("process %d/%d: first %s image %s", *self.process, self.purpose, _source(example[self.column]))
                lab = torch.from_numpy(rgb_to_model_lab_numpy(crop))  # (3, H, W); per image: cheaper than a torch batch on a CPU
                if self.film_probability and rng.random() < self.film_probability:  # the input as an old film saw it; ab stays the truth
                    lab[0] = torch.from_numpy(random_film_lightness(crop, rng)) / L_OFFSET - 1.0
                yield {
                    "rgb": torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1),  # uint8, for the detector
                    "l": lab[:1],  # (1, H, W) in [-1, 1]
                    "ab": lab[1:],  # (2, H, W) in [-1, 1]
                    "drops": dict(drops),
                }
                drops.clear()
                yielded = True
            if not self.repeat:
                return
            # An epoch resumed from a checkpoint may be empty (its shuffle buffer was not saved); a
            # fresh epoch with no usable image means there is nothing to train on.
            if not yielded and fresh_epoch:
                raise RuntimeError(f"the training stream yielded no usable image (dropped: {dict(drops)})")
            fresh_epoch = True
            self.epoch += 1


def collate(samples) -> dict:
    """Stack samples; sum their drop counts."""
    drops = Counter()
    for sample in samples:
        drops.update(sample["drops"])
    batch = {key: torch.stack([s[key] for s in samples]) for key in ("rgb", "l", "ab")}
    return {**batch, "drops": {k: drops.get(k, 0) for k in DROP_REASONS}}


def batch_to_lab(rgb_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (B, 3, H, W) on any device -> normalised (real_l (B, 1, H, W), real_ab (B, 2, H, W)),
    channels-last. Always in float32, also under mixed precision: Lab needs the precision."""
    real_l, real_ab = uint8_to_model_lab(rgb_uint8)
    return channels_last(real_l), channels_last(real_ab)


def estimate_colour_prior(
    stream, column, bins: torch.Tensor, samples: int, min_size: int, min_colorfulness: float, size: int = 64
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The empirical ab prior of a stream's photos: (share of pixels nearest each bin (K,),
    mean normalised ab (2,), photos used). Each usable photo (same filters as training) is shrunk
    to `size` px (short side, area filter) and every pixel counts once."""
    counts, ab_sum, pixels, used = torch.zeros(len(bins), dtype=torch.float64), torch.zeros(2, dtype=torch.float64), 0, 0
    for example in stream:
        img, _ = decode(example[column], min_size, min_colorfulness, 2 * size)
        if img is None:
            continue
        scale = size / min(img.size)
        small = np.asarray(img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BOX))
        ab = torch.from_numpy(rgb_to_model_lab_numpy(small)[1:])[None]  # (1, 2, h, w)
        counts += ab_histogram(ab, bins)
        ab_sum += ab.double().sum(dim=(0, 2, 3))
        pixels += ab.shape[2] * ab.shape[3]
        used += 1
        if used >= samples:
            break
    if not used:
        raise RuntimeError("no usable photo to estimate the colour prior from")
    return (counts / counts.sum()).float(), (ab_sum / pixels).float(), used


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def image_paths(folder: str, limit: int | None = None) -> list[str]:
    """Image files in a folder and its subfolders, sorted, the first `limit` (the CLI's listing rule)."""
    paths = [str(p) for p in image_io.list_images(folder, recursive=True)[0]]
    return paths[:limit] if limit else paths


# ----------------------------------------------------------------------------------------------
# The upscaler's data: the lightness of photos, damaged as old scans are, and the intact original.

_GRAY_BOUNDARIES = (L_OF_GRAY8[:-1] + L_OF_GRAY8[1:]) / 2  # L halfway between neighbouring gray codes


def gray_of_lightness(lightness: np.ndarray) -> np.ndarray:
    """CIE L (H, W) in [0, 100] -> the 8-bit gray (H, W) uint8 whose L is nearest."""
    return np.searchsorted(_GRAY_BOUNDARIES, lightness).astype(np.uint8)


def gray_photo(rgb: np.ndarray) -> np.ndarray:
    """8-bit sRGB (H, W, 3) -> the black-and-white photo of it (H, W) uint8: the gray of the same
    L (relative luminance, sRGB-encoded), so that the gray's L is the colour photo's L."""
    return gray_of_lightness(rgb_to_l_numpy(rgb))


@dataclasses.dataclass(frozen=True)
class Damage:
    """How often and how hard a training pair's low-resolution side is damaged (train_upscaler.py)."""

    p_blur: float = 0.15  # soft optics or a soft scan: Gaussian blur before the downscale, sigma 0.3-1.2 px
    p_noise: float = 0.15  # grain or sensor noise after it, sigma 1-6 (8-bit units)
    p_jpeg: float = 0.3  # JPEG at quality 30-95 last
    p_area: float = 0.5  # shrink by area averaging; the rest by Pillow's bicubic (3/5) or bilinear (2/5) filter


def downscale(gray: np.ndarray, scale: int, method: str = "area") -> np.ndarray:
    """8-bit gray (H, W), H and W multiples of `scale` -> (H / scale, W / scale) uint8."""
    h, w = gray.shape[0] // scale, gray.shape[1] // scale
    if method == "area":
        return cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA)
    resample = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}[method]
    return np.asarray(Image.fromarray(gray).resize((w, h), resample))  # Pillow filters with antialiasing when shrinking


def damaged_low_resolution(gray: np.ndarray, scale: int, rng: random.Random, damage: Damage) -> np.ndarray:
    """8-bit gray (H, W) -> a damaged (H / scale, W / scale) uint8 version: maybe blurred, shrunk
    by area, bicubic or bilinear filtering, maybe noisy, maybe JPEG-compressed."""
    if rng.random() < damage.p_blur:
        gray = cv2.GaussianBlur(gray, (0, 0), rng.uniform(0.3, 1.2))
    weights = (damage.p_area, 0.6 * (1 - damage.p_area), 0.4 * (1 - damage.p_area))
    small = downscale(gray, scale, rng.choices(("area", "bicubic", "bilinear"), weights=weights)[0])
    if rng.random() < damage.p_noise:
        noise = np.random.default_rng(rng.getrandbits(32)).normal(0.0, rng.uniform(1.0, 6.0), small.shape)
        small = np.clip(small + noise, 0, 255).round().astype(np.uint8)
    if rng.random() < damage.p_jpeg:
        _, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(30, 95)])
        small = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE)
    return small


class UpscaleStream(torch.utils.data.IterableDataset):
    """Training pairs for the upscaler: {"low": (1, p/s, p/s), "high": (1, p, p)} L / 100 float32,
    `crops` random p x p crops (no resampling, random flip) of each photo of the stream, the low
    side damaged by `damaged_low_resolution`. Repeats by epoch, like `ColorizationStream`."""

    def __init__(self, stream, column, patch: int, scale: int, damage: Damage, crops: int = 4, seed: int = 0):
        super().__init__()
        self.stream, self.column, self.patch, self.scale, self.damage, self.crops = stream, column, patch, scale, damage, crops
        self.seed, self.epoch = seed, 0

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        rng = random.Random(hash((self.seed, self.epoch, worker.id if worker else 0)))
        p = self.patch
        while True:
            self.stream.set_epoch(self.epoch)
            for example in self.stream:
                img, _ = decode(example[self.column], p, 0.0, 2 * p)
                if img is None:
                    continue
                gray = gray_photo(np.asarray(img))
                for _ in range(self.crops):
                    y, x = rng.randint(0, gray.shape[0] - p), rng.randint(0, gray.shape[1] - p)
                    high = gray[y : y + p, x : x + p]
                    if rng.random() < 0.5:
                        high = high[:, ::-1]
                    high = np.ascontiguousarray(high)
                    low = damaged_low_resolution(high, self.scale, rng, self.damage)
                    yield {"low": torch.from_numpy(gray_to_l_numpy(low) / L_MAX)[None], "high": torch.from_numpy(gray_to_l_numpy(high) / L_MAX)[None]}
            self.epoch += 1


def ab_histogram(ab: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Counts (K,) of the pixels of ab (B, 2, H, W) nearest each bin (K, 2); both normalised."""
    nearest = torch.cdist(ab.float().permute(0, 2, 3, 1).reshape(-1, 2), bins.float()).argmin(dim=1)
    return torch.bincount(nearest, minlength=len(bins)).double()


def degrade_photo(rgb: np.ndarray, rng: random.Random, p_jpeg: float = 0.5, p_resize: float = 0.3) -> np.ndarray:
    """As photos reach a detector: maybe shrunk to 40-90% and grown back, maybe JPEG re-compressed
    (quality 60-95). The detector trainer's degradation (training/detector.py), applied alike to real photos and
    colorizations so that the detector learns colour, not compression or sharpness traces (the
    evaluation checks JPEG 75 and half size). rgb: uint8 (H, W, 3); returns the same shape."""
    if rng.random() < p_resize:
        h, w = rgb.shape[:2]
        factor = rng.uniform(0.4, 0.9)
        small = cv2.resize(rgb, (max(8, round(w * factor)), max(8, round(h * factor))), interpolation=cv2.INTER_AREA)
        rgb = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < p_jpeg:
        rgb = np.asarray(jpeg_roundtrip(Image.fromarray(rgb), rng.randint(60, 95)))
    return rgb

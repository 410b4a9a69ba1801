"""Shared fixtures: tiny randomly initialised models and seeded synthetic photos (CPU, offline)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# datasets' cache of the tests' own datasets: a folder of the run, not the user's ~/.cache
os.environ.setdefault("HF_DATASETS_CACHE", __import__("tempfile").mkdtemp(prefix="colorgan-tests-datasets-"))

import numpy as np
import pytest
import torch
from PIL import Image

from colorgan_hub import ColorGAN

# a pix2pix U-Net of a few channels: the tests' own small model (ColorGAN()'s defaults are the bundled model's)
TINY = dict(
    image_size=64, width=8, depth=4, d_width=8, encoder="unet", temperature=0.5, vividness=0.6, realness_size=None, realness_features=None, guidance=None
)


def make_photo(width=96, height=64, seed=0, mode="RGB") -> Image.Image:
    """A smooth, colourful synthetic photo (gradients plus noise), deterministic per seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    phase = rng.random(3) * 6.28
    rgb = np.stack([0.5 + 0.45 * np.sin(6 * x + 3 * y * (c + 1) + phase[c]) for c in range(3)], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, 0.03, rgb.shape), 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8)).convert(mode)


@pytest.fixture(scope="session")
def tiny_model() -> ColorGAN:
    torch.manual_seed(0)
    return ColorGAN(**TINY).eval()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model) -> str:
    path = tmp_path_factory.mktemp("tiny_model")
    tiny_model.save_pretrained(path)
    return str(path)


@pytest.fixture
def photo() -> Image.Image:
    return make_photo()

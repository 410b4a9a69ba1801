"""The bundled default model: present, small, loads offline, and really colorizes and detects."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from colorgan_hub import DEFAULT_MODEL, ColorGAN, cli, metrics
from colorgan_hub.evaluate import gray_baseline

skdata = pytest.importorskip("skimage.data")
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")  # real photos no training image duplicates


@pytest.fixture(scope="module")
def default_model():
    return ColorGAN.from_pretrained(DEFAULT_MODEL)  # HF_HUB_OFFLINE=1 (conftest): no network


def test_bundled_folder_is_complete_and_small():
    folder = Path(DEFAULT_MODEL)
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
    assert (folder / "model.safetensors").stat().st_size < 30e6
    card = (folder / "README.md").read_text()
    assert "model-index" in card and "research and demonstration" in card.lower()


def test_default_model_beats_gray_and_adds_colour(default_model):
    gains, ratios = [], []
    for name in PHOTOS:
        truth = Image.fromarray(getattr(skdata, name)()).resize((256, 256))
        out = np.asarray(default_model.colorize(truth.convert("L")))
        gains.append(metrics.psnr(out, np.asarray(truth))[0] - metrics.psnr(gray_baseline(truth), np.asarray(truth))[0])
        ratios.append(metrics.colorfulness(out)[0] / metrics.colorfulness(np.asarray(truth))[0])
    assert np.mean(ratios) > 0.25  # a trained colorizer, not a gray or random one
    assert np.mean(gains) > -1.0  # and not a wild one


def test_default_detector_prefers_real_photos(default_model):
    real = [Image.fromarray(getattr(skdata, name)()) for name in PHOTOS]
    fake = default_model.colorize([im.convert("L") for im in real])
    p_real, p_fake = default_model.realness(real), default_model.realness(fake, allow_grayscale=True)
    assert np.mean(p_real) > np.mean(p_fake)


def test_cli_uses_the_bundled_model(tmp_path, capsys):
    Image.fromarray(skdata.chelsea()).convert("L").save(tmp_path / "cat.png")
    assert cli.main(["colorize", str(tmp_path / "cat.png"), "-o", str(tmp_path / "out")]) == 0
    out = Image.open(tmp_path / "out" / "cat.png")
    assert out.size == (451, 300) and out.mode == "RGB"
    assert cli.main(["score", str(tmp_path / "out" / "cat.png")]) == 0
    assert "\t" in capsys.readouterr().out


def test_demo_offers_the_bundled_model():
    demo = pytest.importorskip("colorgan_hub.demo")
    assert demo.model_choices()[demo.BUNDLED] == DEFAULT_MODEL

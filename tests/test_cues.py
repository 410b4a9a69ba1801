"""Colour-structure cues and their read-out in the realness score."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from colorgan_hub import ColorGAN, fakes
from colorgan_hub.realness import CUE_NAMES, colour_cues, default_cue_readout, normalise, photo_cues
from tests.conftest import make_photo
from training.calibration import fit_realness_calibration

UNEXPLAINED = CUE_NAMES.index("colour not explained by lightness")


def rgb(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def test_cues_of_known_photos():
    photo = rgb(make_photo(128, 96))
    toned = fakes.toned(photo, np.random.default_rng(1))  # one colour as a function of lightness
    gray = rgb(make_photo(128, 96).convert("L"))
    c_photo, c_toned, c_gray = colour_cues(photo), colour_cues(toned), colour_cues(gray)
    assert c_photo.shape == (len(CUE_NAMES),) and c_photo.dtype == np.float32 and np.isfinite(c_photo).all()
    assert c_toned[UNEXPLAINED] < 0.1 < c_photo[UNEXPLAINED]  # a toned print's colour follows its lightness
    assert c_gray[CUE_NAMES.index("neutral share (chroma < 5)")] == 1.0
    assert c_gray[CUE_NAMES.index("chromatic share (chroma > 10)")] == 0.0
    assert np.isfinite(c_gray).all()  # no colour at all: no NaN from the correlation of a flat chroma


def test_normalise_makes_png_and_jpeg_alike():
    photo = rgb(make_photo(128, 128, seed=3))
    assert normalise(photo).shape == photo.shape and normalise(photo).dtype == np.uint8
    again = normalise(normalise(photo))  # a photo that was a JPEG already barely changes
    assert np.abs(colour_cues(photo) - colour_cues(again)).max() < 0.05 * (np.abs(colour_cues(photo)).max() + 1)


def test_readout_adds_to_the_calibrated_logit(tiny_model, photo):
    base = tiny_model.realness(photo)
    assert not tiny_model.uses_cues
    saved = tiny_model.realness_cues.clone()
    try:
        tiny_model.realness_cues[2, UNEXPLAINED] = 2.0
        expected = 2.0 * float(photo_cues(tiny_model, photo)[0, UNEXPLAINED])  # the cues at the working size
        logit = np.log(base / (1 - base))
        got = tiny_model.realness(photo)
        assert tiny_model.uses_cues
        assert np.log(got / (1 - got)) == pytest.approx(logit + expected, abs=0.05)
    finally:
        tiny_model.realness_cues.copy_(saved)


def test_readout_is_saved_and_old_models_load_without_it(tmp_path, tiny_model):
    model = ColorGAN(**tiny_model._hub_mixin_config)
    model.realness_cues[2, 0] = 1.5
    model.save_pretrained(tmp_path / "m")
    assert ColorGAN.from_pretrained(tmp_path / "m").realness_cues[2, 0] == 1.5
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(weights)
    del state["realness_cues"]  # a model saved before the cues
    save_file(state, weights)
    old = ColorGAN.from_pretrained(tmp_path / "m")
    assert torch.equal(old.realness_cues, default_cue_readout()) and not old.uses_cues


def test_calibration_fits_the_cues_and_resets_them(tiny_model):
    photos = [rgb(make_photo(64, 64, seed=s)) for s in range(16)]
    toned = [fakes.toned(p, np.random.default_rng(s)) for s, p in enumerate(photos)]
    saved = (tiny_model.realness_calibration.clone(), tiny_model.realness_cues.clone())
    try:
        without = fit_realness_calibration(tiny_model, photos, "cpu", fakes=toned)
        p_without = np.array(tiny_model.realness(photos + toned, allow_grayscale=True))
        fit = fit_realness_calibration(tiny_model, photos, "cpu", fakes=toned, cues=True)
        assert tiny_model.uses_cues and set(fit["cue_weights"]) == set(CUE_NAMES) and without["cue_weights"] is None
        p = np.array(tiny_model.realness(photos + toned, allow_grayscale=True))
        gap = lambda q: q[:16].mean() - q[16:].mean()
        assert gap(p) > 0.5 and gap(p) > gap(p_without) + 0.2  # the untrained detector cannot tell; the cues can
        fit_realness_calibration(tiny_model, photos, "cpu", fakes=toned)
        assert not tiny_model.uses_cues  # fitted again without cues: none read
    finally:
        tiny_model.realness_calibration.copy_(saved[0])
        tiny_model.realness_cues.copy_(saved[1])

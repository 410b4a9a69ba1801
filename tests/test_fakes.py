"""The detector's colorizer family: every fake keeps the photo's lightness, each family does what
it says, draws are repeatable, and evaluation reports the detector per family."""

import json

import numpy as np
import pytest
import torch

from colorgan_hub import ColorGAN, fakes, metrics
from colorgan_hub.color import rgb_to_l_numpy
from colorgan_hub.evaluate import evaluate, family_detector_metrics, format_markdown

from .conftest import TINY, make_photo


def photos(n=4, size=(96, 64)):
    return [np.asarray(make_photo(*size, seed=40 + i)) for i in range(n)]


def lab_ab(rgb):
    return metrics.image_ab(rgb).reshape(2, -1).T


@pytest.mark.parametrize("family", ["toned", "hand-tint", "transfer", "generator", "checkpoints"])
def test_every_family_keeps_the_photos_lightness_and_size_and_repeats_its_draws(family, tiny_model):
    other = ColorGAN(**{**TINY, "head": "regression"}).eval()
    reals = photos()
    made = fakes.make_fakes(family, reals, seed=3, model=tiny_model, generators=[other])
    again = fakes.make_fakes(family, reals, seed=3, model=tiny_model, generators=[other])
    for real, fake, fake2 in zip(reals, made, again):
        assert fake.shape == real.shape and fake.dtype == np.uint8
        assert np.abs(rgb_to_l_numpy(fake) - rgb_to_l_numpy(real)).mean() < 1.0  # the recombination keeps L
        assert np.array_equal(fake, fake2)
    if family in ("toned", "hand-tint", "transfer"):
        different = fakes.make_fakes(family, reals, seed=4, model=tiny_model, generators=[other])
        assert any(not np.array_equal(a, b) for a, b in zip(made, different))


@pytest.mark.slow
def test_generator_family_can_weight_the_models_own_settings(tiny_model):
    reals = photos(16)
    own = [np.asarray(img) for img in tiny_model.colorize(reals)]
    assert all(np.array_equal(a, b) for a, b in zip(fakes.make_fakes("generator", reals, seed=3, model=tiny_model, default_share=1.0), own))
    random_draw = fakes.make_fakes("generator", reals, seed=3, model=tiny_model)
    assert any(not np.array_equal(a, b) for a, b in zip(random_draw, own))  # random settings by default
    # settings are drawn per group of 8 photos: about half the groups at the model's own
    eight, own8 = reals[:8], own[:8]
    at_own = [
        all(np.array_equal(a, b) for a, b in zip(fakes.make_fakes("generator", eight, seed=s, model=tiny_model, default_share=0.5), own8)) for s in range(12)
    ]
    assert 2 <= sum(at_own) <= 10


def test_toned_print_has_one_hue():
    gray = np.repeat(np.asarray(make_photo(seed=5).convert("L"))[..., None], 3, axis=2)
    for index in range(6):
        ab = lab_ab(fakes.toned(gray, fakes.rng_for(0, index)))
        chromatic = ab[np.hypot(*ab.T) > 3]
        hue = np.degrees(np.arctan2(chromatic[:, 1], chromatic[:, 0]))
        spread = np.degrees(np.abs(np.angle(np.exp(1j * np.radians(hue - np.median(hue))))))
        assert len(chromatic) and np.percentile(spread, 95) < 12


def test_hand_tint_washes_several_regions_in_different_colours():
    gray = np.repeat(np.asarray(make_photo(128, 128, seed=6).convert("L"))[..., None], 3, axis=2)
    distinct = []
    for index in range(8):
        ab = lab_ab(fakes.hand_tint(gray, fakes.rng_for(0, index)))
        hues = np.degrees(np.arctan2(ab[:, 1], ab[:, 0]))[np.hypot(*ab.T) > 6]
        distinct.append(len(np.unique(np.round(hues / 30))) if len(hues) else 0)
    assert max(distinct) >= 2  # more than one wash


def test_transfer_takes_its_colours_from_the_reference():
    reals = photos(1, (64, 64))
    rng = np.random.default_rng(0)
    blue = np.zeros((64, 64, 3), np.uint8)  # a blue reference of every lightness
    blue[..., 2] = np.linspace(60, 255, 64)[None].astype(np.uint8)
    blue[..., 0] = blue[..., 1] = (np.linspace(60, 255, 64)[None] * 0.3 + rng.normal(0, 5, (64, 64))).clip(0, 255).astype(np.uint8)
    ab = lab_ab(fakes.transfer(reals[0], blue, fakes.rng_for(0, 0)))
    hue = np.degrees(np.arctan2(ab[:, 1], ab[:, 0])) % 360
    assert np.mean((hue > 240) & (hue < 330)) > 0.8  # blue-violet, the reference's hues


@pytest.mark.parametrize("kinds", [None, *((k,) for k in fakes.CORRUPTIONS)])
def test_pseudo_fakes_keep_the_lightness_and_change_the_photos_own_colour(kinds):
    real = np.asarray(make_photo(120, 90, seed=9))
    made = fakes.corrupted(real, fakes.rng_for(1, 2), kinds)
    assert made.shape == real.shape and made.dtype == np.uint8
    assert np.abs(rgb_to_l_numpy(made) - rgb_to_l_numpy(real)).mean() < 1.0
    assert np.array_equal(made, fakes.corrupted(real, fakes.rng_for(1, 2), kinds))  # repeatable
    assert np.abs(lab_ab(made) - lab_ab(real)).mean() > 0.5  # the colour is not the photo's any more


def test_coarse_pseudo_fakes_lose_the_colours_fine_detail_and_unknown_kinds_are_refused():
    real = np.asarray(make_photo(128, 128, seed=10))

    def fine(rgb):
        ab = metrics.image_ab(rgb)
        return np.abs(ab[:, 1:, :] - ab[:, :-1, :]).mean()

    assert fine(fakes.corrupted(real, fakes.rng_for(0, 0), ("coarse",))) < 0.8 * fine(real)
    with pytest.raises(ValueError, match="unknown corruption.*coarse"):
        fakes.corrupted(real, fakes.rng_for(0, 0), ("sketchy",))


def test_unknown_family_and_missing_models_are_clear_errors(tiny_model):
    with pytest.raises(ValueError, match="unknown family 'sketch'.*toned"):
        fakes.make_fakes("sketch", photos())
    with pytest.raises(ValueError, match="needs the model"):
        fakes.make_fakes("generator", photos())
    with pytest.raises(ValueError, match="other generators"):
        fakes.make_fakes("checkpoints", photos(), model=tiny_model)


def test_family_metrics_rank_a_detector_that_knows_tints(tiny_model):
    """A stand-in detector whose score is the photo's chroma spread around its own tint: the
    toned family scores lowest, and the mix's saturation share is reported."""

    class Spread:
        def realness(self, images, size=None, batch_size=8, allow_grayscale=False):
            return [float(np.clip(lab_ab(np.asarray(im)).std(axis=0).sum() / 40, 0, 1)) for im in images]

    reals = photos(6)
    by_family = {f: fakes.make_fakes(f, reals, seed=1) for f in ("toned", "hand-tint")}
    rows = family_detector_metrics(Spread(), reals, reals, by_family)
    assert set(rows) == {"own", "toned", "hand-tint", "mix"}
    assert rows["own"]["auc"] == pytest.approx(0.5)  # the real photos themselves
    assert rows["toned"]["auc"] == 1.0
    assert rows["mix"]["families"] == ["toned", "hand-tint"] and 0 <= rows["mix"]["saturated"] <= 1


@pytest.mark.slow
def test_evaluate_reports_the_detector_per_family(tmp_path, tiny_model):
    paths = []
    for i in range(4):
        paths.append(tmp_path / f"p{i}.png")
        make_photo(80, 64, seed=60 + i).save(paths[-1])
    other = ColorGAN(**{**TINY, "head": "regression"}).eval()
    result = evaluate(tiny_model, paths, protocol="full", progress=False)
    assert set(result["detector_families"]) == {"own", "generator", "toned", "hand-tint", "transfer", "mix"}
    with_checkpoints = evaluate(tiny_model, paths, protocol="full", progress=False, generators=[other])
    assert "checkpoints" in with_checkpoints["detector_families"]
    text = format_markdown(with_checkpoints)
    assert "toned prints" in text and "balanced mix" in text and "median confidence" in text
    json.dumps(with_checkpoints)  # JSON-ready


def test_realness_is_the_sigmoid_of_the_calibrated_logit_and_raw_ignores_the_calibration(tiny_model):
    from colorgan_hub import realness

    images = photos(3)
    raw = realness.logits(tiny_model, images, calibrated=False)
    saved = tiny_model.realness_calibration.clone()
    try:
        tiny_model.realness_calibration.copy_(torch.tensor([2.0, -1.0]))
        assert realness.logits(tiny_model, images, calibrated=False) == pytest.approx(raw, abs=1e-5)
        probs = tiny_model.realness(images)
        assert probs == pytest.approx([1 / (1 + np.exp(-(2 * x - 1))) for x in raw], abs=1e-5)
        tiny_model.realness_calibration.copy_(torch.tensor([1e4, 0.0]))
        extreme = tiny_model.realness(images)  # no overflow at either end
        assert all(0.0 <= p <= 1.0 for p in extreme)
    finally:
        tiny_model.realness_calibration.copy_(saved)

"""Colour conversions against scikit-image, round trips, gradients, the numpy full-resolution path."""

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from colorgan_hub import color


def _random_and_edge_rgb(n=4096, seed=0):
    rng = np.random.default_rng(seed)
    rgb = rng.random((n, 3))
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1])).reshape(3, -1).T  # black, white, primaries
    near = np.array([[1e-4, 1e-4, 1e-4], [0.04045, 0.04045, 0.04045], [0.0405, 0, 0], [0.999, 1, 1], [0.5, 0.5, 0.5]])
    return np.concatenate([rgb, corners, near])


def _to_bchw(rgb_n3):
    return torch.from_numpy(rgb_n3.T.reshape(1, 3, -1, 1).copy())


def _from_bchw(t):
    return t.reshape(3, -1).T.numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage(dtype):
    rgb = _random_and_edge_rgb()
    ours = _from_bchw(color.rgb_to_lab(_to_bchw(rgb).to(dtype)).double())
    ref = skcolor.rgb2lab(rgb[:, None, :])[:, 0]
    assert np.abs(ours - ref).max() < 0.01


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_lab_to_rgb_matches_skimage(dtype):
    lab = skcolor.rgb2lab(_random_and_edge_rgb()[:, None, :])[:, 0]  # in-gamut Lab
    ours = _from_bchw(color.lab_to_rgb(_to_bchw(lab).to(dtype)).double())
    ref = skcolor.lab2rgb(lab[:, None, :])[:, 0]
    assert np.abs(ours - ref).max() < 0.01 / 100  # RGB in [0, 1]: far tighter than one 8-bit level


def test_rgb_lab_round_trip_within_one_level():
    rgb = torch.rand(2, 3, 32, 32)
    back = color.lab_to_rgb(color.rgb_to_lab(rgb))
    assert (back - rgb).abs().max() < 1 / 255


def test_lab_ranges():
    lab = color.rgb_to_lab(torch.rand(1, 3, 64, 64))
    assert lab[:, 0].min() >= 0 and lab[:, 0].max() <= 100
    assert lab[:, 1:].abs().max() <= 110


def test_normalisation_round_trip_and_range():
    rgb = torch.rand(2, 3, 16, 16)
    real_l, real_ab = color.rgb_to_model_lab(rgb)
    assert real_l.shape == (2, 1, 16, 16) and real_ab.shape == (2, 2, 16, 16)
    assert real_l.min() >= -1 and real_l.max() <= 1 and real_ab.abs().max() <= 1
    assert (color.model_lab_to_rgb(real_l, real_ab) - rgb).abs().max() < 1 / 255


def test_gradients_flow_and_are_correct():
    rgb = (torch.rand(1, 3, 4, 4, dtype=torch.float64) * 0.8 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(color.rgb_to_lab, (rgb,), eps=1e-6, atol=1e-4)
    lab = color.rgb_to_lab(rgb.detach()).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: color.lab_to_rgb(x, clip=False), (lab,), eps=1e-6, atol=1e-4)


def test_numpy_l_matches_skimage_for_uint8_and_float():
    rng = np.random.default_rng(2)
    rgb8 = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    rgb8[0, :8] = np.array(np.meshgrid([0, 255], [0, 255], [0, 255])).reshape(3, -1).T
    ref = skcolor.rgb2lab(rgb8)[..., 0]
    assert np.abs(color.rgb_to_l_numpy(rgb8) - ref).max() < 0.01
    rgbf = rng.random((40, 50, 3)).astype(np.float32)
    assert np.abs(color.rgb_to_l_numpy(rgbf) - skcolor.rgb2lab(rgbf)[..., 0]).max() < 0.01


def test_numpy_model_lab_matches_skimage():
    rng = np.random.default_rng(6)
    rgb8 = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    rgb8[0, :8] = np.array(np.meshgrid([0, 255], [0, 255], [0, 255])).reshape(3, -1).T
    scale = np.array([50.0, 110.0, 110.0])[:, None, None]
    to_lab = lambda x: (color.rgb_to_model_lab_numpy(x) + np.array([1.0, 0, 0])[:, None, None]) * scale  # noqa: E731
    assert np.abs(to_lab(rgb8) - skcolor.rgb2lab(rgb8).transpose(2, 0, 1)).max() < 0.01
    rgbf = rng.random((20, 30, 3)).astype(np.float32)
    assert np.abs(to_lab(rgbf) - skcolor.rgb2lab(rgbf).transpose(2, 0, 1)).max() < 0.01


def test_film_lightness_is_the_photos_own_by_default_and_old_films_see_red_dark_and_blue_light():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_allclose(color.film_lightness(rgb), color.rgb_to_l_numpy(rgb), atol=0.02)
    sky, brick = np.array([[[110, 160, 220]]], np.uint8), np.array([[[200, 40, 30]]], np.uint8)
    eye, ortho = color.FILM_RESPONSES["luminance"], color.FILM_RESPONSES["orthochromatic"]
    assert color.film_lightness(sky, ortho)[0, 0] > color.film_lightness(sky, eye)[0, 0] + 5  # a blue sky prints paler
    assert color.film_lightness(brick, ortho)[0, 0] < color.film_lightness(brick, eye)[0, 0] - 10  # a red brick prints darker
    for weights in color.FILM_RESPONSES.values():  # white stays white, black black
        assert color.film_lightness(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8), weights)[0].tolist() == pytest.approx([100, 0], abs=0.05)
    faded = color.film_lightness(rgb, eye, gamma=1.2, black=5.0, white=95.0)
    assert faded.min() >= 5.0 and faded.max() <= 95.0

"""The compiled full-resolution recombination: exact L, skimage colours in gamut, L-preserving gamut
mapping, bilinear ab, and the three input kinds (8-bit RGB, 8-bit gray, float L) agreeing."""

import cv2
import numpy as np
import pytest
from skimage import color as skcolor

from colorgan_hub.color import rgb_to_l_numpy
from colorgan_hub.fullres import fits, recombine


def test_in_gamut_colours_match_skimage_to_8_bit_rounding():
    rgb8 = np.random.default_rng(3).integers(0, 256, (60, 70, 3), dtype=np.uint8)
    lab = skcolor.rgb2lab(rgb8).astype(np.float32)
    out = recombine(rgb8, lab[..., 1:])  # ab at full size: the upsampling is the identity
    assert np.abs(out.astype(int) - rgb8).max() <= 1
    assert (out == rgb8).mean() > 0.99
    out_l = recombine(lab[..., 0], lab[..., 1:])  # the float-L path
    assert np.abs(out_l.astype(int) - rgb8).max() <= 1


def test_gray_in_gray_out_exactly():
    gray = np.random.default_rng(1).integers(0, 256, (33, 47), dtype=np.uint8)
    zero = np.zeros((5, 6, 2), np.float32)
    assert np.array_equal(recombine(gray, zero), np.repeat(gray[..., None], 3, axis=2))
    assert np.array_equal(recombine(np.repeat(gray[..., None], 3, axis=2), zero), np.repeat(gray[..., None], 3, axis=2))


def test_out_of_gamut_keeps_lightness_and_hue_direction():
    rng = np.random.default_rng(4)
    l = rng.uniform(0, 100, (64, 64)).astype(np.float32)
    ab = rng.uniform(-110, 110, (64, 64, 2)).astype(np.float32)
    assert (~fits(l, ab[..., 0], ab[..., 1])).mean() > 0.5  # mostly out of gamut
    back = skcolor.rgb2lab(recombine(l, ab))
    assert np.abs(back[..., 0] - l).max() < 0.5  # lightness kept (8-bit rounding included)
    strong = np.hypot(ab[..., 0], ab[..., 1]) > 30
    hue_in = np.arctan2(ab[..., 1], ab[..., 0])[strong & (back[..., 0] > 5) & (back[..., 0] < 95)]
    hue_out = np.arctan2(back[..., 2], back[..., 1])[strong & (back[..., 0] > 5) & (back[..., 0] < 95)]
    turn = np.abs(np.angle(np.exp(1j * (hue_out - hue_in))))
    assert np.median(turn) < 0.05  # chroma shrinks along its own hue
    # and not much more than needed: 5% more chroma than came out would leave the gamut
    chroma_out = np.hypot(back[..., 1], back[..., 2])
    outside = ~fits(l, ab[..., 0], ab[..., 1]) & (chroma_out > 10)  # where 8-bit rounding is small beside it
    grow = 1.05 * np.hypot(back[..., 1], back[..., 2]) / np.maximum(np.hypot(ab[..., 0], ab[..., 1]), 1e-6)
    assert (~fits(l, ab[..., 0] * grow, ab[..., 1] * grow))[outside].mean() > 0.95


@pytest.mark.parametrize("shape,small", [((101, 77), (13, 10)), ((8, 8), (1, 1)), ((5, 300), (2, 64))])
def test_full_resolution_l_is_kept_for_every_input_kind(shape, small):
    rng = np.random.default_rng(5)
    rgb8 = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ab_small = rng.normal(0, 40, (*small, 2)).astype(np.float32)
    l_full = rgb_to_l_numpy(rgb8)
    for source in (rgb8, l_full):
        out = recombine(source, ab_small)
        assert out.shape == (*shape, 3) and out.dtype == np.uint8
        assert np.abs(rgb_to_l_numpy(out) - l_full).max() < 0.5
    gray = rgb8[..., 0]
    assert np.abs(rgb_to_l_numpy(recombine(gray, ab_small)) - rgb_to_l_numpy(np.repeat(gray[..., None], 3, axis=2))).max() < 0.5
    assert np.array_equal(recombine(gray, ab_small), recombine(np.repeat(gray[..., None], 3, axis=2), ab_small))


def test_ab_is_upsampled_like_opencv_bilinear():
    rng = np.random.default_rng(6)
    ab_small = rng.uniform(-15, 15, (6, 9, 2)).astype(np.float32)  # small chroma: in gamut at mid L
    l = np.full((40, 51), 60.0, np.float32)
    expected = cv2.resize(ab_small, (51, 40), interpolation=cv2.INTER_LINEAR)
    back = skcolor.rgb2lab(recombine(l, ab_small))
    assert np.abs(back[..., 1:] - expected).max() < 1.0  # 8-bit rounding of the output


def test_alpha_is_appended_and_bad_shapes_are_refused():
    rgb8 = np.zeros((4, 5, 3), np.uint8)
    alpha = np.arange(20, dtype=np.uint8).reshape(4, 5)
    out = recombine(rgb8, np.zeros((2, 2, 2), np.float32), alpha)
    assert out.shape == (4, 5, 4) and np.array_equal(out[..., 3], alpha)
    with pytest.raises(ValueError, match="ab_small"):
        recombine(rgb8, np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="source"):
        recombine(np.zeros((4, 5, 3), np.int32), np.zeros((2, 2, 2), np.float32))


def test_zero_chroma_gives_exact_gray_for_colour_photos():
    rgb8 = np.random.default_rng(8).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    out = recombine(rgb8, np.zeros((3, 4, 2), np.float32))  # the evaluation's gray baseline
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.abs(rgb_to_l_numpy(out) - rgb_to_l_numpy(rgb8)).max() < 0.5


def test_warm_up_compiles_what_the_first_photo_needs(tiny_model):
    """After warm_up (the demo runs it at start-up), colorizing a colour, a gray and an upscaled photo compiles
    nothing more: the first request does not wait seconds for numba (read-only numpy views of PIL
    images are a type of their own to numba)."""
    from PIL import Image

    from colorgan_hub import fullres

    from .conftest import make_photo

    fullres.warm_up()
    kernels = (fullres._recombine_rgb8, fullres._recombine_gray8, fullres._recombine_l)
    before = [len(k.signatures) for k in kernels]
    tiny_model.colorize(make_photo(50, 40, seed=3))
    tiny_model.colorize(make_photo(50, 40, seed=4).convert("L"))
    tiny_model.colorize(Image.fromarray(np.full((30, 20), 90, np.uint8)))
    tiny_model.colorize(make_photo(30, 20, seed=5).convert("L"), upscale=2)  # the upscaled L: float
    assert [len(k.signatures) for k in kernels] == before

"""colorize / realness: full size, L kept, every PIL mode, alpha, EXIF, batching, inputs kinds."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor

from colorgan_hub import ColorGAN, ImageError
from colorgan_hub.color import rgb_to_l_numpy
from colorgan_hub.image_io import to_rgb_alpha

from .conftest import TINY, make_photo

MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr", "I;16", "I", "F"]


def _input_l(img):
    return rgb_to_l_numpy(to_rgb_alpha(img)[0])


def _as_mode(mode, size=(45, 31)):
    base = make_photo(*size, seed=7)
    if mode == "I;16":
        return Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257)  # 16-bit gray
    if mode == "I":
        return Image.fromarray(np.asarray(base.convert("L"), np.int32) * 257)
    if mode == "F":
        return Image.fromarray(np.asarray(base.convert("L"), np.float32) / 255.0)
    if mode in ("LA", "RGBA", "PA"):
        rgba = base.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize(size))
        return rgba.convert(mode)
    return base.convert(mode)


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_keeps_size_and_lightness(tiny_model, mode):
    img = _as_mode(mode)
    assert img.mode == mode
    out = tiny_model.colorize(img)
    has_alpha = mode in ("LA", "RGBA", "PA")
    assert out.mode == ("RGBA" if has_alpha else "RGB")
    assert out.size == img.size
    assert np.abs(rgb_to_l_numpy(np.asarray(out)[..., :3]) - _input_l(img)).max() < 0.5
    if has_alpha:
        assert np.array_equal(np.asarray(out)[..., 3], np.asarray(img.convert("RGBA"))[..., 3])


@pytest.mark.parametrize("size", [(8, 8), (9, 13), (257, 31), (31, 257), (640, 480), (1001, 17)])
def test_odd_sizes_come_back_full_size_with_their_l(tiny_model, size):
    img = make_photo(*size, seed=size[0])
    out = tiny_model.colorize(img)
    assert out.size == img.size
    assert np.abs(rgb_to_l_numpy(np.asarray(out)) - _input_l(img)).max() < 0.5


class ConstantAB(torch.nn.Module):
    """A stand-in generator that predicts the same normalised ab everywhere."""

    multiple = 16

    def __init__(self, a, b):
        super().__init__()
        self.ab = torch.nn.Parameter(torch.tensor([a, b]).view(1, 2, 1, 1))

    def forward(self, l):
        return self.ab.expand(l.shape[0], 2, *l.shape[2:])


def test_predicted_ab_reaches_the_full_resolution_output(photo):
    model = ColorGAN(**{**TINY, "head": "regression"})
    model.generator = ConstantAB(0.2, -0.15)  # a = 22, b = -16.5 in Lab units
    out = np.asarray(model.colorize(photo.convert("L")))
    lab = skcolor.rgb2lab(out)
    mid = (lab[..., 0] > 40) & (lab[..., 0] < 70)  # where (22, -16.5) fits in sRGB
    assert np.median(lab[..., 1][mid]) == pytest.approx(22, abs=1.0)
    assert np.median(lab[..., 2][mid]) == pytest.approx(-16.5, abs=1.0)


def test_generator_sees_only_the_luminance(tiny_model, photo):
    seen = []
    hook = tiny_model.generator.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    try:
        tiny_model.colorize(photo, size=96, multiscale=False)  # photo is 96 px wide: no resize (and one pass)
    finally:
        hook.remove()
    (real_l,) = seen
    assert real_l.shape[1] == 1
    expected = rgb_to_l_numpy(np.asarray(photo)) / 50 - 1
    torch.testing.assert_close(real_l[0, 0, :64, :96], torch.from_numpy(expected))


def test_working_size_changes_the_prediction_not_the_size(tiny_model, photo):
    a, b = tiny_model.colorize(photo, size=32), tiny_model.colorize(photo, size=128)
    assert a.size == b.size == photo.size
    assert not np.array_equal(np.asarray(a), np.asarray(b))


def test_exif_orientation_is_applied(tiny_model, tmp_path):
    img = make_photo(60, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif.tobytes())
    assert tiny_model.colorize(path).size == (40, 60)


def test_list_runs_batched_and_matches_single_calls(tiny_model):
    photos = [make_photo(48, 32, seed=s) for s in range(3)] + [make_photo(20, 50, seed=9)]
    batched = tiny_model.colorize(photos, batch_size=2)
    assert isinstance(batched, list) and len(batched) == 4
    for img, out in zip(photos, batched):
        single = np.asarray(tiny_model.colorize(img), np.int16)
        assert np.abs(np.asarray(out, np.int16) - single).max() <= 1  # batch-size float noise at most


def test_paths_and_arrays_are_accepted(tiny_model, photo, tmp_path):
    path = tmp_path / "p.png"
    photo.save(path)
    from_path = tiny_model.colorize(str(path))
    from_array = tiny_model.colorize(np.asarray(photo))
    from_gray_float = tiny_model.colorize(np.asarray(photo.convert("L"), np.float32) / 255)
    assert from_path.size == from_array.size == from_gray_float.size == photo.size
    assert np.array_equal(np.asarray(from_path), np.asarray(from_array))


def test_bad_input_in_a_list_names_it(tiny_model, photo):
    with pytest.raises(ImageError, match=r"input #1 \(ndarray\)"):
        tiny_model.colorize([photo, np.zeros((4, 4), np.uint8)])


def test_bad_input_in_a_list_can_be_returned_in_its_place(tiny_model, photo, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    others = [photo, make_photo(30, 50, seed=2), make_photo(48, 32, seed=5)]
    out = tiny_model.colorize([others[0], broken, others[1], tmp_path / "missing.png", others[2]], batch_size=2, return_exceptions=True)
    assert isinstance(out[1], ImageError) and "broken.jpg" in str(out[1])
    assert isinstance(out[3], ImageError) and "missing.png" in str(out[3]) and "no such file" in str(out[3])
    for img, got in zip(others, [out[0], out[2], out[4]]):  # every other photo is colorized, as on its own
        assert np.abs(np.asarray(got, np.int16) - np.asarray(tiny_model.colorize(img), np.int16)).max() <= 1


def test_a_long_list_is_read_one_batch_at_a_time(tiny_model, monkeypatch):
    from colorgan_hub import pipeline

    loaded, load = [], pipeline.load_image
    done = []

    def tracking_load(image, **kwargs):
        loaded.append(kwargs["source"])
        assert len(loaded) - len(done) <= 2  # never more than batch_size decoded photos waiting
        return load(image, **kwargs)

    recombine = pipeline.recombine

    def tracking_recombine(*args):
        done.append(1)
        return recombine(*args)

    monkeypatch.setattr(pipeline, "load_image", tracking_load)
    monkeypatch.setattr(pipeline, "recombine", tracking_recombine)
    out = tiny_model.colorize([make_photo(40, 24, seed=s) for s in range(7)], batch_size=2)
    assert len(out) == len(loaded) == len(done) == 7


def test_model_returns_to_train_mode_after_validation_call(tiny_model, photo):
    tiny_model.train()
    try:
        tiny_model.colorize(photo)
        assert tiny_model.training
    finally:
        tiny_model.eval()


def test_realness_is_a_probability(tiny_model, photo):
    p = tiny_model.realness(photo)
    assert isinstance(p, float) and 0.0 <= p <= 1.0
    many = tiny_model.realness([photo, make_photo(70, 30, seed=3)])
    assert len(many) == 2 and all(0 <= q <= 1 for q in many)
    assert many[0] == pytest.approx(p, abs=1e-5)


@pytest.mark.parametrize("gray", ["L", "RGB"])
def test_realness_refuses_grayscale(tiny_model, photo, gray):
    img = photo.convert("L").convert(gray)
    with pytest.raises(ImageError, match="grayscale"):
        tiny_model.realness(img)


def test_realness_of_a_list_answers_none_for_photos_with_no_colour(tiny_model, photo, tmp_path):
    lightness = np.asarray(photo.convert("L"), dtype=np.float32)[..., None] / 255.0
    sepia = Image.fromarray((255 * lightness * (0.7 + 0.3 * np.array([1.0, 0.75, 0.45]))).round().astype(np.uint8))
    scores = tiny_model.realness([photo, photo.convert("L"), sepia, photo])
    assert scores[1] is None and scores[2] is None  # no colour to judge; the colour photos are still scored
    assert scores[0] == pytest.approx(scores[3]) == pytest.approx(tiny_model.realness(photo))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageError, match="broken.png"):  # an unreadable file is a failure, named
        tiny_model.realness([photo, broken])
    scores = tiny_model.realness([photo, broken, sepia], return_exceptions=True)
    assert scores[0] == pytest.approx(tiny_model.realness(photo)) and scores[2] is None
    assert isinstance(scores[1], ImageError) and "broken.png" in str(scores[1])


def test_realness_follows_calibration(tiny_model, photo):
    base = tiny_model.realness(photo)
    saved = tiny_model.realness_calibration.clone()
    try:
        tiny_model.realness_calibration.copy_(saved + torch.tensor([0.0, 3.0]))
        assert tiny_model.realness(photo) > base
    finally:
        tiny_model.realness_calibration.copy_(saved)


def test_jpeg_bytes_in_memory(tiny_model, photo):
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG")
    buffer.seek(0)
    assert tiny_model.colorize(Image.open(buffer)).size == photo.size


def test_large_photo_overlapped_path_matches_the_serial_one(tiny_model, monkeypatch):
    from colorgan_hub import pipeline

    img = make_photo(1200, 900, seed=3)  # over a megapixel: shrunk on the helper thread
    overlapped = np.asarray(tiny_model.colorize(img))
    monkeypatch.setattr(pipeline, "_OVERLAP_PIXELS", 10**12)
    serial = np.asarray(tiny_model.colorize(img))
    assert np.array_equal(overlapped, serial)
    assert np.abs(rgb_to_l_numpy(overlapped) - _input_l(img)).max() < 0.5


def test_multiscale_averages_the_two_sizes_colour_distributions(tiny_model):
    """class_logits(coarse_scale): the mean of the log-probabilities of the photo at its size and
    shrunk by the scale (brought back onto the full grid); shapes as the single-scale logits."""
    torch.manual_seed(0)
    real_l = torch.rand(2, 1, 96, 48) * 2 - 1
    with torch.no_grad():
        single = tiny_model.class_logits(real_l)
        mixed = tiny_model.class_logits(real_l, 2 / 3)
        coarse = tiny_model.generator(torch.nn.functional.interpolate(real_l, size=(64, 32), mode="area"))  # (B, K, 32, 16)
        coarse = torch.nn.functional.interpolate(coarse, size=single.shape[-2:], mode="bilinear", align_corners=False)
    assert mixed.shape == single.shape
    expected = (torch.log_softmax(single, 1) + torch.log_softmax(coarse, 1)) / 2
    torch.testing.assert_close(mixed, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="coarse_scale"):
        tiny_model.class_logits(real_l, 1.5)


def test_multiscale_colorize_keeps_size_and_lightness(tiny_model):
    """multiscale=True: each photo, of any shape (the shrunk copy padded to the network's multiple),
    comes back at its size with its own L; a regression model says it cannot."""
    photos = [make_photo(150, 70, seed=3), make_photo(61, 97, seed=4)]
    for photo, m in zip(photos, tiny_model.colorize(photos, multiscale=True, batch_size=2)):
        assert m.size == photo.size
        assert np.abs(rgb_to_l_numpy(np.asarray(m)) - rgb_to_l_numpy(np.asarray(photo))).max() < 0.6
    assert len(tiny_model.colorize(photos[0], multiscale=True, variations=2)) == 2
    regression = ColorGAN(**{**TINY, "head": "regression"}).eval()
    with pytest.raises(ValueError, match="multiscale needs a model with the classification head"):
        regression.colorize(photos[0], multiscale=True)

"""Bad input: every kind gets an ImageError that names the file and the reason."""

import numpy as np
import pytest
from PIL import Image

from colorgan_hub import ImageError, load_image
from colorgan_hub.image_io import is_grayscale, output_path

from .conftest import make_photo


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def jpeg_bytes(tmp_path):
    path = tmp_path / "good.jpg"
    make_photo(200, 150).save(path, quality=90)
    return path.read_bytes()


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.jpg: no such file"):
        load_image(tmp_path / "nope.jpg")


def test_empty_file(tmp_path):
    with pytest.raises(ImageError, match=r"empty\.png: empty file"):
        load_image(_write(tmp_path, "empty.png", b""))


def test_not_an_image(tmp_path):
    with pytest.raises(ImageError, match=r"notes\.jpg: not an image"):
        load_image(_write(tmp_path, "notes.jpg", b"shopping list: milk, eggs\n" * 20))


def test_truncated_file(tmp_path, jpeg_bytes):
    path = _write(tmp_path, "cut.jpg", jpeg_bytes[: len(jpeg_bytes) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated or corrupt"):
        load_image(path)


def test_corrupt_file(tmp_path, jpeg_bytes):
    data = bytearray(jpeg_bytes)
    data[200:] = bytes(len(data) - 200)  # header intact, entropy-coded data destroyed
    path = _write(tmp_path, "corrupt.jpg", bytes(data))
    with pytest.raises(ImageError, match=r"corrupt\.jpg: "):
        load_image(path)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(path)
    with pytest.raises(ImageError, match=r"big\.png: 400x300 is 0\.1 megapixels, over the limit of 0\.1"):
        load_image(path, max_pixels=100_000)
    assert load_image(path, max_pixels=120_000).size == (400, 300)


def test_too_small(tmp_path):
    path = tmp_path / "tiny.png"
    Image.new("RGB", (7, 30)).save(path)
    with pytest.raises(ImageError, match=r"tiny\.png: 7x30 is too small"):
        load_image(path)


def test_bad_arrays_and_types():
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ImageError, match="dtype"):
        load_image(np.zeros((10, 10), np.int64))
    with pytest.raises(ImageError, match="expected a path"):
        load_image(12345)


def test_image_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError):
        load_image(tmp_path / "missing.png")


def test_is_grayscale():
    photo = make_photo()
    assert not is_grayscale(photo)
    assert is_grayscale(photo.convert("L"))
    assert is_grayscale(photo.convert("L").convert("RGB"))


def test_output_path_keeps_name_and_picks_format(tmp_path):
    assert output_path(tmp_path / "a" / "old.JPG", tmp_path) == tmp_path / "old.JPG"
    assert output_path(tmp_path / "scan.tiff", tmp_path) == tmp_path / "scan.png"


def _toned(gray: np.ndarray, tone, split=None) -> Image.Image:
    """A toned print: one colour (or one in the shadows and another in the highlights) on the lightness."""
    g = gray.astype(np.float32)[..., None] / 255
    tint = np.array(tone, np.float32) if split is None else (1 - g) * np.array(tone) + g * np.array(split)
    return Image.fromarray((np.clip(g * (0.7 + 0.3 * tint), 0, 1) * 255).round().astype(np.uint8))


def test_is_monochrome_knows_toned_prints_from_colour_photos(photo):
    from colorgan_hub.image_io import is_monochrome

    gray = np.asarray(photo.convert("L"))
    assert is_monochrome(photo.convert("L"))
    assert is_monochrome(_toned(gray, (1.0, 0.75, 0.45)))  # sepia
    assert is_monochrome(_toned(gray, (0.3, 0.55, 1.0)))  # cyanotype
    assert is_monochrome(_toned(gray, (0.75, 0.6, 0.9), split=(1.0, 0.9, 0.7)))  # split toning
    assert not is_monochrome(photo)
    washed = np.asarray(photo.convert("L").convert("RGB")).astype(np.float32)  # hand tinting: flat washes on regions
    washed[:, :40] *= (1.0, 0.8, 0.8)
    washed[:, 60:] *= (0.8, 1.0, 0.85)
    assert not is_monochrome(Image.fromarray(washed.astype(np.uint8)))


def test_realness_refuses_a_toned_print(tiny_model, photo):
    sepia = _toned(np.asarray(photo.convert("L")), (1.0, 0.75, 0.45))
    with pytest.raises(ImageError, match="monochrome \\(toned\\) photograph: no colour to judge"):
        tiny_model.realness(sepia)
    assert 0 <= tiny_model.realness(sepia, allow_grayscale=True) <= 1


def test_spread_evenly_covers_the_whole_list():
    from colorgan_hub.image_io import spread_evenly

    assert spread_evenly(list(range(10)), 3) == [0, 3, 6]
    assert spread_evenly(list(range(10)), None) == list(range(10)) == spread_evenly(list(range(10)), 20)

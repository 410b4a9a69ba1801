"""Resolution increase (`upscale`) and a choice of colorizations (`variations`): the network, the
pipeline, the CLI and the upscaler's training script."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from colorgan_hub import ColorGAN, cli, upscale
from colorgan_hub.color import AB_SCALE, ab_bin_centres, gray_to_l_numpy, rgb_to_l_numpy
from colorgan_hub.image_io import ImageError
from colorgan_hub.networks import smooth_gumbel_noise
from colorgan_hub.upscale import Upscaler, load_upscaler, upscale_l

from .conftest import TINY, make_photo


def random_upscaler(scale: int, seed: int = 0) -> Upscaler:
    """An upscaler whose output layer is not zero (a fresh one is exactly bicubic)."""
    torch.manual_seed(seed)
    upscaler = Upscaler(scale=scale, channels=8, blocks=2)
    torch.nn.init.normal_(upscaler.tail[0].weight, std=0.05)
    return upscaler.eval()


@pytest.fixture
def bundled_random(tmp_path, monkeypatch):
    """The package's upscalers replaced by random ones (saved and loaded the Hub way)."""
    for scale in upscale.SCALES:
        random_upscaler(scale, seed=scale).save_pretrained(tmp_path / f"x{scale}")
    monkeypatch.setattr(upscale, "BUNDLED", tmp_path)
    upscale._bundled.cache_clear()
    yield tmp_path
    upscale._bundled.cache_clear()


def test_fresh_upscaler_is_bicubic():
    l = torch.rand(1, 1, 20, 30)
    for scale in upscale.SCALES:
        out = Upscaler(scale=scale)(l)
        assert out.shape == (1, 1, 20 * scale, 30 * scale)
        torch.testing.assert_close(out, F.interpolate(l, scale_factor=scale, mode="bicubic", align_corners=False))


def test_tiles_give_the_same_result_as_one_piece():
    upscaler = random_upscaler(2)
    l = rgb_to_l_numpy(np.asarray(make_photo(70, 50, seed=4)))
    whole = upscale_l(upscaler, l, tile=1000)
    tiled = upscale_l(upscaler, l, tile=16)  # 5 x 4 tiles, the edges of the photo among them
    assert whole.shape == (100, 140)
    np.testing.assert_allclose(tiled, whole, atol=1e-4)
    with torch.inference_mode():
        direct = upscaler(torch.from_numpy(np.pad(l, upscaler.reach, mode="symmetric") / 100.0)[None, None])[0, 0].numpy() * 100
    np.testing.assert_allclose(whole, np.clip(direct[2 * upscaler.reach : -2 * upscaler.reach, 2 * upscaler.reach : -2 * upscaler.reach], 0, 100), atol=1e-4)


def test_save_and_load_give_the_same_output(tmp_path):
    upscaler = random_upscaler(4)
    upscaler.save_pretrained(tmp_path)
    loaded = Upscaler.from_pretrained(str(tmp_path))
    assert (loaded.scale, loaded.channels, loaded.blocks) == (4, 8, 2)
    l = torch.rand(2, 1, 9, 11)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(l), upscaler(l))


def test_bad_scale_is_refused():
    with pytest.raises(ValueError, match="scale must be one of"):
        Upscaler(scale=3)


@pytest.mark.parametrize("scale", upscale.SCALES)
def test_bundled_upscalers_beat_bicubic_on_a_real_photo(scale):
    """What the user gets: on a photo shrunk by area, the bundled network's L is closer to the
    original's than bicubic's (scikit-image's camera man, 512 px)."""
    skimage_data = pytest.importorskip("skimage.data")
    from training.train_upscaler import evaluate

    upscale._bundled.cache_clear()
    scores = evaluate(load_upscaler(scale), [np.repeat(skimage_data.camera()[..., None], 3, axis=2)], scale)
    assert scores["network"] > scores["bicubic"] + 0.2, scores


def test_colorize_upscale_gives_the_upscaled_l(tiny_model, bundled_random):
    img = make_photo(40, 30, seed=5).convert("L")
    out = tiny_model.colorize(img, upscale=2)
    assert out.size == (80, 60)
    expected = upscale_l(load_upscaler(2), gray_to_l_numpy(np.asarray(img)))
    assert np.abs(rgb_to_l_numpy(np.asarray(out)) - expected).max() < 0.6  # 8-bit rounding of the result
    rgba = make_photo(40, 30, seed=6).convert("RGBA")
    assert tiny_model.colorize(rgba, upscale=4).size == (160, 120)
    assert tiny_model.colorize(rgba, upscale=4).mode == "RGBA"


def test_upscale_over_the_pixel_limit_is_refused_by_name(tiny_model, bundled_random, tmp_path):
    path = tmp_path / "scan.png"
    make_photo(100, 100, seed=7).save(path)
    with pytest.raises(ImageError, match=r"scan.png: upscaled x4 it would be 400x400.*over the limit"):
        tiny_model.colorize(path, upscale=4, max_pixels=100_000)
    good, bad = tiny_model.colorize([make_photo(20, 20), str(path)], upscale=4, max_pixels=100_000, return_exceptions=True)
    assert good.size == (80, 80) and isinstance(bad, ImageError)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(upscale=3), "upscale must be 1"),
        (dict(variations=0), "variations must be between"),
        (dict(variations=99), "variations must be between"),
        (dict(variations=2, seed=-1), "seed must be"),
    ],
)
def test_bad_options_are_one_line(tiny_model, photo, options, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.colorize(photo, **options)


def test_smooth_gumbel_noise_is_gumbel_smooth_and_seeded():
    bins = ab_bin_centres(10.0) / AB_SCALE
    noise = smooth_gumbel_noise(bins, (48, 64), seed=3)
    assert noise.shape == (1, len(bins), 48, 64)
    near, far = noise[..., :-1].flatten(), noise[..., 1:].flatten()
    assert torch.corrcoef(torch.stack([near, far]))[0, 1] > 0.95  # smooth in space
    draws = torch.stack([smooth_gumbel_noise(bins, (48, 64), seed=s) for s in range(20)])  # one draw has few independent cells
    assert abs(draws.mean().item() - np.euler_gamma) < 0.1 and abs(draws.std().item() - np.pi / 6**0.5) < 0.1  # Gumbel(0, 1)
    assert abs(torch.corrcoef(torch.stack([draws[..., 0].flatten(), draws[..., 63].flatten()]))[0, 1]) < 0.1  # independent far apart
    a = int(bins.norm(dim=1).argmin())  # grey
    b = int(((bins - bins[a] - torch.tensor([10 / AB_SCALE, 0.0])).norm(dim=1)).argmin())  # its neighbour, 10 a units away
    assert torch.corrcoef(torch.stack([noise[0, a].flatten(), noise[0, b].flatten()]))[0, 1] > 0.3  # neighbouring colours lean together
    assert torch.equal(noise, smooth_gumbel_noise(bins, (48, 64), seed=3))
    assert not torch.equal(noise, smooth_gumbel_noise(bins, (48, 64), seed=4))


def test_variations_differ_and_repeat_with_the_seed(tiny_model, photo):
    first = tiny_model.colorize(photo, variations=3, seed=1)
    assert isinstance(first, list) and len(first) == 3 and all(v.size == photo.size for v in first)
    arrays = [np.asarray(v, np.int16) for v in first]
    assert all(np.abs(a - b).mean() > 0.5 for a, b in [(arrays[0], arrays[1]), (arrays[1], arrays[2])])
    again = tiny_model.colorize(photo, variations=3, seed=1)
    assert all(np.array_equal(a, np.asarray(b, np.int16)) for a, b in zip(arrays, again))
    other = tiny_model.colorize(photo, variations=1, seed=2)[0]
    assert np.abs(np.asarray(other, np.int16) - arrays[0]).mean() > 0.5
    l = rgb_to_l_numpy(np.asarray(photo))
    assert all(np.abs(rgb_to_l_numpy(np.asarray(v)) - l).max() < 0.6 for v in first)  # the photo's own L


def test_variations_of_a_photo_do_not_depend_on_its_batch(tiny_model, photo):
    alone = tiny_model.colorize(photo, variations=2, seed=5)
    batched = tiny_model.colorize([make_photo(seed=9), photo], variations=2, seed=5, batch_size=2)[1]
    for a, b in zip(alone, batched):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() <= 1


def test_variations_need_the_classification_head(photo):
    model = ColorGAN(**{**TINY, "head": "regression"}).eval()
    with pytest.raises(ValueError, match="classification head"):
        model.colorize(photo, variations=2)


def test_cli_upscale_and_variations(tmp_path, tiny_model_dir, bundled_random, capsys):
    make_photo(30, 20, seed=1).convert("L").save(tmp_path / "old.jpg")
    out = tmp_path / "out"
    assert cli.main(["colorize", str(tmp_path / "old.jpg"), "-o", str(out), "--model", tiny_model_dir, "--upscale", "2", "--variations", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["old-1.jpg", "old-2.jpg", "old-3.jpg"]
    assert all(Image.open(p).size == (60, 40) for p in out.iterdir())
    assert "colorized 1 of 1" in capsys.readouterr().err
    # written again: the outputs exist, one line and exit 1; the same seed gives the same files
    assert cli.main(["colorize", str(tmp_path / "old.jpg"), "-o", str(out), "--model", tiny_model_dir, "--upscale", "2", "--variations", "3"]) == 1
    assert "old-1.jpg exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--upscale", "3"], "--upscale must be"),
        (["--variations", "0"], "--variations must be"),
        (["--seed", "-2"], "--seed must be"),
    ],
)
def test_cli_bad_values_exit_2(tmp_path, flags, message, capsys):
    make_photo(30, 20).save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as stop:
        cli.main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), *flags])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_upscaler_training_through_main(tmp_path):
    from accelerate.state import AcceleratorState, GradientState

    from training import data, train_upscaler

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    train_dir, val_dir = tmp_path / "train", tmp_path / "val"
    train_dir.mkdir()
    val_dir.mkdir()
    for i in range(12):
        make_photo(64, 48, seed=i).save(train_dir / f"p{i}.jpg", quality=92)
    (train_dir / "broken.jpg").write_bytes(b"not a jpeg")
    for i in range(3):
        make_photo(48, 48, seed=50 + i).save(val_dir / f"v{i}.png")
    out = tmp_path / "run"

    def argv(steps, *extra):
        return [
            "--train_data_dir",
            str(train_dir),
            "--validation_data_dir",
            str(val_dir),
            "--output_dir",
            str(out),
            "--scale",
            "2",
            "--channels",
            "8",
            "--blocks",
            "2",
            "--patch_size",
            "32",
            "--train_batch_size",
            "4",
            "--max_train_steps",
            str(steps),
            "--validation_steps",
            "2",
            "--checkpointing_steps",
            "2",
            "--dataloader_num_workers",
            "0",
            "--report_to",
            "none",
            *extra,
        ]

    train_upscaler.main(train_upscaler.parse_args(argv(4)))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    model = Upscaler.from_pretrained(str(out / "model"))
    assert model.scale == 2 and json.loads((out / "model" / "validation.json").read_text())["step"] in (2, 4)
    card = (out / "model" / "README.md").read_text()
    assert "lightness upscaler" in card and "shrunk x2 by area, PSNR of L (dB): this network" in card
    assert f"{json.loads((out / 'model' / 'validation.json').read_text())['step']} steps of" in card  # the card of the weights kept
    # resume: runs on from step 4 to 6
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    train_upscaler.main(train_upscaler.parse_args(argv(6, "--resume_from_checkpoint", "latest")))
    assert (out / "checkpoint-6").is_dir()
    # the damage keeps sizes, and the clean setting shrinks by area alone
    import random

    gray = np.asarray(make_photo(32, 32).convert("L"))
    low = data.damaged_low_resolution(gray, 4, random.Random(0), data.Damage(1.0, 1.0, 1.0))
    assert low.shape == (8, 8) and low.dtype == np.uint8

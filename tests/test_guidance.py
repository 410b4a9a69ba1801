"""Point hints and a reference photo: parsing against an independent reference, the guidance
network's exact no-op without guidance, its save/load, the pipeline's coordinates (full size,
upscale, multi-scale, variations), suggestions, references, and the one-line refusals."""

import numpy as np
import pytest
import torch
from PIL import Image

from colorgan_hub import ColorGAN, HintError
from colorgan_hub.color import AB_SCALE, ab_bin_centres, gray_to_l_numpy, rgb_to_l_numpy
from colorgan_hub.guidance import CHROMA_QUANTILES, Chroma, Guidance, check_hints, colour_ab, match_chroma, palette_of, parse_colour, read_reference

from .conftest import TINY, make_photo

GUIDED = dict(image_size=64, encoder="efficientnet-lite0", width=8, d_width=8, realness_features=None, guidance="attention")


@pytest.fixture(scope="module")
def guided_model():
    torch.manual_seed(0)
    model = ColorGAN(**GUIDED).eval()
    for p in model.guide.parameters():  # a guide that does something: trained weights are not zero where it enters
        torch.nn.init.normal_(p, 0.0, 0.1) if p.dim() > 1 else None
    return model


@pytest.fixture
def gray_photo():
    return make_photo(120, 90, seed=4).convert("L")


def test_colours_parse_as_hex_or_rgb():
    assert parse_colour("#2a5db0") == (42, 93, 176) == parse_colour("2A5DB0") == parse_colour((42, 93, 176.0))
    for bad in ("#2a5db", "blue", (1, 2), (0, 0, 256), None, "#gg0000"):
        with pytest.raises(HintError):
            parse_colour(bad)


def test_hint_chroma_matches_skimage():
    skimage_color = pytest.importorskip("skimage.color")
    for rgb in [(42, 93, 176), (200, 30, 30), (20, 160, 60), (128, 128, 128)]:
        expected = skimage_color.rgb2lab(np.array([[rgb]], np.uint8))[0, 0, 1:]
        assert np.allclose(colour_ab(rgb), expected, atol=0.5)


def test_hints_are_checked_against_the_photo():
    assert check_hints([(10, 20.5, "#ff0000"), {"x": 0, "y": 90, "colour": (0, 0, 255)}], 120, 90)[1][:2] == (0.0, 90.0)
    with pytest.raises(HintError, match=r"scan.jpg: hint 2 at \(121, 5\) is outside the photo \(120x90\)"):
        check_hints([(1, 1, "#ffffff"), (121, 5, "#ffffff")], 120, 90, "scan.jpg")
    with pytest.raises(HintError, match="hint 1: colour 'red' is not #rrggbb"):
        check_hints([(1, 1, "red")], 120, 90)
    with pytest.raises(HintError, match="hint 1 is not \\(x, y, colour\\)"):
        check_hints([(1, 1)], 120, 90)
    with pytest.raises(HintError, match="hints must be a list"):
        check_hints("1,1,#ffffff", 120, 90)


def reddish_photo(seed=5) -> Image.Image:
    """A red photo with texture (a solid or two-tone image counts as a toned print)."""
    a = np.asarray(make_photo(64, 64, seed=seed)).astype(int)
    return Image.fromarray(np.stack([150 + a[..., 0] // 3, a[..., 1] // 3, a[..., 2] // 4], -1).astype(np.uint8))


def test_palette_sums_to_one_and_peaks_at_the_photo_colour():
    bins = ab_bin_centres(10.0) / AB_SCALE
    ab = torch.tensor(colour_ab((200, 30, 30))).view(2, 1, 1).expand(2, 8, 8) / AB_SCALE
    palette = palette_of(ab, bins)
    assert palette.shape == (len(bins),) and float(palette.sum()) == pytest.approx(1.0)
    assert np.allclose(bins[palette.argmax()].numpy() * AB_SCALE, colour_ab((200, 30, 30)), atol=7.1)
    batch = palette_of(torch.zeros(3, 2, 8, 8), bins)
    assert batch.shape == (3, len(bins)) and torch.allclose(batch.sum(dim=1), torch.ones(3))
    reference = read_reference(reddish_photo(), bins)
    assert float(reference.palette.sum()) == pytest.approx(1.0) and float(bins[reference.palette.argmax(), 0]) > 0.2  # mostly red: a > 22
    assert reference.chroma.shape == (CHROMA_QUANTILES,) and np.all(np.diff(reference.chroma) >= 0) and reference.chroma[CHROMA_QUANTILES // 2] > 22


def test_the_result_takes_the_references_saturation_rank_for_rank():
    rng = np.random.default_rng(0)
    ab = rng.normal(0, 8, (20, 30, 2)).astype(np.float32)  # a cautious result: low chroma everywhere
    quantiles = np.linspace(0, 60, CHROMA_QUANTILES, dtype=np.float32)  # a reference from gray to vivid
    before = np.hypot(ab[..., 0], ab[..., 1])
    for smoothing in (0.0, 0.02):
        out = match_chroma(ab, quantiles, smoothing)
        after = np.hypot(out[..., 0], out[..., 1])
        assert np.allclose(out / after[..., None], ab / before[..., None], atol=1e-4)  # hues kept
        if not smoothing:  # exactly the reference's chroma, rank for rank (+ 1 in the gain's log aside)
            assert np.array_equal(np.argsort(before, axis=None), np.argsort(after, axis=None))
            assert after.max() == pytest.approx(60, abs=1.5) and np.median(after) == pytest.approx(30, abs=2.5)
    blurred = np.hypot(*np.moveaxis(match_chroma(ab, quantiles, 0.1), -1, 0))
    assert 20 < np.median(blurred) < 40  # the saturation still rises to the reference's, region by region


def test_no_guidance_is_the_automatic_colorizer_bit_for_bit(guided_model, gray_photo):
    base = ColorGAN(**{**GUIDED, "guidance": None}).eval()
    base.load_state_dict({k: v for k, v in guided_model.state_dict().items() if not k.startswith("guide.")})
    real_l = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        expected = base.predict_ab(real_l)
        assert torch.equal(guided_model.predict_ab(real_l), expected)
        assert torch.equal(guided_model.predict_ab(real_l, guidance=Guidance(torch.zeros(2, 0, 5))), expected)
        assert torch.equal(guided_model.predict_ab(real_l, guidance=Guidance(torch.zeros(2, 3, 5), torch.zeros(2, 262))), expected)
    assert np.array_equal(np.asarray(guided_model.colorize(gray_photo, hints=[])), np.asarray(base.colorize(gray_photo)))


def test_hints_change_the_colour_and_the_unhinted_photo_of_a_batch_does_not(guided_model, gray_photo):
    plain = np.asarray(guided_model.colorize(gray_photo), np.int16)
    hinted, other = guided_model.colorize([gray_photo, gray_photo], hints=[[(60, 45, "#2a5db0"), (10, 10, "#c81e1e")], None])
    assert np.abs(np.asarray(hinted, np.int16) - plain).mean() > 0.5
    assert np.array_equal(np.asarray(other, np.int16), plain)
    assert np.abs(rgb_to_l_numpy(np.asarray(hinted)) - gray_to_l_numpy(np.asarray(gray_photo))).max() < 1.0  # the lightness is the photo's


def test_guided_model_saves_and_loads_strictly(guided_model, tmp_path, gray_photo):
    guided_model.save_pretrained(tmp_path)
    loaded = ColorGAN.from_pretrained(str(tmp_path))
    assert loaded.guidance == "attention"
    hints = [(30, 20, "#2a5db0")]
    assert np.array_equal(np.asarray(loaded.colorize(gray_photo, hints=hints)), np.asarray(guided_model.colorize(gray_photo, hints=hints)))


def test_hint_coordinates_stay_in_the_input_pixels_with_upscale_and_multiscale(guided_model, gray_photo):
    hints = [(100, 70, Chroma(60, 60))]  # near the bottom right corner of the 120x90 photo
    for options in ({"multiscale": False}, {"multiscale": True}, {"upscale": 2}):
        plain = np.asarray(guided_model.colorize(gray_photo, **options), np.float32)
        hinted = np.asarray(guided_model.colorize(gray_photo, hints=hints, **options), np.float32)
        s = hinted.shape[1] // gray_photo.width
        change = np.abs(hinted - plain).sum(axis=2)
        near = change[(70 - 15) * s : (70 + 15) * s, (100 - 15) * s : (100 + 15) * s].mean()
        far = change[: 25 * s, : 25 * s].mean()  # the opposite corner
        assert near > 2 * far and near > 1.0, (options, near, far)


def test_variations_keep_the_hints(guided_model, gray_photo):
    plain = guided_model.colorize(gray_photo, variations=2, seed=3)
    hinted = guided_model.colorize(gray_photo, variations=2, seed=3, hints=[(60, 45, Chroma(70, -40))])
    for a, b in zip(plain, hinted):
        assert np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).mean() > 0.5


def test_a_reference_moves_the_palette(guided_model, gray_photo):
    red = reddish_photo()
    with torch.no_grad():  # a guide whose palette prior counts: the reference's colours weigh more
        guided_model.guide.palette_gain_bias.fill_(2.0)
    try:
        plain = np.asarray(guided_model.colorize(gray_photo), np.float32)
        warm = np.asarray(guided_model.colorize(gray_photo, reference=red), np.float32)
    finally:
        with torch.no_grad():
            guided_model.guide.palette_gain_bias.fill_(0.0)
    assert (warm[..., 0] - warm[..., 2]).mean() > (plain[..., 0] - plain[..., 2]).mean() + 1  # redder
    with pytest.raises(HintError, match="reference .*: it has no colour to take a palette from"):
        guided_model.colorize(gray_photo, reference=gray_photo)


def test_suggestions_are_distinct_colours_at_the_point_lightness(guided_model, gray_photo):
    suggestions = guided_model.suggest_colours(gray_photo, 60, 45, k=4, hints=[(10, 10, "#c81e1e")])
    assert len(suggestions) == 4 and suggestions[0].probability >= suggestions[-1].probability
    assert len({s.colour for s in suggestions}) == 4
    lightness = rgb_to_l_numpy(np.array([[gray_photo.convert("RGB").getpixel((60, 45))]], np.uint8))[0, 0]
    for s in suggestions:
        assert s.colour == "#{:02x}{:02x}{:02x}".format(*s.rgb)
        assert abs(rgb_to_l_numpy(np.array([[s.rgb]], np.uint8))[0, 0] - lightness) < 3
    with pytest.raises(HintError, match="outside the photo"):
        guided_model.suggest_colours(gray_photo, 500, 45)


def test_models_without_guidance_refuse_hints_in_one_line(tiny_model, gray_photo):
    for kwargs in ({"hints": [(1, 1, "#ffffff")]}, {"reference": make_photo(seed=1)}):
        with pytest.raises(HintError, match="^this model takes no hints or reference photo"):
            tiny_model.colorize(gray_photo, **kwargs)
    with pytest.raises(ValueError, match="guidance=.attention. needs the classification head on an EfficientNet encoder: pass guidance=None"):
        ColorGAN(**{**TINY, "guidance": "attention"})


def test_a_bad_hint_in_a_batch_leaves_the_others(guided_model, gray_photo):
    good, bad = guided_model.colorize([gray_photo, gray_photo], hints=[[(5, 5, "#2a5db0")], [(500, 5, "#2a5db0")]], return_exceptions=True)
    assert isinstance(good, Image.Image) and isinstance(bad, HintError) and "hint 1 at (500, 5) is outside the photo" in str(bad)


def test_video_frames_take_the_reference_palette(guided_model):
    frames = [np.asarray(make_photo(96, 64, seed=s).convert("L")) for s in range(3)]
    plain = list(guided_model.colorize_frames(iter(frames), size=64))
    with torch.no_grad():
        guided_model.guide.palette_gain_bias.fill_(2.0)
    try:
        warm = list(guided_model.colorize_frames(iter(frames), size=64, reference=reddish_photo()))
    finally:
        with torch.no_grad():
            guided_model.guide.palette_gain_bias.fill_(0.0)
    assert all((w[..., 0].astype(float) - w[..., 2]).mean() > (p[..., 0].astype(float) - p[..., 2]).mean() for w, p in zip(warm, plain))


# ---------------------------------------------------------------------------------------------
# The command line.


@pytest.fixture(scope="module")
def guided_dir(tmp_path_factory, guided_model):
    path = tmp_path_factory.mktemp("guided_model")
    guided_model.save_pretrained(path)
    return str(path)


@pytest.fixture
def scans(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    make_photo(120, 90, seed=4).convert("L").save(folder / "a.png")
    make_photo(60, 40, seed=5).convert("L").save(folder / "b.png")
    return folder


def run(*args):
    from colorgan_hub import cli

    return cli.main([str(a) for a in args])


@pytest.mark.slow
def test_cli_hint_flags_and_file(scans, guided_dir, tmp_path, capsys):
    plain, hinted = tmp_path / "plain", tmp_path / "hinted"
    assert run("colorize", scans / "a.png", "-o", plain, "--model", guided_dir) == 0
    assert run("colorize", scans / "a.png", "-o", hinted, "--model", guided_dir, "--hint", "60,45,#2a5db0", "--hint", "10,10,#c81e1e") == 0
    assert np.abs(np.asarray(Image.open(plain / "a.png"), np.int16) - np.asarray(Image.open(hinted / "a.png"), np.int16)).mean() > 0.5
    hints = tmp_path / "hints.json"
    hints.write_text('{"a.png": [{"x": 60, "y": 45, "colour": "#2a5db0"}, {"x": 10, "y": 10, "colour": "#c81e1e"}]}')
    from_file = tmp_path / "from_file"
    assert run("colorize", scans, "-o", from_file, "--model", guided_dir, "--hints", hints) == 0
    assert np.array_equal(np.asarray(Image.open(from_file / "a.png")), np.asarray(Image.open(hinted / "a.png")))
    assert np.array_equal(np.asarray(Image.open(from_file / "b.png")), np.asarray(guided_model_output(guided_dir, scans / "b.png")))
    assert "colorized 2 of 2" in capsys.readouterr().err


def guided_model_output(model_dir, path):
    return ColorGAN.from_pretrained(model_dir).colorize(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hint", "60,45"], "is not X,Y,COLOUR"),
        (["--hint", "60,45,blue"], "colour 'blue' is not #rrggbb"),
        (["--hints", "MISSING"], "cannot read it"),
        (["--hints", "BROKEN"], "not JSON"),
        (["--hints", "LIST"], "a list of hints is for one photo; for 2 photos key them by file name"),
        (["--hints", "UNKNOWN"], "no input photo is named 'c.png'"),
        (["--reference", "GRAY"], "--reference: reference .*: it has no colour to take a palette from"),
    ],
)
def test_cli_bad_hints_are_one_usage_line(scans, guided_dir, tmp_path, capsys, args, message):
    files = {
        "MISSING": tmp_path / "nope.json",
        "BROKEN": tmp_path / "broken.json",
        "LIST": tmp_path / "list.json",
        "UNKNOWN": tmp_path / "unknown.json",
        "GRAY": scans / "b.png",
    }
    (tmp_path / "broken.json").write_text("[{")
    (tmp_path / "list.json").write_text('[{"x": 1, "y": 1, "colour": "#ffffff"}]')
    (tmp_path / "unknown.json").write_text('{"c.png": []}')
    args = [str(files.get(a, a)) for a in args]
    with pytest.raises(SystemExit) as stop:  # argparse's own errors exit 2 too
        raise SystemExit(run("colorize", scans, "-o", tmp_path / "out", "--model", guided_dir, *args))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    import re

    assert re.search(message, err) and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_cli_hint_outside_one_photo_writes_the_others(scans, guided_dir, tmp_path, capsys):
    code = run("colorize", scans, "-o", tmp_path / "out", "--model", guided_dir, "--hint", "100,80,#2a5db0")  # outside b.png (60x40)
    err = capsys.readouterr().err
    assert code == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    assert "b.png: hint 1 at (100, 80) is outside the photo (60x40)" in err and "colorized 1 of 2 image(s)" in err


def test_cli_hints_for_a_model_without_guidance(scans, tiny_model_dir, tmp_path, capsys):
    assert run("colorize", scans, "-o", tmp_path / "out", "--model", tiny_model_dir, "--hint", "1,1,#ffffff") == 2
    assert "error: this model takes no hints or reference photo" in capsys.readouterr().err

"""The `colorgan` command: outputs, naming, bad files carried over, exit codes 0 / 1 / 2."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from colorgan_hub import cli

from .conftest import make_photo


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    make_photo(64, 48, seed=1).convert("L").save(folder / "old.jpg")
    make_photo(40, 40, seed=2).save(folder / "color.png")
    make_photo(30, 50, seed=3).convert("L").save(tmp_path / "loose.tif")
    return tmp_path


def run(*args):
    return cli.main([str(a) for a in args])


def test_colorize_files_folders_and_globs(photos, tiny_model_dir, capsys):
    out = photos / "out"
    code = run("colorize", photos / "scans", str(photos / "*.tif"), "-o", out, "--model", tiny_model_dir)
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["color.png", "loose.png", "old.jpg"]
    assert Image.open(out / "old.jpg").format == "JPEG" and Image.open(out / "loose.png").format == "PNG"
    assert Image.open(out / "old.jpg").size == (64, 48)
    assert "colorized 3 of 3" in capsys.readouterr().err


def test_bad_files_are_reported_and_the_rest_done(photos, tiny_model_dir, capsys):
    (photos / "scans" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (photos / "scans" / "empty.jpg").write_bytes(b"")
    code = run("colorize", photos / "scans", photos / "missing.png", "-o", photos / "out", "--model", tiny_model_dir)
    err = capsys.readouterr().err
    assert code == 1
    assert sorted(p.name for p in (photos / "out").iterdir()) == ["color.png", "old.jpg"]
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 3
    assert any("broken.png" in line for line in lines) and any("empty.jpg: empty file" in line for line in lines)
    assert any("missing.png: no such file" in line for line in lines)
    assert "Traceback" not in err


def test_never_overwrites_without_flag(photos, tiny_model_dir, capsys):
    out = photos / "out"
    out.mkdir()
    (out / "color.png").write_bytes(b"keep me")
    assert run("colorize", photos / "scans" / "color.png", "-o", out, "--model", tiny_model_dir) == 1
    assert (out / "color.png").read_bytes() == b"keep me"
    assert "--overwrite" in capsys.readouterr().err
    assert run("colorize", photos / "scans" / "color.png", "-o", out, "--model", tiny_model_dir, "--overwrite") == 0
    assert Image.open(out / "color.png").size == (40, 40)


def test_same_name_from_two_folders_is_not_clobbered(photos, tiny_model_dir, capsys):
    other = photos / "other"
    other.mkdir()
    make_photo(20, 20).save(other / "color.png")
    code = run("colorize", photos / "scans" / "color.png", other / "color.png", "-o", photos / "out", "--model", tiny_model_dir)
    assert code == 1
    assert Image.open(photos / "out" / "color.png").size == (40, 40)
    assert "would also be written" in capsys.readouterr().err


def test_score_lines_and_json(photos, tiny_model_dir, capsys):
    colour = photos / "scans" / "color.png"
    assert run("score", colour, "--model", tiny_model_dir) == 0
    p, name = capsys.readouterr().out.strip().split("\t")
    assert 0 <= float(p) <= 1 and name == str(colour)
    broken = photos / "scans" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code = run("score", colour, broken, "--model", tiny_model_dir, "--json")
    captured = capsys.readouterr()
    assert code == 1  # a file that cannot be read fails; the others are still scored
    assert [r["file"] for r in json.loads(captured.out)] == [str(colour)]
    assert str(broken) in captured.err


def test_score_answers_monochrome_for_black_and_white_and_toned_prints(photos, tiny_model_dir, capsys):
    gray = photos / "scans" / "old.jpg"
    lightness = np.asarray(Image.open(gray).convert("L"), dtype=np.float32)[..., None] / 255.0
    sepia = photos / "sepia.png"
    Image.fromarray((255 * lightness * np.array([1.0, 0.78, 0.5])).astype(np.uint8)).save(sepia)
    assert run("score", gray, sepia, "--model", tiny_model_dir) == 0  # an answer, not a failure
    lines = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    assert lines == [["monochrome", str(gray)], ["monochrome", str(sepia)]]
    assert run("score", sepia, "--model", tiny_model_dir, "--json") == 0
    assert json.loads(capsys.readouterr().out) == [{"file": str(sepia), "realness": None, "monochrome": "monochrome (toned) photograph: no colour to judge"}]


@pytest.mark.parametrize(
    "args, message",
    [
        (["colorize"], "the following arguments are required"),
        (["colorize", "x.png", "--size", "4"], "--size must be at least 16"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(*args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("{photos}/no_model_here", "no such folder"),
        ("./nofolder", "no such folder"),
        ("{photos}/scans", "the folder has no config.json and model.safetensors"),
        ("{photos}/loose.tif", "it is a file"),
        ("nobody/no-such-colorgan-model", "not in the local cache"),  # HF_HUB_OFFLINE=1 (conftest): no retries
    ],
)
def test_unloadable_model_exits_2_with_one_line(photos, capsys, spec, reason):
    code = run("colorize", photos / "loose.tif", "-o", photos / "out", "--model", spec.format(photos=photos))
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot load model") and reason in err[0]


@pytest.mark.parametrize("target, reason", [("file", "exists and is not a folder"), ("/proc/nope", "cannot create this folder")])
def test_unusable_output_folder_exits_2_with_one_line(photos, tiny_model_dir, capsys, target, reason):
    out = photos / "scans" / "color.png" if target == "file" else target
    assert run("colorize", photos / "loose.tif", "-o", out, "--model", tiny_model_dir) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: -o {out}: {reason}")


def test_folder_with_images_only_below_suggests_recursive(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "album" / "1950").mkdir(parents=True)
    make_photo(40, 40).convert("L").save(tmp_path / "album" / "1950" / "a.png")
    (tmp_path / "album" / "notes.txt").write_text("not a photo")
    out = tmp_path / "out"
    assert run("colorize", tmp_path / "album", "-o", out, "--model", tiny_model_dir) == 1
    err = capsys.readouterr().err
    assert "no image files at its top level but 1 in subfolders: add --recursive" in err
    assert "1 file(s) that are not images or videos skipped (e.g. notes.txt)" in err
    assert run("colorize", tmp_path / "album", "-o", out, "--recursive", "--model", tiny_model_dir) == 0
    assert (out / "a.png").exists()
    assert capsys.readouterr().err.strip().endswith(f"colorized 1 of 1 image(s) into {out} (1 non-image file(s) skipped)")


def test_summary_counts_non_images_and_missing_inputs(tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    make_photo(40, 40).save(folder / "a.png")
    (folder / "readme.md").write_text("hello")
    assert run("colorize", folder, "-o", tmp_path / "out", "--model", tiny_model_dir) == 0
    assert capsys.readouterr().err.strip().endswith("colorized 1 of 1 image(s) into " + str(tmp_path / "out") + " (1 non-image file(s) skipped)")
    assert run("colorize", tmp_path / "missing.png", "-o", tmp_path / "out", "--model", tiny_model_dir) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'missing.png'}: no such file", f"colorized 0 of 1 image(s) into {tmp_path / 'out'} (1 failed)"]


def test_animated_gif_says_first_frame_only(tmp_path, tiny_model_dir, capsys):
    frames = [make_photo(40, 40, seed=i).convert("L") for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert run("colorize", tmp_path / "anim.gif", "-o", tmp_path / "out", "--model", tiny_model_dir) == 0
    assert f"note: {tmp_path / 'anim.gif'}: 3 frames; the first frame only is used" in capsys.readouterr().err


def test_demo_on_a_busy_port_exits_2_with_one_line(capsys):
    pytest.importorskip("gradio")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run("demo", "--port", port) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: --port {port}: cannot serve on 127.0.0.1:{port}")


def test_no_glob_match_is_an_input_failure(photos, tiny_model_dir, capsys):
    assert run("colorize", str(photos / "*.webp"), "-o", photos / "out", "--model", tiny_model_dir) == 1
    assert "no file matches" in capsys.readouterr().err


def test_console_script_runs(photos, tiny_model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "colorgan_hub.cli", "colorize", str(photos / "loose.tif"), "-o", str(photos / "o"), "--model", tiny_model_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = np.asarray(Image.open(photos / "o" / "loose.png"))
    assert out.shape == (50, 30, 3)


def test_raised_max_pixels_reaches_the_colorizer_and_scorer(photos, tiny_model_dir, monkeypatch, capsys):
    """--max-pixels is the limit everywhere: a photo the CLI accepted at a raised limit is not
    refused again by the pipeline at the default (a 56-megapixel scan used to fail, taking the
    good photos of its batch with it)."""
    from colorgan_hub import pipeline, realness

    seen = []
    for module, name in ((pipeline, "colorize"), (realness, "score")):
        original = getattr(module, name)

        def spy(*args, _original=original, **kwargs):
            seen.append(kwargs["max_pixels"] if "max_pixels" in kwargs else args[5])
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    assert run("colorize", photos / "scans", "-o", photos / "out", "--model", tiny_model_dir, "--max-pixels", 60_000_000) == 0
    run("score", photos / "scans" / "color.png", "--model", tiny_model_dir, "--max-pixels", 60_000_000)
    assert seen and set(seen) == {60_000_000}


def test_one_photo_failing_in_the_colorizer_does_not_lose_its_batch(photos, tiny_model_dir, monkeypatch, capsys):
    from colorgan_hub import pipeline
    from colorgan_hub.image_io import ImageError

    original = pipeline.load_image

    def refuse_old(image, *args, **kwargs):  # fails inside model.colorize, after the CLI's own check passed
        if getattr(image, "filename", "").endswith("old.jpg"):
            raise ImageError("old.jpg", "refused for the test")
        return original(image, *args, **kwargs)

    monkeypatch.setattr(pipeline, "load_image", refuse_old)
    code = run("colorize", photos / "scans", "-o", photos / "out", "--model", tiny_model_dir)
    err = capsys.readouterr().err
    assert code == 1
    assert [p.name for p in (photos / "out").iterdir()] == ["color.png"]
    assert "error: old.jpg: refused for the test" in err and "colorized 1 of 2" in err


def test_no_empty_output_folder_when_every_input_fails(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert run("colorize", tmp_path / "broken.png", "-o", tmp_path / "out", "--model", tiny_model_dir) == 1
    assert not (tmp_path / "out").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    assert run("colorize", tmp_path / "broken.png", "-o", existing, "--model", tiny_model_dir) == 1
    assert existing.is_dir()  # a folder the user had is never removed


def test_evaluate_colour_only_with_a_bad_file(tmp_path, tiny_model_dir, capsys):
    """`colorgan evaluate --no-detector`: the colour tables for the readable photos, the bad file
    named on stderr, exit status 1, the numbers in --json and no detector section."""
    folder = tmp_path / "truth"
    folder.mkdir()
    for i in range(4):
        make_photo(48, 40, seed=10 + i).save(folder / f"p{i}.png")
    (folder / "x_broken.jpg").write_bytes(b"not a jpeg")
    code = run("evaluate", "--data", folder, "--model", tiny_model_dir, "--no-detector", "--json", tmp_path / "e.json")
    captured = capsys.readouterr()
    assert code == 1
    assert [line for line in captured.err.splitlines() if line.startswith("error:")][0].startswith(f"error: {folder / 'x_broken.jpg'}")
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["images"] == 4 and "detector" not in result and "detector_families" not in result
    assert set(result["colour"]) == {"model", "gray", "constant colour", "ground truth"}
    assert "| gray |" in captured.out and "Detector" not in captured.out

    assert run("evaluate", "--data", folder, "--model", tiny_model_dir, "--no-detector", "--limit", "2", "--json", tmp_path / "two.json") == 0
    assert json.loads((tmp_path / "two.json").read_text())["images"] == 2  # spread over the sorted names: p0 and p2
    assert run("evaluate", "--data", folder, "--model", tiny_model_dir, "--limit", "0") == 2


def test_cli_multiscale(tmp_path, tiny_model_dir, capsys):
    """--multiscale colorizes photos; a regression model refuses it with exit 2 and one line."""
    from colorgan_hub import ColorGAN

    from .conftest import TINY

    make_photo(40, 30, seed=2).convert("L").save(tmp_path / "old.png")
    out = tmp_path / "out"
    assert cli.main(["colorize", str(tmp_path / "old.png"), "-o", str(out), "--model", tiny_model_dir, "--multiscale"]) == 0
    assert Image.open(out / "old.png").size == (40, 30)
    regression = tmp_path / "regression"
    ColorGAN(**{**TINY, "head": "regression"}).save_pretrained(regression)
    assert cli.main(["colorize", str(tmp_path / "old.png"), "-o", str(tmp_path / "out2"), "--model", str(regression), "--multiscale"]) == 2
    assert "--multiscale needs a model with the classification head" in capsys.readouterr().err


def test_closing_line_counts_every_input(photos, tiny_model_dir, capsys):
    """Four bad files and a pattern that matches nothing beside one good photo: 1 of 6, 5 failed."""
    bad = photos / "bad"
    bad.mkdir()
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "notes.png").write_text("not pixels")
    (bad / "cut.jpg").write_bytes((photos / "scans" / "old.jpg").read_bytes()[:300])
    code = run(
        "colorize",
        bad,
        photos / "missing.png",
        str(photos / "nothing" / "*.png"),
        photos / "scans" / "old.jpg",
        "-o",
        photos / "out",
        "--model",
        tiny_model_dir,
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip().splitlines()[-1] == f"colorized 1 of 6 image(s) into {photos / 'out'} (5 failed)"
    assert all(line.startswith("error: ") for line in err.strip().splitlines()[:-1])  # no progress-bar lines between them when not a terminal

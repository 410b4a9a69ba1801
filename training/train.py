"""Train a ColorGAN: L1 pre-training, adversarial training, then the real-vs-colorized detector.

    accelerate launch training/train.py --train_data_dir ../shared/data/train \
        --validation_data_dir ../shared/data/val --output_dir runs/small

Reads top to bottom: parse_args, then main (accelerator, models, optimisers, data, prepare,
trackers, resume, the loop over steps, calibration, save / push). Steps are counted across the
three phases: [0, pretrain) L1 only, [pretrain, pretrain + gan) GAN, then the detector. One CPU,
one GPU or many machines: all of that comes from `accelerate launch`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
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

from colorgan_hub import ColorGAN, metrics
from colorgan_hub.color import model_lab_to_rgb
from colorgan_hub.evaluate import colour_metrics, gray_baseline, load_truths
from data import ColorizationStream, batch_to_lab, build_stream, channels_last, collate, decode, estimate_colour_prior, list_images
from losses import GAN_LOSSES, ColourClassLoss, colorfulness_loss, degrade, discriminator_loss, generator_adversarial_loss

logger = get_logger(__name__)


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
    g.add_argument("--resolution", type=int, default=256, help="training crop size in px")
    g.add_argument("--crop_scale_min", type=float, default=0.5, help="smallest random crop, as a share of the image's area")
    g.add_argument("--min_image_size", type=int, default=64, help="drop images whose short side is below this")
    g.add_argument("--min_colorfulness", type=float, default=5.0, help="drop near-grayscale images below this colourfulness")
    g.add_argument("--calibration_fraction", type=float, default=0.05, help="share of the training source held out (by hash) to calibrate the detector")
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader workers (0 keeps the exact stream position in checkpoints)")

    g = parser.add_argument_group("model")
    g.add_argument("--model_config", type=json.loads, default={}, help="JSON object of ColorGAN keyword arguments (with --pretrained_model: overrides, e.g. the working size)")
    g.add_argument("--pretrained_model", help="start from this ColorGAN (Hub id or folder) instead of a fresh one")
    g.add_argument("--encoder_weights", help="torchvision ResNet checkpoint for a resnet18/34 encoder")

    g = parser.add_argument_group("phases and optimisation")
    g.add_argument("--pretrain_steps", type=int, default=1000, help="steps of generator-only L1 training")
    g.add_argument("--gan_steps", type=int, default=1000, help="steps of adversarial training (L1 x lambda_l1 + GAN)")
    g.add_argument("--detector_steps", type=int, default=500, help="steps of detector training with the generator frozen")
    g.add_argument("--train_batch_size", type=int, default=16, help="batch size per process")
    g.add_argument("--learning_rate", type=float, default=2e-4, help="generator learning rate in pre-training")
    g.add_argument("--gan_learning_rate", type=float, help="generator learning rate in the GAN phase (default: --learning_rate)")
    g.add_argument("--discriminator_learning_rate", type=float, help="discriminator learning rate in the GAN phase (default: --gan_learning_rate)")
    g.add_argument("--detector_learning_rate", type=float, help="discriminator learning rate in the detector phase (default: --learning_rate)")
    g.add_argument("--adam_beta1", type=float, default=0.5, help="Adam beta1 (pix2pix: 0.5)")
    g.add_argument("--adam_beta2", type=float, default=0.999, help="Adam beta2")
    g.add_argument("--lambda_l1", type=float, default=100.0, help="weight of the L1 term in the GAN phase")
    g.add_argument("--lambda_colorfulness", type=float, default=0.0, help="weight of the colourfulness-matching loss in pre-training and the GAN phase (0: off)")
    g.add_argument("--lambda_class", type=float, default=10.0, help="classification head: weight of the colour-class cross-entropy in the GAN phase (the GAN loss has weight 1)")
    g.add_argument("--lambda_decoded_l1", type=float, default=0.0, help="classification head: weight of an L1 loss on the decoded colours (at the model's temperature) in the GAN phase, for fidelity (0: off)")
    g.add_argument("--class_rebalancing", type=float, default=0.5, help="classification head: mix of the uniform distribution into the smoothed prior before inverting it (Zhang et al.'s lambda; 1: no rebalancing)")
    g.add_argument("--prior_samples", type=int, default=3000, help="classification head: training photos over which the colour prior is estimated (a fresh model only)")
    g.add_argument("--gan_loss", choices=GAN_LOSSES, default="vanilla", help="adversarial loss")
    g.add_argument("--use_ema", action="store_true", help="keep an exponential moving average of the generator")
    g.add_argument("--ema_decay", type=float, default=0.999, help="EMA decay per step")
    g.add_argument("--bn_recalibration_batches", type=int, default=20, help="training batches over which the generator's BatchNorm statistics are recomputed before it is validated or saved (0: off)")
    g.add_argument("--detector_augment", action=argparse.BooleanOptionalAction, default=True, help="JPEG / resize both classes while the detector trains")
    g.add_argument("--calibration_samples", type=int, default=256, help="held-out photos used to fit the realness calibration")
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
    g.add_argument("--keep_best", action=argparse.BooleanOptionalAction, default=True, help="end the GAN phase with the best validated generator")
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
    if min(args.pretrain_steps, args.gan_steps, args.detector_steps) < 0 or args.pretrain_steps + args.gan_steps + args.detector_steps == 0:
        parser.error("phase step counts must be >= 0 and not all 0")
    if not 0 <= args.calibration_fraction < 1:
        parser.error("--calibration_fraction must be in [0, 1)")
    if args.detector_steps and args.calibration_fraction == 0:
        parser.error("the detector phase needs held-out photos: --calibration_fraction > 0")
    return args


class TrainState:
    """What a checkpoint needs besides models and optimisers: step, stream position, best score."""

    def __init__(self):
        self.step, self.epoch, self.stream = 0, 0, None
        self.best_score, self.nonfinite = -math.inf, 0

    def state_dict(self):
        return dict(self.__dict__)

    def load_state_dict(self, state):
        self.__dict__.update(state)


def phase_of(step, args) -> str:
    if step < args.pretrain_steps:
        return "pretrain"
    if step < args.pretrain_steps + args.gan_steps:
        return "gan"
    return "detector"


def checkpoints(output_dir) -> list[Path]:
    """Complete checkpoints, oldest first (an interrupted save is still named *.tmp)."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save_checkpoint(accelerator, args, step):
    """save_state into checkpoint-N.tmp, then rename: a crash mid-write leaves only a .tmp."""
    final = Path(args.output_dir, f"checkpoint-{step}")
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        os.replace(tmp, final)
        for old in checkpoints(args.output_dir)[: -args.checkpoints_total_limit]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def to_uint8_rgb(real_l, ab) -> torch.Tensor:
    """Normalised L and ab -> uint8 RGB (B, 3, H, W) on the CPU, as a saved colorization would be."""
    return (model_lab_to_rgb(real_l.float(), ab.float()) * 255 + 0.5).clamp(0, 255).to(torch.uint8).cpu()


@torch.no_grad()
def validate(model, args, truths, baseline, step, accelerator):
    """Colorize the validation photos with the user pipeline; metrics, selection score, grid.
    `baseline`: the gray baseline's PSNR and the truth's colourfulness, fixed for the run."""
    outputs = model.colorize([img for _, img in truths], device=accelerator.device)  # the model's working size
    result = colour_metrics([np.asarray(o) for o in outputs], [np.asarray(img) for _, img in truths])
    result["psnr_gain"] = result["psnr"] - baseline["gray_psnr"]
    result["cf_ratio"] = result["cf"] / max(baseline["truth_cf"], 1e-6)
    # Best under fidelity, colour and hue: the weakest of the three, each against its target.
    result["score"] = min(result["psnr_gain"] / args.select_psnr_gain, result["cf_ratio"] / args.select_cf_ratio, result["hue_macro"] / args.select_hue_macro)
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


def batches_for_bn(args, process_index=0, num_processes=1) -> list[torch.Tensor]:
    """--bn_recalibration_batches fixed batches of training L crops (own stream and seed)."""
    batches = []
    if not args.bn_recalibration_batches:
        return batches
    stream, column = build_stream(args, process_index, num_processes)
    dataset = ColorizationStream(stream, column, args.resolution, args.min_image_size, args.min_colorfulness, crop_scale=(args.crop_scale_min, 1.0),
                                 seed=args.seed + 7919, process=(process_index, num_processes), purpose="BatchNorm-statistics")
    for batch in torch.utils.data.DataLoader(dataset, batch_size=args.train_batch_size, collate_fn=collate):
        batches.append(channels_last(batch["l"]))
        if len(batches) == args.bn_recalibration_batches:
            return batches
    return batches


@torch.no_grad()
def recompute_bn_statistics(module: torch.nn.Module, batches: list[torch.Tensor], device=None) -> None:
    """BatchNorm running statistics recomputed as plain averages over `batches`, with dropout off as
    at inference (torch.optim.swa_utils.update_bn, but it leaves dropout on)."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    was_training, momenta = module.training, [m.momentum for m in norms]
    module.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
        m.train()
    for batch in batches:
        module(batch.to(device) if device is not None else batch)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    module.train(was_training)


def held_out_photos(args) -> list[Image.Image]:
    """Up to --calibration_samples usable photos of the hash-held-out part of the training source."""
    stream, column = build_stream(args, held_out=True)
    photos = []
    for example in stream:
        img, _ = decode(example[column], args.min_image_size, args.min_colorfulness, 2 * args.resolution)
        if img is not None:
            photos.append(img)
        if len(photos) >= args.calibration_samples:
            break
    if len(photos) < 8:
        raise RuntimeError(f"only {len(photos)} held-out photos for calibration: raise --calibration_fraction")
    return photos


@torch.no_grad()
def fit_calibration(model, photos, device) -> dict:
    """Fit p = sigmoid(scale * mean_patch_logit + bias) on photos and the model's colorizations of
    them, through the same pipeline users call, at the model's working size (Platt scaling)."""
    model.realness_calibration.copy_(torch.tensor([1.0, 0.0]))
    fakes = model.colorize(photos, device=device)
    raw = model.realness(photos + fakes, device=device, allow_grayscale=True)
    logits = torch.logit(torch.tensor(raw, dtype=torch.float64).clamp(1e-12, 1 - 1e-12))
    labels = torch.tensor([1.0] * len(photos) + [0.0] * len(fakes), dtype=torch.float64)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        with torch.enable_grad():
            loss = F.binary_cross_entropy_with_logits(params[0] * logits + params[1], labels)
            loss.backward()
        return loss

    optimizer.step(closure)
    model.realness_calibration.copy_(params.detach().float())
    return {"calibration_photos": len(photos), "scale": float(params[0]), "bias": float(params[1])}


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

    # models and optimisers
    if args.pretrained_model:
        model = ColorGAN.from_pretrained(args.pretrained_model, **args.model_config)  # --model_config overrides its config
    else:
        model = ColorGAN(**args.model_config)
    if args.encoder_weights:
        (model.generator.body if model.head == "classification" else model.generator).load_encoder_weights(args.encoder_weights)
    classify = model.head == "classification"
    resuming = bool(args.resume_from_checkpoint) and (args.resume_from_checkpoint != "latest" or bool(checkpoints(output_dir)))
    if classify and not args.pretrained_model and not resuming:  # the colour prior, saved with the model
        prior_stream, prior_column = build_stream(args, held_out=False)
        prior, mean_ab, used = estimate_colour_prior(prior_stream, prior_column, model.generator.bins, args.prior_samples, args.min_image_size, args.min_colorfulness)
        model.generator.prior.copy_(prior)
        logger.info(f"colour prior from {used} photos: {int((prior > 0).sum())} of {len(prior)} bins used, mean ab {(mean_ab * model.ab_scale).tolist()}")
    model.train()
    generator, discriminator = model.generator, model.discriminator
    betas = (args.adam_beta1, args.adam_beta2)
    optimizer_g = torch.optim.Adam(generator.parameters(), lr=args.learning_rate, betas=betas)
    optimizer_d = torch.optim.Adam(discriminator.parameters(), lr=args.learning_rate, betas=betas)
    lr_g = {"pretrain": args.learning_rate, "gan": args.gan_learning_rate or args.learning_rate, "detector": 0.0}
    lr_d = {"pretrain": 0.0, "gan": args.discriminator_learning_rate or lr_g["gan"], "detector": args.detector_learning_rate or args.learning_rate}

    # data
    stream, column = build_stream(args, accelerator.process_index, accelerator.num_processes)
    dataset = ColorizationStream(
        stream, column, args.resolution, args.min_image_size, args.min_colorfulness, crop_scale=(args.crop_scale_min, 1.0),
        seed=args.seed + accelerator.process_index, process=(accelerator.process_index, accelerator.num_processes),
    )
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=args.train_batch_size, num_workers=args.dataloader_num_workers, collate_fn=collate)

    # BatchNorm statistics averaged by the EMA, or gathered with dropout on, do not match the
    # weights that are validated and shipped (it cost the first default model 0.7 dB): they are
    # recomputed on a fixed set of training batches before each validation and save.
    bn_batches = batches_for_bn(args, accelerator.process_index, accelerator.num_processes)

    def recalibrate():
        """Recompute the BatchNorm statistics of the generator users get (the EMA one if kept)."""
        if bn_batches:
            module = ema.module if ema is not None else accelerator.unwrap_model(generator)
            with accelerator.autocast():
                recompute_bn_statistics(module, bn_batches, accelerator.device)

    # The dataloader is not prepared: split_dataset_by_node already gives each process its share.
    generator.to(memory_format=torch.channels_last)  # 2x faster convolutions on CPU, faster on GPU
    discriminator.to(memory_format=torch.channels_last)
    generator, discriminator, optimizer_g, optimizer_d = accelerator.prepare(generator, discriminator, optimizer_g, optimizer_d)
    ema = None
    if args.use_ema:
        ema = AveragedModel(accelerator.unwrap_model(generator), multi_avg_fn=get_ema_multi_avg_fn(args.ema_decay), use_buffers=True)
        accelerator.register_for_checkpointing(ema)
    state = TrainState()
    accelerator.register_for_checkpointing(state)

    if accelerator.is_main_process:
        tracked = {k: (json.dumps(v) if isinstance(v, dict) else v) for k, v in vars(args).items() if v is not None}
        accelerator.init_trackers("colorgan", config=tracked)
    truths = []
    if args.validation_data_dir:  # spread over the folder: file names group photos by source
        paths = list_images(args.validation_data_dir)
        truths = load_truths(paths[:: max(1, len(paths) // args.max_validation_samples)][: args.max_validation_samples], "256")
    baseline = {
        "gray_psnr": float(np.mean([metrics.psnr(gray_baseline(t), np.asarray(t))[0] for _, t in truths])) if truths else 0.0,
        "truth_cf": float(np.mean([metrics.colorfulness(np.asarray(t))[0] for _, t in truths])) if truths else 0.0,
    }

    # resume
    if args.resume_from_checkpoint:
        found = checkpoints(output_dir) if args.resume_from_checkpoint == "latest" else [Path(args.resume_from_checkpoint)]
        if found:
            accelerator.load_state(str(found[-1]))
            dataset.resume(state.epoch, state.stream)
            logger.info(f"resumed from {found[-1]} at step {state.step}")
        else:
            logger.info("no checkpoint to resume from: starting fresh")

    if classify:  # after the resume: the prior may come from the checkpoint
        class_loss = ColourClassLoss(model.generator.bins, model.generator.prior, model.bin_size, args.class_rebalancing)

    def decoded(out):
        """The generator's output -> normalised ab (B, 2, H, W), as users get it (differentiable)."""
        return accelerator.unwrap_model(generator).decode(out, model.temperature) if classify else out

    def reconstruction_loss(out, real_ab):
        """(name, loss, weight in the GAN phase): colour-class cross-entropy or L1."""
        if classify:
            return "loss_g_class", class_loss(out, real_ab), args.lambda_class
        return "loss_g_l1", F.l1_loss(out, real_ab), args.lambda_l1

    total_steps = args.pretrain_steps + args.gan_steps + args.detector_steps
    progress = tqdm(total=total_steps, initial=state.step, desc="train", disable=not accelerator.is_local_main_process)
    rng = random.Random(args.seed + 1000 * accelerator.process_index + state.step)
    nonfinite_in_row, drops = 0, {}
    data = iter(dataloader)
    l1_saved = (output_dir / "model-l1" / "config.json").exists()

    while state.step < total_steps:
        phase = phase_of(state.step, args)
        if phase != "pretrain" and not l1_saved and args.pretrain_steps > 0:
            if accelerator.is_main_process:  # the L1-only model, to compare with after the GAN
                recalibrate()
                save_model(model, ema, output_dir / "model-l1", args)
            l1_saved = True
        if phase == "detector" and state.step == args.pretrain_steps + args.gan_steps:
            restore_best(generator, ema, args, accelerator)
            recalibrate()  # the generator is frozen from here on
        for group in optimizer_g.param_groups:
            group["lr"] = lr_g[phase]
        for group in optimizer_d.param_groups:
            group["lr"] = lr_d[phase]

        batch = next(data)
        for reason, n in batch["drops"].items():
            drops[reason] = drops.get(reason, 0) + n
        real_l, real_ab = (channels_last(batch[key].to(accelerator.device)) for key in ("l", "ab"))
        logs = {}
        with accelerator.accumulate(generator, discriminator), accelerator.autocast():
            if phase == "pretrain":
                out = generator(real_l)  # ab, or colour-class logits
                name, loss_g, _ = reconstruction_loss(out, real_ab)
                logs = {name: loss_g}
                if args.lambda_colorfulness:
                    logs["loss_g_cf"] = colorfulness_loss(real_l, decoded(out), real_ab)
                    loss_g = loss_g + args.lambda_colorfulness * logs["loss_g_cf"]
                if finite(accelerator, loss_g):
                    accelerator.backward(loss_g)
                    optimizer_g.step()
                optimizer_g.zero_grad(set_to_none=True)

            elif phase == "gan":
                out = generator(real_l)
                fake_ab = decoded(out)
                # discriminator: real vs fake.detach(), in one batch (per-sample norms: same as two)
                logits = discriminator(torch.cat([real_l, real_l]), torch.cat([real_ab, fake_ab.detach()]))
                loss_d = discriminator_loss(*logits.chunk(2), args.gan_loss)
                if finite(accelerator, loss_d):
                    accelerator.backward(loss_d)
                    optimizer_d.step()
                optimizer_d.zero_grad(set_to_none=True)
                # generator: fool D + lambda * L1 (through the bare D, frozen: no gradient reaches D)
                d_frozen = accelerator.unwrap_model(discriminator).requires_grad_(False)
                loss_g_gan = generator_adversarial_loss(d_frozen(real_l, fake_ab), args.gan_loss)
                d_frozen.requires_grad_(True)
                name, loss_g_rec, lambda_rec = reconstruction_loss(out, real_ab)
                loss_g = loss_g_gan + lambda_rec * loss_g_rec
                logs = {"loss_d": loss_d, "loss_g_gan": loss_g_gan, name: loss_g_rec}
                if classify and args.lambda_decoded_l1:  # the colours users see, pulled towards the photo's
                    logs["loss_g_decoded_l1"] = F.l1_loss(fake_ab, real_ab)
                    loss_g = loss_g + args.lambda_decoded_l1 * logs["loss_g_decoded_l1"]
                if args.lambda_colorfulness:  # on the reconstruction's scale: lambda_rec * lambda_colorfulness
                    logs["loss_g_cf"] = colorfulness_loss(real_l, fake_ab, real_ab)
                    loss_g = loss_g + lambda_rec * args.lambda_colorfulness * logs["loss_g_cf"]
                if finite(accelerator, loss_g):
                    accelerator.backward(loss_g)
                    optimizer_g.step()
                optimizer_g.zero_grad(set_to_none=True)

            else:  # detector: the generator is frozen, as users will run it
                with torch.no_grad():
                    frozen = (ema.module if ema is not None else accelerator.unwrap_model(generator)).eval()
                    out = frozen(real_l)
                    fake_rgb = to_uint8_rgb(real_l, frozen.decode(out, model.temperature) if classify else out)
                real_rgb = batch["rgb"]
                if args.detector_augment:
                    real_rgb, fake_rgb = degrade(real_rgb, rng), degrade(fake_rgb, rng)
                both_l, both_ab = batch_to_lab(torch.cat([real_rgb, fake_rgb]).to(accelerator.device))
                loss_d = discriminator_loss(*discriminator(both_l, both_ab).chunk(2), "vanilla")
                logs = {"loss_detector": loss_d}
                if finite(accelerator, loss_d):
                    accelerator.backward(loss_d)
                    optimizer_d.step()
                optimizer_d.zero_grad(set_to_none=True)

        if not accelerator.sync_gradients:
            continue
        if all(finite(accelerator, v) for v in logs.values()):
            nonfinite_in_row = 0
        else:
            nonfinite_in_row += 1
            state.nonfinite += 1
            if nonfinite_in_row >= args.max_nonfinite_steps:
                raise RuntimeError(
                    f"{nonfinite_in_row} non-finite losses in a row at step {state.step} ({phase} phase): "
                    "lower the learning rate, use bf16 rather than fp16, or check the data"
                )
        if ema is not None and phase != "detector":
            ema.update_parameters(accelerator.unwrap_model(generator))
        state.step += 1
        progress.update(1)
        if args.dataloader_num_workers == 0:  # with workers the position lives in them: see README
            state.epoch, state.stream = dataset.epoch, stream.state_dict()

        if state.step % args.logging_steps == 0 or state.step == total_steps:
            values = {k: float(v.detach()) for k, v in logs.items()}
            progress.set_postfix(phase=phase, **{k: f"{v:.3f}" for k, v in values.items()})
            accelerator.log({**{f"train/{k}": v for k, v in values.items()}, **{f"data/dropped_{k}": v for k, v in drops.items()},
                             "train/nonfinite_steps": state.nonfinite, "train/epoch": state.epoch}, step=state.step)
        if truths and phase != "detector" and (state.step % args.validation_steps == 0 or state.step == args.pretrain_steps + args.gan_steps):
            if accelerator.is_main_process:
                recalibrate()
                result = with_ema(model, ema, lambda: validate(model, args, truths, baseline, state.step, accelerator))
                logger.info(f"step {state.step} validation: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()))
                if result["score"] > state.best_score:
                    state.best_score = result["score"]
                    save_best(generator, ema, args, accelerator, result, state.step)
            state.best_score = broadcast_float(accelerator, state.best_score)
        if state.step % args.checkpointing_steps == 0 or state.step == total_steps:
            save_checkpoint(accelerator, args, state.step)
    progress.close()

    # calibration and the final model
    accelerator.wait_for_everyone()
    summary = {"steps": state.step, "drops": drops, "nonfinite": state.nonfinite}
    if accelerator.is_main_process:
        logger.info(f"dropped samples (this process): {drops}; non-finite steps: {state.nonfinite}")
        if args.pretrain_steps + args.gan_steps > 0 and not args.detector_steps:
            restore_best(generator, ema, args, accelerator)
            recalibrate()
        card = {"training_data": args.dataset_name or args.train_data_dir, "steps": total_steps}
        if args.detector_steps:
            photos = held_out_photos(args)
            card.update(with_ema(model, ema, lambda: fit_calibration(model, photos, accelerator.device)))
        if truths:
            card["validation"] = with_ema(model, ema, lambda: validate(model, args, truths, baseline, state.step, accelerator))
        path = save_model(model, ema, output_dir / "model", args, card)
        logger.info(f"saved {path}: {card}")
        summary.update(card)
        if args.push_to_hub:
            api = HfApi(token=args.hub_token)
            repo_id = api.create_repo(args.hub_model_id, exist_ok=True).repo_id
            api.upload_folder(repo_id=repo_id, folder_path=str(path), commit_message=f"ColorGAN after {total_steps} steps")
            logger.info(f"pushed to https://huggingface.co/{repo_id}")
    accelerator.end_training()
    return summary


def finite(accelerator, loss) -> bool:
    """True when the loss is finite on every process (so all skip or all step together)."""
    flag = torch.isfinite(loss.detach()).float().reshape(1)
    return bool(accelerator.gather(flag).min() > 0) if accelerator.num_processes > 1 else bool(flag[0] > 0)


def broadcast_float(accelerator, value: float) -> float:
    if accelerator.num_processes == 1:
        return value
    from accelerate.utils import broadcast

    return float(broadcast(torch.tensor([value], device=accelerator.device))[0])


def with_ema(model, ema, fn):
    """Run fn with the EMA generator swapped into the model (users get the EMA weights)."""
    if ema is None:
        return fn()
    trained, model.generator = model.generator, ema.module
    try:
        return fn()
    finally:
        model.generator = trained


def save_best(generator, ema, args, accelerator, result, step):
    """The best validated generator so far, written atomically."""
    source = ema.module if ema is not None else accelerator.unwrap_model(generator)
    folder = Path(args.output_dir, "best")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in source.state_dict().items()}, str(folder / "generator.tmp"))
    os.replace(folder / "generator.tmp", folder / "generator.safetensors")
    (folder / "metrics.json").write_text(json.dumps({"step": step, **result}, indent=2))


def restore_best(generator, ema, args, accelerator):
    """End of the GAN phase: continue with the best validated generator, if asked and known."""
    path = Path(args.output_dir, "best", "generator.safetensors")
    if not (args.keep_best and path.exists()):
        return
    state = load_file(str(path), device=str(accelerator.device))
    accelerator.unwrap_model(generator).load_state_dict(state)
    if ema is not None:
        ema.module.load_state_dict(state)
    logger.info(f"continuing with the best validated generator: {json.loads(path.with_name('metrics.json').read_text())}")


def save_model(model, ema, folder: Path, args, card: dict | None = None) -> Path:
    """save_pretrained (EMA generator if used), model card filled in, optional float16 weights."""
    card = card or {}
    validation = card.get("validation", {})
    evaluation = ", ".join(f"{k} {v:.3f}" for k, v in validation.items()) if validation else None
    kwargs = {
        "training_data": f"`{card.get('training_data', args.dataset_name or args.train_data_dir)}`",
        "training_procedure": (
            f"`training/train.py`: {args.pretrain_steps} L1 pre-training steps, {args.gan_steps} GAN steps "
            f"({args.gan_loss}, lambda_l1 {args.lambda_l1}), {args.detector_steps} detector steps; batch "
            f"{args.train_batch_size}, resolution {args.resolution}, Adam betas ({args.adam_beta1}, {args.adam_beta2})."
        ),
        "evaluation": f"Final validation ({args.validation_data_dir}): {evaluation}" if evaluation else None,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").unlink(missing_ok=True)  # regenerate the card
    with_ema(model, ema, lambda: model.save_pretrained(folder, model_card_kwargs={k: v for k, v in kwargs.items() if v}))
    if args.save_dtype == "float16":
        halve_weights(folder)
    return folder


def halve_weights(folder: Path) -> None:
    """Rewrite folder/model.safetensors with float32 weights as float16 (loading casts them back).
    The two calibration numbers, the colour bins and their prior stay float32: their precision
    shows in every probability and colour (and a prior's small shares would underflow)."""
    weights = Path(folder, "model.safetensors")
    keep = ("realness_calibration", "generator.bins", "generator.prior")
    state = {k: (v.half() if v.dtype == torch.float32 and k not in keep else v) for k, v in load_file(str(weights)).items()}
    save_file(state, str(weights), metadata={"format": "pt"})


if __name__ == "__main__":
    main(parse_args())

"""Teach a trained colorizer to take point hints and a reference photo (`ColorGAN(guidance=...)`).

    accelerate launch training/train_guidance.py --pretrained_model colorgan_hub/default_model \
        --train_data_dir ../shared/data/train --validation_data_dir ../shared/data/val --output_dir runs/hints

The automatic colorizer is frozen: only the guidance network (`colorgan_hub.guidance.Guide`,
zero-initialised where it enters) learns, so with no hints and no reference the trained model
colorizes exactly as the one it started from, and its detector stays calibrated for it.

Hints are simulated as Zhang et al. (2017) did: a geometric number of points (p = 1/8, so none on
an eighth of the crops), each the mean truth chroma of a 1-9 px patch placed at a normal draw
around the centre. On a share of the crops the truth's own palette is the reference, sometimes
the palette of a random part of it only, so a reference need not be the same photo. Loss: the
colour-class cross-entropy of the guided distribution (the model's own rebalanced loss) plus
`--lambda_l1` x L1 of its decoded colours. Validation: Zhang et al.'s hint sweep
(`training.hint_sweep`) on `--max_validation_samples` photos; the best validated step is kept.
Reads top to bottom as train.py: parse_args, then main.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import shutil
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import ProjectConfiguration, set_seed
from tqdm.auto import tqdm

from colorgan_hub import DEFAULT_MODEL, ColorGAN
from colorgan_hub.guidance import DESIGNS, Guidance, palette_of
from colorgan_hub.image_io import spread_evenly
from training.data import DataConfig, channels_last, collate, image_paths, training_stream
from training.hint_sweep import sweep, sweep_photo
from training.losses import ColourClassLoss, colorfulness_loss
from training.saving import resume, save_checkpoint, save_model, warmup_cosine

logger = get_logger(__name__)
VALIDATION_COUNTS = (0, 1, 5, 10, 100)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = parser.add_argument_group("data")
    g.add_argument("--train_data_dir", help="local image folder (the imagefolder builder, streamed)")
    g.add_argument("--dataset_name", help="or a Hub dataset id, streamed")
    g.add_argument("--dataset_config_name", help="the dataset's configuration")
    g.add_argument("--split", default="train", help="its split")
    g.add_argument("--image_column", help="its image column (default: found from the features)")
    g.add_argument("--max_train_samples", type=int, help="use only the first N samples")
    g.add_argument("--resolution", type=int, default=128, help="training crop size (px), a multiple of 32")
    g.add_argument("--validation_data_dir", help="folder of colour photos for the hint sweep")
    g.add_argument("--max_validation_samples", type=int, default=80, help="photos of the sweep, spread over the folder")
    g.add_argument("--dataloader_num_workers", type=int, default=0, help="DataLoader workers (0 keeps the exact stream position in checkpoints)")

    g = parser.add_argument_group("model")
    g.add_argument("--pretrained_model", default=DEFAULT_MODEL, help="the colorizer to guide (Hub id or folder; default: the bundled model)")
    g.add_argument("--guidance", choices=DESIGNS, default="attention", help="the guidance network's design (colorgan_hub/guidance.py)")

    g = parser.add_argument_group("hints")
    g.add_argument("--hint_stop_probability", type=float, default=0.125, help="p of the geometric number of hints per crop (Zhang et al.: 1/8)")
    g.add_argument("--max_hint_patch", type=int, default=9, help="hints are the mean of a 1..N px square patch")
    g.add_argument("--palette_probability", type=float, default=0.4, help="share of crops given the truth's palette as the reference")
    g.add_argument("--palette_part_probability", type=float, default=0.5, help="of those, share whose palette is of a random part of the crop")

    g = parser.add_argument_group("optimisation")
    g.add_argument("--max_train_steps", type=int, default=6000, help="steps (batches)")
    g.add_argument("--train_batch_size", type=int, default=16, help="batch size per process")
    g.add_argument("--learning_rate", type=float, default=1e-3, help="peak learning rate of the guidance network (AdamW)")
    g.add_argument("--lr_warmup_steps", type=int, default=200, help="linear warm-up, then cosine decay to 5%% of the peak")
    g.add_argument("--weight_decay", type=float, default=1e-4, help="AdamW weight decay")
    g.add_argument("--lambda_l1", type=float, default=10.0, help="weight of the decoded colours' L1 against the cross-entropy")
    g.add_argument(
        "--lambda_colorfulness",
        type=float,
        default=0.0,
        help="weight of the colourfulness-matching loss (|colourfulness of the result - the photo's| per crop; 0: off)",
    )
    g.add_argument("--mixed_precision", choices=["no", "fp16", "bf16"], default="no", help="autocast on accelerators")
    g.add_argument("--seed", type=int, default=0, help="seed of crops and hints")

    g = parser.add_argument_group("run")
    g.add_argument("--output_dir", required=True, help="checkpoints, logs, best/ and model/ go here")
    g.add_argument("--checkpointing_steps", type=int, default=250, help="save a checkpoint every N steps")
    g.add_argument("--checkpoints_total_limit", type=int, default=3, help="keep at most N checkpoints")
    g.add_argument("--validation_steps", type=int, default=500, help="run the hint sweep every N steps (0: only at the end)")
    g.add_argument("--resume_from_checkpoint", help="a checkpoint folder, or 'latest' (nothing to resume: start fresh)")
    g.add_argument("--report_to", default="tensorboard", help="accelerate tracker, or 'none'")
    g.add_argument("--save_dtype", choices=["float32", "float16"], default="float16", help="weights of the saved model")
    g.add_argument("--push_to_hub", action="store_true", help="upload the trained model")
    g.add_argument("--hub_model_id", help="USER/NAME for --push_to_hub")
    args = parser.parse_args(argv)

    if (args.dataset_name is None) == (args.train_data_dir is None):
        parser.error("give exactly one of --dataset_name and --train_data_dir")
    if args.resolution % 32:
        parser.error(f"--resolution must be a multiple of 32, got {args.resolution}")
    for flag in ("max_train_steps", "train_batch_size", "checkpointing_steps", "checkpoints_total_limit", "max_validation_samples", "max_hint_patch"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    for flag in ("hint_stop_probability", "palette_probability", "palette_part_probability"):
        if not 0 <= getattr(args, flag) <= 1:
            parser.error(f"--{flag} must be in [0, 1], got {getattr(args, flag)}")
    if args.hint_stop_probability == 0:
        parser.error("--hint_stop_probability must be > 0 (0 would draw hints forever)")
    if args.push_to_hub and not args.hub_model_id:
        parser.error("--push_to_hub needs --hub_model_id USER/NAME")
    return args


class GuidedLogits(torch.nn.Module):
    """The guided model as one module whose forward is the training step's network call, so that
    `accelerator.prepare` (DDP on several GPUs) sees the guidance network's gradients."""

    def __init__(self, model: ColorGAN):
        super().__init__()
        self.model = model

    def forward(self, real_l, points, palette):
        return self.model.guided_logits(real_l, Guidance(points, palette))


class TrainState:
    """What a checkpoint needs besides the network and the optimiser."""

    def __init__(self):
        self.step, self.epoch, self.stream, self.best = 0, 0, None, -math.inf

    def state_dict(self):
        return dict(self.__dict__)

    def load_state_dict(self, state):
        self.__dict__.update(state)


def guided_model(pretrained: str, design: str) -> ColorGAN:
    """The pretrained colorizer with a fresh guidance network (or its own, if it has the same
    design), everything but the guidance frozen."""
    base = ColorGAN.from_pretrained(pretrained)
    config = dict(base._hub_mixin_config)
    if config.get("guidance") == design:
        model = base
    else:
        model = ColorGAN(**{**config, "guidance": design})
        missing, unexpected = model.load_state_dict({k: v for k, v in base.state_dict().items() if not k.startswith("guide.")}, strict=False)
        assert not unexpected and all(k.startswith("guide.") for k in missing), (missing, unexpected)
    model.requires_grad_(False)
    model.guide.requires_grad_(True)
    return model.eval()  # the colorizer's BatchNorm keeps its statistics; the guide has none


def simulate_hints(real_ab: torch.Tensor, rng: random.Random, stop: float, max_patch: int) -> torch.Tensor:
    """Zhang et al.'s simulated hints for a batch of truths (B, 2, H, W) -> points (B, N, 5)."""
    batch, _, height, width = real_ab.shape
    per_photo = []
    for i in range(batch):
        hints = []
        while rng.random() >= stop:
            patch = rng.randint(1, max_patch)
            top = int(min(max(rng.gauss((height - patch + 1) / 2, (height - patch + 1) / 4), 0), height - patch))
            left = int(min(max(rng.gauss((width - patch + 1) / 2, (width - patch + 1) / 4), 0), width - patch))
            mean = real_ab[i, :, top : top + patch, left : left + patch].float().mean(dim=(1, 2))
            hints.append([top + patch / 2, left + patch / 2, float(mean[0]), float(mean[1]), 1.0])
        per_photo.append(hints)
    points = torch.zeros(batch, max((len(h) for h in per_photo), default=0), 5)
    for i, hints in enumerate(per_photo):
        if hints:
            points[i, : len(hints)] = torch.tensor(hints)
    return points


def simulate_palettes(real_ab: torch.Tensor, bins: torch.Tensor, rng: random.Random, share: float, part_share: float) -> torch.Tensor:
    """The truth's palette (B, K) as the reference on `share` of the crops (of a random part, 25-100%
    of its area, on `part_share` of those); zeros elsewhere."""
    small = F.avg_pool2d(real_ab.float(), 2)  # the palette does not need every pixel
    palettes = torch.zeros(len(real_ab), len(bins))
    for i in range(len(real_ab)):
        if rng.random() >= share:
            continue
        ab = small[i]
        if rng.random() < part_share:
            h, w = ab.shape[-2:]
            ph, pw = max(2, round(h * rng.uniform(0.5, 1.0))), max(2, round(w * rng.uniform(0.5, 1.0)))
            top, left = rng.randint(0, h - ph), rng.randint(0, w - pw)
            ab = ab[:, top : top + ph, left : left + pw]
        palettes[i] = palette_of(ab, bins)
    return palettes


def validate(model: ColorGAN, photos, step: int, accelerator) -> dict:
    """The hint sweep on the validation photos: logged, and the selection score (the mean gain at
    1, 5, 10 and 100 hints plus the truth-as-reference gain)."""
    result = sweep(model, photos, counts=VALIDATION_COUNTS)
    score = sum(result["gain"][n] for n in VALIDATION_COUNTS[1:]) / (len(VALIDATION_COUNTS) - 1) + result["reference_gain"]
    logs = {f"sweep/gain_{n}": g for n, g in result["gain"].items()} | {
        "sweep/psnr_0": result["psnr"][0],
        "sweep/reference_gain": result["reference_gain"],
        "sweep/hint_error": result["hint_error"],
        "sweep/score": score,
        "sweep/reference_colourfulness": result["reference_colourfulness"],
    }
    accelerator.log(logs, step=step)
    logger.info(f"step {step}: " + ", ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in logs.items()))
    return {**result, "score": score}


def main(args):
    output_dir = Path(args.output_dir)
    accelerator = Accelerator(
        mixed_precision=args.mixed_precision,
        log_with=None if args.report_to == "none" else args.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    set_seed(args.seed, device_specific=True)

    model = guided_model(args.pretrained_model, args.guidance)
    network = GuidedLogits(model)
    optimizer = torch.optim.AdamW(model.guide.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    data_config = DataConfig(
        train_data_dir=args.train_data_dir,
        dataset_name=args.dataset_name,
        dataset_config_name=args.dataset_config_name,
        split=args.split,
        image_column=args.image_column,
        max_train_samples=args.max_train_samples,
        resolution=args.resolution,
        calibration_fraction=0.0,
        seed=args.seed,
    )
    dataset = training_stream(data_config, accelerator.process_index, accelerator.num_processes)
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=args.train_batch_size, num_workers=args.dataloader_num_workers, collate_fn=collate)
    model.to(memory_format=torch.channels_last)
    network, optimizer = accelerator.prepare(network, optimizer)
    state = TrainState()
    accelerator.register_for_checkpointing(state)
    if accelerator.is_main_process:
        accelerator.init_trackers("colorgan-guidance", config={k: v for k, v in vars(args).items() if v is not None})
    photos = [sweep_photo(p) for p in spread_evenly(image_paths(args.validation_data_dir), args.max_validation_samples)] if args.validation_data_dir else []

    resume(accelerator, output_dir, args.resume_from_checkpoint, dataset, state, logger)
    class_loss = ColourClassLoss.for_model(model)
    bins = model.generator.bins.detach().cpu()

    progress = tqdm(total=args.max_train_steps, initial=state.step, desc="guidance", disable=not accelerator.is_local_main_process)
    rng = random.Random(args.seed + 1000 * accelerator.process_index + state.step)
    data = iter(dataloader)
    while state.step < args.max_train_steps:
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(state.step, args.learning_rate, args.lr_warmup_steps, args.max_train_steps, floor=0.05)
        batch = next(data)
        real_l, real_ab = (channels_last(batch[key].to(accelerator.device)) for key in ("l", "ab"))
        points = simulate_hints(real_ab.cpu(), rng, args.hint_stop_probability, args.max_hint_patch).to(accelerator.device)
        palettes = simulate_palettes(real_ab.cpu(), bins, rng, args.palette_probability, args.palette_part_probability).to(accelerator.device)
        if not points[..., 4].any() and not palettes.any():
            continue  # nothing to guide: the frozen colorizer alone (not counted as a step)
        with accelerator.autocast():
            log_probs = network(real_l, points, palettes)  # (B, K, H/2, W/2)
            loss_class = class_loss(log_probs, real_ab)
            loss_l1 = F.l1_loss(model.decode(log_probs.float()), real_ab)
            decoded = model.decode(log_probs.float())
            loss = loss_class + args.lambda_l1 * loss_l1
            if args.lambda_colorfulness:  # a reference's palette should come out as colourful as the photo it was taken from
                loss_cf = colorfulness_loss(real_l, decoded, real_ab)
                loss = loss + args.lambda_colorfulness * loss_cf
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.guide.parameters(), 1.0)
        optimizer.step()
        state.step += 1
        progress.update(1)
        if args.dataloader_num_workers == 0:
            state.epoch, state.stream = dataset.epoch, dataset.stream.state_dict()
        if state.step % 25 == 0:
            accelerator.log({"loss/class": loss_class.item(), "loss/l1": loss_l1.item(), "lr": optimizer.param_groups[0]["lr"]}, step=state.step)
            progress.set_postfix(class_=f"{loss_class.item():.3f}", l1=f"{loss_l1.item():.4f}")
        last = state.step == args.max_train_steps
        if photos and accelerator.is_main_process and ((args.validation_steps and state.step % args.validation_steps == 0) or last):
            result = validate(model, photos, state.step, accelerator)
            if result["score"] > state.best:
                state.best = result["score"]
                save_model(model, output_dir / "best", card=card(args, state.step, result), save_dtype=args.save_dtype)
                (output_dir / "best" / "sweep.json").write_text(json.dumps({"step": state.step, **result}, indent=2))
        if state.step % args.checkpointing_steps == 0 or last:
            save_checkpoint(accelerator, output_dir, state.step, args.checkpoints_total_limit)
    progress.close()

    # the end: the model the validation chose (or the last step), then the upload
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        final = output_dir / "model"
        if (output_dir / "best").is_dir():
            shutil.rmtree(final, ignore_errors=True)
            shutil.copytree(output_dir / "best", final)
        else:
            save_model(model, final, card=card(args, state.step, None), save_dtype=args.save_dtype)
        logger.info(f"saved {final}")
        if args.push_to_hub:
            ColorGAN.from_pretrained(str(final)).push_to_hub(args.hub_model_id)
    accelerator.end_training()
    return {"steps": state.step, "best": state.best}


def card(args, step: int, result: dict | None) -> dict[str, str]:
    """The saved model's card fields."""
    source = args.train_data_dir or args.dataset_name
    procedure = (
        f"{args.pretrained_model} with a '{args.guidance}' guidance network trained for {step} steps of {args.train_batch_size} "
        f"{args.resolution} px crops from {source} (colorizer frozen; simulated hints as Zhang et al. 2017, the truth's palette "
        f"on {args.palette_probability:.0%} of the crops; AdamW {args.learning_rate:g}, L1 weight {args.lambda_l1:g})."
    )
    card = {"training_procedure": procedure}
    if result:
        gains = ", ".join(f"{n}: {result['gain'][n]:+.2f} dB" for n in VALIDATION_COUNTS[1:])
        card["evaluation"] = (
            f"Hint sweep on {result['photos']} photos of {args.validation_data_dir} (Zhang et al.'s protocol): no hints "
            f"{result['psnr'][0]:.2f} dB; hints {gains}; the truth as reference {result['reference_gain']:+.2f} dB."
        )
    return card


if __name__ == "__main__":
    summary = main(parse_args())
    print(json.dumps(summary), file=sys.stderr)

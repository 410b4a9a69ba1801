"""Saving in training: a trained ColorGAN (`save_pretrained` with its model card filled in,
optionally float16 weights that loading casts back to float32), the trainers' checkpoints
(written atomically, the last few kept, found again for `--resume_from_checkpoint latest`), and
the one learning-rate schedule they share (linear warm-up, then cosine decay)."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

# Kept float32 in a float16 file: the calibration numbers (and the cue read-out) show in every probability, the colour
# bins in every colour, and a prior's small shares would underflow.
FLOAT32_KEYS = ("realness_calibration", "realness_cues", "generator.bins", "generator.prior")


def save_model(model, folder: Path, card: dict[str, str] | None = None, save_dtype: str = "float32") -> Path:
    """model.save_pretrained(folder) with the card's fields (training_data, training_procedure,
    evaluation) filled in; the card is written anew."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").unlink(missing_ok=True)
    model.save_pretrained(folder, model_card_kwargs={k: v for k, v in (card or {}).items() if v})
    if save_dtype == "float16":
        halve_weights(folder)
    return folder


def halve_weights(folder: Path) -> None:
    """Rewrite folder/model.safetensors with its float32 weights as float16, but FLOAT32_KEYS."""
    weights = Path(folder, "model.safetensors")
    state = {k: (v.half() if v.dtype == torch.float32 and k not in FLOAT32_KEYS else v) for k, v in load_file(str(weights)).items()}
    save_file(state, str(weights), metadata={"format": "pt"})


def checkpoints(output_dir) -> list[Path]:
    """Complete checkpoints (checkpoint-STEP folders), oldest first (an interrupted save is still named *.tmp)."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def save_state(accelerator, folder) -> Path:
    """`accelerator.save_state` into FOLDER.tmp, then renamed over FOLDER: a process killed
    mid-write leaves only a .tmp, and the last complete state whole."""
    final = Path(folder)
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    accelerator.wait_for_everyone()
    return final


def save_checkpoint(accelerator, output_dir, step: int, keep: int) -> Path:
    """The state as OUTPUT_DIR/checkpoint-STEP, written atomically (`save_state`); the `keep` newest stay."""
    final = save_state(accelerator, Path(output_dir, f"checkpoint-{step}"))
    if accelerator.is_main_process:
        for old in checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def resume(accelerator, output_dir, spec: str | None, dataset, state, logger) -> None:
    """`--resume_from_checkpoint spec` ('latest' or a folder): the accelerator's state (models,
    optimisers, registered objects such as `state`) and the data stream's position, or nothing
    when there is no checkpoint yet (a fresh start)."""
    if not spec:
        return
    found = checkpoints(output_dir) if spec == "latest" else [Path(spec)]
    if not found:
        logger.info("no checkpoint to resume from: starting fresh")
        return
    accelerator.load_state(str(found[-1]))
    dataset.resume(state.epoch, state.stream)
    logger.info(f"resumed from {found[-1]} at step {state.step}")


def warmup_cosine(step: int, peak: float, warmup: int, total: int, floor: float = 0.0) -> float:
    """The learning rate at step `step` (0-based): linear warm-up over `warmup` steps to `peak`,
    then cosine decay to `floor` x `peak` at step `total` - 1. A function of the step alone, so a
    resumed run continues the same curve with no scheduler state in its checkpoint."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup - 1))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

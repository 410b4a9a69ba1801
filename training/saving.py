"""Saving a trained ColorGAN: `save_pretrained` with its model card filled in, optionally with
float16 weights (loading casts them back to float32)."""

from __future__ import annotations

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

"""Adversarial losses (vanilla / LSGAN / hinge) on PatchGAN logits, and the detector's degradations.

All losses take raw logits (B, 1, h, w): the discriminator has no sigmoid (pix2pix's
BCEWithLogits, numerically safe under mixed precision).
"""

from __future__ import annotations

import io
import random

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

GAN_LOSSES = ("vanilla", "lsgan", "hinge")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "vanilla") -> torch.Tensor:
    """D: push real patches up, fake patches down (halved for vanilla/LSGAN, as pix2pix)."""
    if kind == "vanilla":
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
    if kind == "lsgan":
        return 0.5 * (F.mse_loss(real_logits, torch.ones_like(real_logits)) + F.mse_loss(fake_logits, torch.zeros_like(fake_logits)))
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    raise ValueError(f"gan loss must be one of {GAN_LOSSES}, got {kind!r}")


def generator_adversarial_loss(fake_logits: torch.Tensor, kind: str = "vanilla") -> torch.Tensor:
    """G: make D call its colorizations real."""
    if kind == "vanilla":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if kind == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"gan loss must be one of {GAN_LOSSES}, got {kind!r}")


def degrade(rgb: torch.Tensor, rng: random.Random, p_jpeg: float = 0.5, p_resize: float = 0.3) -> torch.Tensor:
    """Random JPEG re-compression (quality 60-95) and down-and-up resizing, per image.

    Applied alike to real photos and colorizations while the detector trains, so it learns
    colour, not compression or sharpness traces (the evaluation checks JPEG 75 and half size).
    rgb: uint8 (B, 3, H, W) on the CPU; returns the same shape and dtype.
    """
    out = []
    for image in rgb.permute(0, 2, 3, 1).numpy():
        img = Image.fromarray(image)
        if rng.random() < p_resize:
            w, h = img.size
            factor = rng.uniform(0.4, 0.9)
            img = img.resize((max(8, round(w * factor)), max(8, round(h * factor))), Image.Resampling.BILINEAR)
            img = img.resize((w, h), Image.Resampling.BILINEAR)
        if rng.random() < p_jpeg:
            buffer = io.BytesIO()
            img.save(buffer, format="JPEG", quality=rng.randint(60, 95))
            img = Image.open(buffer).convert("RGB")
        out.append(np.asarray(img))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()

"""Adversarial losses (vanilla / LSGAN / hinge) on PatchGAN logits, the colour-class loss of the
classification head (soft-encoded, rebalanced cross-entropy), the colourfulness-matching loss, the
perceptual (content) loss on pretrained features, and the detector's loss.

All losses take raw logits (B, 1, h, w): the discriminator has no sigmoid (pix2pix's
BCEWithLogits, numerically safe under mixed precision).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from colorgan_hub.color import AB_SCALE, model_lab_to_rgb
from colorgan_hub.efficientnet import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLiteEncoder
from training.data import batch_to_lab

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


class ColourClassLoss:
    """Rebalanced cross-entropy of the classification head against Zhang et al.'s soft targets.

    Each target pixel's ab is spread over its `neighbours` nearest bins with Gaussian weights of
    width `sigma` (5 Lab units); each pixel is weighted by the rebalancing weight of its nearest
    bin (`ColorClassifier.rebalancing_weights`: Zhang et al. eq. 2-4). The bins lie on a regular grid, so the neighbours
    are searched in the 3x3 grid cells around the nearest one (exact for 5 neighbours) instead of
    among all K bins: a lookup table maps grid cells to bin indices (-1: no bin, out of gamut).
    Everything in normalised ab (Lab / AB_SCALE).
    """

    def __init__(self, bins: torch.Tensor, bin_size: float, weights: torch.Tensor | None, neighbours: int = 5, sigma: float = 5.0):
        self.bins, self.neighbours, self.weights = bins.float(), neighbours, weights
        self.step, self.sigma = bin_size / AB_SCALE, sigma / AB_SCALE
        self.origin = self.bins.min(dim=0).values  # (2,) the lowest grid centre in a and b
        cells = torch.round((self.bins - self.origin) / self.step).long()  # (K, 2)
        self.table = torch.full((int(cells[:, 0].max()) + 1, int(cells[:, 1].max()) + 1), -1, dtype=torch.long)
        self.table[cells[:, 0], cells[:, 1]] = torch.arange(len(bins))

    @classmethod
    def for_model(cls, model) -> ColourClassLoss:
        """The loss of a ColorGAN's classification head: its bins, and the rebalancing weights of
        its prior and mix (`class_rebalancing`; 1: no rebalancing)."""
        generator = model.generator
        weights = generator.rebalancing_weights(model.class_rebalancing).detach() if model.class_rebalancing < 1 else None
        return cls(generator.bins.detach(), model.bin_size, weights)

    def soft_encode(self, ab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """ab (B, 2, h, w) -> (bin indices (B, n, h, w) int64, weights (B, n, h, w) summing to 1)."""
        table, bins = self.table.to(ab.device), self.bins.to(ab.device)
        nearest_cell = torch.round((ab.float() - self.origin.to(ab.device)[:, None, None]) / self.step).long()  # (B, 2, h, w)
        offsets = torch.tensor([-1, 0, 1], device=ab.device)
        ca = (nearest_cell[:, 0, None, None] + offsets[:, None, None, None]).clamp(0, table.shape[0] - 1)  # (B, 3, 1, h, w)
        cb = (nearest_cell[:, 1, None, None] + offsets[None, :, None, None]).clamp(0, table.shape[1] - 1)  # (B, 1, 3, h, w)
        candidates = table[ca, cb].flatten(1, 2)  # (B, 9, h, w), -1 where no bin
        centres = bins[candidates.clamp(min=0)].permute(0, 1, 4, 2, 3)  # (B, 9, 2, h, w)
        distance2 = ((centres - ab.float()[:, None]) ** 2).sum(dim=2)  # (B, 9, h, w)
        distance2 = distance2.masked_fill(candidates < 0, float("inf"))
        nearest, which = distance2.topk(self.neighbours, dim=1, largest=False)  # (B, n, h, w)
        index = candidates.gather(1, which).clamp(min=0)
        lost = torch.isinf(nearest[:, 0])  # (B, h, w): no bin in the 3x3 cells (far outside the gamut)
        if lost.any():  # search all bins for those pixels
            points = ab.float().permute(0, 2, 3, 1)[lost]  # (N, 2)
            far, far_index = torch.cdist(points, bins).topk(self.neighbours, dim=1, largest=False)
            nearest, index = nearest.permute(0, 2, 3, 1).clone(), index.permute(0, 2, 3, 1).clone()
            nearest[lost], index[lost] = far**2, far_index
            nearest, index = nearest.permute(0, 3, 1, 2), index.permute(0, 3, 1, 2)
        soft = torch.softmax(-nearest / (2 * self.sigma**2), dim=1)  # Gaussian weights, normalised
        return index, soft

    def __call__(self, logits: torch.Tensor, real_ab: torch.Tensor) -> torch.Tensor:
        """logits (B, K, h, w); real_ab (B, 2, H, W) normalised, area-averaged to (h, w)."""
        with torch.autocast(logits.device.type, enabled=False):
            target_ab = F.adaptive_avg_pool2d(real_ab.float(), logits.shape[-2:])  # (B, 2, h, w)
            index, soft = self.soft_encode(target_ab)
            pixel_weights = torch.ones_like(soft[:, 0]) if self.weights is None else self.weights.to(logits.device)[index[:, 0]]
            return _SoftCrossEntropy.apply(logits.float(), index, soft, pixel_weights)


class _SoftCrossEntropy(torch.autograd.Function):
    """mean(pixel_weight * -sum_n soft_n log softmax(logits)[index_n]) with sparse soft targets.

    Autograd's own graph for this makes several passes over the (B, K, h, w) logits in the
    backward; here the gradient is pixel_weight * (softmax - q) / N in two (most of the step's
    time on a CPU went there)."""

    @staticmethod
    def forward(ctx, logits, index, soft, pixel_weights):  # (B, K, h, w), (B, n, h, w) x2, (B, h, w)
        log_probs = torch.log_softmax(logits, dim=1)
        cross_entropy = -(soft * log_probs.gather(1, index)).sum(dim=1)  # (B, h, w)
        ctx.save_for_backward(log_probs, index, soft, pixel_weights)
        return (pixel_weights * cross_entropy).mean()

    @staticmethod
    def backward(ctx, grad_output):
        log_probs, index, soft, pixel_weights = ctx.saved_tensors
        scale = (grad_output * pixel_weights / pixel_weights.numel()).unsqueeze(1)  # (B, 1, h, w)
        grad = log_probs.exp_()  # softmax, in place: log_probs is not needed again
        grad.scatter_add_(1, index, -soft)
        grad.mul_(scale)
        return grad, None, None, None


def soft_colorfulness(rgb: torch.Tensor) -> torch.Tensor:
    """Per-image colourfulness of sRGB (B, 3, H, W) in [0, 1], differentiable: the Hasler &
    Suesstrunk variant with absolute rg / yb that `colorgan_hub.metrics.colorfulness` reports,
    on a 0-1 scale (the metric's value / 255)."""
    r, g, b = rgb.float().unbind(1)
    rg = (r - g).abs().flatten(1)
    yb = (0.5 * (r + g) - b).abs().flatten(1)
    spread = torch.sqrt(rg.var(1, correction=0) + yb.var(1, correction=0) + 1e-8)
    mean = torch.sqrt(rg.mean(1) ** 2 + yb.mean(1) ** 2 + 1e-8)
    return spread + 0.3 * mean


def colorfulness_loss(real_l: torch.Tensor, fake_ab: torch.Tensor, real_ab: torch.Tensor) -> torch.Tensor:
    """Mean |CF(colorization) - CF(photo)| per image (normalised Lab in, fp32 inside).

    L1 regresses to the conditional median, which is grayish wherever colour is ambiguous (the
    sepia look); this term asks each colorization to be as colourful as its photo, no more, in
    the spirit of DDColor's colourfulness loss (which maximises it instead)."""
    with torch.autocast(real_l.device.type, enabled=False):
        fake = model_lab_to_rgb(real_l.float(), fake_ab.float())
        with torch.no_grad():
            real = model_lab_to_rgb(real_l.float(), real_ab.float())
        return (soft_colorfulness(fake) - soft_colorfulness(real)).abs().mean()


class PerceptualLoss(torch.nn.Module):
    """The reports' content loss: mean L1 between features of the colorization and of the photo
    in a frozen ImageNet network (Johnson et al. 2016), here EfficientNet-Lite0 with its RGB stem,
    at strides 4, 8 and 16, each stage's distance divided by the photo's mean feature size.
    Normalised L and ab in; the colour of both images is what differs, so the distance is a
    colour distance that sees objects and textures (a leaf's green against a wall's)."""

    def __init__(self, weights):
        super().__init__()
        self.network = EfficientNetLiteEncoder("efficientnet-lite0", in_ch=3)
        self.network.load_lite_weights(weights)
        self.network.requires_grad_(False).eval()

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: BatchNorm keeps its ImageNet statistics

    def forward(self, real_l: torch.Tensor, fake_ab: torch.Tensor, real_ab: torch.Tensor) -> torch.Tensor:
        fake = (model_lab_to_rgb(real_l.float(), fake_ab.float()) - IMAGENET_MEAN) / IMAGENET_STD  # (B, 3, H, W)
        with torch.no_grad():
            real = (model_lab_to_rgb(real_l.float(), real_ab.float()) - IMAGENET_MEAN) / IMAGENET_STD
            real_features = self.network(real)[1:4]  # strides 4, 8, 16
        loss = fake.new_zeros(())
        for fake_feature, real_feature in zip(self.network(fake)[1:4], real_features):
            loss = loss + (fake_feature.float() - real_feature.float()).abs().mean() / (real_feature.float().abs().mean() + 1e-6)
        return loss / 3


def detector_loss(discriminator, real_rgb: torch.Tensor, fake_rgb: torch.Tensor, device) -> torch.Tensor:
    """The detector's step loss (training/detector.py): uint8 RGB batches (B, 3, H, W) of real photos and colorizations, as the detector sees them ->
    the PatchGAN's real-vs-fake loss (vanilla, logits)."""
    both_l, both_ab = batch_to_lab(torch.cat([real_rgb, fake_rgb]).to(device))
    return discriminator_loss(*discriminator(both_l, both_ab).chunk(2), "vanilla")

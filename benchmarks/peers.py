"""Peer architectures for speed comparisons, random weights (speed needs no trained weights).

* `ECCV16Net`: the size and layout of Zhang, Isola & Efros, "Colorful Image Colorization" (ECCV
  2016), written from the paper's layer table: 8 VGG-style blocks of 3x3 convolutions with BN
  (blocks 5 and 6 dilated by 2), a transposed convolution in block 8, a 313-bin softmax head at a
  quarter of the input resolution, decoded to ab by a 1x1 convolution and upsampled x4.
  About 32M parameters.
* the pix2pix U-Net (8 levels, 64 filters, transposed convolutions, ~54M parameters) is
  `colorgan_hub.networks.UNetGenerator(1, 2, width=64, depth=8, upsample="transpose")`.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(in_ch, out_ch, n, stride_last=1, dilation=1):
    layers = []
    for i in range(n):
        stride = stride_last if i == n - 1 else 1
        layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, stride=stride, padding=dilation, dilation=dilation), nn.ReLU(True)]
    return nn.Sequential(*layers, nn.BatchNorm2d(out_ch))


class ECCV16Net(nn.Module):
    """L (B, 1, H, W) -> ab (B, 2, H, W); H, W multiples of 8."""

    def __init__(self):
        super().__init__()
        self.model1 = _block(1, 64, 2, stride_last=2)  # H/2
        self.model2 = _block(64, 128, 2, stride_last=2)  # H/4
        self.model3 = _block(128, 256, 3, stride_last=2)  # H/8
        self.model4 = _block(256, 512, 3)
        self.model5 = _block(512, 512, 3, dilation=2)
        self.model6 = _block(512, 512, 3, dilation=2)
        self.model7 = _block(512, 512, 3)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1),
            nn.ReLU(True),  # H/4
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(256, 313, 1),  # 313 quantised ab bins
        )
        self.softmax = nn.Softmax(dim=1)
        self.model_out = nn.Conv2d(313, 2, 1, bias=False)  # expectation over the bins
        self.upsample = nn.Upsample(scale_factor=4, mode="bilinear")

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        x = l
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6, self.model7, self.model8):
            x = block(x)
        return self.upsample(self.model_out(self.softmax(x)))

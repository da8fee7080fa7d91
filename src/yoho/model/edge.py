"""Edge branch (five side heads fused by softmax attention) and the Laplacian boundary head.

Reference report §3.3–3.4. The edge branch is supervised by the rims of pasted lesion patches;
the boundary head turns the segmentation logit into a boundary map that the loss ties to the
binarised edge branch. Edge information thus enters as auxiliary supervision, not as input.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SideHead", "AttentionFusion", "EdgeBranch", "BoundaryHead", "LAPLACIAN"]

LAPLACIAN = ((-1.0, -1.0, -1.0), (-1.0, 8.0, -1.0), (-1.0, -1.0, -1.0))


class SideHead(nn.Module):
    """Conv3×3-BN-ReLU (in→mid), conv1×1 → 1 logit, bilinear up to the input size."""

    def __init__(self, in_channels: int, mid_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, 1, 1),
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.body(x), size=size, mode="bilinear", align_corners=False)


class AttentionFusion(nn.Module):
    """Per-pixel softmax weights over the side maps; returns their weighted sum (1 channel).

    Weights come from conv3×3 n→64 + GroupNorm(4) + ReLU, conv3×3 64→64 + GN + ReLU,
    conv3×3 64→n. The authors compute them at full resolution; `stride` > 1 computes them on
    average-pooled side maps and upsamples the weights, which costs far less on a CPU (three
    64-channel convolutions at full size nearly double a training step) while the weighted
    sum itself stays at full resolution.
    """

    def __init__(self, inputs: int = 5, width: int = 64, stride: int = 1) -> None:
        super().__init__()
        self.stride = int(stride)
        self.body = nn.Sequential(
            nn.Conv2d(inputs, width, 3, padding=1),
            nn.GroupNorm(4, width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GroupNorm(4, width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, inputs, 3, padding=1),
        )

    def forward(self, sides: torch.Tensor) -> torch.Tensor:
        x = sides if self.stride == 1 else F.avg_pool2d(sides, self.stride, ceil_mode=True)
        logits = self.body(x)
        if self.stride != 1:
            logits = F.interpolate(
                logits, size=sides.shape[-2:], mode="bilinear", align_corners=False
            )
        weights = torch.softmax(logits, dim=1)
        return (weights * sides).sum(dim=1, keepdim=True)


class EdgeBranch(nn.Module):
    """Five side heads on the encoder levels f1…f5 and their attention fusion."""

    def __init__(
        self,
        encoder_channels: Sequence[int] = (64, 64, 128, 256, 512),
        mid_channels: Sequence[int] = (32, 32, 64, 128, 256),
        fusion_stride: int = 1,
    ) -> None:
        super().__init__()
        self.heads = nn.ModuleList(
            SideHead(c, m) for c, m in zip(encoder_channels, mid_channels, strict=True)
        )
        self.fusion = AttentionFusion(len(self.heads), stride=fusion_stride)

    def forward(
        self, features: Sequence[torch.Tensor], size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sides = torch.cat(
            [head(f, size) for head, f in zip(self.heads, features, strict=True)], dim=1
        )
        return self.fusion(sides), sides


class BoundaryHead(nn.Module):
    """Laplacian 3×3 on the segmentation logit, then 1×1 1→16-BN-ReLU, 3×3 16→16-BN-ReLU, 1×1 →1.

    The authors initialise a normal, trainable 3×3 convolution (with bias) to the Laplacian;
    `learnable_laplacian=False` keeps it fixed instead.
    """

    def __init__(self, learnable_laplacian: bool = True, width: int = 16) -> None:
        super().__init__()
        kernel = torch.tensor(LAPLACIAN).view(1, 1, 3, 3)
        self.laplacian = nn.Conv2d(1, 1, 3, padding=1, bias=True)
        with torch.no_grad():
            self.laplacian.weight.copy_(kernel)
            self.laplacian.bias.zero_()
        self.laplacian.requires_grad_(learnable_laplacian)
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 1),
        )

    def forward(self, seg_logit: torch.Tensor) -> torch.Tensor:
        return self.body(self.laplacian(seg_logit))

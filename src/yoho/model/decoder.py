"""UNet decoder of the authors' network (reference report §3.2), optionally with BatchNorm."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UpBlock", "UNetDecoder"]


def _conv_relu(cin: int, cout: int, norm: bool) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


class UpBlock(nn.Module):
    """concat(skip, bilinear-up(x)) → (conv3×3 + ReLU) × 2. No upsampling if sizes match."""

    def __init__(self, skip_channels: int, in_channels: int, out_channels: int, norm: bool):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_relu(skip_channels + in_channels, out_channels, norm),
            *_conv_relu(out_channels, out_channels, norm),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != skip.shape[-2:]:
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([skip, x], dim=1))


class UNetDecoder(nn.Module):
    """Four UpBlocks from f5 up to f1's resolution, then ×2 to the input size.

    With the default channels: (f4, f5) 768→256 @/16; 384→128 @/8; 192→64 @/4; 128→32 @/2;
    then ×2 bilinear, conv 32→16 + ReLU, conv 16→16 + ReLU @/1 (the authors' `up_conv`).
    The authors used no normalisation in the decoder; `norm=True` adds BatchNorm.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int] = (64, 64, 128, 256, 512),
        channels: Sequence[int] = (256, 128, 64, 32),
        head_channels: int = 16,
        norm: bool = False,
    ) -> None:
        super().__init__()
        if len(encoder_channels) != 5 or len(channels) != 4:
            raise ValueError("decoder expects 5 encoder levels and 4 block widths")
        skips = list(encoder_channels[:4])[::-1]  # f4, f3, f2, f1
        blocks, cin = [], encoder_channels[4]
        for skip, cout in zip(skips, channels, strict=True):
            blocks.append(UpBlock(skip, cin, cout, norm))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.out_conv = nn.Sequential(
            *_conv_relu(cin, head_channels, norm), *_conv_relu(head_channels, head_channels, norm)
        )
        self.out_channels = head_channels

    def forward(self, features: Sequence[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = features[4]
        for block, skip in zip(
            self.blocks, (features[3], features[2], features[1], features[0]), strict=True
        ):
            x = block(x, skip)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.out_conv(x)

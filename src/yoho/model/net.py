"""The edge-enhanced UNet: encoder, decoder and heads assembled from a `ModelConfig`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
from torch import nn

from yoho.model.decoder import UNetDecoder
from yoho.model.edge import BoundaryHead, EdgeBranch
from yoho.model.encoder import ResNetEncoder

__all__ = ["ModelConfig", "ModelOutput", "EdgeUNet", "build_model"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Network shape. Defaults are the authors' network (≈26 M parameters)."""

    encoder: str = "resnet34"
    decoder_channels: tuple[int, ...] = (256, 128, 64, 32)
    head_channels: int = 16
    side_channels: tuple[int, ...] = (32, 32, 64, 128, 256)
    fusion_stride: int = 1
    decoder_norm: bool = False
    learnable_laplacian: bool = True
    imagenet_normalize: bool = False
    edge_branch: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class ModelOutput(NamedTuple):
    """Three 1-channel logit maps at the input resolution (edge/boundary None without branch)."""

    seg: torch.Tensor
    edge: torch.Tensor | None
    boundary: torch.Tensor | None


class EdgeUNet(nn.Module):
    """ResNet encoder → UNet decoder → 1 segmentation logit; edge branch; boundary head."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        self.encoder = ResNetEncoder(cfg.encoder)
        self.decoder = UNetDecoder(
            self.encoder.channels, cfg.decoder_channels, cfg.head_channels, cfg.decoder_norm
        )
        self.seg_head = nn.Conv2d(cfg.head_channels, 1, 1)
        if cfg.edge_branch:
            self.edge_branch = EdgeBranch(
                self.encoder.channels, cfg.side_channels, cfg.fusion_stride
            )
            self.boundary_head = BoundaryHead(cfg.learnable_laplacian)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """x: (N, 3, H, W) RGB in [0, 1]."""
        size = (x.shape[-2], x.shape[-1])
        if self.config.imagenet_normalize:
            x = (x - self.mean) / self.std
        features = self.encoder(x)
        seg = self.seg_head(self.decoder(features, size))
        if not self.config.edge_branch:
            return ModelOutput(seg, None, None)
        edge, _ = self.edge_branch(features, size)
        return ModelOutput(seg, edge, self.boundary_head(seg))


def build_model(
    config: ModelConfig | None = None,
    encoder_weights: str | os.PathLike | None = None,
) -> EdgeUNet:
    """Build the network; `encoder_weights` is a local file or "imagenet" (explicit download)."""
    model = EdgeUNet(config or ModelConfig())
    if encoder_weights is not None:
        model.encoder.load_pretrained(encoder_weights)
    return model

"""ResNet encoder (torchvision) adapted to output stride 16, returning five feature levels."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet18, resnet34

__all__ = ["ResNetEncoder", "ENCODERS"]

ENCODERS = {"resnet18": resnet18, "resnet34": resnet34}


def _dilate_last_stage(layer: nn.Sequential, dilation: int) -> None:
    """Turn the stride-2 stage into a stride-1, dilated one.

    torchvision's `replace_stride_with_dilation` refuses BasicBlock (ResNet-18/34), so it is
    done here with the same result: the first block keeps dilation 1 and loses its stride, the
    later blocks' 3×3 convolutions get `dilation` (and matching padding).
    """
    for index, block in enumerate(layer):
        for module in block.modules():
            if not isinstance(module, nn.Conv2d):
                continue
            module.stride = (1, 1)
            if index > 0 and module.kernel_size == (3, 3):
                module.dilation = (dilation, dilation)
                module.padding = (dilation, dilation)


class ResNetEncoder(nn.Module):
    """torchvision ResNet-18/34 without its classifier; layer4 at stride 1 (output stride 16).

    Features for a 256² input: f1 64@128 (conv1+BN+ReLU), f2 64@64, f3 128@32, f4 256@16,
    f5 512@16. Parameter names equal torchvision's, so its state dicts load directly.
    """

    channels = (64, 64, 128, 256, 512)

    def __init__(self, name: str = "resnet34") -> None:
        super().__init__()
        if name not in ENCODERS:
            raise ValueError(f"unknown encoder {name!r}; choose one of {sorted(ENCODERS)}")
        self.name = name
        net = ENCODERS[name](weights=None)
        _dilate_last_stage(net.layer4, 2)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = (
            net.layer1,
            net.layer2,
            net.layer3,
            net.layer4,
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [f1, f2, f3, f4, f5]

    def load_pretrained(self, weights: str | os.PathLike) -> None:
        """Load ImageNet weights: a local state-dict file, or "imagenet" for torchvision's download.

        "imagenet" downloads through torchvision (network needed); it is only used when a user
        asks for it explicitly, never in tests or the demo.
        """
        if str(weights) == "imagenet":
            from torchvision.models import ResNet18_Weights, ResNet34_Weights

            enum = {"resnet18": ResNet18_Weights, "resnet34": ResNet34_Weights}[self.name]
            state = enum.IMAGENET1K_V1.get_state_dict(progress=True)
        else:
            path = Path(weights)
            if not path.is_file():
                raise FileNotFoundError(f"{path}: encoder weights file not found")
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # torch raises several types for a bad file
                raise ValueError(f"{path}: not a readable torch state dict ({exc})") from None
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{weights}: not {self.name} weights (missing {len(missing)} keys, e.g. "
                f"{missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})"
            )

"""The YOHO loss: 0.8·BCE + 0.2·Dice + 1.0·balanced BCE(edge) + 0.2·balanced BCE(boundary).

Every term is ignore-aware: a pixel labelled IGNORE (255) is multiplied out before any sum, so
its logit receives exactly zero gradient. The boundary term (the authors' "CBL") asks the
Laplacian boundary map of the segmentation to match the binarised edge branch (no gradient
into the edge branch through its target); it uses the segmentation's ignore mask.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from yoho.letterbox import IGNORE
from yoho.model.net import ModelOutput

__all__ = [
    "LossWeights",
    "yoho_loss",
    "masked_bce",
    "class_balanced_bce",
    "soft_dice_loss",
    "balanced_bce",
]


@dataclass(frozen=True)
class LossWeights:
    bce: float = 0.8
    dice: float = 0.2
    edge: float = 1.0
    boundary: float = 0.2
    # Weigh lesion and normal pixels of the segmentation BCE equally (each class half of the
    # loss) instead of by their pixel counts; off = the authors' plain mean.
    balance_seg: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def masked_bce(logit: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the valid pixels."""
    loss = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
    return (loss * valid).sum() / valid.sum().clamp(min=1.0)


def class_balanced_bce(
    logit: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """BCE in which the positive and the negative valid pixels each make half of the loss.

    A rendered batch has several times more normal than lesion pixels; with a plain mean a
    short schedule settles on lesion probabilities below 0.5. Balanced, both classes pull
    equally. A class absent from the batch contributes nothing.
    """
    loss = F.binary_cross_entropy_with_logits(logit, target, reduction="none") * valid
    pos = target * valid
    neg = (1 - target) * valid
    parts = [(loss * m).sum() / m.sum() for m in (pos, neg) if float(m.sum()) > 0]
    if not parts:
        return logit.sum() * 0.0
    return sum(parts) / len(parts)


def soft_dice_loss(
    logit: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, smooth: float = 1e-5
) -> torch.Tensor:
    """1 − soft Dice per image (ignored pixels zeroed in prediction and target), batch mean."""
    prob = torch.sigmoid(logit) * valid
    target = target * valid
    dims = tuple(range(1, logit.dim()))
    inter = (prob * target).sum(dims)
    total = prob.sum(dims) + target.sum(dims)
    return (1 - (2 * inter + smooth) / (total + smooth)).mean()


def balanced_bce(logit: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """HED-style class-balanced BCE over the valid pixels of the whole batch.

    Positives weigh N_neg/N and negatives 1.1·N_pos/N (the authors' constants), so the rare
    edge pixels are not drowned; the result is a mean over the valid pixels.
    """
    n_valid = valid.sum()
    n_pos = (target * valid).sum()
    n_neg = n_valid - n_pos
    denom = n_valid.clamp(min=1.0)
    weight = torch.where(target > 0.5, n_neg / denom, 1.1 * n_pos / denom) * valid
    loss = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
    return (loss * weight).sum() / denom


def yoho_loss(
    output: ModelOutput,
    seg_label: torch.Tensor,
    edge_label: torch.Tensor,
    weights: LossWeights | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its parts (as floats) for one batch.

    seg_label, edge_label: (N, H, W) integer maps in {0, 1, IGNORE}.
    """
    w = weights or LossWeights()
    seg = output.seg.float()
    seg_valid = (seg_label != IGNORE).unsqueeze(1).to(seg.dtype)
    seg_target = (seg_label == 1).unsqueeze(1).to(seg.dtype)
    parts = {
        "bce": (class_balanced_bce if w.balance_seg else masked_bce)(seg, seg_target, seg_valid),
        "dice": soft_dice_loss(seg, seg_target, seg_valid),
    }
    if output.edge is not None and output.boundary is not None:
        edge = output.edge.float()
        edge_valid = (edge_label != IGNORE).unsqueeze(1).to(seg.dtype)
        edge_target = (edge_label == 1).unsqueeze(1).to(seg.dtype)
        parts["edge"] = balanced_bce(edge, edge_target, edge_valid)
        edge_binary = (torch.sigmoid(edge) > 0.5).to(seg.dtype).detach()
        parts["boundary"] = balanced_bce(output.boundary.float(), edge_binary, seg_valid)
    total = sum(getattr(w, name) * value for name, value in parts.items())
    return total, {name: float(value.detach()) for name, value in parts.items()}

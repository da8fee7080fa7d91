"""Loss: finite, weighted as specified, and exactly zero gradient at ignored pixels."""

from __future__ import annotations

import pytest
import torch

from yoho.letterbox import IGNORE
from yoho.losses import LossWeights, balanced_bce, yoho_loss
from yoho.model.net import ModelOutput


def batch(seed=0, n=2, size=32):
    gen = torch.Generator().manual_seed(seed)
    seg = torch.randint(0, 2, (n, size, size), generator=gen)
    seg[:, : size // 2, : size // 2] = IGNORE
    edge = torch.zeros_like(seg)
    edge[:, 20, 10:30] = 1
    edge[:, :8] = IGNORE
    logits = [torch.randn(n, 1, size, size, generator=gen, requires_grad=True) for _ in range(3)]
    return ModelOutput(*logits), seg, edge


def test_loss_is_finite_and_has_all_parts():
    out, seg, edge = batch()
    total, parts = yoho_loss(out, seg, edge)
    assert torch.isfinite(total)
    assert set(parts) == {"bce", "dice", "edge", "boundary"}
    expected = (
        0.8 * parts["bce"] + 0.2 * parts["dice"] + 1.0 * parts["edge"] + 0.2 * parts["boundary"]
    )
    assert total.item() == pytest.approx(expected, rel=1e-5)


def test_weights_are_configurable():
    out, seg, edge = batch()
    total, parts = yoho_loss(out, seg, edge, LossWeights(bce=1, dice=0, edge=0, boundary=0))
    assert total.item() == pytest.approx(parts["bce"], rel=1e-6)


def test_ignored_pixels_get_exactly_zero_gradient():
    out, seg, edge = batch()
    total, _ = yoho_loss(out, seg, edge)
    total.backward()
    seg_ignored = (seg == IGNORE).unsqueeze(1)
    edge_ignored = (edge == IGNORE).unsqueeze(1)
    assert torch.all(out.seg.grad[seg_ignored] == 0)
    assert torch.all(out.boundary.grad[seg_ignored] == 0)
    assert torch.all(out.edge.grad[edge_ignored] == 0)
    # ... and the valid pixels do get a gradient.
    assert out.seg.grad[~seg_ignored].abs().sum() > 0
    assert out.edge.grad[~edge_ignored].abs().sum() > 0


def test_all_ignored_batch_gives_zero_loss_and_gradient():
    out, seg, edge = batch()
    seg[:] = IGNORE
    edge[:] = IGNORE
    total, _ = yoho_loss(out, seg, edge)
    total.backward()
    assert torch.isfinite(total)
    assert float(out.seg.grad.abs().sum()) == 0.0


def test_balanced_bce_uses_the_authors_class_weights():
    target = torch.zeros(1, 1, 10, 10)
    target[0, 0, 0, :5] = 1  # 5 positives, 95 negatives
    valid = torch.ones_like(target)
    logit = torch.full_like(target, -3.0)
    softplus3 = float(torch.nn.functional.softplus(torch.tensor(3.0)))
    softplus_m3 = float(torch.nn.functional.softplus(torch.tensor(-3.0)))
    # w_pos = N_neg/N = 0.95, w_neg = 1.1·N_pos/N = 0.055, mean over the 100 valid pixels.
    expected = (5 * 0.95 * softplus3 + 95 * 0.055 * softplus_m3) / 100
    assert float(balanced_bce(logit, target, valid)) == pytest.approx(expected, rel=1e-5)


def test_no_edge_branch_skips_edge_terms():
    out, seg, edge = batch()
    total, parts = yoho_loss(ModelOutput(out.seg, None, None), seg, edge)
    assert set(parts) == {"bce", "dice"}
    assert torch.isfinite(total)

"""Network: output shapes, parameter count of the authors' configuration, weight loading."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18

from yoho.model import ModelConfig, build_model
from yoho.model.edge import LAPLACIAN
from yoho.profiles import get_profile


@pytest.fixture(scope="module")
def paper_model():
    torch.manual_seed(0)
    return build_model(ModelConfig()).eval()


@pytest.mark.parametrize("size", [256, 320])
def test_output_shapes(paper_model, size):
    with torch.no_grad():
        out = paper_model(torch.rand(1, 3, size, size))
    for t in out:
        assert t.shape == (1, 1, size, size)
        assert torch.isfinite(t).all()


def test_encoder_has_output_stride_16(paper_model):
    with torch.no_grad():
        features = paper_model.encoder(torch.rand(1, 3, 256, 256))
    assert [f.shape[1:] for f in features] == [
        (64, 128, 128),
        (64, 64, 64),
        (128, 32, 32),
        (256, 16, 16),
        (512, 16, 16),
    ]


def test_parameter_count_matches_the_authors(paper_model):
    total = sum(p.numel() for p in paper_model.parameters())
    assert 25.9e6 < total < 26.3e6  # report §3.5: ≈26.2 M counted by hand; 26.07 M measured


def test_laplacian_initialisation_and_flag():
    model = build_model(get_profile("tiny").model)
    assert torch.equal(model.boundary_head.laplacian.weight[0, 0], torch.tensor(LAPLACIAN))
    assert model.boundary_head.laplacian.weight.requires_grad
    fixed = build_model(ModelConfig(encoder="resnet18", learnable_laplacian=False))
    assert not fixed.boundary_head.laplacian.weight.requires_grad


@pytest.mark.parametrize("profile", ["cpu", "tiny"])
def test_light_profiles_build_and_run(profile):
    model = build_model(get_profile(profile).model).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 96, 96))
    assert [tuple(t.shape) for t in out] == [(2, 1, 96, 96)] * 3


def test_local_encoder_weights_are_loaded(tmp_path):
    reference = resnet18(weights=None)
    torch.nn.init.constant_(reference.conv1.weight, 0.5)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = build_model(ModelConfig(encoder="resnet18"), encoder_weights=path)
    assert torch.all(model.encoder.conv1.weight == 0.5)
    with pytest.raises(ValueError, match="not resnet34 weights"):
        build_model(ModelConfig(encoder="resnet34"), encoder_weights=path)
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        build_model(encoder_weights=tmp_path / "nothere.pth")


def test_unknown_encoder_is_rejected():
    with pytest.raises(ValueError, match="unknown encoder"):
        build_model(ModelConfig(encoder="vgg16"))

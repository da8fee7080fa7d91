"""Fixtures for the TATAR tests: one tiny Qwen2.5-VL checkpoint per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A freshly built tiny checkpoint (random weights, 112x112-pixel image limit)."""
    from tatar.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tatar") / "tiny-model")

"""Shared test fixtures: where the labelled data lives, and skips for missing hardware."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data")).resolve()
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))


def pytest_collection_modifyitems(config, items):
    has_data = SHARED_DATA.is_dir()
    has_gpu = False
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        pass
    has_browser = CHROMIUM.exists() or shutil.which("chromium") is not None
    for item in items:
        if "shared_data" in item.keywords and not has_data:
            item.add_marker(pytest.mark.skip(reason=f"shared data not found at {SHARED_DATA}"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; this machine has none"))
        if "browser" in item.keywords and not has_browser:
            item.add_marker(pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM}"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA

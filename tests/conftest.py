"""Shared test fixtures: where the labelled data lives, and skips for missing hardware."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# MKL reads its reproducibility mode when it first runs: set it before any test computes, as
# the yoho command line does at start-up (yoho.threads).
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SHARED_DATA", REPO.parent / "shared" / "data")).resolve()


def find_chromium() -> Path | None:
    """The Chromium the browser tests drive: $CHROMIUM, /usr/bin/chromium, or one on PATH."""
    if os.environ.get("CHROMIUM"):
        return Path(os.environ["CHROMIUM"]) if Path(os.environ["CHROMIUM"]).exists() else None
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


CHROMIUM = find_chromium()
if CHROMIUM is not None:
    os.environ.setdefault("CHROMIUM", str(CHROMIUM))  # the browser tests launch this one


def pytest_collection_modifyitems(config, items):
    has_data = SHARED_DATA.is_dir()
    has_gpu = False
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        pass
    has_browser = CHROMIUM is not None
    for item in items:
        if "shared_data" in item.keywords and not has_data:
            item.add_marker(pytest.mark.skip(reason=f"shared data not found at {SHARED_DATA}"))
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; this machine has none"))
        if "browser" in item.keywords and not has_browser:
            item.add_marker(
                pytest.mark.skip(
                    reason="Chromium not found ($CHROMIUM, /usr/bin/chromium or on PATH); "
                    "`apt-get install chromium` (CI: .ci/run) to run the browser tests"
                )
            )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA

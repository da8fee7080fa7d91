"""Both CLIs install as entry points and answer --help / --version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("name", ["tatar", "yoho"])
def test_cli_help_and_version(name):
    exe = BIN / name
    assert exe.exists(), f"{exe} not installed"
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    assert "Usage" in out
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True).stdout
    assert out.strip().startswith(f"{name} ")

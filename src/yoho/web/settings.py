"""Settings of one web server (what `yoho serve` options set)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from yoho.choices import DEFAULT_PROFILE

__all__ = ["WebSettings", "default_results_dir", "LOCAL_HOSTS"]

# Host names a browser on this machine uses to reach a server bound to the loopback interface.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def default_results_dir() -> Path:
    """Per-user data folder: $XDG_DATA_HOME/yoho/web, else ~/.local/share/yoho/web."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "yoho" / "web"


@dataclass
class WebSettings:
    """results: folder for images, annotations and jobs; data: folder of images to pick from.

    profile: training profile preselected on the page; workers: jobs run at the same time;
    max_upload_bytes / max_pixels: limits on an uploaded image; max_pending: queued jobs at
    most; device: torch device for training (None = best available); phase_timeout: seconds a
    job may spend in one phase without progress before it is stopped; allowed_hosts: values of
    the Host header that are served (a defence against DNS rebinding), None = any; expert:
    the page also offers the developer profiles (`yoho.web.care.offered_profiles`); threads:
    torch threads of each job, None = measured as each job starts (`yoho.threads`).
    """

    results: Path
    data: Path | None = None
    profile: str = DEFAULT_PROFILE
    workers: int = 1
    max_upload_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_pending: int = 32
    device: str | None = None
    phase_timeout: float = 900.0
    allowed_hosts: tuple[str, ...] | None = LOCAL_HOSTS
    expert: bool = False
    threads: int | None = None

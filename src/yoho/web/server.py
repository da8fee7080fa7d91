"""Starting the web server (`yoho serve`): checks, the remote-access warning, uvicorn."""

from __future__ import annotations

import ipaddress
import socket
import sys
from pathlib import Path

from yoho.choices import DEFAULT_PROFILE
from yoho.web.settings import LOCAL_HOSTS, WebSettings

__all__ = ["is_loopback", "check_port_free", "serve"]

REMOTE_WARNING = (
    "WARNING: the YOHO web tool is being exposed on {host}. It has NO login and NO encryption: "
    "anyone who can reach this address can open the patient images in {results}, read and "
    "change annotations and run jobs. Use it only on a network you trust, or keep the default "
    "--host 127.0.0.1 and reach it through an SSH tunnel."
)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """Fail early with one clear line instead of uvicorn's traceback-ish exit."""
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            raise ValueError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def allowed_hosts_for(host: str) -> tuple[str, ...] | None:
    """Host-header whitelist: the loopback names, plus the bound name; any for a wildcard."""
    if host in {"0.0.0.0", "::", "[::]"}:
        return None
    name = f"[{host.strip('[]')}]" if ":" in host else host
    return tuple(dict.fromkeys((*LOCAL_HOSTS, name.lower())))


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    results: Path | None = None,
    data: Path | None = None,
    profile: str = DEFAULT_PROFILE,
    workers: int = 1,
    max_upload_mb: float = 25.0,
    max_pixels: int = 40_000_000,
    device: str | None = None,
    expert: bool = False,
    threads: int | None = None,
) -> None:
    """Run the server until interrupted (Ctrl+C)."""
    import uvicorn
    from rich.console import Console
    from rich.panel import Panel

    from yoho.web.app import create_app
    from yoho.web.settings import default_results_dir

    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    if max_upload_mb <= 0 or max_pixels <= 0:
        raise ValueError("--max-upload-mb and --max-pixels must be positive")
    if data is not None and not Path(data).is_dir():
        raise FileNotFoundError(f"{data}: data folder not found")
    from yoho.device import check_device
    from yoho.io import check_output_folder

    check_device(device)
    if results is not None:
        try:
            check_output_folder(results)
        except ValueError as exc:
            raise ValueError(f"--results {exc}") from None
    settings = WebSettings(
        results=Path(results) if results is not None else default_results_dir(),
        data=data,
        profile=profile,
        workers=workers,
        max_upload_bytes=int(max_upload_mb * 1024 * 1024),
        max_pixels=max_pixels,
        device=device,
        allowed_hosts=allowed_hosts_for(host),
        expert=expert,
        threads=threads,
    )
    check_port_free(host, port)
    app = create_app(settings)
    console = Console(stderr=True)
    if not is_loopback(host):
        console.print(
            Panel(REMOTE_WARNING.format(host=host, results=settings.results), style="bold red")
        )
    if host in {"0.0.0.0", "::", "[::]"}:
        shown = "127.0.0.1"  # every interface, this machine's browser included
    else:
        shown = f"[{host.strip('[]')}]" if ":" in host else host
    console.print(
        f"YOHO web: open [bold]http://{shown}:{port}/[/bold] in a browser "
        f"(results in {settings.results}"
        + (f", images from {Path(data).resolve()}" if data is not None else "")
        + "). Ctrl+C stops it."
    )
    console.print(
        "Research use only, not a medical device. Uploaded images stay in the results folder "
        "until deleted on the page (Delete image)."
    )
    uvicorn.run(
        app,
        host=host.strip("[]"),
        port=port,
        log_level="info",
        timeout_graceful_shutdown=3,
        server_header=False,
    )
    sys.stdout.flush()

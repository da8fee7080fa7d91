"""Checking a requested torch device before any work starts."""

from __future__ import annotations

__all__ = ["check_device"]


def check_device(device: str | None) -> None:
    """Raise ValueError with one clear line when `device` cannot be used on this machine.

    None and "auto" pick the best device later and always work; "cpu" always works. Checked
    before training, so that a missing GPU is one line at once, not a CUDA traceback after
    the data was prepared.
    """
    if device is None or str(device) in ("auto", "cpu"):
        return
    import torch

    name = str(device)
    kind = name.split(":", 1)[0]
    if kind == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this torch is built without CUDA"
                if torch.version.cuda is None
                else ("no CUDA GPU is visible")
            )
            raise ValueError(f"--device {name}: {why}; use --device cpu (or auto)")
        index = name.split(":", 1)[1] if ":" in name else "0"
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ValueError(
                f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
            )
    elif kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"--device {name}: Apple MPS is not available here; use --device cpu")
    else:
        try:
            torch.device(name)
        except RuntimeError:
            raise ValueError(f"unknown device {name!r}; use cpu, cuda, mps or auto") from None

"""Is the device a command asks for on this machine? Checked before any model is loaded."""

from __future__ import annotations


def check_device(device) -> None:
    """Raise a one-line ValueError when `device` ("cpu", "cuda", "cuda:1", "mps") is not usable here.

    None (let the backend choose) is always fine.
    """
    if device is None:
        return
    text = str(getattr(device, "value", device)).strip()
    if text in ("", "auto"):
        return
    import torch

    try:
        d = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {text!r}: not a device (cpu, cuda, cuda:1, mps)") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {text}: this machine has no CUDA GPU (torch.cuda.is_available() is "
                "False); use --device cpu"
            )
        count = torch.cuda.device_count()
        if d.index is not None and d.index >= count:
            raise ValueError(f"--device {text}: this machine has {count} CUDA GPU(s)")
    elif d.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError(f"--device {text}: Apple MPS is not available on this machine")
    elif d.type != "cpu":
        raise ValueError(f"--device {text}: unsupported device type {d.type!r} (cpu, cuda, mps)")

"""Where a model comes from: a local folder, or a Hugging Face hub id resolved to a cached snapshot.

`resolve_model("runs/x/grpo/final")` checks the folder; `resolve_model("Qwen/Qwen2.5-VL-7B-Instruct",
revision="main")` returns the snapshot folder in the HF cache, downloading it first when it is
not there. Nothing is downloaded for a local folder. The cache is ``HF_HUB_CACHE`` (else
``HF_HOME/hub``, else ``~/.cache/huggingface/hub``) and ``HF_HUB_OFFLINE=1`` forbids any network
access; both are read when the function is called (huggingface_hub reads them once, at import),
so a process that sets them late is still honoured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# Weight formats the PyTorch loaders never read: not downloaded with a snapshot.
IGNORE_PATTERNS = ["*.h5", "*.msgpack", "*.onnx", "*.onnx_data", "*.ot", "*.gguf", "*.tflite"]
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ResolvedModel:
    """A model folder on this machine and the name it is recorded under in outputs."""

    path: Path
    name: str  # the resolved folder, or "<hub id>@<commit>"
    hub_id: str | None = None
    revision: str | None = None


def hub_cache_dir() -> Path:
    """The HF hub cache folder, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "huggingface" / "hub"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith((".", "/", "~"))
        or model.endswith("/")
        or os.sep != "/"
        and os.sep in model
        or model.count("/") > 1
    )


def resolve_model(model: str | os.PathLike, *, revision: str | None = None) -> ResolvedModel:
    """A local model folder, or a hub id (``org/name``) resolved to its cached snapshot.

    Parameters
    ----------
    model : str or path
        A folder holding ``config.json``, or a hub model id.
    revision : str, optional
        Branch, tag or commit of a hub id (default: the repository's ``main``).

    Raises
    ------
    FileNotFoundError
        A folder without ``config.json``, a path that does not exist, or a hub id that is not in
        the cache while downloads are off (``HF_HUB_OFFLINE``) or the hub cannot be reached.
    ValueError
        Something that is neither a folder nor a valid hub id, an unknown repository or
        revision, or a revision given with a local folder.
    """
    text = str(model)
    local = Path(text).expanduser()
    if local.exists():
        if revision is not None:
            raise ValueError(f"--revision applies to a hub id, not to the local folder {local}")
        if not (local.is_dir() and (local / "config.json").is_file()):
            raise FileNotFoundError(f"{local} is not a model folder (no config.json)")
        resolved = local.resolve()
        return ResolvedModel(resolved, str(resolved))
    if _looks_like_path(text):
        raise FileNotFoundError(f"model folder not found: {local}")

    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(text)
    except HFValidationError:
        raise ValueError(
            f"{text!r} is neither a model folder nor a hub id (org/name); no such folder exists"
        ) from None
    if "/" not in text:
        raise FileNotFoundError(f"model folder not found: {local} (a hub id has the form org/name)")
    cache = hub_cache_dir()
    offline = hub_offline()
    try:
        folder = snapshot_download(
            text,
            revision=revision,
            cache_dir=str(cache),
            local_files_only=offline,
            ignore_patterns=IGNORE_PATTERNS,
        )
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set" if offline else "the hub cannot be reached"
        raise FileNotFoundError(
            f"{text}{'@' + revision if revision else ''}: no such folder, and as a hub id it is not "
            f"in the HF cache {cache} and {why}; "
            "download it on a machine with network (huggingface-cli download "
            f"{text}) or give a local folder"
        ) from None
    except RevisionNotFoundError:
        raise ValueError(f"{text}: revision {revision!r} not found on the hub") from None
    except RepositoryNotFoundError:
        raise ValueError(
            f"{text}: no such folder, and no such model on the hub (or it is gated: log in with "
            "`huggingface-cli login`)"
        ) from None
    path = Path(folder)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{text}: the snapshot {path} has no config.json")
    return ResolvedModel(path, f"{text}@{path.name}", text, revision)

"""The rounds of one result folder: the current result at the top, earlier ones in history/.

A result folder written by `yoho segment` holds mask.png, overlay.png, the exports,
summary.json, model.pt and annotation.json. Before a correction round overwrites them, every
file at the folder's top level is copied to `history/round_NN/` (NN = the round they belong
to: 00 is the first segmentation), so every round stays on disk and `undo` brings the
previous one back. Copies are hard links where the file system allows (the network is ~50 MB),
plain copies elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "round_files",
    "current_round",
    "archive_current",
    "undo",
    "rounds_on_disk",
    "save_round_annotation",
    "link_or_copy",
]

HISTORY = "history"


def round_files(folder: Path, skip: Iterable[str] = ()) -> list[str]:
    """The files of one round: every regular file at the folder's top level but `skip`."""
    skip = set(skip)
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and not p.name.endswith(".tmp") and p.name not in skip
    )


def save_round_annotation(annotation, folder: str | os.PathLike) -> Path:
    """The annotation a result was made from (its rounds included), as folder/annotation.json."""
    import dataclasses

    from yoho.annotation import save_annotation

    if annotation.roi.mask is not None:  # an ROI mask is re-written next to the copy
        roi = dataclasses.replace(annotation.roi, mask_path=None)
        annotation = dataclasses.replace(annotation, roi=roi)
    return save_annotation(annotation, Path(folder) / "annotation.json", validate=False)


def _round_dir(result: Path, number: int) -> Path:
    return result / HISTORY / f"round_{number:02d}"


def current_round(result: str | os.PathLike) -> int:
    """The round the folder's top-level files belong to (0: the first segmentation)."""
    path = Path(result) / "summary.json"
    try:
        return int(json.loads(path.read_text()).get("round", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


def current_mask(result: str | os.PathLike, shape: tuple[int, ...]):
    """The result's current mask (`mask.png`) as an (H, W) bool array, or None without one:
    the mask the physician is correcting (`yoho.refine`'s `previous_mask`)."""
    path = Path(result) / "mask.png"
    if not path.is_file():
        return None
    from yoho.io import read_mask

    return read_mask(path, tuple(shape[:2]))


def link_or_copy(src: Path, dst: Path) -> None:
    """Put `src` at `dst` atomically: a hard link where possible, else a copy."""
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def archive_current(result: str | os.PathLike, skip: Iterable[str] = ()) -> Path:
    """Copy the current round's files to history/round_NN/; returns that folder.

    `skip`: top-level files that are not a round's (a job's own record, for instance).
    """
    result = Path(result)
    target = _round_dir(result, current_round(result))
    target.mkdir(parents=True, exist_ok=True)
    for name in round_files(result, skip):
        link_or_copy(result / name, target / name)
    return target


def rounds_on_disk(result: str | os.PathLike) -> list[int]:
    """Round numbers kept in history/, oldest first."""
    folder = Path(result) / HISTORY
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        if entry.is_dir() and entry.name.startswith("round_") and entry.name[6:].isdigit():
            found.append(int(entry.name[6:]))
    return sorted(found)


def undo(result: str | os.PathLike, skip: Iterable[str] = ()) -> int:
    """Bring back the round before the current one; returns its number.

    The current round's files are replaced by the previous round's (which leaves history/), and
    a file only the current round had is removed; `skip` names files that are not a round's
    and stay as they are. Raises ValueError when there is nothing to undo.
    """
    result = Path(result)
    now = current_round(result)
    earlier = [r for r in rounds_on_disk(result) if r < now]
    if not earlier:
        raise ValueError(f"{result}: nothing to undo (no earlier round in {HISTORY}/)")
    back = earlier[-1]
    source = _round_dir(result, back)
    restored = round_files(source, skip)
    for name in set(round_files(result, skip)) - set(restored) - {"summary.json"}:
        (result / name).unlink()
    # summary.json last: it names the round, so an interrupted undo still reads as `now`.
    for name in [n for n in restored if n != "summary.json"] + ["summary.json"]:
        link_or_copy(source / name, result / name)
    shutil.rmtree(source)
    for later in (r for r in rounds_on_disk(result) if r > back):
        shutil.rmtree(_round_dir(result, later))
    return back

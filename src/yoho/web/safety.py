"""Validation of everything a client names: ids, file names, relative paths.

Every path on disk is built from a validated id (or a checked relative path) and then checked to
resolve inside its root folder, so no request parameter can reach a file elsewhere (`..`,
absolute paths, symlinks pointing out, NUL bytes, Windows separators).
"""

from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path, PurePosixPath

from yoho.web.errors import BadRequest

__all__ = [
    "IMAGE_ID",
    "JOB_ID",
    "check_image_id",
    "check_job_id",
    "check_display_name",
    "inside",
    "resolve_relative",
]

# Image ids are the first 24 hex digits of a SHA-256 of the decoded pixels; job ids are random.
IMAGE_ID = re.compile(r"[0-9a-f]{24}")
JOB_ID = re.compile(r"[0-9a-f]{16}")
MAX_NAME = 160


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        shown = repr(value)[:60]
        raise BadRequest(f"invalid {what} {shown}: expected {pattern.pattern}")
    return value


def check_image_id(value: str) -> str:
    return _check(IMAGE_ID, value, "image id")


def check_job_id(value: str) -> str:
    return _check(JOB_ID, value, "job id")


def check_display_name(value: str | None, fallback: str = "image") -> str:
    """A file name as given by the browser, kept only to show it; never used to build a path.

    Anything that looks like a path (separators, `..`, control characters) is refused rather
    than silently cleaned, so that a client learns its request was wrong.
    """
    if value is None or value == "":
        return fallback
    if len(value) > MAX_NAME:
        raise BadRequest(f"file name is longer than {MAX_NAME} characters")
    if "/" in value or "\\" in value or value in {".", ".."} or value.startswith(".."):
        raise BadRequest(f"file name {value[:60]!r} must be a plain name, not a path")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise BadRequest("file name contains control characters")
    return value


def inside(root: Path, path: Path) -> Path:
    """`path` resolved (symlinks followed), which must lie inside `root` (resolved too)."""
    root = root.resolve()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise BadRequest("path leads outside its folder")
    return resolved


def resolve_relative(root: Path, relative: str) -> Path:
    """A client-given path relative to `root` (e.g. the data folder), checked to stay inside."""
    if not isinstance(relative, str) or not relative:
        raise BadRequest("path is empty")
    if len(relative) > 1024 or "\x00" in relative or "\\" in relative:
        raise BadRequest(f"path {relative[:60]!r} is not a valid relative path")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or os.path.isabs(relative) or ".." in pure.parts:
        raise BadRequest(
            f"path {relative[:60]!r} must be relative to the data folder, without '..'"
        )
    return inside(root, root / pure)

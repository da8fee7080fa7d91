"""Decoding client images safely, and listing the images of the `--data` folder.

The type of an upload is decided by decoding it, never by its name: Pillow reads only the header
first (format and size, cheap even for a decompression bomb), the pixel count is checked against
the limit, and only then is the image decoded — by OpenCV, as `yoho.io.read_image` does, so that
the web tool and the command line see identical pixels for the same file.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from yoho.io import decode_rgb
from yoho.web.errors import BadRequest, TooLarge, UnsupportedMedia

__all__ = ["FORMATS", "IMAGE_SUFFIXES", "decode_image", "pixel_id", "list_data_images"]

FORMATS = {"PNG", "JPEG", "BMP", "TIFF", "WEBP"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
MIN_SIDE = 8


def decode_image(data: bytes, max_pixels: int, name: str = "upload") -> np.ndarray:
    """Decode image bytes to an (H, W, 3) uint8 RGB array, or raise a 4xx `WebError`."""
    if not data:
        raise BadRequest(f"{name}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:  # lazy: parses the header only
                fmt, (width, height) = probe.format, probe.size
    except Image.DecompressionBombError as exc:  # far above Pillow's own limit
        raise TooLarge(f"{name}: above the limit of {max_pixels:,} pixels ({exc})") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise UnsupportedMedia(
            f"{name}: not an image (expected {', '.join(sorted(FORMATS))})"
        ) from None
    if fmt not in FORMATS:
        raise UnsupportedMedia(
            f"{name}: {fmt} images are not accepted (expected {', '.join(sorted(FORMATS))})"
        )
    if width * height > max_pixels:
        raise TooLarge(
            f"{name}: {width}x{height} = {width * height:,} pixels, above the limit of "
            f"{max_pixels:,} pixels"
        )
    if min(width, height) < MIN_SIDE:
        raise BadRequest(f"{name}: image is too small ({width}x{height})")
    decoded = decode_rgb(data)
    if decoded is None:
        raise UnsupportedMedia(f"{name}: the {fmt} file is corrupt (it cannot be decoded)")
    if decoded.shape[0] * decoded.shape[1] > max_pixels:  # header lied about the size
        raise TooLarge(f"{name}: decoded image is above the limit of {max_pixels:,} pixels")
    return decoded


def pixel_id(image: np.ndarray) -> str:
    """Content id of an image: the same pixels give the same id whatever the file's name or
    metadata, so reopening an image finds its earlier annotation and results."""
    digest = hashlib.sha256()
    digest.update(repr(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:24]


def list_data_images(root: Path, limit: int = 5000) -> list[dict]:
    """Image files directly in `root` or below it (hidden folders and symlinks skipped)."""
    root = root.resolve()
    found: list[dict] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if path.is_symlink():
                continue
            found.append({"path": path.relative_to(root).as_posix(), "bytes": path.stat().st_size})
            if len(found) >= limit:
                return found
    return found

"""Reading images and masks, and writing outputs atomically.

Every reader raises FileNotFoundError or ValueError with the file named, so that a bad path
never surfaces as an OpenCV `None` or a shape error three functions later.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "read_image",
    "decode_rgb",
    "read_mask",
    "read_probability",
    "write_png",
    "write_json",
    "write_bytes",
    "write_text",
    "write_figure",
    "check_output_folder",
    "check_output_file",
    "current_umask",
]


def _check_file(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: {what} file not found")
    if not path.is_file():
        raise ValueError(f"{path}: {what} path is not a file")
    if path.stat().st_size == 0:
        # OpenCV asserts on an empty buffer (a C++ error, not a None): catch it here.
        raise ValueError(f"{path}: {what} file is empty (0 bytes)")
    return path


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file (any format OpenCV reads, or DICOM) as RGB uint8 of shape (H, W, 3).

    Grey images are expanded to three channels and an alpha channel is dropped. An image of
    more than 8 bits (a 16-bit PNG or TIFF) is scaled from its range to 0–255, as a DICOM
    image is: medical software often stores 10- or 12-bit values in 16 bits, which a plain
    conversion (the top 8 bits) turned into an almost black picture.
    """
    path = _check_file(Path(path), "image")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size >= 132 and data[128:132].tobytes() == b"DICM":
        return _read_dicom(path)
    image = decode_rgb(data)
    if image is None:
        raise ValueError(f"{path}: not a readable image (unknown format or corrupt file)")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ValueError(f"{path}: image is too small ({image.shape[1]}x{image.shape[0]})")
    return image


def decode_rgb(data: np.ndarray | bytes) -> np.ndarray | None:
    """Encoded image bytes as RGB uint8 (H, W, 3), or None when OpenCV cannot decode them.

    More than 8 bits are scaled from the image's range to 0–255 (see `read_image`); the web
    tool decodes uploads with this too, so both see the same pixels for one file.
    """
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH)
    if image is None:
        return None
    if image.dtype != np.uint8:
        image = _range_to_uint8(image)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _range_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Pixels of any depth scaled from their range (min to max) to 0–255 (uint8)."""
    pixels = pixels.astype(np.float64)
    lo, hi = float(pixels.min()), float(pixels.max())
    return np.round((pixels - lo) / max(hi - lo, 1e-9) * 255).astype(np.uint8)


def _read_dicom(path: Path) -> np.ndarray:
    """A single-frame DICOM image (pydicom) as RGB uint8: colour as stored (YBR converted),
    greyscale expanded to three channels, more than 8 bits scaled from its range to 0–255."""
    try:
        import pydicom
        from pydicom.pixels import convert_color_space
    except ModuleNotFoundError:
        raise ValueError(
            f"{path}: a DICOM file; reading it needs pydicom (pip install 'tatar-yoho[yoho]')"
        ) from None
    try:
        ds = pydicom.dcmread(path)
        pixels = np.asarray(ds.pixel_array)
    except Exception as exc:  # pydicom raises many types for damaged or unsupported files
        raise ValueError(f"{path}: not a readable DICOM image ({exc})") from None
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(f"{path}: a DICOM file of {frames} frames; give one frame per file")
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 3 and photometric.startswith("YBR"):
        pixels = convert_color_space(pixels, photometric, "RGB")
    if pixels.dtype != np.uint8:
        pixels = _range_to_uint8(pixels)
    if pixels.ndim == 2:
        if photometric == "MONOCHROME1":
            pixels = 255 - pixels
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"{path}: unsupported DICOM pixel layout {pixels.shape}")
    if pixels.shape[0] < 8 or pixels.shape[1] < 8:
        raise ValueError(f"{path}: image is too small ({pixels.shape[1]}x{pixels.shape[0]})")
    return np.ascontiguousarray(pixels)


def read_mask(
    path: str | os.PathLike, shape: tuple[int, int] | None = None, threshold: int = 127
) -> np.ndarray:
    """Read a mask file as a boolean array (H, W): foreground is grey value > `threshold`.

    JPEG masks (Kvasir-SEG ships them) have ringing around 0/255; the threshold absorbs it.
    `shape` (H, W), when given, must match the mask, otherwise a ValueError names both sizes.
    A 16-bit mask is read as 0–255 (values up to 255 as they are: a label map saved in 16
    bits). A mask with values but none above `threshold` (a 0/1 label map read with the
    default 127) is a ValueError saying so, not an empty mask. A mask drawn in the alpha
    channel (a one-colour drawing on a transparent layer, as drawing tools export it: all
    that is not transparent has one colour) is read from its alpha; the grey of its colour
    read as empty, or as all lesion.
    """
    path = _check_file(Path(path), "mask")
    data = np.fromfile(str(path), dtype=np.uint8)
    mask = _alpha_drawing(data)
    if mask is None:
        mask = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if mask is None:
        raise ValueError(f"{path}: not a readable mask image")
    if mask.dtype != np.uint8:
        top = float(mask.max())
        mask = mask if top <= 255 else np.round(mask.astype(np.float64) / (65535 / 255))
        mask = np.clip(mask, 0, 255).astype(np.uint8)
    top = int(mask.max())
    if 0 < top <= threshold:
        raise ValueError(
            f"{path}: no pixel of the mask is above {threshold} (its largest value is {top}: a "
            "label map of small numbers?); save the lesion as 255, or give --mask-threshold 0 "
            "where the command has it"
        )
    if shape is not None and tuple(mask.shape[:2]) != tuple(shape[:2]):
        raise ValueError(
            f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
            f"{shape[1]}x{shape[0]}"
        )
    return mask > threshold


def _alpha_drawing(data: np.ndarray) -> np.ndarray | None:
    """The alpha channel of an encoded image whose alpha varies while every pixel that is not
    fully transparent has one colour (a one-colour drawing on a transparent layer), else None."""
    pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.ndim != 3 or pixels.shape[2] != 4:
        return None
    alpha = pixels[..., 3]
    if alpha.min() == alpha.max():
        return None
    drawn = pixels[..., :3][alpha > 0]
    if (drawn != drawn[0]).any():
        return None
    return np.ascontiguousarray(alpha)


def read_probability(path: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """A probability map saved as an 8-bit PNG (0–255) of an image of `shape`, as float32 in [0, 1]."""
    path = _check_file(Path(path), "probability map")
    data = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_GRAYSCALE)
    if data is None or data.shape != tuple(shape[:2]):
        raise ValueError(f"{path}: not a probability map of a {shape[1]}x{shape[0]} image")
    return data.astype(np.float32) / 255.0


def check_output_folder(path: str | os.PathLike) -> Path:
    """Make sure `path` is (or can become) a writable folder, before any long work starts.

    Creates it (and its parents); raises ValueError naming the path when it is a file, lies
    under a file, or cannot be written to.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path}: exists and is not a folder (the output must be a folder)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(
            f"{path}: cannot create this folder (a part of the path is a file)"
        ) from None
    except PermissionError:
        raise ValueError(f"{path}: cannot create this folder (permission denied)") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: the folder is not writable")
    return path


def check_output_file(path: str | os.PathLike) -> Path:
    """Make sure `path` can be written as a file (not a folder; its folder writable)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give the name of the file to write")
    for ancestor in path.parents:
        if ancestor.exists():
            if not ancestor.is_dir():
                raise ValueError(f"{path}: cannot create this file (a part of the path is a file)")
            break
    check_output_folder(path.parent)
    return path


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere: set and restore at once (a thread creating a file in between would get 022).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (temporary file in the same folder, then os.replace).

    The file gets the permissions of a plain `open(path, "w")`: 0666 minus the umask (0644
    with the usual umask 022), so that colleagues on the same workstation can read the
    results. (`tempfile.mkstemp` alone would leave it owner-only, 0600.)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    return write_text(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def write_figure(path: str | os.PathLike, fig, dpi: int = 110, tight: bool = True) -> Path:
    """Save a matplotlib figure as PNG atomically, then close it (figures are made in loops)."""
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return write_bytes(path, buffer.getvalue())


def write_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write a uint8 array as PNG atomically; (H, W, 3) arrays are taken as RGB.

    Boolean masks are written as 0/255. PNG only: labels must never go through JPEG.
    """
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    if array.dtype != np.uint8:
        raise ValueError(f"{path}: write_png needs uint8 or bool data, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed for an array of shape {array.shape}")
    return write_bytes(path, encoded.tobytes())

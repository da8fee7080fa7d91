"""Letterbox geometry: fit an image into a square network input, and map results back."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Letterbox", "PAD_GREY", "IGNORE"]

PAD_GREY = 128  # the authors pad images with mid-grey
IGNORE = 255  # label value for "no supervision here"


@dataclass(frozen=True)
class Letterbox:
    """Resize (h, w) to fit `size`×`size` keeping the aspect ratio, centred, padded."""

    height: int
    width: int
    size: int

    @property
    def scale(self) -> float:
        return self.size / max(self.height, self.width)

    @property
    def inner(self) -> tuple[int, int]:
        """(height, width) of the resized image inside the square."""
        return (
            max(1, round(self.height * self.scale)),
            max(1, round(self.width * self.scale)),
        )

    @property
    def offset(self) -> tuple[int, int]:
        """(top, left) padding."""
        ih, iw = self.inner
        return ((self.size - ih) // 2, (self.size - iw) // 2)

    def resize_image(self, image: np.ndarray) -> np.ndarray:
        """The image resized to `inner` (area interpolation when shrinking, cubic otherwise)."""
        ih, iw = self.inner
        interp = cv2.INTER_AREA if self.scale < 1 else cv2.INTER_CUBIC
        return cv2.resize(image, (iw, ih), interpolation=interp)

    def pad(self, array: np.ndarray, value: int) -> np.ndarray:
        """Place an `inner`-sized array in the square, filling the rest with `value`."""
        ih, iw = self.inner
        if array.shape[:2] != (ih, iw):
            raise ValueError(
                f"letterbox pad expects {iw}x{ih}, got {array.shape[1]}x{array.shape[0]}"
            )
        top, left = self.offset
        out = np.full((self.size, self.size, *array.shape[2:]), value, dtype=array.dtype)
        out[top : top + ih, left : left + iw] = array
        return out

    def crop(self, array: np.ndarray) -> np.ndarray:
        """Remove the padding from a (size, size, ...) array."""
        ih, iw = self.inner
        top, left = self.offset
        return array[top : top + ih, left : left + iw]

    def unletterbox(self, prob: np.ndarray) -> np.ndarray:
        """Crop a (size, size) float map and resize it bilinearly to the original size."""
        inner = np.ascontiguousarray(self.crop(prob).astype(np.float32))
        return cv2.resize(inner, (self.width, self.height), interpolation=cv2.INTER_LINEAR)

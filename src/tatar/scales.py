"""Declared native score scales and the mapping to the 0-100 scale the model answers on.

The mapping uses the declared scale, never the value's range: KonIQ and SPAQ hold values in
1-5 that are on a 0-100 scale, and the released code's range sniffing mis-mapped them.
Model outputs are already on 0-100 and are only clipped, never rescaled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scale:
    """A closed score interval [low, high] on which a dataset's labels are given."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"scale high ({self.high}) must exceed low ({self.low})")

    def to_100(self, value):
        """Map labels on this scale linearly onto 0-100 (scalars or arrays)."""
        v = np.asarray(value, dtype=float)
        out = (v - self.low) / (self.high - self.low) * 100.0
        return float(out) if out.ndim == 0 else out

    def from_100(self, value):
        v = np.asarray(value, dtype=float)
        out = self.low + v / 100.0 * (self.high - self.low)
        return float(out) if out.ndim == 0 else out

    @classmethod
    def parse(cls, text: str) -> Scale:
        """'1-5', '0:100' or '0,1' -> Scale."""
        for sep in (":", ",", "-"):
            parts = [p for p in str(text).split(sep) if p.strip()]
            if sep == "-" and str(text).strip().startswith("-"):
                continue  # negative lows must use ':' or ','
            if len(parts) == 2:
                try:
                    return cls(float(parts[0]), float(parts[1]))
                except ValueError:
                    break
        raise ValueError(f"cannot read a scale from {text!r}; write it as LOW:HIGH, e.g. 1:5")


SCALE_0_100 = Scale(0.0, 100.0)


def clip_prediction(value):
    """Model answers are on 0-100: clip, never rescale (5.0 stays 5.0)."""
    v = np.clip(np.asarray(value, dtype=float), 0.0, 100.0)
    return float(v) if v.ndim == 0 else v

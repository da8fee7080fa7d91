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
        # an infinite bound maps every label to 0 (or NaN): refuse it, like a reversed scale
        if not (np.isfinite(self.low) and np.isfinite(self.high)):
            raise ValueError(f"scale bounds must be finite numbers, got {self.low}:{self.high}")
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


# Native scales of the datasets the project knows by name (keys are lower-case, punctuation-free).
# The registry of datasets (paths, tasks) builds on this table; user datasets declare their own.
NATIVE_SCALES: dict[str, Scale] = {
    "koniq": Scale(0.0, 100.0),  # KonIQ-10K MOS as shipped in the benchmark file (0-100)
    "spaq": Scale(0.0, 100.0),
    "kadid": Scale(1.0, 5.0),
    "pipal": Scale(1.0, 5.0),  # rescaled to 1-5 in the benchmark file
    "ava": Scale(1.0, 10.0),
    "tad66k": Scale(1.0, 10.0),
    "flickraes": Scale(0.0, 1.0),
    "artimuse": Scale(0.0, 10.0),
    "clive": Scale(0.0, 100.0),
    "para": Scale(1.0, 5.0),
}

_ALIASES = {
    "koniq10k": "koniq",
    "kadid10k": "kadid",
    "artimuse10k": "artimuse",
    "livec": "clive",
    "livechallenge": "clive",
    "paragiaa": "para",
}


def dataset_key(name: str) -> str:
    """Normalise a dataset name: 'KonIQ-10K', 'IQA_KonIQ-10K' and 'koniq' all give 'koniq'."""
    key = "".join(ch for ch in str(name).lower() if ch.isalnum())
    for prefix in ("iqa", "iaa"):
        if key.startswith(prefix) and key[len(prefix) :] in {**NATIVE_SCALES, **_ALIASES}:
            key = key[len(prefix) :]
    return _ALIASES.get(key, key)


def scale_of(dataset: str) -> Scale:
    """The declared native scale of a known dataset, or a ValueError listing the known names."""
    key = dataset_key(dataset)
    if key not in NATIVE_SCALES:
        raise ValueError(
            f"no declared scale for dataset {dataset!r}; known: {', '.join(sorted(NATIVE_SCALES))}"
            " (declare a scale for your own data, e.g. --scale 1:5)"
        )
    return NATIVE_SCALES[key]

"""The physician's input for one image: ROI, `complement` flag and clicked circles.

File format (JSON, `"format": "yoho-annotation"`, `"version": 2`; version 1 files, which have
no `rounds`, still load)::

    {
      "format": "yoho-annotation", "version": 2,
      "image": "cju0qkwl35piu0993l0dewei2.jpg",       # optional, relative to this file
      "image_size": {"width": 622, "height": 529},
      "roi": {"polygons": [[[x, y], ...], ...],          # filled polygons ...
              "holes": [[[x, y], ...], ...]},            # ... minus these (may be empty)
         or "roi": {"mask": "a_roi.png"}                 # 0/255 PNG, relative to this file
      "complement": false,
      "lesion_circles": [{"x": 310, "y": 240, "r": 24}, ...],
      "normal_circles": [{"x": 90, "y": 300, "r": 24}, ...],
      "r_min": 20, "r_max": 80,
      "annotator": "dr. X", "created": "2025-01-01T12:00:00+00:00",
      "protocol": null,                                  # or the simulated physician's options
      "rounds": [                                        # corrections after a result, in order
        {"lesion_circles": [...], "normal_circles": [...],
         "created": "...", "source": "physician"}       # or "simulated" (NoC evaluation)
      ]
    }

Meaning. Normally the ROI encloses the lesion with a margin; lesion circles lie inside it.
With `complement` the lesion fills most of the frame, so the ROI is drawn over the *normal*
tissue (with its margin reaching into the lesion); the network then learns normal tissue and
its output is inverted. Lesion circles must then lie outside the ROI and normal circles inside.
Coordinates are pixels of the original image, x to the right and y down.

Correction rounds (`yoho.refine`) add circles after the physician has seen a result; they obey
the same rules as the first circles. Everything that trains or post-processes uses
`Annotation.merged()`: the first circles followed by every round's.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from yoho.io import read_mask, write_json, write_png

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "Circle",
    "CorrectionRound",
    "Roi",
    "Annotation",
    "default_radius_range",
    "load_annotation",
    "save_annotation",
    "validate_annotation",
    "labelme_roi",
]

FORMAT = "yoho-annotation"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: before correction rounds
MAX_SIDE = 100_000  # pixels; far above any endoscope frame, far below what breaks the maths


@dataclass(frozen=True)
class Circle:
    """A clicked disc: centre (x, y) and radius r, in original-image pixels."""

    x: float
    y: float
    r: float

    def to_dict(self) -> dict[str, float]:
        return {"x": _num(self.x), "y": _num(self.y), "r": _num(self.r)}


def _num(value: float) -> float | int:
    value = float(value)
    return int(value) if value.is_integer() else round(value, 3)


@dataclass
class Roi:
    """Region of interest: filled polygons minus holes, or a mask (exactly one of the two)."""

    polygons: list[np.ndarray] = field(default_factory=list)
    holes: list[np.ndarray] = field(default_factory=list)
    mask: np.ndarray | None = None
    mask_path: str | None = None

    def rasterize(self, height: int, width: int) -> np.ndarray:
        """The ROI as a boolean (height, width) mask."""
        if self.mask is not None:
            if self.mask.shape != (height, width):
                raise ValueError(
                    f"ROI mask is {self.mask.shape[1]}x{self.mask.shape[0]}, "
                    f"image is {width}x{height}"
                )
            return self.mask.astype(bool)
        canvas = np.zeros((height, width), np.uint8)
        # Polygons are filled one by one (fillPoly on a list would XOR overlapping ones).
        for poly in self.polygons:
            canvas[_enclosed(poly, height, width)] = 1
        for hole in self.holes:
            canvas[_enclosed(hole, height, width)] = 0
        return canvas.astype(bool)

    def scaled(self, sx: float, sy: float) -> Roi:
        """The same ROI in a resized image (polygons scaled; a mask is resized nearest)."""
        if self.mask is not None:
            h, w = self.mask.shape
            new = cv2.resize(
                self.mask.astype(np.uint8),
                (max(1, round(w * sx)), max(1, round(h * sy))),
                interpolation=cv2.INTER_NEAREST,
            )
            return Roi(mask=new.astype(bool))
        factor = np.array([sx, sy])
        return Roi(
            polygons=[(p + 0.5) * factor - 0.5 for p in self.polygons],
            holes=[(p + 0.5) * factor - 0.5 for p in self.holes],
        )


def _enclosed(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Everything a drawn outline encloses, as a boolean mask, its outline included.

    A hand-drawn lasso often crosses itself. OpenCV's `fillPoly` fills by the even-odd rule, so
    the part inside such a loop (the middle of a star, the overlap of a figure eight) came out
    empty, a hole the physician never drew. Filling the outer contour of the drawn shape
    keeps all it encloses; for a simple polygon it is the same as `fillPoly`.
    """
    shape = np.zeros((height, width), np.uint8)
    cv2.fillPoly(shape, [np.round(points).astype(np.int32)], 1)
    contours, _ = cv2.findContours(shape, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(shape, contours, -1, 1, thickness=cv2.FILLED)
    return shape.astype(bool)


@dataclass
class CorrectionRound:
    """Circles added in one correction round, after the physician saw a result."""

    lesion_circles: list[Circle] = field(default_factory=list)
    normal_circles: list[Circle] = field(default_factory=list)
    created: str = ""
    source: str = "physician"  # or "simulated" (the NoC evaluation's click simulator)

    def __post_init__(self) -> None:
        if not self.created:
            self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")

    @property
    def clicks(self) -> int:
        return len(self.lesion_circles) + len(self.normal_circles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lesion_circles": [c.to_dict() for c in self.lesion_circles],
            "normal_circles": [c.to_dict() for c in self.normal_circles],
            "created": self.created,
            "source": self.source,
        }


@dataclass
class Annotation:
    """Everything the physician gives for one image (see the module docstring)."""

    width: int
    height: int
    roi: Roi
    lesion_circles: list[Circle] = field(default_factory=list)
    normal_circles: list[Circle] = field(default_factory=list)
    complement: bool = False
    r_min: float | None = None
    r_max: float | None = None
    image: str | None = None
    annotator: str = ""
    created: str = ""
    protocol: dict[str, Any] | None = None
    rounds: list[CorrectionRound] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.r_min is None or self.r_max is None:
            lo, hi = default_radius_range(self.height, self.width)
            self.r_min = lo if self.r_min is None else self.r_min
            self.r_max = hi if self.r_max is None else self.r_max
        if not self.created:
            self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def target_circles(self) -> list[Circle]:
        """Circles of the class the network learns: lesion, or normal tissue with complement."""
        return self.normal_circles if self.complement else self.lesion_circles

    @property
    def other_circles(self) -> list[Circle]:
        return self.lesion_circles if self.complement else self.normal_circles

    def roi_mask(self) -> np.ndarray:
        return self.roi.rasterize(self.height, self.width)

    def merged(self) -> Annotation:
        """The same annotation with every round's circles appended to the first ones."""
        if not self.rounds:
            return self
        return replace(
            self,
            lesion_circles=self.lesion_circles + [c for r in self.rounds for c in r.lesion_circles],
            normal_circles=self.normal_circles + [c for r in self.rounds for c in r.normal_circles],
            rounds=[],
        )

    def with_round(self, correction: CorrectionRound) -> Annotation:
        """A copy with one more correction round."""
        return replace(self, rounds=[*self.rounds, correction])

    def scaled(self, width: int, height: int) -> Annotation:
        """The annotation for the same image resized to (width, height).

        Radii scale with the mean of the two factors; letterboxing keeps the aspect ratio, so
        the factors are equal up to rounding.
        """
        sx, sy = width / self.width, height / self.height
        sr = (sx + sy) / 2

        def move(c: Circle) -> Circle:
            return Circle((c.x + 0.5) * sx - 0.5, (c.y + 0.5) * sy - 0.5, c.r * sr)

        rounds = [
            replace(
                r,
                lesion_circles=[move(c) for c in r.lesion_circles],
                normal_circles=[move(c) for c in r.normal_circles],
            )
            for r in self.rounds
        ]

        return Annotation(
            width=width,
            height=height,
            roi=self.roi.scaled(sx, sy),
            lesion_circles=[move(c) for c in self.lesion_circles],
            normal_circles=[move(c) for c in self.normal_circles],
            complement=self.complement,
            r_min=float(self.r_min) * sr,
            r_max=float(self.r_max) * sr,
            image=self.image,
            annotator=self.annotator,
            created=self.created,
            protocol=self.protocol,
            rounds=rounds,
        )

    def to_dict(self) -> dict[str, Any]:
        if self.roi.mask is not None:
            if self.roi.mask_path is None:
                raise ValueError("an ROI given as a mask needs mask_path before it can be saved")
            roi: dict[str, Any] = {"mask": self.roi.mask_path}
        else:
            roi = {
                "polygons": [np.round(p, 2).tolist() for p in self.roi.polygons],
                "holes": [np.round(p, 2).tolist() for p in self.roi.holes],
            }
        return {
            "format": FORMAT,
            "version": SCHEMA_VERSION,
            "image": self.image,
            "image_size": {"width": int(self.width), "height": int(self.height)},
            "roi": roi,
            "complement": bool(self.complement),
            "lesion_circles": [c.to_dict() for c in self.lesion_circles],
            "normal_circles": [c.to_dict() for c in self.normal_circles],
            "r_min": _num(self.r_min),
            "r_max": _num(self.r_max),
            "annotator": self.annotator,
            "created": self.created,
            "protocol": self.protocol,
            "rounds": [r.to_dict() for r in self.rounds],
        }


def default_radius_range(height: int, width: int) -> tuple[int, int]:
    """The authors' radius limits: r_min = max(h, w)/256·8 rounded up to even, r_max = 4·r_min.

    For a 480×480 image this is 16 and 64 px.
    """
    r_min = math.ceil(max(height, width) / 256 * 8)
    r_min += r_min % 2
    return r_min, 4 * r_min


# ---------------------------------------------------------------------------------------------
# Parsing and validation


def _polygon(value: Any, where: str) -> np.ndarray:
    try:
        poly = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: a polygon must be a list of [x, y] points") from None
    if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
        raise ValueError(f"{where}: a polygon needs at least 3 [x, y] points, got {value!r:.80}")
    if not np.isfinite(poly).all():
        raise ValueError(f"{where}: polygon coordinates must be finite numbers")
    return poly


def _circle(value: Any, where: str) -> Circle:
    if not isinstance(value, dict) or not {"x", "y", "r"} <= set(value):
        raise ValueError(f"{where}: a circle is an object {{x, y, r}}, got {value!r:.80}")
    for key in ("x", "y", "r"):
        if not _is_number(value[key]):
            raise ValueError(f"{where}.{key}: must be a number, got {value[key]!r:.40}")
    circle = Circle(float(value["x"]), float(value["y"]), float(value["r"]))
    if not all(math.isfinite(v) for v in (circle.x, circle.y, circle.r)):
        raise ValueError(f"{where}: circle fields x, y, r must be finite")
    return circle


def _is_number(value: Any) -> bool:
    # bool is an int to Python, but `true` as a radius is a mistake, not the number 1.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


MAX_DEPTH = 32  # the format nests 5 deep; anything far deeper is not an annotation


def _check_finite(data: Any, src: str) -> None:
    """Refuse Infinity/NaN anywhere (Python's json reads them, and 1e999, as floats) and
    absurd nesting, naming the field. Iterative: the input may be nested deeper than the stack.
    """
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"{src}: {where or 'the document'} is nested too deeply")
        if isinstance(value, float) and not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("-" if value < 0 else "") + "Infinity"
            raise ValueError(f"{src}: {where} is {shown}; every number must be finite")
        if isinstance(value, dict):
            for key, item in value.items():
                stack.append((item, f"{where}.{key}" if where else str(key), depth + 1))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                stack.append((item, f"{where}[{i}]", depth + 1))


def parse_json_text(text: str | bytes, src: str) -> Any:
    """json.loads with the errors a hand-edited or hostile file can cause turned into
    ValueError naming `src`: bad syntax, bad encoding, and nesting deep enough to overflow
    the parser's stack."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{src}: not valid JSON ({exc})") from None
    except _DuplicateKey as exc:
        # json keeps the last of a repeated key: a second "lesion_circles" added by hand
        # would silently drop the first one's circles.
        raise ValueError(
            f"{src}: the key {exc.args[0]!r} is given twice in one object (only the last "
            "would count); give each key once"
        ) from None
    except RecursionError:
        raise ValueError(f"{src}: the JSON is nested too deeply") from None


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _radius_field(data: dict, key: str, src: str, side: int) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if not _is_number(value):
        raise ValueError(f"{src}: {key} must be a number, got {value!r:.40}")
    if not (0 < value <= side):
        raise ValueError(
            f"{src}: {key} must lie in (0, {side}] (the image's longer side), got {value:g}"
        )
    return value


def _polygon_in_image(poly: np.ndarray, where: str, width: int, height: int) -> np.ndarray:
    # One pixel of slack on every side: tools put vertices on the border line itself.
    xs, ys = poly[:, 0], poly[:, 1]
    if xs.min() < -1 or ys.min() < -1 or xs.max() > width or ys.max() > height:
        raise ValueError(
            f"{where}: polygon points must lie within the {width}x{height} image "
            f"(x in [-1, {width}], y in [-1, {height}])"
        )
    return poly


def annotation_from_dict(data: Any, base_dir: Path | None = None, source: str = "") -> Annotation:
    """Parse (and structurally check) the JSON object of an annotation file."""
    src = source or "annotation"
    if not isinstance(data, dict):
        raise ValueError(f"{src}: the annotation must be a JSON object")
    _check_finite(data, src)
    if data.get("format", FORMAT) != FORMAT:
        raise ValueError(f"{src}: format is {data.get('format')!r}, expected {FORMAT!r}")
    version = data.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        known = ", ".join(map(str, READABLE_VERSIONS))
        raise ValueError(
            f"{src}: unsupported annotation version {version!r} (this YOHO reads {known})"
        )
    size = data.get("image_size")
    if not isinstance(size, dict) or not {"width", "height"} <= set(size):
        raise ValueError(f"{src}: image_size {{width, height}} is missing")
    width, height = size["width"], size["height"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (width, height)) or not (
        0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE
    ):
        raise ValueError(
            f"{src}: image_size must hold positive integers (at most {MAX_SIDE}), got {size!r:.80}"
        )
    roi_data = data.get("roi")
    if not isinstance(roi_data, dict):
        raise ValueError(f"{src}: roi is missing (polygons or mask)")
    if "mask" in roi_data:
        mask_path = str(roi_data["mask"])
        full = Path(mask_path) if base_dir is None else base_dir / mask_path
        roi = Roi(mask=read_mask(full), mask_path=mask_path)
        if roi.mask.shape != (height, width):
            raise ValueError(
                f"{src}: the ROI mask {full} is {roi.mask.shape[1]}x{roi.mask.shape[0]} but "
                f"image_size is {width}x{height}"
            )
    else:
        polygons = roi_data.get("polygons")
        if not isinstance(polygons, list) or not polygons:
            raise ValueError(f"{src}: the ROI is empty (roi.polygons has no polygon)")
        holes = roi_data.get("holes") or []
        if not isinstance(holes, list):
            raise ValueError(f"{src}: roi.holes must be a list of polygons")

        def checked(p: Any, where: str) -> np.ndarray:
            return _polygon_in_image(_polygon(p, where), where, width, height)

        roi = Roi(
            polygons=[checked(p, f"{src}: roi.polygons[{i}]") for i, p in enumerate(polygons)],
            holes=[checked(p, f"{src}: roi.holes[{i}]") for i, p in enumerate(holes)],
        )
    circles = {}
    for key in ("lesion_circles", "normal_circles"):
        items = data.get(key) or []
        if not isinstance(items, list):
            raise ValueError(f"{src}: {key} must be a list")
        circles[key] = [_circle(c, f"{src}: {key}[{i}]") for i, c in enumerate(items)]
    complement = data.get("complement", False)
    if not isinstance(complement, bool):
        # bool("false") is True: a string here would silently invert the segmentation.
        raise ValueError(f"{src}: complement must be true or false, got {complement!r:.40}")
    side = max(width, height)
    r_min = _radius_field(data, "r_min", src, side)
    r_max = _radius_field(data, "r_max", src, side)
    return Annotation(
        width=width,
        height=height,
        roi=roi,
        lesion_circles=circles["lesion_circles"],
        normal_circles=circles["normal_circles"],
        complement=complement,
        r_min=r_min,
        r_max=r_max,
        image=data.get("image"),
        annotator=str(data.get("annotator") or ""),
        created=str(data.get("created") or ""),
        protocol=data.get("protocol"),
        rounds=_rounds(data.get("rounds"), src),
    )


def _rounds(value: Any, src: str) -> list[CorrectionRound]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{src}: rounds must be a list of correction rounds")
    rounds = []
    for i, item in enumerate(value):
        where = f"{src}: rounds[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: a round is an object {{lesion_circles, normal_circles}}")
        circles = {}
        for key in ("lesion_circles", "normal_circles"):
            items = item.get(key) or []
            if not isinstance(items, list):
                raise ValueError(f"{where}.{key} must be a list")
            circles[key] = [_circle(c, f"{where}.{key}[{j}]") for j, c in enumerate(items)]
        rounds.append(
            CorrectionRound(
                circles["lesion_circles"],
                circles["normal_circles"],
                created=str(item.get("created") or ""),
                source=str(item.get("source") or "physician"),
            )
        )
    return rounds


def validate_annotation(
    ann: Annotation, image_shape: tuple[int, ...] | None = None, source: str = ""
) -> np.ndarray:
    """Check an annotation against its image; returns the rasterised ROI mask.

    Raises ValueError (prefixed with `source`) for: a wrong image size, an empty ROI, a circle
    outside the image or with a non-positive radius, a bad radius range, no circle of the class
    to learn, and a circle on the wrong side of the ROI given `complement`.
    """
    src = source or "annotation"
    if image_shape is not None and tuple(image_shape[:2]) != (ann.height, ann.width):
        raise ValueError(
            f"{src}: annotation is for a {ann.width}x{ann.height} image but the image is "
            f"{image_shape[1]}x{image_shape[0]}"
        )
    for key in ("r_min", "r_max"):
        value = getattr(ann, key)
        if not _is_number(value) and not isinstance(value, np.number):
            raise ValueError(f"{src}: {key} must be a number, got {value!r:.40}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{src}: {key} must be finite, got {value}")
    if not (0 < float(ann.r_min) <= float(ann.r_max)):
        raise ValueError(f"{src}: need 0 < r_min <= r_max, got {ann.r_min} and {ann.r_max}")
    roi = ann.roi.rasterize(ann.height, ann.width)
    if not roi.any():
        raise ValueError(f"{src}: the ROI is empty (it covers no pixel of the image)")
    named = [("lesion_circles", "", c) for c in ann.lesion_circles]
    named += [("normal_circles", "", c) for c in ann.normal_circles]
    for i, r in enumerate(ann.rounds):
        named += [("lesion_circles", f"rounds[{i}].", c) for c in r.lesion_circles]
        named += [("normal_circles", f"rounds[{i}].", c) for c in r.normal_circles]
    counts: dict[str, int] = {}
    for key, prefix, c in named:
        n = counts.get(prefix + key, 0)
        counts[prefix + key] = n + 1
        where = f"{src}: {prefix}{key}[{n}] (x={c.x:g}, y={c.y:g}, r={c.r:g})"
        if c.r <= 0:
            raise ValueError(f"{where}: radius must be positive")
        # Half a pixel of slack: a disc that reaches the centre of the border pixel is inside.
        if (
            c.x - c.r < -0.5
            or c.y - c.r < -0.5
            or c.x + c.r > ann.width - 0.5
            or (c.y + c.r > ann.height - 0.5)
        ):
            raise ValueError(
                f"{where}: the circle lies (partly) outside the {ann.width}x{ann.height} image"
            )
        inside = bool(roi[int(round(c.y)), int(round(c.x))])
        if key == "lesion_circles" and not ann.complement and not inside:
            raise ValueError(f"{where}: a lesion circle must lie inside the ROI")
        if key == "lesion_circles" and ann.complement and inside:
            raise ValueError(
                f"{where}: with complement=true the ROI covers normal tissue, so a lesion "
                "circle must lie outside it"
            )
        if key == "normal_circles" and ann.complement and not inside:
            raise ValueError(
                f"{where}: with complement=true a normal circle must lie inside the ROI"
            )
    _check_no_circle_on_the_other_class(named, src)
    if not ann.target_circles:
        need = "normal_circles (complement=true)" if ann.complement else "lesion_circles"
        raise ValueError(f"{src}: at least one circle is needed in {need}")
    if roi.all() and not ann.merged().other_circles:
        raise ValueError(
            f"{src}: the ROI covers the whole image and no circle marks the other class, so "
            "there is nothing to learn the negative class from"
        )
    return roi


def _check_no_circle_on_the_other_class(named: list[tuple[str, str, Circle]], src: str) -> None:
    """Refuse a lesion and a normal circle of the same set of clicks (the first annotation, or
    one correction round) where one's centre lies in the other: the same tissue marked both
    ways at once (the training labels and the post-processing would contradict each other, and
    whichever is drawn last would win silently). Circles that only touch at their edges are
    allowed, and so is a round's circle on an earlier round's circle of the other class: that
    is a correction of the earlier click."""
    counts: dict[str, int] = {}
    labelled = []
    for key, prefix, c in named:
        n = counts.get(prefix + key, 0)
        counts[prefix + key] = n + 1
        labelled.append((key, prefix, f"{prefix}{key}[{n}] (x={c.x:g}, y={c.y:g}, r={c.r:g})", c))
    for lkey, lset, lname, lc in labelled:
        for nkey, nset, nname, nc in labelled:
            if lkey != "lesion_circles" or nkey != "normal_circles" or lset != nset:
                continue
            if math.hypot(lc.x - nc.x, lc.y - nc.y) < max(lc.r, nc.r):
                raise ValueError(
                    f"{src}: {nname} lies on {lname}: the same tissue is marked normal and "
                    "lesion; move or delete one of them"
                )


def load_annotation(path: str | os.PathLike, image_shape: tuple[int, ...] | None = None):
    """Read and validate an annotation file; `image_shape` (H, W[, C]) checks the image size."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: annotation file not found")
    data = parse_json_text(path.read_bytes(), str(path))
    ann = annotation_from_dict(data, base_dir=path.parent, source=str(path))
    validate_annotation(ann, image_shape, source=str(path))
    return ann


def save_annotation(ann: Annotation, path: str | os.PathLike, validate: bool = True) -> Path:
    """Write an annotation atomically (an ROI mask goes next to it as `<stem>_roi.png`)."""
    path = Path(path)
    if validate:
        validate_annotation(ann, source=str(path))
    if ann.roi.mask is not None and ann.roi.mask_path is None:
        mask_name = f"{path.stem}_roi.png"
        write_png(path.parent / mask_name, ann.roi.mask.astype(bool))
        ann.roi.mask_path = mask_name
    return write_json(path, ann.to_dict())


def labelme_roi(
    path: str | os.PathLike, label: str | None = None
) -> tuple[Roi, tuple[int, int], str | None]:
    """Import the polygons of a labelme JSON file as an ROI.

    Returns (roi, (height, width), imagePath). Polygon and rectangle shapes are used; with
    `label` only the shapes of that label.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: labelme file not found")
    data = parse_json_text(path.read_bytes(), str(path))
    if not isinstance(data, dict) or "shapes" not in data:
        raise ValueError(f"{path}: not a labelme file (no 'shapes')")
    if not isinstance(data["shapes"], list):
        raise ValueError(f"{path}: 'shapes' must be a list of shapes")
    _check_finite(data, str(path))
    height, width = data.get("imageHeight"), data.get("imageWidth")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIDE
               for v in (height, width)):  # fmt: skip
        raise ValueError(f"{path}: labelme file lacks imageHeight/imageWidth (positive integers)")
    polygons = []
    for i, shape in enumerate(data["shapes"]):
        where = f"{path}: shapes[{i}]"
        if not isinstance(shape, dict):
            raise ValueError(f"{where}: a shape must be an object, got {shape!r:.40}")
        if label is not None and shape.get("label") != label:
            continue
        kind = shape.get("shape_type", "polygon")
        points = shape.get("points")
        if kind == "rectangle":
            if not (
                isinstance(points, list)
                and len(points) == 2
                and all(isinstance(p, list) and len(p) == 2 for p in points)
            ):
                raise ValueError(f"{where}: a rectangle needs two [x, y] corners")
            (x0, y0), (x1, y1) = points
            points = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        elif kind != "polygon":
            continue
        polygons.append(_polygon_in_image(_polygon(points, where), where, width, height))
    if not polygons:
        which = f" with label {label!r}" if label else ""
        raise ValueError(f"{path}: no polygon{which} to use as the ROI")
    return Roi(polygons=polygons), (height, width), data.get("imagePath")

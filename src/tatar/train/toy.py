"""Synthetic IQA/IAA images whose scores are known functions of what is drawn.

Used by the demo, the `tiny-cpu` config and the learnability benchmark (`bench/tatar_toy.py`):
a model that learns anything from the pixels must beat chance on them, and nothing has to be
downloaded.

Every image is a small scene: a two-colour gradient background, a filled subject (disc or
square) with a thin outline, and a few straight lines and a checker patch for fine detail.

IQA
    A scene through one degradation chain of strength ``s`` in [0, 1], the way a camera
    pipeline degrades a photo: contrast loss (pixels pulled towards mid-grey by ``0.7 s``, as in
    haze or a flat exposure), Gaussian blur (radius ``2.5 s`` px), additive Gaussian noise (std
    ``60 s`` on 0-255), then JPEG (quality ``round(2 + 88 (1 - s)^2)``). Score ``100 (1 - s)``.
    Why one chain rather than one random distortion per image: blur removes the fine detail that
    noise adds, so with a random type per image the score is a non-monotone function of every
    image statistic, which a CPU-sized model does not learn in minutes (measured: a linear probe
    of the tiny model's vision features reaches SRCC 0.83 on a chain and about 0 on such a mix).
IAA
    A clean scene whose palette saturation ``c`` and subject placement vary. The placement
    score ``t`` is 1 when the subject centre sits on a vertical third line, falling linearly
    to 0 at the frame edge and to 0.5 at the centre. Score ``100 (0.65 c + 0.35 t)``.

Each record carries a rationale written from the same properties (short for IQA, a longer
narrative for IAA), so SFT has `<think>` text to keep or drop.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DISTORTIONS = ("contrast", "blur", "noise", "jpeg")
TOY_VERSION = 3


@dataclass(frozen=True)
class ToySpec:
    """How many images of each task and split, their size and the seed."""

    train_iqa: int = 400
    train_iaa: int = 400
    test_iqa: int = 100
    test_iaa: int = 100
    size: int = 84  # a multiple of 28: the Qwen2.5-VL processor keeps it as is
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("train_iqa", "train_iaa", "test_iqa", "test_iaa"):
            if getattr(self, name) < 0:
                raise ValueError(f"toy data: {name} must be >= 0, got {getattr(self, name)}")
        if self.size < 28:
            raise ValueError(f"toy data: size must be at least 28 px, got {self.size}")


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(round(255 * r)), int(round(255 * g)), int(round(255 * b))


def _scene(rng: np.random.Generator, size: int, saturation: float, x_centre: float) -> Image.Image:
    """A background gradient, a subject centred at `x_centre` (fraction of the width), detail."""
    hue = rng.random()
    c0 = np.array(_hsv_to_rgb(hue, saturation, 0.55 + 0.25 * rng.random()), float)
    c1 = np.array(_hsv_to_rgb(hue + 0.08, saturation * 0.8, 0.35 + 0.25 * rng.random()), float)
    ramp = np.linspace(0.0, 1.0, size)[:, None, None]
    background = (1 - ramp) * c0 + ramp * c1
    img = Image.fromarray(np.broadcast_to(background, (size, size, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    # fine detail: a checker patch and thin lines (what blur, noise and JPEG destroy first)
    cell = max(2, size // 28)
    cx0, cy0 = int(rng.integers(0, size // 2)), int(rng.integers(size // 2, size - 4 * cell))
    for i in range(4):
        for j in range(4):
            if (i + j) % 2 == 0:
                x, y = cx0 + i * cell, cy0 + j * cell
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=(235, 235, 235))
    for _ in range(3):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, size, 4))
        draw.line([x0, y0, x1, y1], fill=(20, 20, 20), width=1)
    # the subject, in the complementary hue
    r = int(size * (0.13 + 0.05 * rng.random()))
    cx = int(round(x_centre * size))
    cy = int(size * (0.35 + 0.3 * rng.random()))
    colour = _hsv_to_rgb(hue + 0.5, saturation, 0.85)
    box = [cx - r, cy - r, cx + r, cy + r]
    if rng.random() < 0.5:
        draw.ellipse(box, fill=colour, outline=(10, 10, 10), width=1)
    else:
        draw.rectangle(box, fill=colour, outline=(10, 10, 10), width=1)
    return img


def distort(img: Image.Image, kind: str, strength: float, rng: np.random.Generator) -> Image.Image:
    """Apply one distortion of `strength` in [0, 1] (see the module docstring)."""
    if kind == "contrast":
        arr = 128.0 + (np.asarray(img, dtype=float) - 128.0) * (1.0 - 0.7 * strength)
        return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))
    if kind == "blur":
        return img.filter(ImageFilter.GaussianBlur(radius=2.5 * strength))
    if kind == "noise":
        arr = np.asarray(img, dtype=float) + rng.normal(0.0, 60.0 * strength, (*img.size[::-1], 3))
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(round(2 + 88 * (1 - strength) ** 2)))
        buf.seek(0)
        with Image.open(buf) as im:
            return im.convert("RGB")
    raise ValueError(f"unknown distortion {kind!r}: expected one of {', '.join(DISTORTIONS)}")


def _level(x: float) -> str:
    return ("no visible", "slight", "moderate", "strong", "severe")[min(4, int(x * 5))]


def iqa_rationale(strength: float) -> str:
    level = _level(strength)
    if strength < 0.2:
        detail = "contrast is high, edges are sharp and flat areas are clean"
    elif strength < 0.6:
        detail = "contrast is low, edges are soft and grain covers the flat areas"
    else:
        detail = "contrast is flat and fine detail is lost under grain and blocking"
    return f"The image shows {level} blur, noise and compression artifacts; {detail}."


def placement_score(x_centre: float) -> float:
    """1 on a third line, 0.5 at the centre, 0 at the frame edge (piecewise linear)."""
    u = abs(x_centre - 0.5)  # 0 at the centre, 0.5 at the edge
    third = 1.0 / 6.0
    if u <= third:
        return 0.5 + 0.5 * u / third
    return max(0.0, 1.0 - (u - third) / (0.5 - third))


def iaa_score(saturation: float, x_centre: float) -> float:
    return 100.0 * (0.65 * saturation + 0.35 * placement_score(x_centre))


def iaa_rationale(saturation: float, x_centre: float) -> str:
    u = abs(x_centre - 0.5)
    side = "left" if x_centre < 0.5 else "right"
    if u < 0.08:
        where = "The subject sits at the centre of the frame, a static and plain composition."
    elif u < 0.25:
        where = f"The subject sits near the {side} third, which gives a balanced composition."
    else:
        where = f"The subject sits close to the {side} edge, so the framing feels unbalanced."
    if saturation >= 0.66:
        palette = "The palette is vivid and strongly saturated, with striking colour harmony."
    elif saturation >= 0.33:
        palette = "The palette is moderately saturated, with pleasing but calm colour."
    else:
        palette = "The palette is muted and dull, close to grey, with weak colour."
    score = iaa_score(saturation, x_centre)
    impact = "strong" if score >= 66 else "fair" if score >= 33 else "weak"
    return f"{where} {palette} Overall the aesthetic impact is {impact}."


def degrade(img: Image.Image, strength: float, rng: np.random.Generator) -> Image.Image:
    """The IQA degradation chain: contrast loss, blur, noise, JPEG, all at `strength`."""
    for kind in DISTORTIONS:
        img = distort(img, kind, strength, rng)
    return img


def _iqa_item(rng: np.random.Generator, size: int) -> tuple[Image.Image, float, str, dict]:
    strength = float(rng.random())
    scene = _scene(
        rng, size, saturation=0.3 + 0.6 * rng.random(), x_centre=0.2 + 0.6 * rng.random()
    )
    img = degrade(scene, strength, rng)
    props = {"strength": round(strength, 4)}
    return img, 100.0 * (1.0 - strength), iqa_rationale(strength), props


def _iaa_item(rng: np.random.Generator, size: int) -> tuple[Image.Image, float, str, dict]:
    saturation = float(rng.random())
    # half near a third line, half anywhere: both good and poor placements are common
    if rng.random() < 0.5:
        x_centre = float(rng.choice([1 / 3, 2 / 3]) + rng.normal(0.0, 0.04))
    else:
        x_centre = float(rng.uniform(0.15, 0.85))
    x_centre = min(max(x_centre, 0.15), 0.85)
    img = _scene(rng, size, saturation=saturation, x_centre=x_centre)
    props = {"saturation": round(saturation, 4), "x_centre": round(x_centre, 4)}
    return img, iaa_score(saturation, x_centre), iaa_rationale(saturation, x_centre), props


_SPLIT_CODES = {"train": 0, "test": 1}
_TASK_CODES = {"iqa": 0, "iaa": 1}


def make_item(task: str, split: str, index: int, spec: ToySpec) -> tuple[Image.Image, dict]:
    """The image and training record of one toy item (deterministic in spec.seed and the key)."""
    rng = np.random.default_rng([spec.seed, _SPLIT_CODES[split], _TASK_CODES[task], index])
    maker = _iqa_item if task == "iqa" else _iaa_item
    img, score, rationale, props = maker(rng, spec.size)
    name = f"{split}/{task}_{index:05d}.png"
    record = {
        "id": f"toy-{split}-{task}-{index}",
        "task": task,
        "image": name,
        "gt_score": round(score, 4),
        "scale": "0:100",
        "rationale": rationale,
        "toy": props,
    }
    return img, record


def _write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def write_toy_data(out_dir: str | os.PathLike, spec: ToySpec | None = None) -> dict[str, Path]:
    """Write the toy images and record files into `out_dir`; return the record files.

    Files: ``train.jsonl`` (both tasks, with rationales), ``test_iqa.jsonl`` and
    ``test_iaa.jsonl`` (held out), ``images under train/ and test/``, ``toy.json`` (the spec).
    An existing folder with the same spec is reused as is; the folder is built in a temporary
    sibling and moved into place, so an interrupted run never leaves half a data set.
    """
    spec = spec or ToySpec()
    out = Path(out_dir)
    files = {
        "train": out / "train.jsonl",
        "test_iqa": out / "test_iqa.jsonl",
        "test_iaa": out / "test_iaa.jsonl",
    }
    manifest = {"version": TOY_VERSION, **asdict(spec)}
    meta = out / "toy.json"
    if meta.is_file() and all(f.is_file() for f in files.values()):
        try:
            if json.loads(meta.read_text()) == manifest:
                return files
        except json.JSONDecodeError:
            pass
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        splits = {
            "train": [("iqa", spec.train_iqa), ("iaa", spec.train_iaa)],
            "test_iqa": [("iqa", spec.test_iqa)],
            "test_iaa": [("iaa", spec.test_iaa)],
        }
        for key, parts in splits.items():
            split = key.split("_")[0]
            (tmp / split).mkdir(exist_ok=True)
            records = []
            for task, count in parts:
                for i in range(count):
                    img, rec = make_item(task, split, i, spec)
                    img.save(tmp / rec["image"])
                    records.append(rec)
            _write_jsonl(tmp / f"{key}.jsonl", records)
        (tmp / "toy.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return files

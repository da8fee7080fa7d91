"""A folder of image/mask pairs, as laid out in ../shared/data/seg/*.

Layout: `images/` and `masks/`, optionally `labels.csv` with at least the columns `image` and
`mask` (paths relative to the folder). Without `labels.csv`, each image is paired with the
mask of the same stem in `masks/` (any extension). Items are sorted by image file name.

Subsets: `every4` = every 4th item by sorted name, starting with the first (the 50-image
EndoTect subset); a file = one image name per line (file name or stem; `#` starts a comment),
kept in the file's order.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Item", "load_dataset", "select_subset"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Item:
    """One image and its ground-truth mask; `name` (the image stem) identifies it."""

    name: str
    image: Path
    mask: Path


def _from_labels(root: Path, labels: Path) -> list[Item]:
    # utf-8-sig: spreadsheet programs save CSV with a byte-order mark before "image".
    with labels.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"image", "mask"} <= set(reader.fieldnames):
            raise ValueError(f"{labels}: needs the columns 'image' and 'mask'")
        items = []
        for line, row in enumerate(reader, start=2):
            if not row["image"] or not row["mask"]:
                raise ValueError(f"{labels}: line {line} has an empty image or mask")
            image, mask = root / row["image"], root / row["mask"]
            for path, what in ((image, "image"), (mask, "mask")):
                if not path.is_file():
                    raise FileNotFoundError(f"{labels}: line {line}: {what} {path} not found")
            items.append(Item(Path(row["image"]).stem, image, mask))
    return items


def _from_folders(root: Path) -> list[Item]:
    images, masks = root / "images", root / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise FileNotFoundError(f"{root}: no labels.csv and no images/ + masks/ folders")
    by_stem = {p.stem: p for p in masks.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    items = []
    for path in images.iterdir():
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem not in by_stem:
            raise FileNotFoundError(f"{root}: image {path.name} has no mask in masks/")
        items.append(Item(path.stem, path, by_stem[path.stem]))
    return items


def select_subset(items: list[Item], subset: str | os.PathLike | None) -> list[Item]:
    """`None`/"all": every item; "every4": every 4th by sorted name; else a file of names."""
    if subset is None or str(subset) == "all":
        return list(items)
    if str(subset) == "every4":
        return items[::4]
    path = Path(subset)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: subset file not found (or use 'every4' / 'all')")
    by_name = {item.name: item for item in items}
    chosen = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        stem = Path(name).stem
        if stem not in by_name:
            raise ValueError(f"{path}: line {number}: {name!r} is not an image of the dataset")
        chosen.append(by_name[stem])
    if not chosen:
        raise ValueError(f"{path}: the subset file names no image")
    return chosen


def load_dataset(
    root: str | os.PathLike, subset: str | os.PathLike | None = None, limit: int | None = None
) -> list[Item]:
    """The items of the folder `root`, optionally a subset, optionally the first `limit`."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data folder not found")
    labels = root / "labels.csv"
    items = _from_labels(root, labels) if labels.is_file() else _from_folders(root)
    if not items:
        raise ValueError(f"{root}: no image/mask pair found")
    names = [item.name for item in items]
    if len(set(names)) != len(names):
        raise ValueError(f"{root}: two images share a file stem; names must be unique")
    items.sort(key=lambda item: item.image.name)
    items = select_subset(items, subset)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be at least 1, got {limit}")
        items = items[:limit]
    return items

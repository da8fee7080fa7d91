"""One reader per dataset: its official label files, in the layout they are published in.

Every reader takes the dataset's root folder (as unpacked from the official download) and
returns `LabelRow`s: the image path relative to the root, the score on the scale the dataset is
declared with (`tatar.scales`), and the official split when the dataset ships one (else
``None``). Layouts (what each reader opens):

=============  =====================================================================  ==========
dataset        labels (under the root)                                                images
=============  =====================================================================  ==========
KonIQ-10k      ``koniq10k_scores_and_distributions.csv`` (``image_name``, ``MOS_zscore``  ``1024x768/``
               0-100); split from ``koniq10k_distributions_sets.csv`` (``set``:
               training / validation / test) when present
SPAQ           ``Annotations/MOS and Image attribute scores.csv`` (``Image name``, ``MOS``  ``TestImage/``
               0-100; the published ``.xlsx`` saved as CSV, or read with openpyxl)
KADID-10k      ``dmos.csv`` (``dist_img``, ``ref_img``, ``dmos`` 1-5)                    ``images/``
PIPAL          ``Train_Label/*.txt`` (lines ``image,elo``; ``Val_Label/`` likewise)       ``Train_Dis/``
AVA            ``AVA.txt`` (index, image id, counts of votes 1..10, tags, challenge);     ``images/``
               mean vote 1-10
TAD66K         ``labels/merge/train.csv``, ``labels/merge/test.csv`` (``image``,           ``images/``
               ``score`` 1-10)
FLICKR-AES     ``FLICKR-AES_image_score.txt`` (lines ``image score``, mean of 1-5        ``40K/``
               ratings)
ArtiMuse-10K   ``text/train.jsonl``, ``text/test.jsonl`` (``image``, ``score`` 0-10, the  ``images/``
               eight expert attribute texts)
LIVE-C         ``Data/AllImages_release.mat``, ``Data/AllMOS_release.mat`` (0-100; the    ``Images/``
               first 7 are the training images of the study and are left out)
=============  =====================================================================  ==========

Splits the paper used: KonIQ's official test split (2,015), PIPAL's validation set, and the
UniPercept-Bench test lists for the others (`tatar.datasets`); `tatar.data.prepare` puts an
image listed in the benchmark file into the test split when the dataset has no official split.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LabelRow:
    """One labelled image of a dataset."""

    image: str  # relative to the dataset root
    score: float  # on the declared scale
    split: str | None = None  # official split, when the dataset has one
    extra: dict = field(default_factory=dict)  # kept in the record (attributes, raw labels)


@dataclass(frozen=True)
class Reader:
    short: str  # file-name prefix of the prepared records (koniq_train.jsonl)
    dataset: str  # registry name (declares task and scale)
    task: str
    read: Callable[[Path], list[LabelRow]]
    official_split: bool
    scale: str | None = None  # explicit scale when the registry's does not apply


def _need(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"label file not found: {path} (is --root the dataset's folder?)")
    return path


def _csv(path: Path) -> list[dict]:
    with _need(path).open(newline="", encoding="utf-8-sig") as fh:
        return [
            {k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(fh)
        ]


def _float(value, where: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: not a number: {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{where}: not a finite number: {value!r}")
    return x


def _column(row: dict, names: tuple[str, ...], where: str) -> str:
    for n in names:
        if n in row:
            return row[n]
    raise ValueError(f"{where}: no column {' / '.join(names)} (columns: {', '.join(row)})")


def read_koniq(root: Path) -> list[LabelRow]:
    labels = root / "koniq10k_scores_and_distributions.csv"
    rows = _csv(labels)
    sets = {}
    split_file = root / "koniq10k_distributions_sets.csv"
    if split_file.is_file():
        names = {"training": "train", "validation": "val", "test": "test"}
        for r in _csv(split_file):
            sets[r["image_name"]] = names.get(r.get("set", ""), r.get("set") or None)
    out = []
    for i, r in enumerate(rows, 2):
        name = _column(r, ("image_name",), f"{labels}:{i}")
        score = _float(_column(r, ("MOS_zscore",), f"{labels}:{i}"), f"{labels}:{i}")
        mos = r.get("MOS")
        out.append(
            LabelRow(
                f"1024x768/{name}", score, sets.get(name), {"mos_1_5": float(mos)} if mos else {}
            )
        )
    return out


def read_spaq(root: Path) -> list[LabelRow]:
    folder = root / "Annotations"
    csv_path = folder / "MOS and Image attribute scores.csv"
    xlsx = folder / "MOS and Image attribute scores.xlsx"
    if csv_path.is_file():
        rows, where = _csv(csv_path), csv_path
    elif xlsx.is_file():
        try:
            import openpyxl
        except ImportError:
            raise ValueError(
                f"{xlsx}: reading .xlsx needs openpyxl (pip install openpyxl), or save it as "
                f"{csv_path.name} next to it"
            ) from None
        sheet = openpyxl.load_workbook(xlsx, read_only=True).active
        values = list(sheet.iter_rows(values_only=True))
        head = [str(h).strip() for h in values[0]]
        rows = [
            dict(zip(head, ("" if v is None else str(v) for v in r), strict=False))
            for r in values[1:]
        ]
        where = xlsx
    else:
        raise FileNotFoundError(f"label file not found: {csv_path} (or {xlsx.name})")
    out = []
    for i, r in enumerate(rows, 2):
        name = _column(r, ("Image name", "Image_name", "image"), f"{where}:{i}")
        out.append(LabelRow(f"TestImage/{name}", _float(r.get("MOS"), f"{where}:{i}")))
    return out


def read_kadid(root: Path) -> list[LabelRow]:
    labels = root / "dmos.csv"
    return [
        LabelRow(
            f"images/{r['dist_img']}",
            _float(r.get("dmos"), f"{labels}:{i}"),
            None,
            {"reference": r.get("ref_img", "")},
        )
        for i, r in enumerate(_csv(labels), 2)
    ]


def read_pipal(root: Path) -> list[LabelRow]:
    out = []
    parts = [("Train_Label", "Train_Dis", "train"), ("Val_Label", "Val_Dis", "val")]
    if not (root / "Train_Label").is_dir():
        raise FileNotFoundError(f"label folder not found: {root / 'Train_Label'}")
    for label_dir, image_dir, split in parts:
        for txt in sorted((root / label_dir).glob("*.txt")):
            for i, line in enumerate(txt.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                name, _, elo = line.partition(",")
                score = _float(elo, f"{txt}:{i}")
                out.append(LabelRow(f"{image_dir}/{name.strip()}", score, split, {"elo": score}))
    return out


def read_ava(root: Path) -> list[LabelRow]:
    labels = _need(root / "AVA.txt")
    out = []
    for i, line in enumerate(labels.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 12:
            raise ValueError(f"{labels}:{i}: expected index, image id and 10 vote counts")
        counts = [_float(c, f"{labels}:{i}") for c in parts[2:12]]
        total = sum(counts)
        if total <= 0:
            raise ValueError(f"{labels}:{i}: image {parts[1]} has no votes")
        mean = sum(k * c for k, c in zip(range(1, 11), counts, strict=True)) / total
        out.append(LabelRow(f"images/{parts[1]}.jpg", mean, None, {"votes": int(total)}))
    return out


def read_tad66k(root: Path) -> list[LabelRow]:
    out = []
    for split in ("train", "test"):
        path = root / "labels" / "merge" / f"{split}.csv"
        for i, r in enumerate(_csv(path), 2):
            name = _column(r, ("image", "name", "image_name"), f"{path}:{i}")
            score = _float(
                _column(r, ("score", "total_score", "mean"), f"{path}:{i}"), f"{path}:{i}"
            )
            out.append(LabelRow(f"images/{name}", score, split))
    return out


def read_flickr_aes(root: Path) -> list[LabelRow]:
    labels = _need(root / "FLICKR-AES_image_score.txt")
    out = []
    for i, line in enumerate(labels.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"{labels}:{i}: expected 'image score', got {line!r}")
        out.append(LabelRow(f"40K/{parts[0]}", _float(parts[1], f"{labels}:{i}")))
    return out


def read_artimuse(root: Path) -> list[LabelRow]:
    from tatar.rationales.prompts import AESTHETIC_ASPECTS

    out = []
    found = False
    for split in ("train", "test"):
        path = root / "text" / f"{split}.jsonl"
        if not path.is_file():
            continue
        found = True
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
            name = _column(rec, ("image", "image_name", "img"), f"{path}:{i}")
            score = _float(
                _column(rec, ("score", "gt_score", "total_score"), f"{path}:{i}"), f"{path}:{i}"
            )
            attributes = {
                k: rec[k]
                for k in AESTHETIC_ASPECTS
                if isinstance(rec.get(k), str) and rec[k].strip()
            }
            extra = {"attributes": attributes} if attributes else {}
            out.append(LabelRow(f"images/{name}", score, split, extra))
    if not found:
        raise FileNotFoundError(f"label file not found: {root / 'text' / 'train.jsonl'}")
    return out


def read_livec(root: Path) -> list[LabelRow]:
    from scipy.io import loadmat

    names_file = _need(root / "Data" / "AllImages_release.mat")
    mos_file = _need(root / "Data" / "AllMOS_release.mat")
    names = [str(n[0][0]) for n in loadmat(names_file)["AllImages_release"]]
    mos = [float(m) for m in loadmat(mos_file)["AllMOS_release"].ravel()]
    if len(names) != len(mos):
        raise ValueError(f"{names_file} lists {len(names)} images, {mos_file} {len(mos)} scores")
    # The first 7 images were the study's training images (not rated as the test set).
    return [LabelRow(f"Images/{n}", m) for n, m in list(zip(names, mos, strict=True))[7:]]


READERS: dict[str, Reader] = {
    r.short: r
    for r in (
        Reader("koniq", "KonIQ-10K", "iqa", read_koniq, True),
        Reader("spaq", "SPAQ", "iqa", read_spaq, False),
        Reader("kadid", "KADID", "iqa", read_kadid, False),
        Reader("pipal", "PIPAL", "iqa", read_pipal, True),
        Reader("ava", "AVA", "iaa", read_ava, False),
        Reader("tad66k", "TAD66K", "iaa", read_tad66k, True),
        Reader("flickraes", "FLICKR-AES", "iaa", read_flickr_aes, False, scale="1:5"),
        Reader("artimuse", "ArtiMuse-10K", "iaa", read_artimuse, True),
        Reader("livec", "CLIVE", "iqa", read_livec, False),
    )
}


def reader_for(name: str) -> Reader:
    """The reader of a dataset name (loose: ``KonIQ-10k``, ``koniq``, ``LIVE-C`` ...)."""
    from tatar.scales import dataset_key

    key = dataset_key(name)
    aliases = {"clive": "livec", "flickraes": "flickraes"}
    key = aliases.get(key, key)
    if key not in READERS:
        raise ValueError(
            f"no reader for dataset {name!r}; known: {', '.join(r.dataset for r in READERS.values())}"
        )
    return READERS[key]

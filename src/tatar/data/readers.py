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
    where: str = field(default="", compare=False)  # file:line of the label (for messages)


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


def _text(path: Path) -> str:
    from tatar.textio import read_text

    return read_text(_need(path))


def _csv(path: Path) -> list[dict]:
    from tatar.textio import read_csv

    rows = read_csv(_need(path))
    return [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in rows]


def _float(value, where: str) -> float:
    try:
        if isinstance(value, bool):  # JSON true would read as 1.0
            raise TypeError
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
    columns = ", ".join(str(k) for k in row)
    raise ValueError(f"{where}: no column {' / '.join(names)} (columns: {columns})")


def _name(row: dict, names: tuple[str, ...], where: str) -> str:
    """An image name from one of the columns `names`: a non-empty text."""
    value = _column(row, names, where)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise ValueError(f"{where}: the image name is {value!r}; expected a file name")
    return str(value).strip()


def read_koniq(root: Path) -> list[LabelRow]:
    labels = root / "koniq10k_scores_and_distributions.csv"
    rows = _csv(labels)
    sets = {}
    split_file = root / "koniq10k_distributions_sets.csv"
    if split_file.is_file():
        names = {"training": "train", "validation": "val", "test": "test"}
        for i, r in enumerate(_csv(split_file), 2):
            name = _name(r, ("image_name",), f"{split_file}:{i}")
            split = _column(r, ("set",), f"{split_file}:{i}")
            sets[name] = names.get(split, split or None)
    out = []
    for i, r in enumerate(rows, 2):
        where = f"{labels}:{i}"
        name = _name(r, ("image_name",), where)
        score = _float(_column(r, ("MOS_zscore",), where), where)
        mos = r.get("MOS")
        extra = {"mos_1_5": _float(mos, f"{where}: MOS")} if mos else {}
        out.append(LabelRow(f"1024x768/{name}", score, sets.get(name), extra, where))
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
        at = f"{where}:{i}"
        name = _name(r, ("Image name", "Image_name", "image"), at)
        out.append(LabelRow(f"TestImage/{name}", _float(r.get("MOS"), at), where=at))
    return out


def read_kadid(root: Path) -> list[LabelRow]:
    labels = root / "dmos.csv"
    return [
        LabelRow(
            f"images/{_name(r, ('dist_img',), f'{labels}:{i}')}",
            _float(_column(r, ("dmos",), f"{labels}:{i}"), f"{labels}:{i}"),
            None,
            {"reference": r.get("ref_img", "")},
            f"{labels}:{i}",
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
            for i, line in enumerate(_text(txt).splitlines(), 1):
                if not line.strip():
                    continue
                name, _, elo = line.partition(",")
                if not name.strip():
                    raise ValueError(f"{txt}:{i}: expected 'image,elo', got {line!r}")
                score = _float(elo, f"{txt}:{i}")
                out.append(
                    LabelRow(
                        f"{image_dir}/{name.strip()}", score, split, {"elo": score}, f"{txt}:{i}"
                    )
                )
    return out


def read_ava(root: Path) -> list[LabelRow]:
    labels = _need(root / "AVA.txt")
    out = []
    for i, line in enumerate(_text(labels).splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 12:
            raise ValueError(f"{labels}:{i}: expected index, image id and 10 vote counts")
        counts = [_float(c, f"{labels}:{i}") for c in parts[2:12]]
        total = sum(counts)
        if any(c < 0 for c in counts) or not math.isfinite(total):
            raise ValueError(
                f"{labels}:{i}: image {parts[1]}: vote counts must be non-negative numbers, "
                f"got {' '.join(parts[2:12])}"
            )
        if total <= 0:
            raise ValueError(f"{labels}:{i}: image {parts[1]} has no votes")
        mean = sum(k * c for k, c in zip(range(1, 11), counts, strict=True)) / total
        out.append(
            LabelRow(f"images/{parts[1]}.jpg", mean, None, {"votes": int(total)}, f"{labels}:{i}")
        )
    return out


def read_tad66k(root: Path) -> list[LabelRow]:
    out = []
    for split in ("train", "test"):
        path = root / "labels" / "merge" / f"{split}.csv"
        for i, r in enumerate(_csv(path), 2):
            name = _name(r, ("image", "name", "image_name"), f"{path}:{i}")
            score = _float(
                _column(r, ("score", "total_score", "mean"), f"{path}:{i}"), f"{path}:{i}"
            )
            out.append(LabelRow(f"images/{name}", score, split, where=f"{path}:{i}"))
    return out


def read_flickr_aes(root: Path) -> list[LabelRow]:
    labels = _need(root / "FLICKR-AES_image_score.txt")
    out = []
    for i, line in enumerate(_text(labels).splitlines(), 1):
        parts = line.replace(",", " ").split()
        if not parts:
            continue
        if len(parts) != 2:
            raise ValueError(f"{labels}:{i}: expected 'image score', got {line!r}")
        score = _float(parts[1], f"{labels}:{i}")
        out.append(LabelRow(f"40K/{parts[0]}", score, where=f"{labels}:{i}"))
    return out


def read_artimuse(root: Path) -> list[LabelRow]:
    from tatar.rationales.prompts import AESTHETIC_ASPECTS
    from tatar.textio import parse_json

    out = []
    found = False
    for split in ("train", "test"):
        path = root / "text" / f"{split}.jsonl"
        if not path.is_file():
            continue
        found = True
        for i, line in enumerate(_text(path).split("\n"), 1):
            if not line.strip():
                continue
            rec = parse_json(line, f"{path}:{i}")
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{i}: expected a JSON object, got {type(rec).__name__}")
            name = _name(rec, ("image", "image_name", "img"), f"{path}:{i}")
            score = _float(
                _column(rec, ("score", "gt_score", "total_score"), f"{path}:{i}"), f"{path}:{i}"
            )
            attributes = {
                k: rec[k]
                for k in AESTHETIC_ASPECTS
                if isinstance(rec.get(k), str) and rec[k].strip()
            }
            extra = {"attributes": attributes} if attributes else {}
            out.append(LabelRow(f"images/{name}", score, split, extra, f"{path}:{i}"))
    if not found:
        raise FileNotFoundError(f"label file not found: {root / 'text' / 'train.jsonl'}")
    return out


def _mat_variable(loadmat, path: Path, name: str):
    """Variable `name` of a MATLAB file; a damaged file is a ValueError naming it."""
    try:
        data = loadmat(path)
    except Exception as exc:  # scipy raises MatReadError, ValueError, TypeError, OSError ...
        raise ValueError(f"{path}: not a readable MATLAB file ({exc})") from None
    if name not in data:
        found = ", ".join(k for k in data if not k.startswith("__")) or "none"
        raise ValueError(f"{path}: no variable {name!r} (variables: {found})")
    return data[name]


def read_livec(root: Path) -> list[LabelRow]:
    from scipy.io import loadmat

    names_file = _need(root / "Data" / "AllImages_release.mat")
    mos_file = _need(root / "Data" / "AllMOS_release.mat")
    names_mat = _mat_variable(loadmat, names_file, "AllImages_release")
    mos_mat = _mat_variable(loadmat, mos_file, "AllMOS_release")
    try:
        names = [str(n[0][0]) for n in names_mat]
    except (IndexError, TypeError, KeyError):
        raise ValueError(f"{names_file}: AllImages_release is not a list of file names") from None
    try:
        mos = [_float(m, str(mos_file)) for m in mos_mat.ravel()]
    except AttributeError:
        raise ValueError(f"{mos_file}: AllMOS_release is not an array of numbers") from None
    if len(names) != len(mos):
        raise ValueError(f"{names_file} lists {len(names)} images, {mos_file} {len(mos)} scores")
    # The first 7 images were the study's training images (not rated as the test set).
    rows = zip(names, mos, strict=True)
    return [
        LabelRow(f"Images/{n}", m, where=f"{names_file}: image {k}")
        for k, (n, m) in enumerate(rows, 1)
        if k > 7
    ]


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

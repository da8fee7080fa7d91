"""Synthetic images written in the official layouts of KonIQ-10k and ArtiMuse-10K.

`tatar data toy --out DIR` writes ``DIR/koniq`` and ``DIR/artimuse`` with the label files the
real datasets publish (`tatar.data.readers`), filled with `tatar.train.toy` images and scores.
The end-to-end recipe of docs/training.md runs on them with exactly the commands used for the
real data; the test suite does so on the tiny checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tatar.outputs import atomic_write_text
from tatar.train.toy import ToySpec, make_item


def write_toy_layout(
    out: str | os.PathLike, *, train: int = 8, test: int = 4, seed: int = 0
) -> dict:
    """Write toy KonIQ (IQA) and ArtiMuse (IAA) folders under `out`; return their roots."""
    spec = ToySpec(train_iqa=train, train_iaa=train, test_iqa=test, test_iaa=test, seed=seed)
    out = Path(out)
    koniq, artimuse = out / "koniq", out / "artimuse"
    (koniq / "1024x768").mkdir(parents=True, exist_ok=True)
    (artimuse / "images").mkdir(parents=True, exist_ok=True)
    (artimuse / "text").mkdir(parents=True, exist_ok=True)
    scores = ['"image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"']
    sets = ["image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set"]
    texts: dict[str, list[str]] = {"train": [], "test": []}
    for split, n in (("train", train), ("test", test)):
        for i in range(n):
            img, rec = make_item("iqa", split, i, spec)
            name = f"{split}{i:05d}.png"
            img.save(koniq / "1024x768" / name)
            z = rec["gt_score"]
            mos = 1 + 4 * z / 100
            scores.append(f'"{name}",0,0,5,0,0,5,{mos:.4f},0.5,{z:.4f}')
            official = "training" if split == "train" else "test"
            sets.append(f"{name},0,0,5,0,0,5,{mos:.4f},0.5,{official}")
            img, rec = make_item("iaa", split, i, spec)
            name = f"{split}_{i:05d}.png"
            img.save(artimuse / "images" / name)
            texts[split].append(
                json.dumps({"image": name, "score": round(rec["gt_score"] / 10, 4)})
            )
    atomic_write_text(koniq / "koniq10k_scores_and_distributions.csv", "\n".join(scores) + "\n")
    atomic_write_text(koniq / "koniq10k_distributions_sets.csv", "\n".join(sets) + "\n")
    for split, lines in texts.items():
        atomic_write_text(artimuse / "text" / f"{split}.jsonl", "\n".join(lines) + "\n")
    return {"koniq": koniq, "artimuse": artimuse}

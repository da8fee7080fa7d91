"""Pictures of evaluation results (matplotlib, Agg canvas: no display needed)."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def scatter_plot(
    path: str | os.PathLike,
    gt_100,
    pred,
    *,
    title: str,
    failure_fill: float | None = None,
    pred_std=None,
    srcc: float | None = None,
    plcc: float | None = None,
) -> Path:
    """Predicted (0-100) against ground truth (0-100); parse failures as red crosses at the
    value they were scored as; error bars when several samples were drawn per image."""
    g = np.asarray(gt_100, dtype=float)
    p = np.array([math.nan if v is None else v for v in pred], dtype=float)
    ok = np.isfinite(p)
    fig = Figure(figsize=(5.2, 5.0))
    ax = fig.add_subplot()
    ax.plot([0, 100], [0, 100], color="0.75", lw=1, zorder=0, label="y = x")
    if pred_std is not None:
        s = np.array([math.nan if v is None else v for v in pred_std], dtype=float)
        ax.errorbar(
            g[ok],
            p[ok],
            yerr=np.nan_to_num(s[ok]),
            fmt="none",
            ecolor="tab:blue",
            alpha=0.35,
            lw=0.8,
        )
    ax.scatter(g[ok], p[ok], s=14, alpha=0.75, color="tab:blue", label=f"parsed ({ok.sum()})")
    if (~ok).any():
        y = np.full((~ok).sum(), 50.0 if failure_fill is None else failure_fill)
        ax.scatter(
            g[~ok], y, s=22, marker="x", color="tab:red", label=f"parse failure ({(~ok).sum()})"
        )
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("ground truth (0-100)")
    ax.set_ylabel("predicted (0-100)")
    ax.set_title(f"{title}\nSRCC {_fmt(srcc)}  PLCC {_fmt(plcc)}  N {len(g)}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    return _save(fig, Path(path))

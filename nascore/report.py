"""Summaries over seeds: a mean ± std table and the search curve as PNG.

``results`` are ``result.json`` dicts of runs (one per seed). The curve plots, for each
strategy, the mean over seeds (band: ± one standard deviation) of the test accuracy of the
best-by-validation architecture found so far, against the number of queries.

>>> summarize_seeds([{"best": {"valid_accuracy": 90.0, "test_accuracy": 93.0}, "queries": 10, "simulated_seconds": 5.0}])["test_accuracy"]["mean"]
93.0
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from nascore.io import atomic_write_bytes


def _stats(values) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if len(v) == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def summarize_seeds(results: Sequence[dict]) -> dict:
    bests = [r["best"] or {} for r in results]
    out = {
        "seeds": len(results),
        "valid_accuracy": _stats(b.get("valid_accuracy") for b in bests),
        "test_accuracy": _stats(b.get("test_accuracy") for b in bests),
        "score": _stats(b.get("score") for b in bests),
        "queries": _stats(r["queries"] for r in results),
        "simulated_seconds": _stats(r["simulated_seconds"] for r in results),
    }
    if any("wall_seconds" in r for r in results):
        out["wall_seconds"] = _stats(r.get("wall_seconds") for r in results)
    return out


def fmt(stat: dict, digits: int = 2) -> str:
    if stat["mean"] is None:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown_table(rows: Mapping[str, dict], optimum: dict | None = None) -> str:
    """``rows``: label -> summarize_seeds(...) output."""
    lines = ["| strategy | seeds | queries | best valid acc (%) | test acc of best (%) |",
             "|---|---|---|---|---|"]
    for label, s in rows.items():
        lines.append(f"| {label} | {s['seeds']} | {fmt(s['queries'], 0)} | {fmt(s['valid_accuracy'])} | "
                     f"{fmt(s['test_accuracy'])} |")
    if optimum:
        lines.append(f"| benchmark optimum | – | – | {optimum['valid_accuracy']:.2f} | {optimum['test_accuracy']:.2f} |")
    return "\n".join(lines) + "\n"


def curve_array(results: Sequence[dict], column: int = 3, length: int | None = None) -> np.ndarray:
    """[seeds, queries] array of a trajectory column (default: test accuracy of the best so far)."""
    length = length or max(len(r["trajectory"]) for r in results)
    arr = np.full((len(results), length), np.nan)
    for i, r in enumerate(results):
        vals = [row[column] for row in r["trajectory"]][:length]
        vals = [np.nan if v is None else v for v in vals]
        arr[i, : len(vals)] = vals
        if len(vals) and len(vals) < length:  # a run that stopped early keeps its final value
            arr[i, len(vals):] = vals[-1]
    return arr


def y_limits(lines: Sequence, optimum: float | None = None, pad: float = 0.04) -> tuple[float, float] | None:
    """``(low, high)`` of a y-axis that shows every finite point of every line in ``lines`` (the
    first queries of a search curve included, however low) and the ``optimum`` line, with ``pad``
    of the span added on each side; None when nothing is finite. Standard-deviation bands are not
    lines: an outlying band may leave the axes rather than squash the curves.

    >>> y_limits([[80.0, 90.0, 93.0], [85.0, 94.0]], optimum=95.0)
    (79.4, 95.6)
    """
    parts = [np.asarray(line, dtype=float).ravel() for line in lines]
    if optimum is not None:
        parts.append(np.array([optimum], dtype=float))
    vals = np.concatenate(parts) if parts else np.array([])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return None
    lo, hi = float(vals.min()), float(vals.max())
    span = (hi - lo) or max(abs(hi) * 0.01, 0.5)
    return round(lo - pad * span, 6), round(hi + pad * span, 6)


def save_figure(fig, path) -> Path:
    """Write the matplotlib figure ``fig`` to the PNG ``path`` and close it.

    Rendered in memory, then written atomically under a unique temporary name
    (:func:`nascore.io.atomic_write_bytes`): a reader sees the old figure or the new one, and two
    writers (or a stale temporary file of a killed run) never share a temporary file."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def plot_curves(curves: Mapping[str, Sequence[dict]], path, title: str = "", optimum: float | None = None,
                ylabel: str = "test accuracy of best-by-validation (%)") -> Path:
    """Plot mean ± std curves per label into the PNG ``path`` (written atomically by
    :func:`save_figure`). The y-axis shows every point of every mean curve, from the first query
    on, and the optimum (:func:`y_limits`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    means = []
    for label, results in curves.items():
        arr = curve_array(results)
        mean, std = np.nanmean(arr, 0), np.nanstd(arr, 0)
        means.append(mean)
        x = np.arange(1, arr.shape[1] + 1)
        ax.plot(x, mean, label=f"{label} (n={arr.shape[0]})")
        ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    if optimum is not None:
        ax.axhline(optimum, color="k", ls="--", lw=0.8, label=f"optimum {optimum:.2f}")
    ax.set_xlabel("queries")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    limits = y_limits(means, optimum)
    if limits is not None:
        ax.set_ylim(*limits)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)

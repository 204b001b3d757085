"""Files that describe one evaluation: metrics.json, per_record.csv, confusion.png, predictions.csv.

Inputs: ``y_true``/``y_pred`` (class indices 0..4 into :data:`ecgnas.aami.CLASSES`, or the
letters), ``records`` (record name per beat) and ``samples`` (R-peak sample index per beat), all
of length ``n``. Every file is written atomically (:mod:`nascore.io`): a reader sees the old file
or the new one, never half of one. Figures use matplotlib's Agg canvas directly (no pyplot, no
global backend switch), so this works headless and alongside other plotting code.

``predictions.csv`` has the columns ``record,sample,true,pred`` with AAMI letters; it holds all
that is needed to recompute every metric (:func:`read_predictions_csv` reads it back).

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> m = write_evaluation(out, [0, 2, 2], [0, 2, 0], ["100", "100", "101"], [10, 400, 90], "demo")
>>> sorted(p.name for p in out.iterdir()), m["per_class"]["V"]["se"]
(['confusion.png', 'metrics.json', 'per_record.csv', 'predictions.csv'], 50.0)
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecgnas.aami import CLASSES
from ecgnas.metrics import as_labels, confusion, metrics_json, per_record_table
from nascore.errors import UserError
from nascore.io import atomic_write_bytes, atomic_write_json, atomic_write_text

PREDICTION_COLUMNS: tuple[str, ...] = ("record", "sample", "true", "pred")


def save_confusion_png(cm: Any, path: str | os.PathLike, title: str = "") -> None:
    """Draw a confusion matrix (rows = true, columns = predicted) to a PNG, atomically.

    Each cell shows the count and its row-normalised percentage (the share of that true class);
    the colour is the row percentage, so rare classes are as readable as N.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cm.png"
    >>> save_confusion_png(np.eye(5, dtype=int) * 3, p, "ok"); p.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(cm)
    if cm.shape != (len(CLASSES), len(CLASSES)):
        raise UserError(f"confusion matrix must be {len(CLASSES)}x{len(CLASSES)}, got shape {cm.shape}")
    rows = cm.sum(axis=1, keepdims=True)
    pct = np.divide(100.0 * cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)

    fig = Figure(figsize=(6.2, 5.4), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(pct, cmap="Blues", vmin=0, vmax=100)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            colour = "white" if pct[i, j] > 55 else "black"
            ax.text(j, i, f"{int(cm[i, j])}\n{pct[i, j]:.1f}%", ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(CLASSES)), labels=list(CLASSES))
    ax.set_yticks(range(len(CLASSES)), labels=[f"{c} ({int(r)})" for c, r in zip(CLASSES, rows[:, 0])])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (beats)")
    ax.set_title(title or "confusion matrix", fontsize=10)
    fig.colorbar(im, ax=ax, label="% of true class")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def _column(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size != n:
        raise UserError(f"{name}: expected {n} values (one per beat), got shape {arr.shape}")
    return arr


def write_predictions_csv(path: str | os.PathLike, records: Any, samples: Any, y_true: Any, y_pred: Any) -> None:
    """Write ``record,sample,true,pred`` (AAMI letters), one row per beat, atomically.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "pred.csv"
    >>> write_predictions_csv(p, ["100"], [77], [0], [2]); p.read_text().splitlines()
    ['record,sample,true,pred', '100,77,N,V']
    """
    t = as_labels(y_true, "y_true")
    p = as_labels(y_pred, "y_pred")
    if t.size != p.size:
        raise UserError(f"y_true has {t.size} labels but y_pred has {p.size}")
    rec = _column(records, t.size, "records").astype(str)
    smp = _column(samples, t.size, "samples").astype(np.int64)
    letters = np.asarray(CLASSES)
    df = pd.DataFrame({"record": rec, "sample": smp, "true": letters[t], "pred": letters[p]})
    atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def read_predictions_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a predictions.csv back: columns ``record`` (str), ``sample`` (int), ``true``/``pred`` (letters).

    Missing columns or unknown class letters raise a :class:`UserError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: predictions file not found")
    df = pd.read_csv(path, dtype={"record": str, "true": str, "pred": str})
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {missing} (expected {','.join(PREDICTION_COLUMNS)})")
    for col in ("true", "pred"):
        try:
            as_labels(df[col].to_numpy(dtype=object), col)
        except UserError as e:
            raise UserError(f"{path}: {e}") from None
    return df


def write_per_record_csv(path: str | os.PathLike, table: pd.DataFrame) -> None:
    """Write :func:`ecgnas.metrics.per_record_table` output as CSV (NaN as empty cells), atomically."""
    if not isinstance(table, pd.DataFrame) or "record" not in table.columns:
        raise UserError("per-record table must be a DataFrame with a 'record' column")
    atomic_write_text(path, table.to_csv(index=False, lineterminator="\n", float_format="%.4f"))


def write_evaluation(out_dir: str | os.PathLike, y_true: Any, y_pred: Any, records: Any, samples: Any,
                     title: str = "") -> dict[str, Any]:
    """Write metrics.json, per_record.csv, confusion.png and predictions.csv into ``out_dir``.

    Returns the metrics dict (:func:`ecgnas.metrics.metrics_json`, plus ``title``) that was
    written as metrics.json.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = as_labels(y_true, "y_true")
    p = as_labels(y_pred, "y_pred")
    metrics = metrics_json(t, p, records)
    if title:
        metrics = {"title": title, **metrics}
    write_predictions_csv(out / "predictions.csv", records, samples, t, p)
    write_per_record_csv(out / "per_record.csv", per_record_table(t, p, records))
    save_confusion_png(confusion(t, p), out / "confusion.png", title)
    atomic_write_json(out / "metrics.json", metrics)
    return metrics

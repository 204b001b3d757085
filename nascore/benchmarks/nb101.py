"""NAS-Bench-101 (Ying et al., ICML 2019) as a compact table.

No NAS-Bench-101 accuracy table ships with nascore (the official data is the 500 MB
``nasbench_only108.tfrecord``, read with the official TensorFlow-1 ``nasbench`` package). A user
exports it once with that package and :func:`export_rows` (example below) into
``nb101-cifar10.csv``, one row per cell:

=====================  ===========================================================  ========
column                 meaning                                                      required
=====================  ===========================================================  ========
``arch``               cell string of :mod:`nascore.spaces.nb101` (any node order)  yes
``valid_acc_108``      validation accuracy (%) after 108 epochs (mean of repeats)   yes
``test_acc_108``       test accuracy (%) after 108 epochs (mean of repeats)         yes
``train_seconds_108``  training seconds for 108 epochs (mean of repeats)            no
``params_m``           trainable parameters, millions                               no
``valid_acc_<e>``,     the same at ``e`` = 4, 12 or 36 epochs (only in the full     no
``test_acc_<e>``,      ``nasbench_full.tfrecord``)
``train_seconds_<e>``
=====================  ===========================================================  ========

Accuracies are percent (the official API reports fractions: multiply by 100). ``arch`` strings
with several operations contain commas and are quoted, as :func:`export_rows` and pandas write
them (an unquoted one is reported, never misread). The ``arch``
strings are canonicalised when the table is read, so a table written with any node order, or
with dead nodes, is looked up correctly; two rows naming the same cell are an error. Accuracy
columns must be filled in every row (an empty cell, ``nan`` or ``inf`` is refused naming line and
column); ``train_seconds_<e>`` and ``params_m`` may have gaps, but a budget in seconds needs a
complete ``train_seconds_<fidelity>``.

Search signal (``fidelity`` = epochs): ``valid_acc_<fidelity>``, 108 by default; the figure
reported is always ``test_acc_108``; simulated cost: ``train_seconds_<fidelity>``.

The table is found through ``--data DIR``, else ``$NASCORE_DATA/nasbench101``, else the user
cache folder ``~/.cache/nascore/nasbench101``.

Exporting from the official file (run in an environment that has the official ``nasbench``
package and TensorFlow 1.x; nascore itself does not need them)::

    from statistics import mean
    from nasbench import api
    from nascore.benchmarks.nb101 import export_rows

    nb = api.NASBench("nasbench_only108.tfrecord")

    def rows():
        for h in nb.hash_iterator():
            fixed, computed = nb.get_metrics_from_hash(h)
            runs = computed[108]                       # the three training repeats
            yield (fixed["module_adjacency"], fixed["module_operations"], {
                "valid_acc_108": 100 * mean(r["final_validation_accuracy"] for r in runs),
                "test_acc_108": 100 * mean(r["final_test_accuracy"] for r in runs),
                "train_seconds_108": mean(r["final_training_time"] for r in runs),
                "params_m": fixed["trainable_parameters"] / 1e6})

    export_rows(rows(), "nb101-cifar10.csv")          # then copy it to $NASCORE_DATA/nasbench101/

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "nb101-cifar10.csv"
>>> _ = export_rows([([[0, 1], [0, 0]], ["input", "output"], {"valid_acc_108": 80.0, "test_acc_108": 79.5})], p)
>>> NB101Table.read_csv(p).lookup("ops=|adj=1")["test_acc_108"]
79.5
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from nascore.benchmarks.table import NONNEGATIVE_PREFIXES, CompactTable, numeric_columns
from nascore.errors import DataMissingError, UserError
from nascore.paths import find_dataset
from nascore.spaces.nb101 import (INPUT, MAX_NODES, OP_INDEX, OPS, OUTPUT, NB101Space, canonicalize_strings,
                                  format_cell, matrix_to_bits, ops_code)

DATASET = "nasbench101"
FILENAME = "nb101-cifar10.csv"
EPOCHS: tuple[int, ...] = (4, 12, 36, 108)
REQUIRED = ("arch", "valid_acc_108", "test_acc_108")
OPTIONAL = (("train_seconds_108", "params_m")
            + tuple(f"{kind}_{e}" for e in EPOCHS[:-1] for kind in ("valid_acc", "test_acc", "train_seconds")))
METRICS = REQUIRED[1:] + OPTIONAL
HOW_TO_GET = ("no NAS-Bench-101 accuracy table ships with nascore: export nb101-cifar10.csv from the official "
              "nasbench_only108.tfrecord with the official nasbench API and nascore.benchmarks.nb101.export_rows "
              "(example in its module docstring), then put it in that folder or pass --data")

QUOTE_HINT = 'arch strings contain commas, so they must be quoted ("ops=...,...|adj=..."), as export_rows writes them'


@dataclass
class NB101Table(CompactTable):
    """The compact table in memory (``frame`` has canonical ``arch`` strings); :meth:`load` finds it."""

    frame: pd.DataFrame
    path: Path | None = None
    dataset: str = "cifar10"

    test_column = "test_acc_108"

    def __post_init__(self):
        self._index()
        self._space = NB101Space()

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, data: str | os.PathLike | None = None) -> "NB101Table":
        """Read ``nb101-cifar10.csv`` from ``data`` (the benchmark folder), else
        ``$NASCORE_DATA/nasbench101``, else the user cache."""
        folder = find_dataset(DATASET, data, must_contain=FILENAME, how_to_get=HOW_TO_GET)
        return cls.read_csv(folder / FILENAME)

    @classmethod
    def read_csv(cls, path: str | os.PathLike) -> "NB101Table":
        """Read and check a table; every problem is a one-line :class:`UserError` naming line and column."""
        path = Path(path)
        if not path.exists():
            raise DataMissingError(f"{path} not found; {HOW_TO_GET}")
        try:
            df = pd.read_csv(path, dtype={"arch": str}, keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
            raise UserError(f"{path}: not a readable CSV ({str(e).splitlines()[0]}; {QUOTE_HINT})") from None
        if not isinstance(df.index, pd.RangeIndex):  # pandas moved surplus leading fields into the index
            raise UserError(f"{path}: line 2 has more fields than the header; {QUOTE_HINT}")
        missing = [c for c in REQUIRED if c not in df.columns]
        if missing:
            raise UserError(f"{path}: missing required column(s) {', '.join(missing)}")
        if df.empty:
            raise UserError(f"{path}: the table has no rows")
        df = df[[c for c in REQUIRED + OPTIONAL if c in df.columns]].copy()
        # accuracies are read for every architecture (search signal, reported figure): no gaps;
        # optional durations and parameter counts may be missing for some cells
        acc = [c for c in df.columns if c.startswith(("valid_acc_", "test_acc_"))]
        df = numeric_columns(df, path, required=REQUIRED, complete=acc)
        arch = df["arch"]
        empty = np.flatnonzero(arch.isna().to_numpy())
        if len(empty):
            raise UserError(f"{path}: line {empty[0] + 2}, column arch: empty")
        raw = arch.tolist()
        df["arch"] = canonicalize_strings(raw, where=lambda k: f"{path}: line {k + 2}, column arch")
        dup = df["arch"].duplicated(keep=False).to_numpy()
        if dup.any():
            lines = np.flatnonzero(df["arch"].to_numpy() == df["arch"].to_numpy()[np.flatnonzero(dup)[0]])[:2] + 2
            raise UserError(f"{path}: lines {lines[0]} and {lines[1]}, column arch: the same cell twice "
                            f"({df['arch'].iloc[lines[0] - 2]})")
        return cls(df.reset_index(drop=True), path)

    # --- fidelity and lookup ------------------------------------------------------------------
    def default_fidelity(self) -> int:
        return 108

    def signal_column(self, fidelity: int | None = None) -> str:
        fidelity = self.default_fidelity() if fidelity is None else fidelity
        if fidelity not in EPOCHS:
            raise UserError(f"--fidelity for nb101 must be one of {', '.join(map(str, EPOCHS))} epochs, got {fidelity}")
        col = f"valid_acc_{fidelity}"
        if not self.has(col):
            raise UserError(f"{self.path or 'table'} has no {col} column, so fidelity {fidelity} is unavailable")
        return col

    def cost_column_available(self, fidelity: int) -> bool:
        """A seconds budget needs the duration of every cell (a gap would count as free)."""
        return self.has_complete(f"train_seconds_{fidelity}")

    def canonical(self, arch) -> str:
        """The canonical string of ``arch`` (an :class:`~nascore.arch.Arch` or a string in any node order)."""
        if isinstance(arch, str):
            return arch if arch in self._row else canonicalize_strings([arch])[0]
        return self._space.to_string(arch)

    def row(self, arch) -> int:
        key = self.canonical(arch)
        try:
            return self._row[key]
        except KeyError:
            raise UserError(f"arch {key!r} is not in {self.path or 'the nb101 table'}") from None

    def lookup(self, arch) -> dict:
        """Every column of the row of ``arch`` (canonical ``arch`` string and the metrics present).

        >>> table.lookup("ops=conv3x3-bn-relu|adj=111")      # doctest: +SKIP
        {'arch': 'ops=conv3x3-bn-relu|adj=111', 'valid_acc_108': 88.1, 'test_acc_108': 87.6}
        """
        k = self.row(arch)
        out = {"arch": self.frame["arch"].iloc[k]}
        for c, v in self._cols.items():
            if not np.isnan(v[k]):
                out[c] = float(v[k])
        return out

    def cost(self, k: int, fidelity: int) -> float | None:
        col = f"train_seconds_{fidelity}"
        if self.has(col) and not np.isnan(self._cols[col][k]):
            return float(self._cols[col][k])
        return None



def _metric_problem(column: str, value) -> str | None:
    """Why ``value`` cannot stand in ``column`` of the table (None when it can): the same rules
    as :func:`~nascore.benchmarks.table.numeric_columns` applies when the file is read (None: a
    gap, allowed in the optional duration and size columns)."""
    if value is None and not column.startswith(("valid_acc_", "test_acc_")):
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return "is not a number"
    if not np.isfinite(value):
        return "is not a finite number"
    if "acc" in column and not 0 <= value <= 100:
        return "is not a percentage in [0, 100]"
    if column.startswith(NONNEGATIVE_PREFIXES) and value < 0:
        return "is negative"
    return None


def export_rows(rows: Iterable[tuple], path: str | os.PathLike | None = None) -> str:
    """CSV text of a NAS-Bench-101 table from ``(matrix, ops, metrics)`` rows; written atomically
    to ``path`` when given.

    ``matrix``: n x n upper-triangular 0/1 (nested lists or array, n <= 7; e.g. the official
    ``module_adjacency``); ``ops``: the n labels including ``input`` and ``output`` (the official
    ``module_operations``); ``metrics``: dict with ``valid_acc_108`` and ``test_acc_108`` (percent)
    and any optional column of the module table. ``arch`` is written as the canonical string.
    Bad rows raise :class:`UserError` naming the row (counted from 0) and field.

    >>> print(export_rows([([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"],
    ...                     {"valid_acc_108": 85.0, "test_acc_108": 84.25})]), end="")
    arch,valid_acc_108,test_acc_108
    ops=maxpool3x3|adj=111,85.0,84.25
    """
    texts, records, columns = [], [], set()
    for r, item in enumerate(rows):
        try:
            matrix, ops, metrics = item
        except (TypeError, ValueError):
            raise UserError(f"export_rows: row {r} must be (matrix, ops, metrics)") from None
        try:
            m = np.asarray(matrix)
            ops = list(ops)
        except (TypeError, ValueError):  # a ragged matrix, ops that are no sequence
            raise UserError(f"export_rows: row {r}: matrix must be an n x n 0/1 array and ops a list of labels") from None
        n = len(ops)
        if m.ndim != 2 or m.shape != (n, n):
            raise UserError(f"export_rows: row {r}, matrix: shape {m.shape} does not match {n} ops")
        if not 2 <= n <= MAX_NODES:
            raise UserError(f"export_rows: row {r}, ops: {n} nodes (2..{MAX_NODES} allowed)")
        if not np.isin(m, (0, 1)).all() or np.tril(m).any():
            raise UserError(f"export_rows: row {r}, matrix: must be strictly upper-triangular 0/1")
        if ops[0] != INPUT or ops[-1] != OUTPUT or any(o not in OP_INDEX for o in ops[1:-1]):
            raise UserError(f"export_rows: row {r}, ops: {ops} must be 'input', {n - 2} of "
                            f"{', '.join(OPS)}, 'output'")
        if not isinstance(metrics, dict):
            raise UserError(f"export_rows: row {r}, metrics: must be a dict, got {type(metrics).__name__}")
        unknown = [k for k in metrics if k not in METRICS]
        if unknown:
            raise UserError(f"export_rows: row {r}, metrics: unknown column {unknown[0]!r} "
                            f"(choose from {', '.join(METRICS)})")
        for k in REQUIRED[1:]:
            if k not in metrics:
                raise UserError(f"export_rows: row {r}, metrics: missing {k!r}")
        for k, v in metrics.items():
            why = _metric_problem(k, v)
            if why:
                raise UserError(f"export_rows: row {r}, metrics: {k}={v!r} {why}")
        texts.append(format_cell(n, matrix_to_bits(m), ops_code(OP_INDEX[o] for o in ops[1:-1])))
        records.append(metrics)
        columns.update(metrics)
    archs = canonicalize_strings(texts, where=lambda r: f"export_rows: row {r}")
    cols = ["arch"] + [c for c in METRICS if c in columns]
    df = pd.DataFrame(records, columns=cols[1:])
    df.insert(0, "arch", archs)
    dup = df["arch"].duplicated()
    if dup.any():
        raise UserError(f"export_rows: row {int(np.flatnonzero(dup)[0])}: cell {df['arch'][dup].iloc[0]!r} "
                        "appears twice (average the repeats into one row)")
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    text = buf.getvalue()
    if path is not None:
        from nascore.io import atomic_write_text

        atomic_write_text(path, text)
    return text

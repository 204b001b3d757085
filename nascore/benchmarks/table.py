"""What every compact benchmark table shares: column access, lookup of one architecture, the optimum.

A concrete table (:class:`~nascore.benchmarks.nb201.NB201Table`,
:class:`~nascore.benchmarks.nb101.NB101Table`) holds ``frame`` (a DataFrame with an ``arch``
column of canonical strings and numeric columns), sets :attr:`test_column`, and implements
``row(arch)``, ``signal_column(fidelity)``, ``default_fidelity()`` and ``cost(row, fidelity)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nascore.errors import UserError


#: columns that hold durations or sizes: never negative
NONNEGATIVE_PREFIXES = ("train_seconds", "params_m")


def numeric_columns(df: pd.DataFrame, path, required=(), complete=()) -> pd.DataFrame:
    """Parse every column but ``arch`` as numbers, with one-line errors naming file, line and column.

    Refused: a non-number; ``inf`` / ``-inf`` anywhere; an empty (or ``nan``) cell in a column of
    ``required`` or ``complete`` (a column the search reads for every row, e.g. the validation
    signal: one missing value would otherwise become ``NaN`` and the reported "best"); a negative
    duration or parameter count; an accuracy outside [0, 100] or given as fractions. Line numbers
    count the header as line 1.
    """
    df = df.copy()
    must_fill = set(required) | set(complete)
    for c in df.columns:
        if c == "arch":
            continue
        vals = pd.to_numeric(df[c], errors="coerce")
        bad = np.flatnonzero(vals.isna().to_numpy() & df[c].notna().to_numpy())
        if len(bad):
            raise UserError(f"{path}: line {bad[0] + 2}, column {c}: not a number ({df[c].iloc[bad[0]]!r})")
        v = vals.to_numpy(np.float64)
        inf = np.flatnonzero(np.isinf(v))
        if len(inf):
            raise UserError(f"{path}: line {inf[0] + 2}, column {c}: {v[inf[0]]} is not a finite number")
        if c in must_fill:
            empty = np.flatnonzero(np.isnan(v))
            if len(empty):
                why = "the column is required" if c in required else "every row needs a value"
                raise UserError(f"{path}: line {empty[0] + 2}, column {c}: empty ({why})")
        if c.startswith(NONNEGATIVE_PREFIXES):
            neg = np.flatnonzero(v < 0)
            if len(neg):
                raise UserError(f"{path}: line {neg[0] + 2}, column {c}: {v[neg[0]]} is negative")
        if "acc" in c:
            out = np.flatnonzero((v < 0) | (v > 100))
            if len(out):
                raise UserError(f"{path}: line {out[0] + 2}, column {c}: {v[out[0]]} is not a percentage in [0, 100]")
            if np.isfinite(v).any() and np.nanmax(v) <= 1.0:
                raise UserError(f"{path}: column {c} looks like fractions (max {np.nanmax(v)}); "
                                "accuracies must be percent (multiply the official values by 100)")
        df[c] = vals
    return df


class CompactTable:
    #: the figure reported for the best-by-validation architecture, whatever the search signal
    test_column: str = ""

    def _index(self) -> None:
        self._row = {a: k for k, a in enumerate(self.frame["arch"].tolist())}
        self._cols = {c: self.frame[c].to_numpy(np.float64) for c in self.frame.columns if c not in ("index", "arch")}

    def has(self, column: str) -> bool:
        return column in self._cols

    def has_complete(self, column: str) -> bool:
        """True when the table has ``column`` and every row holds a value in it."""
        return self.has(column) and not np.isnan(self._cols[column]).any()

    def fidelities(self) -> list[int]:
        """The epoch counts this table has a validation column for (``valid_acc_<epochs>``),
        ascending: the rungs a multi-fidelity search can read (:mod:`nascore.multifidelity`)."""
        out = []
        for c in self.frame.columns:
            head, _, tail = str(c).rpartition("_")
            if head == "valid_acc" and tail.isdigit():
                try:
                    self.signal_column(int(tail))
                except UserError:
                    continue
                out.append(int(tail))
        return sorted(out)

    def query(self, arch, fidelity: int | None = None) -> dict:
        """``valid_accuracy`` (the search signal), ``test_accuracy`` (always :attr:`test_column`),
        ``cost_seconds`` (None without a time column) and ``params_m`` where known."""
        fidelity = self.default_fidelity() if fidelity is None else fidelity
        col = self.signal_column(fidelity)
        k = self.row(arch)
        out = {"valid_accuracy": float(self._cols[col][k]), "test_accuracy": float(self._cols[self.test_column][k]),
               "cost_seconds": self.cost(k, fidelity)}
        if self.has("params_m"):
            out["params_m"] = float(self._cols["params_m"][k])
        return out

    def optimum(self, fidelity: int | None = None) -> dict:
        """The best-by-validation architecture and its test accuracy, plus the best test accuracy overall."""
        v = self._cols[self.signal_column(fidelity)]
        k = int(np.nanargmax(v))
        t = self._cols[self.test_column]
        return {"arch": self.frame["arch"].iloc[k], "valid_accuracy": float(v[k]),
                "test_accuracy": float(t[k]), "best_test_accuracy": float(np.nanmax(t))}

    def __len__(self) -> int:
        return len(self.frame)

"""What every compact benchmark table shares: column access, lookup of one architecture, the optimum.

A concrete table (:class:`~nascore.benchmarks.nb201.NB201Table`,
:class:`~nascore.benchmarks.nb101.NB101Table`) holds ``frame`` (a DataFrame with an ``arch``
column of canonical strings and numeric columns), sets :attr:`test_column`, and implements
``row(arch)``, ``signal_column(fidelity)``, ``default_fidelity()`` and ``cost(row, fidelity)``.
"""

from __future__ import annotations

import numpy as np


class CompactTable:
    #: the figure reported for the best-by-validation architecture, whatever the search signal
    test_column: str = ""

    def _index(self) -> None:
        self._row = {a: k for k, a in enumerate(self.frame["arch"].tolist())}
        self._cols = {c: self.frame[c].to_numpy(np.float64) for c in self.frame.columns if c not in ("index", "arch")}

    def has(self, column: str) -> bool:
        return column in self._cols

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

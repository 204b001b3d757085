"""NAS-Bench-201 / NATS-Bench (topology) as a compact table.

The official NATS-Bench files need tens of GB of memory through the ``nats_bench`` API; the
same facts fit in a 2 MB CSV, ``nb201-<dataset>.csv``, one row per cell in official index order:

=========================  =====================================================  ===========
column                     meaning                                                required
=========================  =====================================================  ===========
``index``                  official index 0..15624                                yes
``arch``                   official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``  yes
``test_acc_200``           test accuracy (%) after 200 epochs (train+valid -> test)  yes
``valid_acc_200``          validation accuracy (%) after 200 epochs                 no
``valid_acc_12``           validation accuracy (%) after 12 epochs (``hp=12``)      no
``test_acc_12``            test accuracy (%) after 12 epochs                        no
``params_m``               parameters, millions                                     no
``train_seconds_per_epoch``  measured training seconds per epoch                    no
``train_seconds_200``      measured seconds for all 200 epochs                      no
=========================  =====================================================  ===========

A column that is present must be filled in every row with a finite number (an empty cell, ``nan``
or ``inf`` is refused with a one-line error naming file, line and column: one missing validation
accuracy would otherwise become the reported best), and every ``arch`` must be a canonical string.

Search signal (``fidelity``): 200 -> ``valid_acc_200``; 12 -> ``valid_acc_12`` (the NATS-Bench
``hp=12`` protocol). By default 200 where the table has it, else 12. Whatever the signal, the
figure reported for the best-by-validation cell is always ``test_acc_200``.

Simulated cost of one query: ``train_seconds_200`` at fidelity 200 and
``12 * train_seconds_per_epoch`` at fidelity 12 (when the columns are there; otherwise budgets
must count queries).

>>> table = NB201Table.load("cifar10")          # doctest: +SKIP
>>> table.query("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", 200)  # doctest: +SKIP
{'valid_accuracy': 90.769333, 'test_accuracy': 93.66, 'cost_seconds': 2169.641}
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from nascore.benchmarks.table import CompactTable, numeric_columns
from nascore.errors import DataMissingError, UserError
from nascore.paths import find_dataset
from nascore.spaces.nb201 import NB201Space, all_strings

_all_strings = lru_cache(maxsize=1)(all_strings)

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16-120")
REQUIRED = ("index", "arch", "test_acc_200")
OPTIONAL = ("valid_acc_200", "valid_acc_12", "test_acc_12", "params_m", "train_seconds_per_epoch",
            "train_seconds_200")
HOW_TO_GET = ("copy nb201-<dataset>.csv into that folder, or export it from the official NATS-Bench "
              "files with `nascore bench export --nats-path PATH --dataset <dataset>`")


def table_filename(dataset: str) -> str:
    if dataset not in DATASETS:
        raise UserError(f"unknown dataset {dataset!r} for nb201 (choose from: {', '.join(DATASETS)})")
    return f"nb201-{dataset}.csv"


def check_arch_column(arch: pd.Series, path) -> None:
    """Every ``arch`` cell must be a canonical NAS-Bench-201 string; else a one-line error naming
    the line (header = line 1) with the parser's reason."""
    ok = arch.isin(_all_strings()).to_numpy()
    if ok.all():
        return
    k = int(np.flatnonzero(~ok)[0])
    text = arch.iloc[k]
    if not isinstance(text, str) or not text.strip():
        raise UserError(f"{path}: line {k + 2}, column arch: empty")
    try:
        canon = NB201Space().to_string(NB201Space().from_string(text))
    except UserError as e:
        raise UserError(f"{path}: line {k + 2}, column arch: {e}") from None
    raise UserError(f"{path}: line {k + 2}, column arch: {text!r} is not canonical (write {canon!r})")


@dataclass
class NB201Table(CompactTable):
    """The compact table in memory; :meth:`load` finds and validates it."""

    frame: pd.DataFrame
    dataset: str
    path: Path | None = None

    test_column = "test_acc_200"

    def __post_init__(self):
        self._index()

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, dataset: str = "cifar10", data: str | os.PathLike | None = None) -> "NB201Table":
        """Read ``nb201-<dataset>.csv`` from ``data`` (the benchmark folder), else
        ``$NASCORE_DATA/nasbench201``, else the user cache."""
        name = table_filename(dataset)
        folder = find_dataset("nasbench201", data, must_contain=name, how_to_get=HOW_TO_GET.replace("<dataset>", dataset))
        return cls.read_csv(folder / name, dataset)

    @classmethod
    def read_csv(cls, path: str | os.PathLike, dataset: str = "cifar10") -> "NB201Table":
        path = Path(path)
        if not path.exists():
            raise DataMissingError(f"{path} not found; {HOW_TO_GET.replace('<dataset>', dataset)}")
        try:
            df = pd.read_csv(path, dtype={"arch": str})
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as e:
            raise UserError(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None
        missing = [c for c in REQUIRED if c not in df.columns]
        if missing:
            raise UserError(f"{path}: missing required column(s) {', '.join(missing)}")
        if "valid_acc_200" not in df.columns and "valid_acc_12" not in df.columns:
            raise UserError(f"{path}: needs a validation column (valid_acc_200 or valid_acc_12)")
        if df.empty:
            raise UserError(f"{path}: the table has no rows")
        df = df[[c for c in REQUIRED + OPTIONAL if c in df.columns]]
        # the official table is complete: an empty cell in any column present is a damaged file
        df = numeric_columns(df, path, required=REQUIRED, complete=df.columns)
        check_arch_column(df["arch"], path)
        dup = df["arch"].duplicated()
        if dup.any():
            raise UserError(f"{path}: arch {df['arch'][dup].iloc[0]!r} appears twice")
        return cls(df.reset_index(drop=True), dataset, path)

    # --- fidelity and lookup ------------------------------------------------------------------
    def default_fidelity(self) -> int:
        return 200 if self.has("valid_acc_200") else 12

    def signal_column(self, fidelity: int | None = None) -> str:
        fidelity = self.default_fidelity() if fidelity is None else fidelity
        if fidelity not in (200, 12):
            raise UserError(f"--fidelity must be 200 or 12, got {fidelity}")
        col = f"valid_acc_{fidelity}"
        if not self.has(col):
            raise UserError(f"{self.path or 'table'} has no {col} column, so fidelity {fidelity} is unavailable")
        return col

    def cost_column_available(self, fidelity: int) -> bool:
        return self.has("train_seconds_200") if fidelity == 200 else self.has("train_seconds_per_epoch")

    def row(self, arch: str) -> int:
        try:
            return self._row[arch]
        except KeyError:
            raise UserError(f"arch {arch!r} is not in {self.path or 'the nb201 table'}") from None

    def cost(self, k: int, fidelity: int) -> float | None:
        if fidelity == 200 and self.has("train_seconds_200"):
            return float(self._cols["train_seconds_200"][k])
        if fidelity == 12 and self.has("train_seconds_per_epoch"):
            return float(12 * self._cols["train_seconds_per_epoch"][k])
        return None



# --- official NATS-Bench files ----------------------------------------------------------------
_VALID_SPLIT = {"cifar10": "cifar10-valid", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}
_TEST_SPLIT = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "ImageNet16-120"}


def export_from_nats(nats_path: str | os.PathLike, dataset: str, out_csv: str | os.PathLike,
                     progress: bool = True, api=None) -> Path:
    """Write ``nb201-<dataset>.csv`` from the official NATS-Bench topology files.

    ``nats_path`` is the official ``NATS-tss-v1_0-3ffb9-simple`` folder (or a ``.pickle.pbz2``);
    it is read through ``nats_bench.create(path, "tss", fast_mode=<path is a folder>)``, with its unpickling
    restricted to plain data and numpy arrays (:func:`nascore.safeload.restricted_nats_pickles`:
    a crafted file is refused instead of running code). For CIFAR-10 the
    validation figures come from the ``cifar10-valid`` setting and the test figures from the
    ``cifar10`` setting (train+valid -> test), as NATS-Bench defines them; for CIFAR-100 and
    ImageNet16-120 both come from the dataset's own x-valid / x-test halves. ``api`` may pass an
    already created API object (tests pass a small fake with the same methods).
    """
    from nascore.io import atomic_write_text

    table_filename(dataset)
    if api is None:
        try:
            from nats_bench import create
        except ImportError:  # pragma: no cover - nats_bench is a dependency
            raise UserError("the nats_bench package is needed: pip install nats_bench") from None
        if not Path(nats_path).exists():
            raise DataMissingError(f"{nats_path} not found (the official NATS-tss-v1_0-3ffb9-simple folder)")
        from nascore.safeload import restricted_nats_pickles

        with restricted_nats_pickles():  # fast mode reads more files lazily, inside the loop too
            try:  # nats_bench takes a folder in fast mode only, a single file otherwise
                api = create(str(nats_path), "tss", fast_mode=Path(nats_path).is_dir(), verbose=False)
            except (ValueError, KeyError, TypeError) as e:
                raise UserError(f"{nats_path}: not an official NATS-Bench topology file or folder "
                                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
            return export_from_nats(nats_path, dataset, out_csv, progress, api=api)
    rows = []
    indices = range(len(api))
    if progress:
        from rich.progress import track
        indices = track(indices, description=f"exporting {dataset}")
    vs, ts = _VALID_SPLIT[dataset], _TEST_SPLIT[dataset]
    for i in indices:
        r = {"index": i, "arch": api.arch(i)}
        for hp in ("200", "12"):
            vinfo = api.get_more_info(i, vs, hp=hp, is_random=False)
            tinfo = api.get_more_info(i, ts, hp=hp, is_random=False)
            r[f"valid_acc_{hp}"] = vinfo["valid-accuracy"]
            r[f"test_acc_{hp}"] = tinfo["test-accuracy"]
            if hp == "200":
                r["train_seconds_per_epoch"] = vinfo.get("train-per-time")
                r["train_seconds_200"] = vinfo.get("train-all-time")
        r["params_m"] = api.get_cost_info(i, ts)["params"]
        rows.append(r)
    df = pd.DataFrame(rows, columns=list(REQUIRED[:2]) + ["valid_acc_200", "test_acc_200", "valid_acc_12",
                                                           "test_acc_12", "params_m", "train_seconds_per_epoch",
                                                           "train_seconds_200"])
    out = Path(out_csv)
    # the same checks as reading it back: a value the API lacks is refused now, not at search time
    numeric_columns(df, f"{out} (export)", required=REQUIRED, complete=df.columns)
    atomic_write_text(out, df.to_csv(index=False))
    return out

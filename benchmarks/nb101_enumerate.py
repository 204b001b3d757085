"""Benchmark: exhaustive enumeration of the NAS-Bench-101 space (:mod:`nascore.spaces.nb101`).

Runs the full enumeration cold (no cache) ``--repeats`` times with 1 and with ``--workers``
processes, checks it finds the published 423,624 cells (Ying et al. 2019) with the per-node-count
constants pinned in the module, then

* times writing and re-reading the ``.npz`` cache (in a temporary cache folder, so the user's
  cache is neither used nor touched);
* cross-checks the fast orbit-based labelling against the generic canonical form applied to every
  labelled pruned shape (1.29 M cells);
* checks every enumerated string is a fixed point of :func:`canonicalize_strings`;
* hashes every cell with the Weisfeiler-Lehman :attr:`nascore.arch.Arch.hash` on ``--workers``
  processes and counts distinct hashes. The canonical form can only split isomorphism classes
  (count >= true) and the WL hash can only merge them (count <= true), so both counts equal to
  423,624 show that both are exact on this space (no WL collision).

Usage::

    python benchmarks/nb101_enumerate.py            # writes benchmarks/results/nb101_enumerate.json
    python benchmarks/nb101_enumerate.py --skip-wl  # without the ~1 minute WL hashing
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nascore.io import atomic_write_json  # noqa: E402
from nascore.spaces import nb101  # noqa: E402

_CELLS = None  # set before forking the WL workers


def _wl_chunk(bounds):
    a, b = bounds
    return [_CELLS.arch(i).hash for i in range(a, b)]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(round(time.perf_counter() - t, 4))
    return out, {"min_s": min(times), "median_s": statistics.median(times), "all_s": times}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "nb101_enumerate.json"))
    ap.add_argument("--repeats", type=int, default=5, help="cold enumerations per worker count (default 5)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes for the parallel runs and the WL check (default: cores, at most 2)")
    ap.add_argument("--skip-wl", action="store_true", help="skip the WL-hash collision check")
    args = ap.parse_args(argv)
    from rich.console import Console

    con = Console(stderr=True)
    res: dict = {
        "benchmark": "nb101_enumerate",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }

    # 1. cold enumeration, timed, serial and parallel
    con.print("cold enumeration ...")
    stats: dict = {}
    nb101.enumerate_cells(cache=False, workers=1, stats=stats)
    cells, t1 = _timed(lambda: nb101.enumerate_cells(cache=False, workers=1), args.repeats)
    cells_w, tw = _timed(lambda: nb101.enumerate_cells(cache=False, workers=args.workers), args.repeats)
    counts = cells.counts_by_nodes()
    same_parallel = (np.array_equal(cells.n_nodes, cells_w.n_nodes) and np.array_equal(cells.adj_bits, cells_w.adj_bits)
                     and np.array_equal(cells.op_codes, cells_w.op_codes))
    res["enumeration"] = {
        "total": len(cells), "expected_total": nb101.NB101_SIZE, "total_ok": len(cells) == nb101.NB101_SIZE,
        "counts_by_nodes": counts, "counts_match_module_constants": counts == nb101.COUNTS_BY_NODES,
        "wall_time_1_worker": t1, f"wall_time_{args.workers}_workers": tw,
        "cores_used": {"serial": 1, "parallel": args.workers}, "parallel_result_identical": same_parallel,
        "raw_matrix_stats": stats,
    }
    con.print(f"  {len(cells)} cells; {t1['min_s']} s (1 worker), {tw['min_s']} s ({args.workers} workers)")

    # 2. cache write and load, in a throw-away cache folder
    with tempfile.TemporaryDirectory() as tmp:
        old = os.environ.get("XDG_CACHE_HOME")
        os.environ["XDG_CACHE_HOME"] = tmp
        try:
            _, tc = _timed(lambda: nb101.enumerate_cells(cache=True, workers=1), 1)
            size = nb101._cache_file(7, 9).stat().st_size
            loaded, tl = _timed(lambda: nb101.enumerate_cells(cache=True), args.repeats)
        finally:
            if old is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old
    res["cache"] = {"first_call_compute_and_write_s": tc["min_s"], "second_call_load": tl, "file_bytes": size,
                    "loaded_equal": bool(np.array_equal(loaded.adj_bits, cells.adj_bits)
                                         and np.array_equal(loaded.op_codes, cells.op_codes))}

    # 3. orbit labelling vs the generic canonical form of every labelled pruned shape
    con.print("cross-check against the generic canonical form ...")
    t = time.perf_counter()
    shapes = nb101.pruned_shapes()
    labelled, agree = 0, True
    for n in range(2, 8):
        K = 3 ** (n - 2)
        b, c = np.repeat(shapes[n], K), np.tile(np.arange(K), len(shapes[n]))
        labelled += len(b)
        cb, cc = nb101.canonical_codes(n, b, c)
        sel = cells.n_nodes == n
        agree &= np.array_equal(np.unique(cb * K + cc), np.sort(cells.adj_bits[sel].astype(np.int64) * K + cells.op_codes[sel]))
    res["cross_check_generic_canonical"] = {"labelled_pruned_cells": labelled, "same_set": bool(agree),
                                            "wall_time_s": round(time.perf_counter() - t, 3)}
    strings = cells.strings()
    t = time.perf_counter()
    fixed = nb101.canonicalize_strings(strings) == strings
    res["canonicalize_strings_fixed_point"] = {"all": bool(fixed), "wall_time_s": round(time.perf_counter() - t, 3)}
    res["canonical_strings_distinct"] = len(set(strings))

    # 4. WL hash collision check
    if not args.skip_wl:
        global _CELLS
        _CELLS = cells
        step = 5000
        chunks = [(a, min(a + step, len(cells))) for a in range(0, len(cells), step)]
        from rich.progress import track

        t = time.perf_counter()
        hashes: list[str] = []
        with mp.get_context("fork").Pool(args.workers) as pool:
            for part in track(pool.imap(_wl_chunk, chunks), total=len(chunks), description="WL hashes",
                              console=con):
                hashes.extend(part)
        wl = time.perf_counter() - t
        distinct = len(set(hashes))
        res["wl_hash_check"] = {"cells_hashed": len(hashes), "distinct_hashes": distinct,
                                "collisions": len(hashes) - distinct, "workers": args.workers,
                                "wall_time_s": round(wl, 2)}
        con.print(f"  WL: {distinct} distinct hashes of {len(hashes)} cells in {wl:.1f} s")

    ok = (res["enumeration"]["total_ok"] and res["enumeration"]["counts_match_module_constants"] and same_parallel
          and agree and fixed and res["canonical_strings_distinct"] == nb101.NB101_SIZE
          and res.get("wl_hash_check", {}).get("collisions", 0) == 0)
    res["all_checks_passed"] = bool(ok)
    res["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    atomic_write_json(args.output, res)
    con.print(f"wrote {args.output}; all checks passed: {ok}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""Time MIT-BIH beat preparation: cold (empty temporary cache) and warm (from that cache).

Each repeat runs ``ecgnas prepare`` in a fresh Python process, so the times include interpreter
start-up and imports; ``load_seconds`` is the time inside :func:`ecgnas.data.load_beats`
(hashing/verifying the files, preparing or loading, writing the cache). Cold runs each get a new
empty cache folder (file hashes included); the OS page cache is warm after the first read of the
data, as it would be on any machine that has the files. Writes
``benchmarks/results/ecg_prepare_speed.json``.

    python benchmarks/ecg_prepare_speed.py [--data DIR] [--repeats 3] [--jobs N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402

from ecgnas.data.mitdb import find_mitdb  # noqa: E402
from nascore.io import atomic_write_json  # noqa: E402


def _prepare(data: Path, cache: Path, out: Path, jobs: int | None) -> dict:
    cmd = [sys.executable, "-m", "ecgnas.cli", "prepare", "--data", str(data), "--cache", str(cache),
           "--output", str(out), "--no-progress"]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t
    s = json.loads((out / "summary.json").read_text())
    return {"wall_seconds": round(wall, 3), "load_seconds": s["load_seconds"], "cache_hit": s["cache"]["hit"],
            "n_beats": s["n_beats"], "records": len(s["per_record"])}


def _stats(runs: list[dict], key: str) -> dict:
    vals = [r[key] for r in runs]
    return {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3), "max": round(max(vals), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args()
    data = find_mitdb(args.data)
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(args.repeats):
            cache = tmp / f"cache{i}"
            run = _prepare(data, cache, tmp / "out", args.jobs)
            assert not run["cache_hit"], "cold run hit a cache"
            cold.append(run)
            print(f"cold {i}: {run}")
        for i in range(args.repeats):
            run = _prepare(data, cache, tmp / "out", args.jobs)
            assert run["cache_hit"], "warm run missed the cache"
            warm.append(run)
            print(f"warm {i}: {run}")
    result = {**header(), "data": str(data), "jobs": args.jobs or "one per core", "repeats": args.repeats,
              "records_in_folder": 48, "records_prepared": cold[0]["records"],
              "note": "the 4 paced records (102, 104, 107, 217) are listed and skipped, not prepared",
              "cold": {"wall_seconds": _stats(cold, "wall_seconds"), "load_seconds": _stats(cold, "load_seconds"),
                       "runs": cold},
              "warm": {"wall_seconds": _stats(warm, "wall_seconds"), "load_seconds": _stats(warm, "load_seconds"),
                       "runs": warm}}
    path = RESULTS / "ecg_prepare_speed.json"
    atomic_write_json(path, result)
    print(f"cold median {result['cold']['wall_seconds']['median']} s, warm median "
          f"{result['warm']['wall_seconds']['median']} s; wrote {path}")


if __name__ == "__main__":
    main()

"""Helpers for benchmark scripts: machine description and result files."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                            cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        pass
    return info


def header() -> dict:
    return {"date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name] + sys.argv), "machine": machine()}


def parallel_map(fn, jobs: list, n_jobs: int = 1, desc: str = "") -> list:
    """``[fn(j) for j in jobs]`` with a progress bar, over ``n_jobs`` forked processes when > 1."""
    from tqdm import tqdm

    if n_jobs > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(n_jobs) as pool:
            return list(tqdm(pool.imap(fn, jobs), total=len(jobs), desc=desc))
    return [fn(j) for j in tqdm(jobs, desc=desc)]


def mean_std(values) -> dict:
    """``{"mean", "std", "n"}`` of the values that are not None (sample std; None below 2 values)."""
    import statistics

    v = [float(x) for x in values if x is not None]
    return {"mean": statistics.fmean(v) if v else None, "std": statistics.stdev(v) if len(v) > 1 else None,
            "n": len(v)}

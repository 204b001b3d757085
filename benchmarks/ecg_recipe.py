"""Ablation of the ECG input and training recipe, judged on the DS1 hold-out.

The data and training defaults (:class:`ecgnas.data.PrepConfig`: 180 Hz, window + residual
channel, five RR features; :class:`ecgnas.train.TrainConfig`: class-balanced sampling without
loss weights, Q beats left out) are what every model here trains with, hand-designed and
searched alike. This script trains one fixed network (the default ``ecg-cell`` architecture of
:mod:`ecgnas.models.cellnet`, a small plain CNN) with the default recipe and with one choice
changed at a time, over several seeds, and records the DS1 hold-out macro-F1 (the selection
criterion) and, for information only, DS2. Output: ``benchmarks/results/ecg_recipe.json``.

Example (the recorded results)::

    NASCORE_DATA=../shared/data python benchmarks/ecg_recipe.py --seeds 0,1,2 --work runs/ecg_recipe
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
from common import RESULTS, header, parallel_map  # noqa: E402
from ecg_baselines import stats  # noqa: E402
from nascore.cliutil import parse_seeds  # noqa: E402
from nascore.io import atomic_write_json, read_json  # noqa: E402

#: variant -> (PrepConfig overrides, TrainConfig overrides)
VARIANTS = {
    "default": ({}, {}),
    "360 Hz": ({"fs": 360}, {}),
    "no residual channel": ({"residual": "none"}, {}),
    "residual channel only (raw window dropped)": ({"residual": "only"}, {}),
    "basic RR set (pre, post, local, record mean)": ({"rr_set": "basic"}, {}),
    "sqrt-balanced sampler": ({}, {"sampler": "sqrt_balanced"}),
    "shuffled batches, sqrt-inverse loss weights": ({}, {"sampler": "shuffle", "class_weight": "sqrt_inverse"}),
}


def _slug(variant: str) -> str:
    """Run-folder name of a variant (stable when variants are added or reordered)."""
    return re.sub(r"[^a-z0-9]+", "-", variant.lower()).strip("-")[:48]


def _job(job: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from ecgnas.run import train_run
    from ecgnas.data import DataSpec, PrepConfig
    from ecgnas.train import TrainConfig

    prep_kw, train_kw = VARIANTS[job["variant"]]
    cfg = TrainConfig(num_threads=1, device="cpu", seed=job["seed"], **train_kw)
    s = train_run(job["run"], "ecg-cell", train=cfg, spec=DataSpec(prep=PrepConfig(**prep_kw), data=job["data"]),
                  progress=False)
    return {"variant": job["variant"], "seed": job["seed"], "val_macro_f1": s.get("best_val_macro_f1"),
            "best_epoch": s.get("best_epoch"), "ds2_macro_f1": s["test"]["macro_f1"], "ds2_S_f1": s["test"]["S"]["f1"],
            "ds2_V_f1": s["test"]["V"]["f1"], "train_seconds": round(s["train_seconds"], 1), "params": s["params"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--work", default="runs/ecg_recipe")
    ap.add_argument("--out", default=str(RESULTS / "ecg_recipe.json"))
    ap.add_argument("--variants", default=None,
                    help="comma-separated variant numbers (0 = default) to (re)run; the others' runs are kept from --out")
    args = ap.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    names = list(VARIANTS)
    chosen = names if args.variants is None else [names[int(i)] for i in args.variants.split(",")]
    jobs = [{"variant": v, "seed": s, "data": args.data, "run": str(Path(args.work) / f"{_slug(v)}-s{s}")}
            for v in chosen for s in seeds]
    rows = parallel_map(_job, jobs, args.jobs, desc="recipe ablation")
    if args.variants is not None and Path(args.out).exists():
        rows = [r for r in read_json(args.out)["runs"] if r["variant"] not in chosen and r["variant"] in VARIANTS] + rows
    agg = {v: {k: stats(r[k] for r in rows if r["variant"] == v)
               for k in ("val_macro_f1", "ds2_macro_f1", "ds2_S_f1", "ds2_V_f1", "train_seconds")}
           for v in VARIANTS if any(r["variant"] == v for r in rows)}
    atomic_write_json(args.out, {**header(), "model": "ecg-cell (default arch)", "variants": {
        v: {"prep": p, "train": t} for v, (p, t) in VARIANTS.items()}, "runs": rows, "aggregate": agg})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""EG-NAS search speed: seconds per search epoch (weights + ES), the ES share, and peak memory.

Measures, at batch 256 on real CIFAR-10 images (32x32), for the DARTS supernet (C=16, 8 cells,
K=4) and the NB-201 supernet (C=16, N=5, K=4):

* ``weight_step_s``: one SGD step (forward + backward + update) of the supernet;
* ``candidate_eval_s``: one ES candidate scored (forward, no grad) on a batch;
* an epoch of the paper's setting is then ``ceil(25000/256) = 98`` weight steps plus one ES
  generation of ``population`` (50) candidate forwards (+1 for α itself): ``epoch_s`` and
  ``es_share`` are computed from the measured per-step times (stated as such in the JSON);
* ``peak_rss_mb`` (CPU: the process's max resident set) or ``peak_cuda_mb`` (GPU:
  ``torch.cuda.max_memory_allocated``), each configuration in a fresh subprocess.

It also reads the per-epoch ES/weight seconds measured directly by the runs of
``egnas_nb201_quality.py`` (if their folder exists). On a GPU run with ``--device cuda``.
Writes ``benchmarks/results/egnas_speed.json``.

    nice python benchmarks/egnas_speed.py --steps 2 --candidates 3
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, header  # noqa: E402


def measure(space: str, batch: int, steps: int, candidates: int, device: str, threads: int, data) -> dict:
    import resource

    import torch
    import torch.nn.functional as F

    from nascore.darts.supernet import build_supernet
    from nascore.data.cifar import DeviceLoader, load_cifar
    from nascore.darts.train import autocast_factory
    torch.set_num_threads(threads)
    dev = torch.device(device)
    x, y, _ = load_cifar("cifar10", data, "test")              # any real 32x32 images serve for timing
    dl = DeviceLoader(x[:batch * (steps + 1)], y[:batch * (steps + 1)], batch, device=dev, augment=True, seed=0)
    batches = list(dl.epoch(0))
    net = build_supernet(space, C=16, K=4, seed=0).to(dev)
    opt = torch.optim.SGD(net.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    ac = autocast_factory(dev, "auto")
    ctx = (lambda: ac()) if ac else (lambda: torch.autocast("cpu", enabled=False))
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for k in range(steps + 1):                                # first step is warm-up, not timed
        xb, yb = batches[k]
        sync()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with ctx():
            loss = F.cross_entropy(net(xb).float(), yb)
        loss.backward()
        opt.step()
        sync()
        if k:
            times.append(time.perf_counter() - t)
    ev = []
    with torch.no_grad():
        xb, yb = batches[0]
        for k in range(candidates):
            w = torch.softmax(net.alpha + 0.1 * torch.randn_like(net.alpha), -1)
            sync()
            t = time.perf_counter()
            with ctx():
                net(xb, w)
            sync()
            ev.append(time.perf_counter() - t)
    out = {"space": space, "batch": batch, "device": str(dev), "threads": threads,
           "weight_step_s": times, "candidate_eval_s": ev,
           "params_m": round(sum(p.numel() for p in net.weight_parameters()) / 1e6, 4)}
    if dev.type == "cuda":
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def quality_logs(folder: Path) -> dict:
    rows = {}
    for run in sorted(folder.glob("*-seed*")):
        log = run / "log.jsonl"
        if not log.exists():
            continue
        recs = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        es = [r["seconds"]["es"] for r in recs if "es" in r]
        w = [r["seconds"]["weights"] for r in recs]
        rows[run.name] = {"epochs": len(recs), "mean_weights_s": round(sum(w) / len(w), 2),
                          "mean_es_s_per_es_epoch": round(sum(es) / len(es), 2) if es else None,
                          "es_share_of_es_epochs": round(sum(es) / (sum(es) + sum(
                              r["seconds"]["weights"] for r in recs if "es" in r)), 3) if es else None}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default="nb201,darts")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=3)
    ap.add_argument("--population", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None)
    ap.add_argument("--quality-work", default="/tmp/egnas_nb201_quality")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # child process: one configuration
        print(json.dumps(measure(args.one, args.batch, args.steps, args.candidates, args.device, args.threads, args.data)))
        return
    from nascore.io import atomic_write_json
    out = {**header(), "note": ("epoch_s/es_share extrapolate an epoch of the paper's setting (98 weight steps of "
                                "batch 256 on 25,000 images + population+1 candidate forwards) from the measured "
                                "per-step times; CPU-only machine shared with other jobs, so times are noisy"),
           "results": {}}
    for space in args.spaces.split(","):
        cmd = [sys.executable, __file__, "--one", space, "--batch", str(args.batch), "--steps", str(args.steps),
               "--candidates", str(args.candidates), "--device", args.device, "--threads", str(args.threads)]
        if args.data:
            cmd += ["--data", args.data]
        t = time.perf_counter()
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        step = min(r["weight_step_s"])
        cand = min(r["candidate_eval_s"])
        n_steps = math.ceil(25000 / args.batch)
        es_s = (args.population + 1) * cand
        r.update({"steps_per_epoch": n_steps, "population": args.population,
                  "epoch_weights_s": round(n_steps * step, 1), "epoch_es_s": round(es_s, 1),
                  "epoch_s": round(n_steps * step + es_s, 1), "es_share": round(es_s / (n_steps * step + es_s), 3),
                  "wall_s": round(time.perf_counter() - t, 1)})
        out["results"][space] = r
        print(f"{space}: weight step {step:.2f} s, candidate {cand:.2f} s -> epoch ~{r['epoch_s']:.0f} s "
              f"(ES {100 * r['es_share']:.1f} %), peak RSS {r['peak_rss_mb']} MB", flush=True)
        atomic_write_json(RESULTS / "egnas_speed.json", out)
    out["quality_runs_measured"] = quality_logs(Path(args.quality_work))
    atomic_write_json(RESULTS / "egnas_speed.json", out)


if __name__ == "__main__":
    main()
